//! IS-CAM: Naidu et al., "IS-CAM: Integrated Score-CAM for axiomatic-based explanations", 2020
//! ([arXiv:2010.03023](https://arxiv.org/abs/2010.03023)), as torchcam 0.5's `ISCAM`.

use burn::tensor::Tensor;

use super::drawn_scores::drawn_score_weights;
use super::{CamMap, CamMethod, Chunks, LayerCapture, Rerun};
use crate::error::Result;

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
}

chunk_settings!(IsCam);

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

    fn runs_many_forwards(&self) -> bool {
        true
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        let samples = self.samples;
        let mut path = |_, s: usize, _, masks: Tensor<4>| {
            // Draw s (from 0) is point t = s + 1 of the path: c_t = t (t + 1) / (2 N).
            masks.mul_scalar(((s + 1) * (s + 2)) as f64 / (2 * samples) as f64)
        };
        let weights = drawn_score_weights(layer, model, &self.chunks, samples, &mut path)?;
        Ok(CamMap::Weights(weights)) // [n, m, k]
    }
}
