//! Ready-made explainable models: SqueezeNet 1.1 and EfficientNet-Lite0 with real ImageNet
//! weights (converted by `scripts/`, shipped in `assets/`), and torchvision-layout ResNets that
//! load a user's own weights.

mod efficientnet_lite;
mod fold;
mod layers;
mod resnet;
mod squeezenet;

use std::path::Path;

use burn::module::Module;
use burn::store::{
    ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};

use crate::error::{GradCamError, Result};

pub use efficientnet_lite::{ConvBn, EfficientNetLite0, MbConv};
pub use resnet::{Block, Downsample, ResNet};
pub use squeezenet::{Fire, SqueezeNet};

/// The 1000 ImageNet class names, in the standard order.
pub fn imagenet_classes() -> Vec<&'static str> {
    include_str!("../../assets/imagenet_classes.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
}

/// Load a safetensors file whose keys are the model's own parameter paths (the files in
/// `assets/`, written by `scripts/`).
///
/// # Errors
/// [`GradCamError::Weights`] if the file is missing, truncated, lacks a parameter, holds one of
/// the wrong shape, or holds tensors the model does not have.
pub fn load_weights<M: Module>(mut model: M, path: impl AsRef<Path>) -> Result<M> {
    let path = path.as_ref();
    let mut store = SafetensorsStore::from_file(path);
    let result = model
        .load_from(&mut store)
        .map_err(|e| weights_error(path, e.to_string()))?;
    check_applied(path, result, |_| false)?;
    Ok(model)
}

/// Load torchvision weights (a `state_dict` saved with `torch.save` as `.pth`/`.pt`, or exported
/// as `.safetensors`) into a [`ResNet`].
///
/// PyTorch's names become Burn's (BatchNorm `weight`/`bias` to `gamma`/`beta`, `Linear` weights
/// transposed, `downsample.0`/`.1` to `downsample.conv`/`.bn`); `num_batches_tracked` is ignored.
///
/// # Errors
/// [`GradCamError::Weights`] as for [`load_weights`].
pub fn load_torchvision(mut model: ResNet, path: impl AsRef<Path>) -> Result<ResNet> {
    let path = path.as_ref();
    let safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let result = if safetensors {
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .with_key_remapping(r"downsample\.0\.", "downsample.conv.")
            .with_key_remapping(r"downsample\.1\.", "downsample.bn.");
        model.load_from(&mut store).map_err(|e| e.to_string())
    } else {
        let mut store = PytorchStore::from_file(path)
            .with_key_remapping(r"downsample\.0\.", "downsample.conv.")
            .with_key_remapping(r"downsample\.1\.", "downsample.bn.");
        model.load_from(&mut store).map_err(|e| e.to_string())
    }
    .map_err(|e| weights_error(path, e))?;
    check_applied(path, result, |key| key.ends_with("num_batches_tracked"))?;
    Ok(model)
}

fn weights_error(path: &Path, reason: String) -> GradCamError {
    GradCamError::Weights {
        path: path.to_path_buf(),
        reason,
    }
}

/// Reject a load that left parameters out or brought tensors the model does not have.
fn check_applied(path: &Path, result: ApplyResult, ignored: impl Fn(&str) -> bool) -> Result<()> {
    if !result.errors.is_empty() {
        return Err(weights_error(path, format!("{:?}", result.errors)));
    }
    if !result.missing.is_empty() {
        let missing: Vec<_> = result.missing.iter().map(|(k, _)| k.as_str()).collect();
        return Err(weights_error(
            path,
            format!("missing tensors: {}", missing.join(", ")),
        ));
    }
    let unused: Vec<_> = result
        .unused
        .iter()
        .filter(|k| !ignored(k))
        .map(String::as_str)
        .collect();
    if !unused.is_empty() {
        return Err(weights_error(
            path,
            format!("tensors the model does not have: {}", unused.join(", ")),
        ));
    }
    Ok(())
}
