//! Eigen-CAM: Muhammad and Yeasin, "Eigen-CAM: Class Activation Map using Principal
//! Components", IJCNN 2020 ([arXiv:2008.00299](https://arxiv.org/abs/2008.00299)).

use super::{CamMap, CamMethod, LayerCapture, Rerun, first_component_projection};
use crate::error::Result;

/// Eigen-CAM: the activations projected on their first principal component,
///
/// ```text
/// X = A as (h w) x k, columns centred;  X = U S V^T;  map = X v_1 (as h x w)
/// ```
///
/// No gradients and no target: every target of an image gets the same map. The sign of `v_1`
/// is arbitrary in an SVD (pytorch-grad-cam takes whatever LAPACK returns); ours is fixed so that
/// the map correlates positively with the activations' channel sum: see
/// [`first_component_projection`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EigenCam;

impl CamMethod for EigenCam {
    fn name(&self) -> &'static str {
        "eigen-cam"
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let map = first_component_projection(layer.activations.clone())?; // [n, h, w]
        let [n, h, w] = map.dims();
        let m = layer.targets_per_image;
        let map = map.unsqueeze_dim::<4>(1).expand([n, m, h, w]); // [n, m, h, w]
        Ok(CamMap::Map(map))
    }
}
