//! Explain a photo with SqueezeNet 1.1 (real ImageNet weights): one capture of its top-5
//! classes, then the top class's map with the ReLU on and off, both from that capture.
//!
//! ```sh
//! cargo run --features flex,ndarray,wgpu --example explain -- assets/chelsea.png
//! cargo run --features flex,ndarray,wgpu --example explain -- photo.jpg --method hires-cam --device wgpu
//! ```
//!
//! Writes `out/explain.png` (`--out` names another) and `out/explain.strip.png` (the model's input
//! | ReLU on | ReLU off, blue = evidence against). Folders of photos, other models, raw maps: the
//! `gradcam` command in `cli/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::tensor::Device;
use gradcam::image::{Colormap, load_image, overlay, save_png, side_by_side, signed_to_diverging};
use gradcam::models::{SqueezeNet, imagenet_classes, load_weights};
use gradcam::{ExplainerConfig, Method, Normalization, Targets};

fn main() -> ExitCode {
    run().map_or_else(
        |error| {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let photo_path = Path::new(args.first().ok_or("usage: explain <photo> [--method M]")?);
    let method: Method = flag("--method").map_or(Ok(Method::GradCam), |m| m.parse())?;
    let device = match flag("--device").map(String::as_str) {
        None | Some("flex") => Device::flex(),
        #[cfg(feature = "wgpu")]
        Some("wgpu") => Device::wgpu(Default::default()),
        Some(other) => return Err(format!("unknown device `{other}` (flex, wgpu)").into()),
    };
    let out = PathBuf::from(flag("--out").map_or("out/explain.png", String::as_str));
    let strip = out.with_extension("strip.png");
    let input_photo = photo_path.canonicalize()?;
    if [&out, &strip]
        .iter()
        .any(|o| o.canonicalize().ok() == Some(input_photo.clone()))
    {
        return Err("refusing to write over the input photo; pick another --out".into());
    }

    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/squeezenet1_1.safetensors");
    let model = load_weights(SqueezeNet::new(&device), weights)?;
    let prep = SqueezeNet::preprocess();
    let photo = load_image(photo_path)?;
    let input = prep.to_tensor(std::slice::from_ref(&photo), &device)?; // [1, 3, 227, 227]

    // One forward (and backward) for the five classes; every explainer below reuses it.
    let explainer = ExplainerConfig::new().with_method(method).init(&model)?;
    let capture = explainer.capture(input, &Targets::top(5))?;
    let names = imagenet_classes();
    println!("top-5 for {} (logits):", photo_path.display());
    for target in &capture.targets[0] {
        let class = target.class.unwrap_or_default();
        println!("  {:>7.2}  {class:>4}  {}", target.score, names[class]);
    }

    // ReLU on (the map as pytorch-grad-cam draws it) and off (signed, unscaled).
    let relu_on = explainer.explain_capture(&capture)?;
    let relu_off = ExplainerConfig::new()
        .with_method(method)
        .with_relu(false)
        .with_normalization(Normalization::Off)
        .init(&model)?
        .explain_capture(&capture)?;
    let heat = Colormap::Jet.paint(&relu_on.heatmap_values(0, 0)?, prep.size)?; // top class
    let signed = signed_to_diverging(&relu_off.heatmap_values(0, 0)?);
    save_png(&overlay(&photo, &heat, 0.5)?, &out)?; // at the photo's own resolution
    let seen = prep.resize(&photo)?;
    let panels = [
        seen.clone(),
        overlay(&seen, &heat, 0.5)?,
        overlay(&seen, &Colormap::Diverging.paint(&signed, prep.size)?, 0.6)?,
    ];
    save_png(&side_by_side(&panels)?, &strip)?;
    println!(
        "{method} at `{}` for class {}: wrote {} and {}",
        explainer.config().layers[0],
        capture.targets[0][0].class.unwrap_or_default(),
        out.display(),
        strip.display()
    );
    Ok(())
}
