//! Eigen smoothing (pytorch-grad-cam's `eigen_smooth`, after Muhammad and Yeasin's Eigen-CAM,
//! IJCNN 2020, [arXiv:2008.00299](https://arxiv.org/abs/2008.00299)): a map as the first
//! principal component of its per-channel contributions instead of their sum.

use burn::tensor::Tensor;

use crate::error::Result;
use crate::methods::first_component_projection;

/// The first principal component of each map's contributions `C` (`[k, h, w]` as the matrix
/// `(h w) x k` with centred columns, `X v_1`), signed so that it correlates positively with the
/// unsmoothed map `sum_k C_k` (the projection's sign rule, applied to its input's channel sum).
///
/// # Shapes
/// - `contributions`: `[n, m, k, h, w]`
/// - returns `[n, m, h, w]`
///
/// # Errors
/// [`NumericalError::NonFinite`](crate::NumericalError::NonFinite) if a contribution is NaN or
/// infinite.
pub(crate) fn eigen_smooth(contributions: Tensor<5>) -> Result<Tensor<4>> {
    let [n, m, k, h, w] = contributions.dims();
    let projected = first_component_projection(contributions.reshape([n * m, k, h, w]))?; // [n m, h, w]
    Ok(projected.reshape([n, m, h, w]))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn a_rank_one_contribution_smooths_to_its_centred_pattern_signed_as_the_sum() {
        // Two channels, both the pattern times -1 and -2: the sum is -3 x pattern, so the
        // component (the centred pattern times sqrt(5) up to sign) must come out negated.
        let pattern = [0.0f32, 1.0, 4.0, 1.0];
        let mut data = Vec::new();
        for scale in [-1.0f32, -2.0] {
            data.extend(pattern.iter().map(|v| v * scale));
        }
        let c = Tensor::<5>::from_data(TensorData::new(data, [1, 1, 2, 2, 2]), &Device::flex());
        let got = crate::host::read(eigen_smooth(c).unwrap());
        let mean = pattern.iter().sum::<f32>() / 4.0;
        for (g, p) in got.iter().zip(pattern) {
            let expected = -(p - mean) * 5.0f32.sqrt();
            assert!((g - expected).abs() < 1e-5, "{got:?}");
        }
    }
}
