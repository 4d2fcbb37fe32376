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
    ApplyResult, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};
use burn::tensor::DType;

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
/// The file is read into memory first (no memory map: a file truncated or rewritten while it
/// loads gives an error, never a `SIGBUS`). Float tensors are cast to the model's float type, so
/// an `f16` or `f64` export loads into an `f32` model (and the other way round).
///
/// # Errors
/// [`GradCamError::Io`] if the file cannot be read; [`GradCamError::Weights`] if it is not a
/// safetensors file (or is truncated), lacks a parameter, holds one of the wrong shape, or holds
/// tensors the model does not have.
pub fn load_weights<M: Module>(mut model: M, path: impl AsRef<Path>) -> Result<M> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| GradCamError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    if let Some(dtype) = float_dtype(&model) {
        store = store.with_from_adapter(FloatCastAdapter::to(dtype));
    }
    let result = model
        .load_from(&mut store)
        .map_err(|e| weights_error(path, e.to_string(), Some(Box::new(e))))?;
    check_applied(path, result, |_| false)?;
    Ok(model)
}

/// Load torchvision weights (a `state_dict` saved with `torch.save` as `.pth`/`.pt`, or exported
/// as `.safetensors`) into a [`ResNet`].
///
/// PyTorch's names become Burn's (BatchNorm `weight`/`bias` to `gamma`/`beta`, `Linear` weights
/// transposed, `downsample.0`/`.1` to `downsample.conv`/`.bn`); `num_batches_tracked` is ignored;
/// float tensors are cast to the model's float type.
///
/// # Errors
/// As [`load_weights`].
pub fn load_torchvision(mut model: ResNet, path: impl AsRef<Path>) -> Result<ResNet> {
    let path = path.as_ref();
    let safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let dtype = float_dtype(&model);
    let result = if safetensors {
        let bytes = std::fs::read(path).map_err(|source| GradCamError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let mut store = SafetensorsStore::from_bytes(Some(bytes))
            .with_key_remapping(r"downsample\.0\.", "downsample.conv.")
            .with_key_remapping(r"downsample\.1\.", "downsample.bn.");
        store = match dtype {
            Some(dtype) => {
                store.with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(dtype)))
            }
            None => store.with_from_adapter(PyTorchToBurnAdapter),
        };
        model
            .load_from(&mut store)
            .map_err(|e| weights_error(path, e.to_string(), Some(Box::new(e))))
    } else {
        if !path.is_file() {
            return Err(GradCamError::Io {
                action: "read",
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let mut store = PytorchStore::from_file(path)
            .with_key_remapping(r"downsample\.0\.", "downsample.conv.")
            .with_key_remapping(r"downsample\.1\.", "downsample.bn.");
        model
            .load_from(&mut store)
            .map_err(|e| weights_error(path, e.to_string(), Some(Box::new(e))))
    }?;
    check_applied(path, result, |key| key.ends_with("num_batches_tracked"))?;
    // A `.pth` store keeps the file's float type: cast to the model's.
    Ok(match dtype {
        Some(dtype) => crate::parameters::cast_floats(model, dtype),
        None => model,
    })
}

fn weights_error(
    path: &Path,
    reason: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
) -> GradCamError {
    GradCamError::Weights {
        path: path.to_path_buf(),
        reason,
        source,
    }
}

/// Reject a load that left parameters out or brought tensors the model does not have.
fn check_applied(path: &Path, result: ApplyResult, ignored: impl Fn(&str) -> bool) -> Result<()> {
    if let Some(first) = result.errors.first() {
        let reason = result
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(weights_error(path, reason, Some(Box::new(first.clone()))));
    }
    if !result.missing.is_empty() {
        let missing: Vec<_> = result.missing.iter().map(|(k, _)| k.as_str()).collect();
        return Err(weights_error(
            path,
            format!("missing tensors: {}", missing.join(", ")),
            None,
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
            None,
        ));
    }
    Ok(())
}

/// The float type of the model's parameters.
fn float_dtype<M: Module>(model: &M) -> Option<DType> {
    crate::parameters::device_and_dtype(model).map(|(_, dtype)| dtype)
}
