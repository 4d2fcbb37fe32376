//! Does the ReLU matter? Every metric of `gradcam::eval`, ReLU on vs off, for every method
//! whose map can be negative, over generated two-object scenes (each object's class explained in
//! turn) and the boxed photo.
//!
//! ```sh
//! cargo run -p gradcam-lab --features flex,ndarray,wgpu --example relu_ablation   # all methods
//! cargo run -p gradcam-lab --features flex,ndarray,wgpu --example relu_ablation -- --scenes 100 --method grad-cam
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use gradcam::eval::BBox;
use gradcam::image::{
    Colormap, Preprocess, load_image, overlay, save_png, side_by_side, signed_to_diverging,
};
use gradcam::models::{EfficientNetLite0, SqueezeNet, imagenet_classes, load_weights};
use gradcam::{CamMethod, ExplainerConfig, GradCam, Method, Normalization, Probe, Targets};
use gradcam_lab::ablation::{Ablation, AblationCase, mean_ci, relu_ablation};
use gradcam_lab::shapes_net_weights;
use gradcam_lab::synthetic::{SCENE_SIZE, Scene, ShapesNet, scene, scene_batch};
use image::{RgbImage, imageops};

const USAGE: &str = "usage: relu_ablation [--scenes N] [--method NAME]... [--no-photo]

Prints the tables to standard output and writes one file: out/relu_ablation.png (scene | ReLU
on | ReLU off, Grad-CAM, six scenes). Without --method, every method whose map can be negative
(all but element-wise-grad-cam).";

/// The scenes of the ablation: a stream the network never saw in training.
const SEED: u64 = 9000;
const STEPS: usize = 16;

fn asset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(name)
}

fn to_rgb(scene: &Scene) -> RgbImage {
    let n = SCENE_SIZE;
    RgbImage::from_fn(n as u32, n as u32, |x, y| {
        let p = y as usize * n + x as usize;
        image::Rgb(std::array::from_fn(|c| {
            (scene.image[c * n * n + p] * 255.0).round() as u8
        }))
    })
}

/// One row of the figure: scene | ReLU on | ReLU off (signed map, blue = negative).
fn figure_row(model: &ShapesNet, scene: &Scene, device: &Device) -> RgbImage {
    let x = scene_batch(std::slice::from_ref(scene), device);
    let class = scene.objects[0].class;
    let on = ExplainerConfig::new()
        .init(model)
        .unwrap()
        .explain(x.clone(), &Targets::class(class))
        .unwrap();
    let off = ExplainerConfig::new()
        .with_relu(false)
        .with_normalization(Normalization::Off)
        .init(model)
        .unwrap()
        .explain(x, &Targets::class(class))
        .unwrap();
    let photo = to_rgb(scene);
    let n = SCENE_SIZE;
    let on = Colormap::Jet
        .paint(&on.heatmap_values(0, 0).unwrap(), [n, n])
        .unwrap();
    let off = signed_to_diverging(&off.heatmap_values(0, 0).unwrap());
    let off = Colormap::Diverging.paint(&off, [n, n]).unwrap();
    let panels = [
        photo.clone(),
        overlay(&photo, &on, 0.5).unwrap(),
        overlay(&photo, &off, 0.7).unwrap(),
    ]
    .map(|p| {
        imageops::resize(
            &p,
            3 * n as u32,
            3 * n as u32,
            imageops::FilterType::Nearest,
        )
    });
    side_by_side(&panels).unwrap()
}

/// The imgaug quokka with its box, explained for each model's top-1 class.
fn photo_ablation<M: GradCam>(
    model: &M,
    method: Method,
    layer: &str,
    prep: Preprocess,
    device: &Device,
) -> (Ablation, String) {
    let photo = load_image(asset("quokka.jpg")).expect("assets/quokka.jpg");
    let (w, h) = photo.dimensions();
    let bx = quokka_box();
    // The box in the model's input coordinates.
    let [mh, mw] = prep.size;
    let scale =
        |v: usize, from: u32, to: usize| (v as f32 * to as f32 / from as f32).round() as usize;
    let target = BBox {
        x0: scale(bx.x0, w, mw),
        y0: scale(bx.y0, h, mh),
        x1: scale(bx.x1, w, mw),
        y1: scale(bx.y1, h, mh),
    };
    let x = prep.to_tensor(&[photo], device).unwrap();
    let logits = model.forward_probed(x.clone(), &mut Probe::passthrough());
    let class = logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap()[0] as usize;
    let ablation = relu_ablation(
        model,
        method,
        layer,
        x,
        &[vec![AblationCase {
            class,
            target,
            other: None,
        }]],
        STEPS,
    )
    .unwrap();
    (ablation, imagenet_classes()[class].to_string())
}

/// The quokka's box in `assets/quokka.jpg` (see assets/LICENSES.md).
fn quokka_box() -> BBox {
    let text = std::fs::read_to_string(asset("quokka_box.txt")).expect("assets/quokka_box.txt");
    let v: Vec<usize> = text
        .split_whitespace()
        .map(|t| t.parse().expect("a number"))
        .collect();
    BBox {
        x0: v[0],
        y0: v[1],
        x1: v[2],
        y1: v[3],
    }
}

fn main() {
    let mut count = 500;
    let mut methods = Vec::new();
    let mut photo = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--scenes" => match args.next().map(|v| v.parse()) {
                Some(Ok(v)) => count = v,
                _ => usage(),
            },
            "--method" => match args.next().map(|v| v.parse::<Method>()) {
                Some(Ok(m)) => methods.push(m),
                Some(Err(e)) => {
                    eprintln!("{e}");
                    usage()
                }
                None => usage(),
            },
            "--no-photo" => photo = false,
            _ => usage(),
        }
    }
    if methods.is_empty() {
        // Element-wise Grad-CAM's map is a sum of ReLUs, FullGrad's a sum of normalised
        // magnitudes and LeGrad's a mean of ReLUs (of a transformer's attention gradients, which
        // this network lacks): never negative, the switch is moot.
        methods = Method::ALL
            .into_iter()
            .filter(|m| {
                !m.reads_attention() && !matches!(m, Method::ElementWiseGradCam | Method::FullGrad)
            })
            .collect();
    }
    let device = Device::flex();
    let model = load_weights(ShapesNet::new(&device), shapes_net_weights())
        .expect("lab/weights/shapes_net.safetensors");
    let scenes: Vec<Scene> = (0..count as u64).map(|i| scene(SEED, i)).collect();

    let mut summary = Vec::new();
    for &method in &methods {
        let mut total = Ablation::default();
        for chunk in scenes.chunks(50) {
            let rows: Vec<Vec<AblationCase>> = chunk.iter().map(AblationCase::for_scene).collect();
            let part = relu_ablation(
                &model,
                method,
                "block4",
                scene_batch(chunk, &device),
                &rows,
                STEPS,
            )
            .unwrap();
            total.extend(part);
        }
        println!(
            "## {method}: {count} generated scenes, {} explanations (ShapesNet, layer block4)\n",
            2 * count
        );
        println!("{}", total.table());
        let effect = |on: &[f32], off: &[f32]| {
            let (a, ca) = mean_ci(on);
            let (b, cb) = mean_ci(off);
            format!("{:+.3} (± {:.3})", a - b, (ca * ca + cb * cb).sqrt())
        };
        let (on, off) = (&total.relu_on, &total.relu_off);
        summary.push(format!(
            "| {method} | {} | {} | {} | {} |",
            effect(&on.energy, &off.energy),
            effect(&on.localisation, &off.localisation),
            effect(&off.off_energy, &on.off_energy),
            effect(&on.deletion, &off.deletion),
        ));
    }
    println!("## The ReLU's effect across methods (on - off; off - on for off-class energy)\n");
    println!("| method | energy in box | 15 % IoU | off-class energy (off - on) | deletion AUC |");
    println!("|---|---|---|---|---|");
    for row in &summary {
        println!("{row}");
    }
    println!();
    // What a uniform map would score: the mean box's share of the image.
    let areas: usize = scenes
        .iter()
        .flat_map(|s| &s.objects)
        .map(|o| o.bbox.area())
        .sum();
    let box_share = areas as f32 / (2 * scenes.len() * SCENE_SIZE * SCENE_SIZE) as f32;
    println!(
        "Uniform-map baseline: energy in a box = off-class energy = {box_share:.3} (mean box area / image area).\n"
    );

    if photo {
        let squeezenet =
            load_weights(SqueezeNet::new(&device), asset("squeezenet1_1.safetensors")).unwrap();
        let lite0 = load_weights(
            EfficientNetLite0::new(&device),
            asset("efficientnet_lite0.safetensors"),
        )
        .unwrap()
        .fold_batchnorm();
        for &method in &methods {
            for (name, result) in [
                (
                    "SqueezeNet 1.1, fire9",
                    photo_ablation(
                        &squeezenet,
                        method,
                        "fire9",
                        SqueezeNet::preprocess(),
                        &device,
                    ),
                ),
                (
                    "EfficientNet-Lite0, head",
                    photo_ablation(
                        &lite0,
                        method,
                        "head",
                        EfficientNetLite0::preprocess(),
                        &device,
                    ),
                ),
            ] {
                let (ablation, class) = result;
                println!(
                    "## Photo, {method}: imgaug quokka, {name}, top-1 `{class}` (n = 1: no interval)\n"
                );
                println!("{}", ablation.table());
            }
        }
    }

    let rows: Vec<RgbImage> = scenes
        .iter()
        .take(6)
        .map(|s| figure_row(&model, s, &device))
        .collect();
    let (w, h) = (rows[0].width(), rows[0].height());
    let mut grid =
        RgbImage::from_pixel(w, (h + 4) * rows.len() as u32, image::Rgb([255, 255, 255]));
    for (i, row) in rows.iter().enumerate() {
        imageops::replace(&mut grid, row, 0, (i as u32 * (h + 4)) as i64);
    }
    let out = Path::new("out/relu_ablation.png");
    save_png(&grid, out).unwrap();
    println!(
        "wrote {} (scene | ReLU on | ReLU off, signed: blue = negative evidence)",
        out.display()
    );
}

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2);
}
