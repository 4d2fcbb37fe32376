//! Ready-made explainable models: SqueezeNet 1.1 and EfficientNet-Lite0 with real ImageNet
//! weights (converted by `scripts/`, shipped in `assets/`), and torchvision-layout ResNets that
//! load a user's own weights; a Vision Transformer in torchvision's layout, routed through the
//! probe for its token layers and LeGrad.

mod efficientnet_lite;
mod fold;
mod layers;
mod resnet;
mod squeezenet;
mod vit;

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::{
    ApplyResult, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};
use burn::tensor::{DType, Tensor};

use crate::error::{GradCamError, InputError, Result};

pub use efficientnet_lite::{ConvBn, EfficientNetLite0, MbConv};
pub use resnet::{Block, Downsample, ResNet};
pub use squeezenet::{Fire, SqueezeNet};
pub use vit::{EncoderBlock, Vit, VitConfig};

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
/// [`EnvironmentError::Io`](crate::EnvironmentError::Io) if the file cannot be read; [`InputError::Weights`] if it is not a
/// safetensors file (or is truncated), lacks a parameter, holds one of the wrong shape, or holds
/// tensors the model does not have.
pub fn load_weights<M: Module>(mut model: M, path: impl AsRef<Path>) -> Result<M> {
    let path = path.as_ref();
    let bytes = read_safetensors(path)?;
    // Partial: what is missing or left over is reported by `check_applied`, briefly.
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).allow_partial(true);
    if let Some(dtype) = float_dtype(&model) {
        store = store.with_from_adapter(FloatCastAdapter::to(dtype));
    }
    let result = model
        .load_from(&mut store)
        .map_err(|e| weights_error(path, e.to_string(), Some(Box::new(e))))?;
    check_applied(path, result, |_| false)?;
    check_finite(path, &model)?;
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
pub fn load_torchvision(model: ResNet, path: impl AsRef<Path>) -> Result<ResNet> {
    load_pytorch(
        model,
        path.as_ref(),
        &[
            (r"downsample\.0\.", "downsample.conv."),
            (r"downsample\.1\.", "downsample.bn."),
        ],
        |key| key.ends_with("num_batches_tracked"),
    )
}

/// Load torchvision `VisionTransformer` weights (`vit_b_16` and the like: a `state_dict` saved
/// as `.pth`/`.pt`, or exported as `.safetensors`) into a [`Vit`] of the same shape
/// ([`VitConfig`], whose layer-norm epsilon defaults to torchvision's).
///
/// torchvision's names become the model's (`conv_proj` to `patch`, `class_token` to `cls`,
/// `encoder.pos_embedding` to `pos`, `encoder.layers.encoder_layer_<i>` to `blocks.<i>` with
/// `ln_1`, `self_attention.in_proj`, `self_attention.out_proj`, `ln_2`, `mlp.0`, `mlp.3` to
/// `norm1`, `qkv`, `proj`, `norm2`, `fc1`, `fc2`, `encoder.ln` to `norm`, `heads.head` to
/// `head`); `Linear` weights are transposed, float tensors cast to the model's float type.
///
/// # Errors
/// As [`load_weights`]; a head other than one `Linear` (`heads.pre_logits`) is a tensor the
/// model does not have.
pub fn load_torchvision_vit(model: Vit, path: impl AsRef<Path>) -> Result<Vit> {
    const BLOCK: &str = r"^encoder\.layers\.encoder_layer_(\d+)\.";
    load_pytorch(
        model,
        path.as_ref(),
        &[
            (r"^conv_proj\.", "patch."),
            (r"^class_token$", "cls"),
            (r"^encoder\.pos_embedding$", "pos"),
            (&format!("{BLOCK}ln_1\\."), "blocks.$1.norm1."),
            (&format!("{BLOCK}ln_2\\."), "blocks.$1.norm2."),
            (
                &format!("{BLOCK}self_attention\\.in_proj_"),
                "blocks.$1.qkv.",
            ),
            (
                &format!("{BLOCK}self_attention\\.out_proj\\."),
                "blocks.$1.proj.",
            ),
            (&format!("{BLOCK}mlp\\.0\\."), "blocks.$1.fc1."),
            (&format!("{BLOCK}mlp\\.3\\."), "blocks.$1.fc2."),
            (r"^encoder\.ln\.", "norm."),
            (r"^heads\.head\.", "head."),
        ],
        |_| false,
    )
}

/// Load a PyTorch `state_dict` (`.pth`/`.pt`, or `.safetensors`) into `model`: its keys renamed
/// by the regular expressions `remaps` (`(pattern, replacement)`, in order), PyTorch's layouts
/// adapted to Burn's (`Linear` transposed, norms' `weight`/`bias` to `gamma`/`beta`), float
/// tensors cast to the model's float type; keys for which `ignored` is true may be left over.
fn load_pytorch<M: Module>(
    mut model: M,
    path: &Path,
    remaps: &[(&str, &str)],
    ignored: fn(&str) -> bool,
) -> Result<M> {
    let safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let dtype = float_dtype(&model);
    let result = if safetensors {
        let bytes = read_safetensors(path)?;
        let mut store = SafetensorsStore::from_bytes(Some(bytes)).allow_partial(true);
        for (pattern, replacement) in remaps {
            store = store.with_key_remapping(*pattern, *replacement);
        }
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
            return Err(GradCamError::io(
                "read",
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            ));
        }
        let mut store = PytorchStore::from_file(path).allow_partial(true);
        for (pattern, replacement) in remaps {
            store = store.with_key_remapping(*pattern, *replacement);
        }
        model
            .load_from(&mut store)
            .map_err(|e| weights_error(path, e.to_string(), Some(Box::new(e))))
    }?;
    check_applied(path, result, ignored)?;
    check_finite(path, &model)?;
    // A `.pth` store keeps the file's float type: cast to the model's.
    Ok(match dtype {
        Some(dtype) => crate::parameters::cast_floats(model, dtype),
        None => model,
    })
}

/// A safetensors file's bytes, read whole (no memory map), after a look at its header: a file
/// that is not safetensors at all (a text file, another format) is said to be so.
fn read_safetensors(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|source| GradCamError::io("read", path, source))?;
    // An 8-byte little-endian header length, then a JSON object of that length.
    let header = bytes.first_chunk::<8>().map(|b| u64::from_le_bytes(*b));
    let fits = header.is_some_and(|n| n <= bytes.len() as u64 - 8) && bytes.get(8) == Some(&b'{');
    if !fits {
        return Err(weights_error(
            path,
            "not a safetensors file (it does not start with the length of a JSON header that \
             fits in it); pass the .safetensors file of these weights"
                .to_string(),
            None,
        ));
    }
    Ok(bytes)
}

fn weights_error(
    path: &Path,
    reason: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
) -> GradCamError {
    InputError::Weights {
        path: path.to_path_buf(),
        reason,
        source,
    }
    .into()
}

/// Reject a load that left parameters out or brought tensors the model does not have.
fn check_applied(path: &Path, result: ApplyResult, ignored: impl Fn(&str) -> bool) -> Result<()> {
    const HINT: &str = "are these the weights of this model?";
    if let Some(first) = result.errors.first() {
        let errors: Vec<_> = result.errors.iter().map(ToString::to_string).collect();
        return Err(weights_error(
            path,
            format!(
                "{} tensors do not fit: {}; {HINT}",
                errors.len(),
                few(&errors)
            ),
            Some(Box::new(first.clone())),
        ));
    }
    let missing: Vec<_> = result.missing.iter().map(|(k, _)| k.clone()).collect();
    let unused: Vec<_> = result
        .unused
        .iter()
        .filter(|k| !ignored(k))
        .cloned()
        .collect();
    if !missing.is_empty() || !unused.is_empty() {
        return Err(weights_error(
            path,
            format!(
                "{} of the model's tensors are missing ({}), {} in the file are not the model's \
                 ({}); {HINT}",
                missing.len(),
                few(&missing),
                unused.len(),
                few(&unused)
            ),
            None,
        ));
    }
    Ok(())
}

/// Reject weights holding NaN or infinity: a model that cannot give a finite map, refused when
/// it loads rather than at every explanation.
fn check_finite<M: Module>(path: &Path, model: &M) -> Result<()> {
    /// The path of the first parameter that is not finite, from the names entered.
    #[derive(Default)]
    struct FirstNonFinite {
        path: Vec<String>,
        found: Option<String>,
    }
    impl ModuleVisitor for FirstNonFinite {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.found.is_none() && !param.val().is_finite().all().into_scalar::<bool>() {
                self.found = Some(self.path.join("."));
            }
        }
    }
    let mut first = FirstNonFinite::default();
    model.visit(&mut first);
    match first.found {
        Some(name) => Err(weights_error(
            path,
            format!("`{name}` holds NaN or infinity; these weights cannot give a finite map"),
            None,
        )),
        None => Ok(()),
    }
}

/// The first few of `items`, joined, with how many more there are.
fn few(items: &[String]) -> String {
    const SHOWN: usize = 3;
    let shown = items
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match items.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// The float type of the model's parameters.
fn float_dtype<M: Module>(model: &M) -> Option<DType> {
    crate::parameters::device_and_dtype(model).map(|(_, dtype)| dtype)
}
