//! Grad-CAM++: Chattopadhyay et al., "Grad-CAM++: Improved Visual Explanations for Deep
//! Convolutional Networks", WACV 2018 ([arXiv:1710.11063](https://arxiv.org/abs/1710.11063)).

use burn::tensor::activation::relu;

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// Grad-CAM++: pixel-wise weights from the paper's eq. 19, with the exponential-output
/// assumption that turns higher derivatives into powers of `g = dy/dA^k_ij`,
///
/// ```text
/// alpha_kij = g^2 / (2 g^2 + (sum_ab A^k_ab) g^3 + 1e-6)      w_k = sum_ij alpha_kij ReLU(g_kij)
/// map = sum_k w_k A^k
/// ```
///
/// This is eq. 19 as written and as pytorch-grad-cam 1.5.7 computes it: the third derivative
/// is taken at `(i, j)` and multiplied by the channel's activation sum. torchcam instead uses
/// `sum_ab A^k_ab g_ab^3` (the powers taken at every `(a, b)`), another reading of the same
/// equation; we follow the paper's text and the oracle. `alpha` is set to 0 where `g <= 0`:
/// those terms vanish under `ReLU(g)` anyway (pytorch-grad-cam zeroes `g = 0`), and masking
/// them keeps a `0 * inf` out where the denominator crosses zero for a negative `g`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GradCamPlusPlus;

/// The epsilon of the denominator (pytorch-grad-cam's).
const EPSILON: f32 = 1e-6;

impl CamMethod for GradCamPlusPlus {
    fn name(&self) -> &'static str {
        "grad-cam++"
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let g = layer.gradients(); // [n, m, k, h, w]
        let [n, m, k, h, w] = g.dims();
        let g = g.reshape([n, m, k, h * w]); // [n, m, k, hw]
        let a_sum = layer
            .activations
            .clone()
            .reshape([n, 1, k, h * w])
            .sum_dim(3); // [n, 1, k, 1]
        let g2 = g.clone() * g.clone();
        let g3 = g2.clone() * g.clone();
        let alpha = g2.clone() / (g2 * 2.0 + a_sum * g3 + EPSILON); // [n, m, k, hw]
        let alpha = alpha.mask_fill(g.clone().lower_equal_elem(0.0), 0.0);
        let weights = (alpha * relu(g)).sum_dim(3); // [n, m, k, 1]
        Ok(CamMap::Weights(weights.reshape([n, m, k])))
    }
}
