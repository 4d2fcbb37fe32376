//! The model's forward under a probe, with a panic inside it caught and its message kept.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::Tensor;

use crate::model::GradCam;
use crate::probe::Probe;

/// `model`'s forward through `probe`; a panic inside it (Burn checks shapes by panicking) comes
/// back as its message, for the caller to classify.
///
/// # Shapes
/// - `input`: `[n, c, h, w]`
/// - returns `[n', classes]`
pub(crate) fn forward<M: GradCam>(
    model: &M,
    input: Tensor<4>,
    probe: &mut Probe<'_>,
) -> Result<Tensor<2>, String> {
    catch_unwind(AssertUnwindSafe(|| model.forward_probed(input, probe))).map_err(panic_message)
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
