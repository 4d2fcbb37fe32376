//! Which model and which device: the choices of `--model`, `--weights` and `--device`.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
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

/// The backends this build can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Burn's flex CPU backend.
    Flex,
    /// Burn's ndarray CPU backend.
    Ndarray,
    /// wgpu (Vulkan, Metal or DX12; WGSL shaders).
    Wgpu,
    /// Vulkan with SPIR-V shaders (cooperative matrices where the GPU has them).
    Vulkan,
}

impl Backend {
    /// The device, or why this build has none.
    pub fn device(self) -> Result<Device, String> {
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Ok(Device::flex()),
            #[cfg(not(feature = "flex"))]
            Self::Flex => missing("flex"),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // burn-ndarray is deprecated upstream, still supported here
            Self::Ndarray => Ok(Device::ndarray()),
            #[cfg(not(feature = "ndarray"))]
            Self::Ndarray => missing("ndarray"),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(not(feature = "wgpu"))]
            Self::Wgpu => missing("wgpu"),
            #[cfg(feature = "vulkan")]
            Self::Vulkan => Ok(Device::vulkan(Default::default())),
            #[cfg(not(feature = "vulkan"))]
            Self::Vulkan => missing("vulkan"),
        }
    }
}

/// The error for a backend this build lacks.
#[allow(dead_code)] // unused when every backend is built
fn missing(feature: &str) -> Result<Device, String> {
    Err(format!(
        "this build has no {feature}: rebuild with `--features {feature}`"
    ))
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
    let device = args.device.device()?;
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
