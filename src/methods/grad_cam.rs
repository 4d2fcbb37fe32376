//! Grad-CAM: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
//! Gradient-based Localization", ICCV 2017 ([arXiv:1610.02391](https://arxiv.org/abs/1610.02391)).

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// Grad-CAM: each channel weighted by its spatially averaged gradient,
///
/// ```text
/// w_k = 1/(h w) sum_ij dy/dA^k_ij        map = sum_k w_k A^k
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GradCam;

impl CamMethod for GradCam {
    fn name(&self) -> &'static str {
        "grad-cam"
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let g = layer.gradients(); // [n, m, k, h, w]
        let [n, m, k, h, w] = g.dims();
        let weights = g.reshape([n, m, k, h * w]).mean_dim(3); // [n, m, k, 1]
        Ok(CamMap::Weights(weights.reshape([n, m, k])))
    }
}
