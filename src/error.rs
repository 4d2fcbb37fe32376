//! The crate's one error type.

use std::path::PathBuf;

use thiserror::Error;

/// Whose fault an error is, so callers can decide what to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The caller passed something invalid (a shape, a class, a layer name, a file).
    Input,
    /// The model broke the [`CamModel`](crate::CamModel) contract (its forward returned the wrong
    /// shape, never passed a declared layer to the probe, or panicked).
    Model,
    /// The numbers went bad: NaN or infinity in the scores, gradients or maps.
    Numerical,
    /// The environment: a file could not be written, a resource limit was reached.
    Environment,
}

/// Everything that can go wrong while explaining a model.
///
/// Bad input never panics: it comes back as one of these variants, with a message that says
/// what to change. [`GradCamError::fault`] says whose fault it is.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GradCamError {
    /// The input has a zero-sized dimension.
    #[error(
        "invalid input: dimension {axis} of the input {shape:?} is 0; pass at least one image of \
         at least one pixel"
    )]
    EmptyInput {
        /// The input's `[n, c, h, w]`.
        shape: [usize; 4],
        /// The first zero-sized axis.
        axis: usize,
    },

    /// The input's channels or spatial size do not match what the model declares.
    #[error("invalid input: the model expects [n, {expected}] but got {got:?}")]
    InputShape {
        /// What the model declares, as `c, h, w` with `_` for an unconstrained dimension.
        expected: String,
        /// The input's `[n, c, h, w]`.
        got: [usize; 4],
    },

    /// The input is smaller than the smallest size the model's layers can take.
    #[error(
        "invalid input: the model needs inputs of at least {min:?} pixels (height, width), got \
         {got:?}; resize the images up"
    )]
    InputTooSmall {
        /// The model's minimum `[height, width]`.
        min: [usize; 2],
        /// The input's `[height, width]`.
        got: [usize; 2],
    },

    /// The input lives on another device than the model.
    #[error("invalid input: the input is on {input} but the model is on {model}; move one of them")]
    DeviceMismatch {
        /// The input's device.
        input: String,
        /// The model's device.
        model: String,
    },

    /// The input's float type differs from the model's parameters.
    #[error(
        "invalid input: the input is {input:?} but the model's parameters are {model:?}; cast \
         the input"
    )]
    DTypeMismatch {
        /// The input's dtype.
        input: burn::tensor::DType,
        /// The model's parameter dtype.
        model: burn::tensor::DType,
    },

    /// The configuration names a layer the model does not announce.
    #[error("invalid input: unknown layer `{name}`; this model announces: {}", available.join(", "))]
    UnknownLayer {
        /// The name asked for.
        name: String,
        /// The names the model announces, in forward order.
        available: Vec<String>,
    },

    /// The configuration names the same layer twice.
    #[error("invalid input: layer `{name}` is listed twice in the configuration")]
    RepeatedLayer {
        /// The repeated name.
        name: String,
    },

    /// The targets do not match the batch: give one for all images or exactly one per image.
    #[error(
        "invalid input: {got} target rows for a batch of {batch} images; give one row for all \
         images or exactly one row per image"
    )]
    TargetCount {
        /// Rows of targets given.
        got: usize,
        /// Images in the batch.
        batch: usize,
    },

    /// Rows of targets of unequal length (every image must get the same number of targets).
    #[error(
        "invalid input: image {image} has {got} targets but image 0 has {expected}; every image \
         must get the same number of targets"
    )]
    RaggedTargets {
        /// The first image whose row differs.
        image: usize,
        /// Its number of targets.
        got: usize,
        /// The number of targets of image 0.
        expected: usize,
    },

    /// A class index beyond the model's outputs.
    #[error("invalid input: class {class} is out of range for a model with {num_classes} classes")]
    ClassOutOfRange {
        /// The class asked for.
        class: usize,
        /// The number of logits the model returns.
        num_classes: usize,
    },

    /// A custom score function returned something other than one score per row.
    #[error("invalid input: the score function returned shape {got:?}, expected [{expected}]")]
    ScoreShape {
        /// What the score function returned.
        got: Vec<usize>,
        /// Rows it was given.
        expected: usize,
    },

    /// An argument outside its domain (a size, a count, a buffer length, a setting).
    #[error("invalid input: {what}")]
    InvalidArgument {
        /// What is wrong and what is expected.
        what: String,
    },

    /// The model declares a layer its forward never passed to the probe.
    #[error(
        "model contract: layer `{name}` is declared by `layers()` but the forward never passed it \
         to `probe.layer(..)`"
    )]
    LayerNotReached {
        /// The layer asked for.
        name: String,
    },

    /// The forward passed the same layer name to the probe twice.
    #[error("model contract: the forward passed layer `{name}` to the probe more than once")]
    DuplicateLayer {
        /// The repeated name.
        name: String,
    },

    /// An explained layer after the first one saw a batch other than images x targets.
    #[error(
        "model contract: layer `{name}` has {got} rows, expected {expected} (images x targets per \
         image); layers after an explained one must keep the rows they are given"
    )]
    LayerBatch {
        /// The layer.
        name: String,
        /// Its rows.
        got: usize,
        /// Rows expected.
        expected: usize,
    },

    /// The model's forward returned logits of the wrong shape.
    #[error(
        "model contract: the forward returned logits of shape {got:?}, expected [{expected_rows}, \
         classes] (one row per image and target)"
    )]
    OutputShape {
        /// What the forward returned.
        got: [usize; 2],
        /// Rows expected: images x targets per image.
        expected_rows: usize,
    },

    /// The model returns no class at all.
    #[error(
        "model contract: the forward returned [{rows}, 0] logits; a model needs at least one class"
    )]
    ZeroClasses {
        /// Rows of the logits.
        rows: usize,
    },

    /// The scores do not depend on the layer at all (autodiff found no path to it).
    #[error("model contract: no gradient reached layer `{name}` from the scores")]
    NoGradient {
        /// The layer.
        name: String,
    },

    /// The model's forward panicked (Burn checks shapes by panicking, e.g. a channel count its
    /// first convolution does not take).
    #[error(
        "model forward panicked: {message}; check the input's shape against the model (declare \
         it in `CamModel::input_shape` to get this as an input error)"
    )]
    ForwardPanicked {
        /// The panic's message.
        message: String,
    },

    /// An image file that cannot be decoded.
    #[cfg(feature = "image")]
    #[error("invalid input: cannot decode image {}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: image::ImageError,
    },

    /// An image larger than the configured decoding limits.
    #[error(
        "invalid input: image {} exceeds the decoding limits ({limit}); raise them with \
         `load_image_with_limits` if the file is trusted",
        path.display()
    )]
    ImageTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit that was hit.
        limit: String,
    },

    /// A file that cannot be read or written.
    #[error("i/o: cannot {action} {}", path.display())]
    Io {
        /// `"read"`, `"write"`, `"create the folder of"`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// An output file that cannot be encoded.
    #[cfg(feature = "image")]
    #[error("cannot encode {}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },

    /// A weights file that is truncated, corrupt, or does not fit the model.
    #[error("invalid input: cannot load weights from {}: {reason}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
        /// The store's error, where it had one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// NaN or infinity where finite numbers are needed.
    #[error("numerical: non-finite values (NaN or infinity) in the {what}")]
    NonFinite {
        /// Which values: `"scores"`, `"gradients of layer ..."`, `"map of layer ..."`.
        what: String,
    },
}

impl GradCamError {
    /// Whose fault this error is.
    pub fn fault(&self) -> Fault {
        use GradCamError::*;
        match self {
            EmptyInput { .. }
            | InputShape { .. }
            | InputTooSmall { .. }
            | DeviceMismatch { .. }
            | DTypeMismatch { .. }
            | UnknownLayer { .. }
            | RepeatedLayer { .. }
            | TargetCount { .. }
            | RaggedTargets { .. }
            | ClassOutOfRange { .. }
            | ScoreShape { .. }
            | InvalidArgument { .. }
            | ImageTooLarge { .. }
            | Weights { .. } => Fault::Input,
            #[cfg(feature = "image")]
            Image { .. } => Fault::Input,
            LayerNotReached { .. }
            | DuplicateLayer { .. }
            | LayerBatch { .. }
            | OutputShape { .. }
            | ZeroClasses { .. }
            | NoGradient { .. }
            | ForwardPanicked { .. } => Fault::Model,
            NonFinite { .. } => Fault::Numerical,
            Io { .. } => Fault::Environment,
            #[cfg(feature = "image")]
            Encode { .. } => Fault::Environment,
        }
    }

    /// An [`GradCamError::InvalidArgument`] with this message.
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Self::InvalidArgument { what: what.into() }
    }
}

/// The crate's result type.
pub type Result<T, E = GradCamError> = core::result::Result<T, E>;
