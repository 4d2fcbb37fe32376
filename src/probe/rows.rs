//! The row layout after the cut: each image's row repeated once per target, the rows of one image
//! together; and the zero-valued leaves added to a tensor to receive its gradient.

use burn::tensor::Tensor;

/// Repeat each row `times` times, keeping the rows of one image together: the row layout of
/// everything after the cut (activations, logits, a transformer's special tokens).
///
/// # Shapes
/// - `x`: `[n, ...]`
/// - returns `[n * times, ...]`, row `i * times + j` = row `i` of `x`.
pub(crate) fn repeat_rows<const D: usize>(x: Tensor<D>, times: usize) -> Tensor<D> {
    if times == 1 {
        return x;
    }
    let dims = x.dims();
    let n = dims[0];
    let rest: usize = dims[1..].iter().product();
    let mut out = dims;
    out[0] = n * times;
    x.reshape([n, 1, rest]) // [n, 1, rest]
        .repeat_dim(1, times) // [n, times, rest]
        .reshape(out)
}

/// A gradient leaf of zeros shaped, typed and placed as `like` (its device without autodiff):
/// added to `like`, it leaves the values as they are and receives `like`'s gradient.
///
/// # Shapes
/// - returns `like`'s
pub(crate) fn zero_leaf<const D: usize>(like: &Tensor<D>) -> Tensor<D> {
    let device = like.device().without_autodiff();
    Tensor::<D>::zeros(like.dims(), (&device, like.dtype()))
        .autodiff()
        .require_grad()
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn repeat_rows_keeps_images_together() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0], [2, 1, 1, 1]), &device);
        let got = repeat_rows(x, 3).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(got, vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }
}
