//! What an explanation holds: per-layer maps, the fused heatmap, and what each map explains.

use burn::tensor::Tensor;

use crate::error::{GradCamError, Result};
use crate::host::read;

/// The maps of one explained layer, for every image and target.
#[derive(Debug, Clone)]
pub struct LayerMap {
    /// The layer's name.
    pub name: String,
    /// The channel weights `w_k`, `[n, m, k]`, for methods that weight channels (`None` for
    /// HiResCAM, LayerCAM, Element-wise Grad-CAM and the Eigen methods, whose maps are not a
    /// weighted channel sum).
    pub weights: Option<Tensor<3>>,
    /// The method's signed map at the layer's resolution, before ReLU and normalisation,
    /// `[n, m, h, w]` (for Grad-CAM `sum_k w_k A^k`).
    pub raw: Tensor<4>,
    /// The map after ReLU (if on) and normalisation, at the layer's resolution, `[n, m, h, w]`.
    pub cam: Tensor<4>,
    /// `cam` upsampled to the input's size, `[n, m, H, W]` (not normalised again).
    pub heatmap: Tensor<4>,
}

/// What was explained for one image and target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExplainedTarget {
    /// The class, for class and top-prediction targets; `None` for a custom score.
    pub class: Option<usize>,
    /// The target's score on the unperturbed input (a logit, or the custom score).
    pub score: f32,
}

/// The result of [`Explainer::explain`](crate::Explainer::explain); tensors stay on the input's
/// device.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// One entry per explained layer, in forward order.
    pub layers: Vec<LayerMap>,
    /// The heatmap, `[n, m, H, W]`: the layers' upsampled maps clipped at 0 (with the ReLU on),
    /// averaged and normalised again; with min-max normalisation it spans exactly `[0, 1]`.
    /// Equal to pytorch-grad-cam's output.
    pub heatmap: Tensor<4>,
    /// `[n][m]`: what each map explains.
    pub targets: Vec<Vec<ExplainedTarget>>,
}

impl Explanation {
    /// The heatmap of image `image` and target `target`, row-major `[H, W]`, read to the host.
    ///
    /// # Errors
    /// [`InputError::Argument`](crate::InputError::Argument) if `image` or `target` is out of range.
    pub fn heatmap_values(&self, image: usize, target: usize) -> Result<Vec<f32>> {
        let [n, m, _, _] = self.heatmap.dims();
        if image >= n || target >= m {
            return Err(GradCamError::argument(format!(
                "map ({image}, {target}) of an explanation of {n} images x {m} targets"
            )));
        }
        Ok(read(
            self.heatmap
                .clone()
                .slice([image..image + 1, target..target + 1]),
        ))
    }
}
