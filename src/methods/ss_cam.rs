//! SS-CAM: Wang et al., "SS-CAM: Smoothed Score-CAM for Sharper Visual Feature Localization",
//! 2020 ([arXiv:2006.14255](https://arxiv.org/abs/2006.14255)), as torchcam 0.5's `SSCAM`.

use burn::tensor::{DType, Tensor, TensorData};

use super::drawn_scores::drawn_score_weights;
use super::splitmix::normal_noise;
use super::{CamMap, CamMethod, Chunks, LayerCapture, Rerun};
use crate::error::Result;

/// SS-CAM: Score-CAM with Gaussian noise on the masks, the scores averaged over `N` draws,
///
/// ```text
/// M_k = upsample(minmax(A^k))      w = softmax_k(1/N sum_s y((M_k + d_s) (.) x)),  d_s ~ N(0, std^2)
/// ```
///
/// and `map = sum_k w_k A^k`; `N = 35`, `std = 2` as torchcam (the anchor: pytorch-grad-cam has
/// no SS-CAM), with its masks (scaled at the layer's resolution, then upsampled) and its noise at
/// the input's resolution, one value per channel and pixel. The noise is reproducible where
/// torchcam's is not: a function of the seed ([`with_seed`](Self::with_seed), default 0), the
/// image, the draw and the position (SplitMix64 through Box-Muller), so the same seed gives the
/// same map on every backend. No gradients; `N k` forwards of the whole model per image.
#[derive(Clone)]
pub struct SsCam {
    chunks: Chunks,
    samples: usize,
    std: f32,
    seed: u64,
}

impl SsCam {
    /// 35 draws of standard deviation 2, seed 0, 32 rows per forward.
    pub fn new() -> Self {
        Self {
            chunks: Chunks::new(32),
            samples: 35,
            std: 2.0,
            seed: 0,
        }
    }

    /// [`noise`](Self::noise) from its value number `first` on (SplitMix64 skips ahead in one
    /// step: two draws per value).
    fn noise_from(&self, image: usize, sample: usize, first: usize) -> impl Iterator<Item = f32> {
        normal_noise(self.seed, image, sample, first)
    }
}

noisy_method!(SsCam);

impl CamMethod for SsCam {
    fn name(&self) -> &'static str {
        "ss-cam"
    }

    fn runs_many_forwards(&self) -> bool {
        true
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        let mut noisy = |image: usize, draw: usize, start: usize, masks: Tensor<4>| {
            let [chunk, _, height, width] = masks.dims();
            // Channels `start..start + chunk` of this image's and draw's channel-major noise.
            let values: Vec<f32> = self
                .noise_from(image, draw, start * height * width)
                .take(chunk * height * width)
                .map(|v| v * self.std)
                .collect();
            let noise = Tensor::<4>::from_data(
                TensorData::new(values, [chunk, 1, height, width]),
                (&masks.device(), DType::F32),
            );
            masks + noise // [chunk, 1, H, W]
        };
        let weights = drawn_score_weights(layer, model, &self.chunks, self.samples, &mut noisy)?;
        Ok(CamMap::Weights(weights)) // [n, m, k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `z` looks like `N = 2^16` standard normal draws: by Hoeffding's inequality the
    /// share within one standard deviation (true 0.6827), the share of positives (0.5) and the
    /// mean of `tanh(z)` (0; values in [-1, 1]) are each off by more than 0.02 with probability
    /// below `2 exp(-2 N 0.02^2 / width^2) < 1e-5` (width 1, 1 and 2).
    fn standard_normal(z: &[f32]) -> std::result::Result<(), String> {
        let len = z.len() as f64;
        let within = z.iter().filter(|v| v.abs() < 1.0).count() as f64 / len;
        let positive = z.iter().filter(|v| **v > 0.0).count() as f64 / len;
        let tanh = z.iter().map(|v| (*v as f64).tanh()).sum::<f64>() / len;
        if (within - 0.6827).abs() >= 0.02 || (positive - 0.5).abs() >= 0.02 || tanh.abs() >= 0.02
        {
            return Err(format!(
                "{within} within one sigma, {positive} positive, mean tanh {tanh}"
            ));
        }
        Ok(())
    }

    #[test]
    fn the_noise_is_standard_normal() {
        for (image, sample) in [(0, 0), (1, 0), (0, 34)] {
            let z: Vec<f32> = SsCam::new().noise(image, sample).take(1 << 16).collect();
            standard_normal(&z).unwrap();
        }
    }

    #[test]
    fn other_distributions_fail_the_normality_test() {
        let z: Vec<f32> = SsCam::new().noise(0, 0).take(1 << 16).collect();
        let wide: Vec<f32> = z.iter().map(|v| v * 2.0).collect();
        let shifted: Vec<f32> = z.iter().map(|v| v + 0.2).collect();
        let uniform: Vec<f32> = (0..1 << 16).map(|i| (i as f32 / 32768.0) - 1.0).collect();
        for wrong in [wide, shifted, uniform] {
            assert!(standard_normal(&wrong).is_err());
        }
    }

    #[test]
    fn a_chunk_s_noise_continues_the_draw_s_stream() {
        // What a chunk of channels starting at value `first` reads is the stream from there.
        let cam = SsCam::new().with_seed(5);
        let stepped: Vec<f32> = cam.noise(1, 3).skip(1000).take(8).collect();
        let skipped: Vec<f32> = cam.noise_from(1, 3, 1000).take(8).collect();
        assert_eq!(stepped, skipped);
        let other: Vec<f32> = cam.noise_from(1, 3, 999).take(8).collect();
        assert_ne!(stepped, other);
    }

    #[test]
    fn each_draw_and_image_has_its_own_noise_and_a_seed_repeats_it() {
        let take = |cam: &SsCam, image, sample| -> Vec<f32> {
            cam.noise(image, sample).take(64).collect()
        };
        let cam = SsCam::new().with_seed(3);
        assert_eq!(take(&cam, 1, 2), take(&SsCam::new().with_seed(3), 1, 2));
        for other in [take(&cam, 1, 3), take(&cam, 2, 2), take(&SsCam::new(), 1, 2)] {
            assert!(other.iter().zip(take(&cam, 1, 2)).all(|(a, b)| *a != b));
        }
    }
}
