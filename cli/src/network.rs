//! Which model: the choices of `--model` and `--weights`.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use gradcam::models::{EfficientNetLite0, ResNet, SqueezeNet, load_torchvision, load_weights};

use crate::Args;
use crate::outputs::Summary;

/// The bundled model architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// SqueezeNet 1.1 (weights bundled in the repository).
    Squeezenet,
    /// EfficientNet-Lite0 (weights bundled in the repository).
    EfficientnetLite0,
    /// torchvision's ResNet-18 (`--weights` required).
    Resnet18,
    /// torchvision's ResNet-50 (`--weights` required).
    Resnet50,
}

/// The bundled weights in the repository's `assets/`, for a build from the repository.
fn bundled(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("assets")
        .join(name)
}

/// Load the model `args` names on its device and explain the photos with it.
///
/// # Errors
/// A message when the device, the weights or the run fails as a whole.
pub fn load_and_run(args: &Args) -> Result<Summary, String> {
    let device = args.device.device_in(args.dtype)?;
    let text = |e: gradcam::GradCamError| e.to_string();
    let weights = |name: &str| args.weights.clone().unwrap_or_else(|| bundled(name));
    let torchvision = |model: &str| {
        args.weights.clone().ok_or(format!(
            "{model} has no bundled weights: pass --weights with torchvision's file \
             (e.g. {model}-*.pth from torchvision's download cache)"
        ))
    };
    match args.model {
        Network::Squeezenet => {
            let model = load_weights(
                SqueezeNet::new(&device),
                weights("squeezenet1_1.safetensors"),
            )
            .map_err(text)?;
            crate::run(&model, &SqueezeNet::preprocess(), args, &device)
        }
        Network::EfficientnetLite0 => {
            let model = load_weights(
                EfficientNetLite0::new(&device),
                weights("efficientnet_lite0.safetensors"),
            )
            .map_err(text)?
            .fold_batchnorm();
            crate::run(&model, &EfficientNetLite0::preprocess(), args, &device)
        }
        Network::Resnet18 | Network::Resnet50 => {
            let (name, empty) = match args.model {
                Network::Resnet18 => ("resnet18", ResNet::resnet18(1000, &device)),
                _ => ("resnet50", ResNet::resnet50(1000, &device)),
            };
            let model = load_torchvision(empty, torchvision(name)?)
                .map_err(text)?
                .fold_batchnorm();
            crate::run(&model, &ResNet::preprocess(), args, &device)
        }
    }
}
