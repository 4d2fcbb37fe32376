//! IS-CAM: Naidu et al., "IS-CAM: Integrated Score-CAM for axiomatic-based explanations", 2020
//! ([arXiv:2010.03023](https://arxiv.org/abs/2010.03023)), as torchcam 0.5's `ISCAM`.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::{CamMap, CamMethod, Chunks, LayerCapture, Rerun};
use crate::error::Result;
use crate::postprocess::upsample;

/// IS-CAM: Score-CAM's masks scaled along a path from the black image and the scores averaged,
///
/// ```text
/// M_k = upsample(minmax(A^k))      c_s = s (s + 1) / (2 N)      w = softmax_k(1/N sum_s y(c_s M_k (.) x))
/// ```
///
/// with `N` samples ([`with_samples`](Self::with_samples), default 10) and `map = sum_k w_k A^k`.
/// As torchcam (the anchor: pytorch-grad-cam has no IS-CAM), each channel is min-max scaled at
/// the layer's resolution (`(a - min) / (max - min + 1e-8)`) and then upsampled bilinearly with
/// half-pixel centres, and the coefficients accumulate (`c_s = sum_{j <= s} j / N`, torchcam's
/// code; its docstring's sum from `j = 0` to `s - 1` would start at 0). No gradients; `N k`
/// forwards of the whole model per image, in chunks of [`with_batch_size`](Self::with_batch_size).
#[derive(Clone)]
pub struct IsCam {
    chunks: Chunks,
    samples: usize,
}

impl IsCam {
    /// 10 samples, 32 rows per forward, no progress callback.
    pub fn new() -> Self {
        Self {
            chunks: Chunks::new(32),
            samples: 10,
        }
    }

    /// Points on the path (at least 1).
    pub fn with_samples(mut self, samples: usize) -> Self {
        self.samples = samples;
        self
    }

    /// Rows per forward (at least 1): more use more memory and fewer launches.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.chunks.batch_size = batch_size;
        self
    }

    /// Called after every chunk of forwards.
    pub fn with_progress(
        mut self,
        progress: impl Fn(&super::Progress) + Send + Sync + 'static,
    ) -> Self {
        self.chunks.progress = Some(std::sync::Arc::new(progress));
        self
    }
}

impl Default for IsCam {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for IsCam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsCam")
            .field("samples", &self.samples)
            .field("batch_size", &self.chunks.batch_size)
            .finish()
    }
}

impl CamMethod for IsCam {
    fn name(&self) -> &'static str {
        "is-cam"
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        if self.samples == 0 {
            return Err(crate::GradCamError::argument(
                "IS-CAM with 0 samples; use at least 1",
            ));
        }
        let x = model.input(); // [n, c, H, W]
        let [n, _, height, width] = x.dims();
        let [_, k, _, _] = layer.activations.dims();
        let total = n * k * self.samples;
        let mut weights = Vec::with_capacity(n);
        for i in 0..n {
            let image = x.clone().narrow(0, i, 1); // [1, c, H, W]
            let a = layer.activations.clone().narrow(0, i, 1); // [1, k, h, w]
            let masks = scaled_then_upsampled(a, [height, width]); // [k, 1, H, W]
            let mut samples = Vec::with_capacity(self.samples);
            for s in 1..=self.samples {
                let coefficient = (s * (s + 1)) as f64 / (2 * self.samples) as f64;
                let mut scores = Vec::new();
                for (start, chunk) in self.chunks.of(k)? {
                    let inputs = masks.clone().narrow(0, start, chunk) * image.clone();
                    scores.push(model.scores(inputs.mul_scalar(coefficient), i)?); // [chunk, m]
                    let done = (i * self.samples + s - 1) * k + start + chunk;
                    self.chunks.report(&layer.name, done, total);
                }
                samples.push(Tensor::cat(scores, 0)); // [k, m]
            }
            let m = layer.targets_per_image;
            let mean = Tensor::stack::<3>(samples, 0).mean_dim(0).reshape([k, m]); // [k, m]
            weights.push(softmax(mean.transpose(), 1)); // [m, k]
        }
        Ok(CamMap::Weights(Tensor::stack(weights, 0))) // [n, m, k]
    }
}

/// torchcam's Score-CAM masks: each channel min-max scaled at the layer's resolution
/// (`(a - min) / (max - min + 1e-8)`), then upsampled bilinearly with half-pixel centres.
///
/// # Shapes
/// - `a`: `[1, k, h, w]`
/// - returns `[k, 1, H, W]`
pub(super) fn scaled_then_upsampled(a: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, k, h, w] = a.dims();
    let a = a.reshape([1, k, h * w]);
    let min = a.clone().min_dim(2); // [1, k, 1]
    let scaled = a - min;
    let range = scaled.clone().max_dim(2) + 1e-8; // [1, k, 1]
    upsample((scaled / range).reshape([1, k, h, w]), size).reshape([k, 1, size[0], size[1]])
}
