//! Reading tensors back to the host. Crate-private.

use burn::tensor::Tensor;

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
