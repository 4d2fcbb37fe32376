//! `gradcam-onnx MODEL.onnx --out DIR`: the explainable Burn model of an ONNX file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gradcam_onnx::{GeneratorConfig, generate};

/// Write the Burn model of an ONNX file (burn-onnx) and its gradcam::GradCam implementation:
/// DIR/NAME.rs (include it in your crate) and DIR/NAME.bpk (its weights).
#[derive(Debug, Parser)]
#[command(name = "gradcam-onnx", version)]
struct Args {
    /// The ONNX file (exported with a dynamic batch axis).
    onnx: PathBuf,
    /// The folder to write into (created).
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// The files' name (default: the ONNX file's stem).
    #[arg(long)]
    name: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = GeneratorConfig::new();
    if let Some(name) = args.name {
        config = config.with_name(name);
    }
    match generate(&args.onnx, &args.out, &config) {
        Ok(generated) => {
            println!(
                "wrote {} and {}: {} layers, explained by default: {}",
                generated.source.display(),
                generated.weights.display(),
                generated.layers.len(),
                generated.default_layer.as_deref().unwrap_or("none")
            );
            if generated.dropped_softmax {
                println!("the graph's final softmax was taken off: its logits are explained");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
