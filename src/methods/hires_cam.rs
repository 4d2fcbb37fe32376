//! HiResCAM: Draelos and Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
//! convolutional neural networks" ([arXiv:2011.08891](https://arxiv.org/abs/2011.08891)).

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// HiResCAM: the gradient times the activation, element by element, summed over channels,
///
/// ```text
/// map_ij = sum_k dy/dA^k_ij A^k_ij
/// ```
///
/// For a network that ends in global average pooling and a linear layer, this map sums exactly
/// to the score minus its bias (the map *is* the score's decomposition over locations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HiResCam;

impl CamMethod for HiResCam {
    fn name(&self) -> &'static str {
        "hires-cam"
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let channels = layer.gradients() * layer.activations5(); // [n, m, k, h, w]
        Ok(CamMap::Channels(channels))
    }
}
