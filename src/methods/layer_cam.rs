//! LayerCAM: Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for
//! Localization", IEEE TIP 30, 2021 ([doi:10.1109/TIP.2021.3089943](https://doi.org/10.1109/TIP.2021.3089943)).

use burn::tensor::activation::relu;

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// LayerCAM: each activation weighted by its own positive gradient,
///
/// ```text
/// map_ij = sum_k ReLU(dy/dA^k_ij) A^k_ij
/// ```
///
/// Pixel-wise weights keep fine detail, which makes it the method of choice for shallow layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerCam;

impl CamMethod for LayerCam {
    fn name(&self) -> &'static str {
        "layer-cam"
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let channels = relu(layer.gradients()) * layer.activations5(); // [n, m, k, h, w]
        Ok(CamMap::Channels(channels))
    }
}
