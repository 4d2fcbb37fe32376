//! XGrad-CAM: Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation
//! of CNNs", BMVC 2020 ([arXiv:2008.02312](https://arxiv.org/abs/2008.02312)).

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// XGrad-CAM: gradients weighted by the normalised activations,
///
/// ```text
/// w_k = sum_ij (dy/dA^k_ij A^k_ij) / (sum_ij A^k_ij + 1e-7)      map = sum_k w_k A^k
/// ```
///
/// The `1e-7` is pytorch-grad-cam's; on layers with signed activations the channel sum can be
/// near zero and the weight large: the method assumes post-ReLU activations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XGradCam;

/// The epsilon of the denominator (pytorch-grad-cam's).
const EPSILON: f32 = 1e-7;

impl CamMethod for XGradCam {
    fn name(&self) -> &'static str {
        "xgrad-cam"
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let g = layer.gradients(); // [n, m, k, h, w]
        let [n, m, k, h, w] = g.dims();
        let a = layer.activations.clone().reshape([n, 1, k, h * w]); // [n, 1, k, hw]
        let a_sum = a.clone().sum_dim(3); // [n, 1, k, 1]
        let ga = (g.reshape([n, m, k, h * w]) * a).sum_dim(3); // [n, m, k, 1]
        Ok(CamMap::Weights((ga / (a_sum + EPSILON)).reshape([n, m, k])))
    }
}
