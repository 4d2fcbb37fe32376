//! FEM, the Feature Explanation Method: Fuad et al., "Features understanding in 3D CNNs for
//! actions recognition in video", IPTA 2020 ([hal-02963298](https://hal.science/hal-02963298)),
//! as pytorch-grad-cam's `FEM`.

use burn::tensor::FloatDType;

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// FEM: each channel weighted by the share of its pixels that stand out, above its mean by
/// `sigmas` (default 2) standard deviations,
///
/// ```text
/// th_k = mean_ij(A^k) + sigmas std_ij(A^k)     w_k = mean_ij [A^k_ij > th_k]     map = sum_k w_k A^k
/// ```
///
/// (population standard deviation, strict `>`: a constant channel weighs 0). No gradients and no
/// target: every target of an image gets the same map. pytorch-grad-cam's `FEM` ignores its
/// `eigen_smooth` flag; here eigen smoothing applies to `w_k A^k` as for every channel weighting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fem {
    sigmas: f32,
}

impl Fem {
    /// Two standard deviations, as the paper and pytorch-grad-cam.
    pub fn new() -> Self {
        Self { sigmas: 2.0 }
    }

    /// The threshold's distance above the mean, in standard deviations.
    pub fn with_sigmas(mut self, sigmas: f32) -> Self {
        self.sigmas = sigmas;
        self
    }
}

impl Default for Fem {
    fn default() -> Self {
        Self::new()
    }
}

impl CamMethod for Fem {
    fn name(&self) -> &'static str {
        "fem"
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let [n, k, h, w] = layer.activations.dims();
        let a = layer.activations.clone().reshape([n, k, h * w]); // [n, k, p]
        let mean = a.clone().mean_dim(2); // [n, k, 1]
        let std = (a.clone() - mean.clone()).square().mean_dim(2).sqrt(); // [n, k, 1]
        let threshold = (mean + std.mul_scalar(self.sigmas)).expand([n, k, h * w]);
        let above = a.greater(threshold).cast(FloatDType::F32); // [n, k, p]
        let weights = above.mean_dim(2).reshape([n, 1, k]); // [n, 1, k]
        let m = layer.targets_per_image;
        Ok(CamMap::Weights(weights.expand([n, m, k])))
    }
}
