//! Seg-Eigen-CAM: Chung and Ying, "Seg-Eigen-CAM: Eigen-Value-Based Visual Explanations for
//! Semantic Segmentation Models", Applied Sciences 15(13) 7562, 2025
//! ([doi:10.3390/app15137562](https://doi.org/10.3390/app15137562)), as pytorch-grad-cam's
//! `SegEigenCAM`.

use super::{
    CamMap, CamMethod, LayerCapture, ProjectionSign, Rerun, first_component_projection_signed,
};
use crate::error::Result;

/// Seg-Eigen-CAM: the first principal component of `|dy/dA| (.) A` (Eq. 10), with the paper's
/// sign correction (Eq. 13): the map is flipped when its minimum is larger in magnitude than
/// its maximum,
///
/// ```text
/// X = (|dy/dA| (.) A) as (h w) x k, columns centred;  X = U S V^T;  p = X v_1
/// map = p if |max p| >= |min p| else -p
/// ```
///
/// The absolute gradient keeps each pixel's local importance whatever the sign of the class's
/// derivative; made for segmentation targets
/// ([`Target::segmentation`](crate::Target::segmentation)), it works for any target. Unlike
/// [`EigenGradCam`](super::EigenGradCam), the sign is the paper's rule, so it equals
/// pytorch-grad-cam's (except where `|max|` and `|min|` tie within rounding).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegEigenCam;

impl CamMethod for SegEigenCam {
    fn name(&self) -> &'static str {
        "seg-eigen-cam"
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let product = layer.gradients().abs() * layer.activations5(); // [n, m, k, h, w]
        let [n, m, k, h, w] = product.dims();
        let map = first_component_projection_signed(
            product.reshape([n * m, k, h, w]),
            ProjectionSign::LargerExtreme,
        )?; // [n m, h, w]
        Ok(CamMap::Map(map.reshape([n, m, h, w])))
    }
}
