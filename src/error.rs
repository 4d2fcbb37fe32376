//! The crate's one error type: the variant is the kind of failure (whose fault it is), the value
//! inside says what exactly, in the manner of `image::ImageError`.

use std::path::PathBuf;

use burn::tensor::DType;
use thiserror::Error;

/// Everything that can go wrong while explaining a model.
///
/// Bad input never panics: it comes back as one of these, with a message that says what to
/// change. The variant says whose fault it is, so a caller can decide what to do:
///
/// ```
/// use gradcam::{GradCamError, InputError};
///
/// fn retry_worth_it(error: &GradCamError) -> bool {
///     match error {
///         // The caller's own input: fix it and call again.
///         GradCamError::Input(InputError::ClassOutOfRange { .. }) => false,
///         // A file could not be written: maybe the disk is full.
///         GradCamError::Environment(_) => true,
///         _ => false,
///     }
/// }
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GradCamError {
    /// The caller passed something invalid: a tensor, a target, a layer name, a setting, a file.
    #[error("invalid input: {0}")]
    Input(#[from] InputError),
    /// The model broke the [`GradCam`](crate::GradCam) contract: its forward returned the wrong
    /// shape, never passed a declared layer to the probe, or panicked.
    #[error("model contract: {0}")]
    Model(#[from] ModelError),
    /// A CAM method broke the [`CamMethod`](crate::methods::CamMethod) contract: a bug in the
    /// method, not in the caller's input.
    #[error("method {method}: {error}")]
    Method {
        /// The method's name.
        method: &'static str,
        /// What it did wrong.
        #[source]
        error: MethodError,
    },
    /// The numbers went bad: NaN or infinity in the scores, gradients or maps.
    #[error("numerical: {0}")]
    Numerical(#[from] NumericalError),
    /// The environment: a file could not be read or written.
    #[error("{0}")]
    Environment(#[from] EnvironmentError),
}

/// The caller's input was invalid. Part of [`GradCamError::Input`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InputError {
    /// The input has a zero-sized dimension.
    #[error(
        "dimension {axis} of the input {shape:?} is 0; pass at least one image of at least one \
         pixel"
    )]
    EmptyInput {
        /// The input's `[n, c, h, w]`.
        shape: [usize; 4],
        /// The first zero-sized axis.
        axis: usize,
    },

    /// The input's channels or spatial size do not match what the model declares.
    #[error(
        "the model expects [n, {}] but got {got:?}; resize or convert the input",
        expected.map(|d| d.map_or("_".to_string(), |d| d.to_string())).join(", ")
    )]
    InputShape {
        /// What the model declares, `[c, h, w]`, `None` where it takes any size.
        expected: [Option<usize>; 3],
        /// The input's `[n, c, h, w]`.
        got: [usize; 4],
    },

    /// The input is smaller than the smallest size the model's layers can take.
    #[error(
        "the model needs inputs of at least {min:?} pixels (height, width), got {got:?}; resize \
         the images up"
    )]
    InputTooSmall {
        /// The model's minimum `[height, width]`.
        min: [usize; 2],
        /// The input's `[height, width]`.
        got: [usize; 2],
    },

    /// The input lives on another device than the model.
    #[error("the input is on {input} but the model is on {model}; move one of them")]
    DeviceMismatch {
        /// The input's device.
        input: String,
        /// The model's device.
        model: String,
    },

    /// The input's float type differs from the model's parameters.
    #[error(
        "the input is {input:?} but the model's parameters are {model:?}; cast the input \
         (`input.cast(..)`)"
    )]
    DTypeMismatch {
        /// The input's dtype.
        input: DType,
        /// The model's parameter dtype.
        model: DType,
    },

    /// The configuration names a layer the model does not announce.
    #[error("unknown layer `{name}`; this model announces: {}", available.join(", "))]
    UnknownLayer {
        /// The name asked for.
        name: String,
        /// The names the model announces, in forward order.
        available: Vec<String>,
    },

    /// The configuration names no layer and the model announces none.
    #[error("no layer to explain: the model announces none; name one with `with_layer`")]
    NoLayer,

    /// The configuration names the same layer twice.
    #[error("layer `{name}` is listed twice in the configuration; list it once")]
    RepeatedLayer {
        /// The repeated name.
        name: String,
    },

    /// The targets do not match the batch: one row for all images, or exactly one per image.
    #[error(
        "{got} target rows for a batch of {batch} images; give one row for all images \
         (`Targets::every_image`) or exactly one row per image (`Targets::one_per_image`)"
    )]
    TargetCount {
        /// Rows of targets given.
        got: usize,
        /// Images in the batch.
        batch: usize,
    },

    /// A row of no targets at all.
    #[error("no targets: give each image at least one")]
    NoTargets,

    /// Rows of targets of unequal length (every image must get the same number of targets).
    #[error(
        "image {image} has {got} targets but image 0 has {expected}; every image must get the \
         same number of targets"
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
    #[error(
        "class {class} is out of range for a model with {num_classes} classes; use 0 to {}",
        num_classes.saturating_sub(1)
    )]
    ClassOutOfRange {
        /// The class asked for.
        class: usize,
        /// The number of logits the model returns.
        num_classes: usize,
    },

    /// A rank beyond the model's outputs (`Target::Top(rank)`), or rank 0.
    #[error("rank {rank} of a model with {num_classes} classes; ranks run from 1 to {num_classes}")]
    RankOutOfRange {
        /// The rank asked for.
        rank: usize,
        /// The number of logits the model returns.
        num_classes: usize,
    },

    /// A custom score function returned something other than one score per row.
    #[error("the score function returned shape {got:?}; return one score per row, [{expected}]")]
    ScoreShape {
        /// What the score function returned.
        got: Vec<usize>,
        /// Rows it was given.
        expected: usize,
    },

    /// A custom score function panicked.
    #[error("the score function panicked: {message}")]
    ScorePanicked {
        /// The panic's message.
        message: String,
    },

    /// A custom score that does not depend on the logits it was given (detached from them), so
    /// no gradient can reach the layer.
    #[error(
        "the score function's result does not depend on the logits it was given; compute the \
         score from them (not from a detached copy)"
    )]
    ScoreDetached,

    /// A capture without gradients handed to a method that needs them.
    #[error(
        "{method} needs gradients, and this capture has none; capture with an explainer whose \
         method needs them"
    )]
    CaptureWithoutGradients {
        /// The method.
        method: &'static str,
    },

    /// An argument outside its domain (a size, a count, a buffer length, a setting).
    #[error("{what}")]
    Argument {
        /// What is wrong and what is expected.
        what: String,
    },

    /// An image file that cannot be decoded.
    #[cfg(feature = "image")]
    #[error("cannot decode image {}: {source}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What went wrong: the decoder's own words (not an image, truncated, unsupported).
        #[source]
        source: image::ImageError,
    },

    /// An image larger than the decoding limits.
    #[error(
        "image {} exceeds the decoding limits ({limit}); downscale the file, or raise the limits \
         if it is trusted",
        path.display()
    )]
    ImageTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit that was hit.
        limit: String,
    },

    /// A weights file that is truncated, corrupt, or does not fit the model.
    #[error("cannot load weights from {}: {reason}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// What went wrong, and what to do.
        reason: String,
        /// The store's error, where it had one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// The model broke the [`GradCam`](crate::GradCam) contract. Part of [`GradCamError::Model`].
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The model declares a layer its forward never passed to the probe.
    #[error(
        "layer `{name}` is declared by `layers()` but the forward never passed it to \
         `probe.layer(..)`"
    )]
    LayerNotReached {
        /// The layer asked for.
        name: String,
    },

    /// The forward passed the same layer name to the probe twice.
    #[error("the forward passed layer `{name}` to the probe more than once; give each its name")]
    DuplicateLayer {
        /// The repeated name.
        name: String,
    },

    /// An explained layer after the first one saw a batch other than images x targets.
    #[error(
        "layer `{name}` has {got} rows, expected {expected} (images x targets per image); layers \
         after an explained one must keep the rows they are given"
    )]
    LayerBatch {
        /// The layer.
        name: String,
        /// Its rows.
        got: usize,
        /// Rows expected.
        expected: usize,
    },

    /// An explained layer whose activation is empty: the input is too small for the model.
    #[error(
        "layer `{name}` has an empty activation {shape:?}: the input is too small for the model; \
         resize the images up, and declare the model's smallest input in \
         `GradCam::min_input_size` to get this before the forward"
    )]
    EmptyActivation {
        /// The layer.
        name: String,
        /// Its `[n, k, h, w]`.
        shape: [usize; 4],
    },

    /// The model's forward returned logits of the wrong shape.
    #[error(
        "the forward returned logits of shape {got:?}, expected [{expected_rows}, classes] (one \
         row per image and target)"
    )]
    OutputShape {
        /// What the forward returned.
        got: [usize; 2],
        /// Rows expected: images x targets per image.
        expected_rows: usize,
    },

    /// The model returns no class at all.
    #[error("the forward returned [{rows}, 0] logits; a model needs at least one class")]
    ZeroClasses {
        /// Rows of the logits.
        rows: usize,
    },

    /// The scores do not depend on the layer at all (autodiff found no path to it).
    #[error(
        "no gradient reached layer `{name}` from the scores; the forward must continue from the \
         tensor `probe.layer(..)` returns"
    )]
    NoGradient {
        /// The layer.
        name: String,
    },

    /// FullGrad needs the biases of the model's layers, and its forward routed none through
    /// [`Probe::bias`](crate::Probe::bias).
    #[error(
        "FullGrad weighs each layer's bias by its gradient, and the forward routed no bias through \
         the probe: pass each convolution's (and BatchNorm's) output through `probe.bias(name, \
         output, || bias)`, as gradcam-onnx's generated models and the bundled models do"
    )]
    NoBiases,

    /// LeGrad needs each transformer block's attention probabilities and scores, and the
    /// forward routed no attention through [`Probe::attention`](crate::Probe::attention).
    #[error(
        "LeGrad explains a transformer's attention, and the forward routed none through the \
         probe: pass each block's attention probabilities (after the softmax) through \
         `probe.attention(name, probabilities, grid, special)` and continue from what it returns, \
         and the block's output through `probe.block_output(name, tokens, |t| head(t))`; for a \
         convolutional network, use another method"
    )]
    NoAttention,

    /// A transformer block routed through the probe for LeGrad lacks one of its two parts.
    #[error(
        "block `{name}` {problem}: LeGrad needs every block's attention probabilities through \
         `probe.attention(name, ..)`, the attention continued from what it returns, then the \
         block's output through `probe.block_output(name, ..)` under the same name"
    )]
    UnroutedBlock {
        /// The block's name.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// A tensor from before the explained layer was combined with one after it without
    /// [`Probe::carry`](crate::Probe::carry): the rows after the layer are repeated once per
    /// target, and the two no longer fit.
    #[error(
        "the forward panicked after layer `{layer}`, whose rows were repeated {targets} times (one \
         per target): a tensor from before the layer was most likely combined with one after it \
         (a residual connection); pass it through `Probe::carry(before, rows)`. Burn said: \
         {message}"
    )]
    MissingCarry {
        /// The explained layer where the rows were repeated.
        layer: String,
        /// Targets per image.
        targets: usize,
        /// The panic's message.
        message: String,
    },

    /// The model's forward panicked (Burn checks shapes by panicking, e.g. a channel count its
    /// first convolution does not take).
    #[error(
        "the forward panicked: {message}; check the input's shape against the model (declare it \
         in `GradCam::input_shape` and `GradCam::min_input_size` to get this as an input error)"
    )]
    ForwardPanicked {
        /// The panic's message.
        message: String,
    },
}

/// A CAM method broke the [`CamMethod`](crate::methods::CamMethod) contract. Part of
/// [`GradCamError::Method`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MethodError {
    /// The method returned weights or a map of the wrong shape.
    #[error(
        "returned {got} for activations {activations:?} and {targets} targets per image; a \
         method returns weights [n, m, k] or a map [n, m, h, w]"
    )]
    OutputShape {
        /// What it returned.
        got: String,
        /// The layer's activations, `[n, k, h, w]`.
        activations: [usize; 4],
        /// Targets per image.
        targets: usize,
    },

    /// The method asked to replace a layer's activation with rows of another shape.
    #[error(
        "its replacement {got:?} for layer `{layer}` does not fit its activations {expected:?}"
    )]
    Replacement {
        /// The layer.
        layer: String,
        /// The replacement's `[k, h, w]`.
        got: [usize; 3],
        /// The layer's `[k, h, w]`.
        expected: [usize; 3],
    },
}

/// NaN or infinity where finite numbers are needed. Part of [`GradCamError::Numerical`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NumericalError {
    /// NaN or infinity in the named values.
    #[error("non-finite values (NaN or infinity) in the {what}")]
    NonFinite {
        /// Which values: `"scores"`, `"gradients of layer ..."`, `"map of layer ..."`.
        what: String,
    },

    /// A target score of exactly 0 where a method divides by it (Ablation-CAM).
    #[error("a target score is 0, and {method}'s weights divide by it; explain another target")]
    ZeroScore {
        /// The method.
        method: &'static str,
    },
}

/// A file could not be read or written. Part of [`GradCamError::Environment`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EnvironmentError {
    /// A file that cannot be read or written.
    #[error("i/o: cannot {action} {}: {source}", path.display())]
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
    #[error("cannot encode {}: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
}

impl ModelError {
    /// [`ModelError::OutputShape`] unless logits of shape `got` have `expected_rows` rows.
    pub(crate) fn check_rows(got: [usize; 2], expected_rows: usize) -> Result<()> {
        if got[0] == expected_rows {
            return Ok(());
        }
        Err(ModelError::OutputShape { got, expected_rows }.into())
    }
}

impl GradCamError {
    /// An [`InputError::Argument`] with this message.
    pub(crate) fn argument(what: impl Into<String>) -> Self {
        InputError::Argument { what: what.into() }.into()
    }

    /// A [`NumericalError::NonFinite`] naming the values.
    pub(crate) fn non_finite(what: impl Into<String>) -> Self {
        NumericalError::NonFinite { what: what.into() }.into()
    }

    /// An [`EnvironmentError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        EnvironmentError::Io {
            action,
            path: path.into(),
            source,
        }
        .into()
    }
}

/// The crate's result type.
pub type Result<T, E = GradCamError> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_prefixes_the_message_and_the_detail_says_what_to_do() {
        let err = GradCamError::from(InputError::ClassOutOfRange {
            class: 1000,
            num_classes: 1000,
        });
        assert_eq!(
            err.to_string(),
            "invalid input: class 1000 is out of range for a model with 1000 classes; use 0 to 999"
        );
        let err = GradCamError::Method {
            method: "mine",
            error: MethodError::OutputShape {
                got: "weights [1, 1, 3]".into(),
                activations: [1, 4, 2, 2],
                targets: 1,
            },
        };
        assert!(err.to_string().starts_with("method mine: returned weights"));
        assert!(
            std::error::Error::source(&err).is_some(),
            "the detail is the source"
        );
        let io = GradCamError::io(
            "read",
            "x.png",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert!(io.to_string().contains("permission denied"), "{io}");
        let shape = InputError::InputShape {
            expected: [Some(3), None, None],
            got: [1, 1, 8, 8],
        };
        assert!(shape.to_string().contains("[n, 3, _, _]"), "{shape}");
    }
}
