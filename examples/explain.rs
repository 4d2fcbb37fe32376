//! Explain a photo with a pretrained ImageNet model and write the class-activation overlay.
//!
//! ```sh
//! cargo run --features flex,ndarray,wgpu --example explain -- assets/chelsea.png
//! cargo run --features flex,ndarray,wgpu --example explain -- photo.jpg --model efficientnet-lite0 --method hires-cam --no-relu
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use gradcam::models::{EfficientNetLite0, SqueezeNet, imagenet_classes, load_weights};
use gradcam::{
    CamModel, Colormap, ExplainerConfig, GradCamError, Method, Normalization, Preprocess, Probe,
    Targets, load_image, overlay, save_png, signed_to_unit, strip,
};

const USAGE: &str = "usage: explain <image> [--model squeezenet|efficientnet-lite0] [--layer NAME]
  [--method grad-cam|grad-cam++|xgrad-cam|hires-cam|element-wise-grad-cam|layer-cam|eigen-cam|
            eigen-grad-cam|score-cam|ablation-cam] [--class N] [--no-relu]
  [--colormap jet|turbo|viridis] [--out PATH] [--device flex|ndarray|wgpu]

Writes two files, and nothing else: PATH (default out/explain.png), the overlay at the photo's
own resolution, and PATH with the extension strip.png, the model input | ReLU on | ReLU off.
Neither may be the input photo.";

struct Args {
    image: PathBuf,
    model: String,
    method: Method,
    layer: Option<String>,
    class: Option<usize>,
    relu: bool,
    colormap: Colormap,
    out: PathBuf,
    device: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut image = None;
    let mut parsed = Args {
        image: PathBuf::new(),
        model: "squeezenet".into(),
        method: Method::GradCam,
        layer: None,
        class: None,
        relu: true,
        colormap: Colormap::Jet,
        out: PathBuf::from("out/explain.png"),
        device: "flex".into(),
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--model" => parsed.model = value("--model")?,
            "--layer" => parsed.layer = Some(value("--layer")?),
            "--method" => {
                parsed.method = value("--method")?
                    .parse()
                    .map_err(|e: GradCamError| e.to_string())?
            }
            "--class" => {
                let v = value("--class")?;
                parsed.class = Some(
                    v.parse()
                        .map_err(|_| format!("--class takes a number, not `{v}`"))?,
                );
            }
            "--no-relu" => parsed.relu = false,
            "--colormap" => {
                parsed.colormap = match value("--colormap")?.as_str() {
                    "jet" => Colormap::Jet,
                    "turbo" => Colormap::Turbo,
                    "viridis" => Colormap::Viridis,
                    other => {
                        return Err(format!("unknown colormap `{other}` (jet, turbo, viridis)"));
                    }
                }
            }
            "--out" => parsed.out = PathBuf::from(value("--out")?),
            "--device" => parsed.device = value("--device")?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            flag if flag.starts_with("--") => return Err(format!("unknown flag `{flag}`")),
            path if image.is_none() => image = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument `{extra}`")),
        }
    }
    parsed.image = image.ok_or("missing the image to explain")?;
    for out in [parsed.out.clone(), strip_path(&parsed.out)] {
        if same_file(&out, &parsed.image) {
            return Err(format!(
                "refusing to write {} over the input photo; pick another --out",
                out.display()
            ));
        }
    }
    Ok(parsed)
}

/// The second file `explain` writes: `PATH` with the extension `strip.png`.
fn strip_path(out: &Path) -> PathBuf {
    out.with_extension("strip.png")
}

/// Whether two paths name the same file (the first need not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| {
        p.canonicalize().ok().or_else(|| {
            let parent = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            Some(parent.canonicalize().ok()?.join(p.file_name()?))
        })
    };
    match (canonical(a), canonical(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

fn device(name: &str) -> Result<Device, String> {
    match name {
        "flex" => Ok(Device::flex()),
        #[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => Err("this build has no wgpu: rerun with `--features wgpu`".into()),
        other => Err(format!("unknown device `{other}` (flex, ndarray, wgpu)")),
    }
}

fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = device(&args.device).and_then(|device| match args.model.as_str() {
        "squeezenet" => load_weights(SqueezeNet::new(&device), asset("squeezenet1_1.safetensors"))
            .map_err(|e| e.to_string())
            .and_then(|m| run(&m, SqueezeNet::preprocess(), &args, &device)),
        "efficientnet-lite0" => load_weights(
            EfficientNetLite0::new(&device),
            asset("efficientnet_lite0.safetensors"),
        )
        .map_err(|e| e.to_string())
        // Same maps, one pass fewer over every activation.
        .map(EfficientNetLite0::fold_batchnorm)
        .and_then(|m| run(&m, EfficientNetLite0::preprocess(), &args, &device)),
        other => Err(format!(
            "unknown model `{other}` (squeezenet, efficientnet-lite0)"
        )),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run<M: CamModel>(
    model: &M,
    prep: Preprocess,
    args: &Args,
    device: &Device,
) -> Result<(), String> {
    let text = |e: GradCamError| e.to_string();
    let photo = load_image(&args.image).map_err(text)?;
    let input = prep
        .to_tensor(std::slice::from_ref(&photo), device)
        .map_err(text)?; // [1, 3, h, w]
    let names = imagenet_classes();

    let logits = model.forward_probed(input.clone(), &mut Probe::passthrough()); // [1, 1000]
    let probs = softmax(logits, 1)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let mut ranked: Vec<usize> = (0..probs.len()).collect();
    ranked.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
    println!("top-5 for {}:", args.image.display());
    for &c in &ranked[..5] {
        println!("  {:>6.2} %  {c:>4}  {}", probs[c] * 100.0, names[c]);
    }

    let class = args.class.unwrap_or(ranked[0]);
    let mut config = ExplainerConfig::new()
        .with_method(args.method)
        .with_relu(args.relu);
    if let Some(layer) = &args.layer {
        config = config.with_layer(layer.clone());
    }
    let explainer = config.init(model).map_err(text)?;
    let layer = explainer.config().layers[0].clone();
    let explanation = explainer
        .explain(input.clone(), &Targets::class(class))
        .map_err(text)?;
    let [h, w] = prep.size;
    let heat = explanation.heatmap_values(0, 0).map_err(text)?;
    let shown = overlay(
        &photo,
        &args.colormap.paint(&heat, [h, w]).map_err(text)?,
        0.5,
    )
    .map_err(text)?;
    save_png(&shown, &args.out).map_err(text)?;
    println!(
        "explained class {class} ({}) with {} at layer `{layer}`, ReLU {}: wrote {}",
        names.get(class).unwrap_or(&"?"),
        args.method,
        if args.relu { "on" } else { "off" },
        args.out.display()
    );

    // The strip: photo | ReLU on | ReLU off (signed map on a diverging colormap).
    let signed = ExplainerConfig::new()
        .with_method(args.method)
        .with_layer(layer)
        .with_relu(false)
        .with_normalization(Normalization::None)
        .init(model)
        .map_err(text)?
        .explain(input, &Targets::class(class))
        .map_err(text)?;
    let raw = signed.heatmap_values(0, 0).map_err(text)?;
    let relu_on = if args.relu {
        heat
    } else {
        let max = raw.iter().fold(0.0f32, |m, v| m.max(*v));
        raw.iter()
            .map(|v| if max > 0.0 { v.max(0.0) / max } else { 0.0 })
            .collect()
    };
    let resized = prep.resize(&photo).map_err(text)?;
    let panels = [
        resized.clone(),
        overlay(
            &resized,
            &args.colormap.paint(&relu_on, [h, w]).map_err(text)?,
            0.5,
        )
        .map_err(text)?,
        overlay(
            &resized,
            &Colormap::Diverging
                .paint(&signed_to_unit(&raw), [h, w])
                .map_err(text)?,
            0.6,
        )
        .map_err(text)?,
    ];
    let strip_path = strip_path(&args.out);
    save_png(&strip(&panels).map_err(text)?, &strip_path).map_err(text)?;
    println!(
        "wrote {} (photo | ReLU on | ReLU off, blue = negative evidence)",
        strip_path.display()
    );
    Ok(())
}
