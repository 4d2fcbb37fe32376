//! Element-wise Grad-CAM, pytorch-grad-cam's `GradCAMElementWise`: HiResCAM with a ReLU on each
//! product before the channel sum (no paper; Jacob Gildenblat's variant).

use burn::tensor::activation::relu;

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// Element-wise Grad-CAM: only the positive products of gradient and activation,
///
/// ```text
/// map_ij = sum_k ReLU(dy/dA^k_ij A^k_ij)
/// ```
///
/// The map is never negative, so the ReLU switch changes nothing here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ElementWiseGradCam;

impl CamMethod for ElementWiseGradCam {
    fn name(&self) -> &'static str {
        "element-wise-grad-cam"
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let channels = relu(layer.gradients() * layer.activations5()); // [n, m, k, h, w]
        Ok(CamMap::Channels(channels))
    }
}
