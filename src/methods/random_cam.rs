//! RandomCAM, pytorch-grad-cam's baseline: channel weights drawn at random, for checking that a
//! metric or a sanity test tells a real explanation from chance (Adebayo et al., "Sanity Checks
//! for Saliency Maps", NeurIPS 2018, [arXiv:1810.03292](https://arxiv.org/abs/1810.03292)).

use burn::tensor::{DType, Tensor, TensorData};

use super::splitmix::SplitMix64;
use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// RandomCAM: `map = sum_k w_k A^k` with each `w_k` uniform in `[-1, 1)`, drawn independently
/// for every image, target and channel (pytorch-grad-cam draws `np.random.uniform(-1, 1)` per
/// image and channel).
///
/// Reproducible where pytorch-grad-cam is not: the weights are a function of the seed
/// ([`with_seed`](Self::with_seed), default 0) and of their position `[image, target, channel]`,
/// so the same seed gives the same map on every backend, machine and version. They come from
/// SplitMix64 (Steele, Lea and Flood, OOPSLA 2014), written here rather than taken from `rand`,
/// whose `StdRng` does not promise the same values across its versions; 24 bits of each draw
/// make the `f32` (every value a multiple of `2^-23`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RandomCam {
    seed: u64,
}

impl RandomCam {
    /// Seed 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The seed the weights are drawn from.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The weights of `n` images with `m` targets and `k` channels, row-major `[n, m, k]`.
    pub fn weights(&self, n: usize, m: usize, k: usize) -> Vec<f32> {
        SplitMix64::new(self.seed)
            .take(n * m * k)
            // The top 24 bits as a multiple of 2^-24 in [0, 1), exact in f32, then [-1, 1).
            .map(|z| (z >> 40) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0)
            .collect()
    }
}

impl CamMethod for RandomCam {
    fn name(&self) -> &'static str {
        "random-cam"
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let [n, k, _, _] = layer.activations.dims();
        let m = layer.targets_per_image;
        let device = layer.activations.device();
        let weights = TensorData::new(self.weights(n, m, k), [n, m, k]);
        Ok(CamMap::Weights(Tensor::from_data(weights, (&device, DType::F32)))) // [n, m, k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `w` looks like `N` draws of U[-1, 1) (mean 0, E[w^2] = 1/3, half negative): by
    /// Hoeffding's inequality each sample mean (of values in an interval of width 2, of squares
    /// and of signs, width 1) of `N = 2^16` true draws is off by more than 0.02 with probability
    /// below `2 exp(-2 N 0.02^2 / width^2) < 1e-5`.
    fn uniform_on_minus_one_to_one(w: &[f32]) -> std::result::Result<(), String> {
        let len = w.len() as f64;
        let mean = w.iter().map(|v| *v as f64).sum::<f64>() / len;
        let square = w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / len;
        let negative = w.iter().filter(|v| **v < 0.0).count() as f64 / len;
        if !w.iter().all(|v| (-1.0..1.0).contains(v)) {
            return Err("a value outside [-1, 1)".into());
        }
        if mean.abs() >= 0.02 || (square - 1.0 / 3.0).abs() >= 0.02 || (negative - 0.5).abs() >= 0.02 {
            return Err(format!("mean {mean}, E[w^2] {square}, {negative} negative"));
        }
        Ok(())
    }

    #[test]
    fn the_weights_are_uniform_on_minus_one_to_one() {
        // Fixed seeds (the test is deterministic; the bound says why passing is not luck).
        for seed in [0, 1, 12345] {
            let w = RandomCam::new().with_seed(seed).weights(1, 1, 1 << 16);
            uniform_on_minus_one_to_one(&w).unwrap();
        }
    }

    #[test]
    fn other_distributions_fail_the_uniformity_test() {
        let w = RandomCam::new().weights(1, 1, 1 << 16);
        // U[0, 1) (the mistake of forgetting the shift), U[-0.5, 0.5), and a constant.
        let shifted: Vec<f32> = w.iter().map(|v| (v + 1.0) / 2.0).collect();
        let narrow: Vec<f32> = w.iter().map(|v| v / 2.0).collect();
        for wrong in [shifted, narrow, vec![0.0; 1 << 16]] {
            assert!(uniform_on_minus_one_to_one(&wrong).is_err());
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_weights_and_another_seed_others() {
        let a = RandomCam::new().with_seed(7).weights(2, 3, 5);
        assert_eq!(a, RandomCam::new().with_seed(7).weights(2, 3, 5));
        let b = RandomCam::new().with_seed(8).weights(2, 3, 5);
        assert!(a.iter().zip(&b).filter(|(x, y)| x == y).count() < 2);
        // The first draws do not depend on how many follow.
        assert_eq!(&RandomCam::new().with_seed(7).weights(1, 1, 4)[..], &a[..4]);
    }
}
