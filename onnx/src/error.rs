//! The generator's one error type: each variant a kind of problem with the ONNX file or the
//! output folder, its message saying what to do.

use std::path::PathBuf;

use thiserror::Error;

/// Why a model could not be generated. Nothing is written when generation fails.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// A file or folder could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// `"read"`, `"write"`, `"create"`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a valid ONNX model (truncated, corrupt, or another format).
    #[error("{} is not a valid ONNX model: {reason}; export it again (torch.onnx.export)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        reason: String,
    },

    /// The graph's input or output is not what an image classifier (or any model explained on
    /// `[n, classes]` scores) has.
    #[error("{what}")]
    Shape {
        /// What is wrong and how to export instead.
        what: String,
    },

    /// The batch size is fixed in the graph, or an op after an explainable layer mixes the rows
    /// of the batch: an explanation repeats each image's rows once per target, so the graph must
    /// treat rows independently.
    #[error(
        "{what}; export with a dynamic batch axis: torch.onnx.export(model, x, path, \
         input_names=[\"input\"], output_names=[\"logits\"], dynamic_axes={{\"input\": {{0: \
         \"batch\"}}, \"logits\": {{0: \"batch\"}}}})"
    )]
    Batch {
        /// What fixes or mixes the batch, naming the node.
        what: String,
    },

    /// The graph computes no activation with a batch axis, channels and two spatial axes.
    #[error("the graph has no [n, c, h, w] activation to explain; gradcam explains image models")]
    NoLayers,

    /// An operator burn-onnx cannot translate, or another failure inside burn-onnx.
    #[error("burn-onnx cannot generate this graph: {message}")]
    Generation {
        /// burn-onnx's message (it reports by panicking; the panic is caught).
        message: String,
    },
}

impl OnnxError {
    /// An [`OnnxError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// The generator's result type.
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;
