//! EigenGrad-CAM, pytorch-grad-cam's variant of Eigen-CAM (Muhammad and Yeasin, IJCNN 2020,
//! [arXiv:2008.00299](https://arxiv.org/abs/2008.00299)) on gradient-weighted activations.

use super::{CamMap, CamMethod, LayerCapture, Rerun, first_component_projection};
use crate::error::Result;

/// EigenGrad-CAM: the first principal component of `dy/dA (.) A`,
///
/// ```text
/// X = (dy/dA (.) A) as (h w) x k, columns centred;  X = U S V^T;  map = X v_1
/// ```
///
/// Class-discriminative through the gradient; the sign rule is Eigen-CAM's, applied to the
/// product (the map correlates positively with HiResCAM's map `sum_k dy/dA^k (.) A^k`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EigenGradCam;

impl CamMethod for EigenGradCam {
    fn name(&self) -> &'static str {
        "eigen-grad-cam"
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let product = layer.gradients() * layer.activations5(); // [n, m, k, h, w]
        let [n, m, k, h, w] = product.dims();
        let map = first_component_projection(product.reshape([n * m, k, h, w]))?; // [n m, h, w]
        Ok(CamMap::Map(map.reshape([n, m, h, w])))
    }
}
