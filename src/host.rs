//! Reading tensors back to the host. Crate-private.

use burn::tensor::Tensor;

use crate::error::{GradCamError, Result};

/// Read a tensor back to the host as `f32`s, without its autodiff graph.
///
/// # Panics
/// If the backend cannot read the tensor back (a lost device): not something input can cause.
pub(crate) fn read<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .without_autodiff()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data converts to a Vec<f32>")
}

/// [`read`], refusing NaN and infinity: for the host computations (projections,
/// factorisations) that would carry them into every value.
///
/// # Errors
/// [`NumericalError::NonFinite`](crate::NumericalError::NonFinite) naming `what`.
pub(crate) fn read_finite<const D: usize>(tensor: Tensor<D>, what: &str) -> Result<Vec<f32>> {
    let values = read(tensor);
    if values.iter().any(|v| !v.is_finite()) {
        return Err(GradCamError::non_finite(what));
    }
    Ok(values)
}
