//! Train the scenes CNN (`gradcam_lab::synthetic::ShapesNet`) from a fixed seed and write its
//! weights where `--out` says (default `out/shapes_net.safetensors`; the committed copy is
//! `lab/weights/shapes_net.safetensors`).
//!
//! ```sh
//! cargo run -p gradcam-lab --features flex,ndarray,wgpu --example train_shapes   # ~7 minutes on 2 CPU cores
//! ```
//!
//! Multi-label training: both objects' classes are positives (binary cross-entropy on the
//! logits), 12 epochs over 6000 scenes, Adam. Accuracy = the two highest logits are exactly the
//! scene's two classes, on 1000 validation scenes of another stream.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::BinaryCrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Int, Tensor, TensorData};
use gradcam_lab::synthetic::{
    SHAPE_CLASSES, Scene, ShapesNet, scene, scene_batch, two_class_accuracy,
};

const SEED: u64 = 2024;
const TRAIN: u64 = 6000;
const VALID: u64 = 1000;
const EPOCHS: usize = 12;
const BATCH: usize = 50;

fn labels(scenes: &[Scene], device: &Device) -> Tensor<2, Int> {
    let k = SHAPE_CLASSES.len();
    let mut data = vec![0i64; scenes.len() * k];
    for (i, s) in scenes.iter().enumerate() {
        for o in &s.objects {
            data[i * k + o.class] = 1;
        }
    }
    Tensor::from_data(TensorData::new(data, [scenes.len(), k]), device)
}

const USAGE: &str = "usage: train_shapes [--out PATH]

Trains the scenes CNN and writes one file: its weights to PATH (default
out/shapes_net.safetensors). The committed weights in lab/weights/ are not touched unless PATH
names them.";

fn main() {
    let mut out = std::path::PathBuf::from("out/shapes_net.safetensors");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--out", Some(path)) => out = path.into(),
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let device = Device::flex();
    device.seed(SEED);
    let train: Vec<Scene> = (0..TRAIN).map(|i| scene(SEED, i)).collect();
    let valid: Vec<Scene> = (0..VALID).map(|i| scene(SEED + 1, i)).collect();
    let autodiff = device.clone().autodiff();
    let mut model = ShapesNet::new(&autodiff);
    let mut optim = AdamConfig::new().init();
    let loss = BinaryCrossEntropyLossConfig::new()
        .with_logits(true)
        .init(&autodiff);
    let start = Instant::now();
    let steps = train.len() / BATCH;
    for epoch in 0..EPOCHS {
        let lr = 3e-3 * 0.5f64.powi(epoch as i32 / 4);
        let mut total = 0.0;
        // A fixed shuffle per epoch: a stride through the data.
        let order: Vec<usize> = (0..train.len())
            .map(|i| (i * 7919 + epoch * 131) % train.len())
            .collect();
        for step in 0..steps {
            let batch: Vec<Scene> = order[step * BATCH..(step + 1) * BATCH]
                .iter()
                .map(|&i| train[i].clone())
                .collect();
            let x = scene_batch(&batch, &autodiff);
            let y = labels(&batch, &autodiff);
            let l = loss.forward(model.forward(x), y);
            total += l.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(l.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        let acc = two_class_accuracy(&model.valid(), &valid, &device);
        println!(
            "epoch {epoch}: loss {:.4}, validation accuracy {:.1} %, {:.0} s",
            total / steps as f32,
            acc * 100.0,
            start.elapsed().as_secs_f32()
        );
    }
    let model = model.valid();
    let acc = two_class_accuracy(&model, &valid, &device);
    let path = out.as_path();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).expect("create the output folder");
    }
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    model.save_into(&mut store).expect("write the weights");
    println!(
        "validation accuracy {:.1} % on {VALID} scenes; wrote {}",
        acc * 100.0,
        path.display()
    );
}
