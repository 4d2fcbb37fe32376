//! ShapleyCAM: Cai, "CAMs as Shapley Value-based Explainers", 2025
//! ([arXiv:2501.06261](https://arxiv.org/abs/2501.06261)), as pytorch-grad-cam's `ShapleyCAM`.

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::{GradCamError, Result};

/// ShapleyCAM: Grad-CAM's weights with the second-order term of a Taylor expansion of the score
/// in the activations (a Shapley value of each channel, to second order),
///
/// ```text
/// w_k = 1/(h w) sum_ij (G - H A / 2)^k_ij        map = sum_k w_k A^k
/// ```
///
/// with `H` the Hessian of the target's score `y` with respect to the layer's activations `A`.
/// `H A` is [`Rerun::hessian_products`]: through the logits, `J^T S J A` (`S` the score's
/// Hessian in the logits), which is what pytorch-grad-cam's double backward takes on networks
/// of ReLUs, pooling, BatchNorms in eval mode and linear layers. A logit target (a class, a
/// rank) has `S = 0`, and the map is Grad-CAM's; the paper pairs the method with its ReST score,
/// [`Target::rest`](crate::Target::rest), the logit minus the cross-entropy.
///
/// Burn 0.22's autodiff takes no second derivative: `J A` costs a forward of three rows per
/// image where the model declares the logits affine in the layer
/// ([`GradCam::affine_after`](crate::GradCam::affine_after)), else one backward row per class
/// after the layer (in passes of [`with_batch_size`](Self::with_batch_size) rows, 1024 by
/// default: one pass for ImageNet's classes, each row a copy of the image's activation); then
/// `S (J A)` is a difference of the score's gradient in the logits, and one forward and backward
/// of the batch. ResNet-50's `layer4` with the ReST score: 0.59x pytorch-grad-cam, 0.08x with the
/// rows per class (BENCHMARKS.md); with a logit target, Grad-CAM's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapleyCam {
    batch_size: usize,
}

impl ShapleyCam {
    /// 1024 rows per pass.
    pub fn new() -> Self {
        Self { batch_size: 1024 }
    }

    /// Rows per pass for `J A` (at least 1): each row is a copy of one image's activation, so a
    /// pass holds `rows x k x h x w` floats several times over (its gradient, the layers after
    /// it); fewer rows use less memory and run the layers before the explained one more often.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
}

impl Default for ShapleyCam {
    fn default() -> Self {
        Self::new()
    }
}

impl CamMethod for ShapleyCam {
    fn name(&self) -> &'static str {
        "shapley-cam"
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        if self.batch_size == 0 {
            return Err(GradCamError::argument("a batch size of 0; use at least 1"));
        }
        let g = layer.gradients(); // [n, m, k, h, w]
        let [n, m, k, h, w] = g.dims();
        let hessian_a =
            model.hessian_products(&layer.name, layer.activations.clone(), self.batch_size)?; // [n, m, k, h, w]
        let weights = (g - hessian_a * 0.5).reshape([n, m, k, h * w]).mean_dim(3); // [n, m, k, 1]
        Ok(CamMap::Weights(weights.reshape([n, m, k])))
    }
}
