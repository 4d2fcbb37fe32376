//! The crate's one error type.

use thiserror::Error;

/// Whose fault an error is, so callers can decide what to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller passed something invalid (a shape, a class, a layer name, a file).
    Input,
    /// The model broke the [`GradCam`](crate::GradCam) contract (its forward returned the wrong
    /// shape, or never passed a declared layer to the probe).
    Model,
    /// The numbers went bad: NaN or infinity in the scores or the gradients.
    Numerical,
}

/// Everything that can go wrong while explaining a model.
///
/// Bad input never panics: it comes back as one of these variants, with a message that says
/// what to change. [`GradCamError::fault`] says whose fault it is.
#[derive(Debug, Error)]
pub enum GradCamError {
    /// The input batch holds no image.
    #[error("invalid input: the batch is empty (shape {shape:?}); pass at least one image")]
    EmptyBatch {
        /// The input's `[n, c, h, w]`.
        shape: [usize; 4],
    },

    /// The input's channels or spatial size do not match what the model declares.
    #[error("invalid input: the model expects [n, {expected}] but got {got:?}")]
    InputShape {
        /// What the model declares, as `c, h, w` with `_` for an unconstrained dimension.
        expected: String,
        /// The input's `[n, c, h, w]`.
        got: [usize; 4],
    },

    /// The configuration names a layer the model does not announce.
    #[error("invalid input: unknown layer `{name}`; this model announces: {}", available.join(", "))]
    UnknownLayer {
        /// The name asked for.
        name: String,
        /// The names the model announces, in forward order.
        available: Vec<String>,
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

    /// The scores do not depend on the layer at all (autodiff found no path to it).
    #[error("model contract: no gradient reached layer `{name}` from the scores")]
    NoGradient {
        /// The layer.
        name: String,
    },

    /// An image file that cannot be read or decoded.
    #[error("invalid input: cannot read image {}: {reason}", path.display())]
    Image {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// An output file that cannot be written.
    #[error("invalid input: cannot write {}: {reason}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A weights file that is missing, truncated, or does not fit the model.
    #[error("invalid input: cannot load weights from {}: {reason}", path.display())]
    Weights {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// NaN or infinity where finite numbers are needed.
    #[error("numerical: non-finite values (NaN or infinity) in the {what}")]
    NonFinite {
        /// Which values: `"scores"` or `"gradients of layer ..."`.
        what: String,
    },
}

impl GradCamError {
    /// Whose fault this error is.
    pub fn fault(&self) -> Fault {
        use GradCamError::*;
        match self {
            EmptyBatch { .. }
            | InputShape { .. }
            | UnknownLayer { .. }
            | TargetCount { .. }
            | RaggedTargets { .. }
            | ClassOutOfRange { .. }
            | ScoreShape { .. }
            | Image { .. }
            | Write { .. }
            | Weights { .. } => Fault::Input,
            LayerNotReached { .. }
            | DuplicateLayer { .. }
            | OutputShape { .. }
            | NoGradient { .. } => Fault::Model,
            NonFinite { .. } => Fault::Numerical,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = GradCamError> = core::result::Result<T, E>;
