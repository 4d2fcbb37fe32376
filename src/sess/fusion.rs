//! How SESS weighs its patches and fuses their pasted maps.

use burn::tensor::Tensor;

use super::config::SessPool;
use crate::capture::to_f32;

/// Each patch's weight under each target and whether it takes part, from their scores.
pub(super) struct Weights {
    /// `[p * m]`, patch-major: `score / best score` (1 when the best is not positive).
    pub(super) weights: Vec<f32>,
    /// `[p * m]`: 1 where the patch survives the pre-filter for the target, else 0.
    pub(super) kept: Vec<f32>,
}

impl Weights {
    /// pytorch-grad-cam's: the patches sorted by score (stably, here), the lowest
    /// `floor(p x ratio)` left out, each survivor weighted by its score over the best one.
    pub(super) fn new(scores: &[f32], m: usize, ratio: f64) -> Self {
        let p = scores.len() / m;
        let mut weights = vec![0.0f32; p * m];
        let mut kept = vec![0.0f32; p * m];
        for t in 0..m {
            let score = |patch: usize| scores[patch * m + t];
            let mut order: Vec<usize> = (0..p).collect();
            order.sort_by(|&a, &b| score(a).total_cmp(&score(b)));
            let survivors = &order[(p as f64 * ratio) as usize..];
            let best = survivors.last().map_or(0.0, |&patch| score(patch));
            for &patch in survivors {
                kept[patch * m + t] = 1.0;
                weights[patch * m + t] = if best > 0.0 { score(patch) / best } else { 1.0 };
            }
        }
        Self { weights, kept }
    }
}

/// The fused map of one image so far.
pub(super) enum Fused {
    /// The sum of the counted values and their count per pixel.
    Mean { theta: f32, sums: Box<Sums> },
    /// The maximum so far (from 0).
    Max(Box<Tensor<4>>),
}

/// Mean fusion's running sums, `[1, m, H, W]` each.
pub(super) struct Sums {
    total: Tensor<4>,
    counts: Tensor<4>,
}

impl Fused {
    /// Nothing fused yet.
    ///
    /// # Shapes
    /// - `zeros`: `[1, m, H, W]`
    pub(super) fn new(pool: SessPool, theta: f32, zeros: Tensor<4>) -> Self {
        match pool {
            SessPool::Mean => Self::Mean {
                theta,
                sums: Box::new(Sums {
                    total: zeros.clone(),
                    counts: zeros,
                }),
            },
            SessPool::Max => Self::Max(Box::new(zeros)),
        }
    }

    /// Fuse a batch of pasted patch maps; `kept` says which take part for which target.
    ///
    /// # Shapes
    /// - `pasted`: `[b, m, H, W]`; `kept`: `[b, m, 1, 1]` of 0 and 1
    pub(super) fn add(self, pasted: Tensor<4>, kept: Tensor<4>) -> Self {
        match self {
            Self::Mean { theta, sums } => {
                let counted = to_f32(pasted.clone().greater_elem(theta).float()) * kept; // [b, m, H, W]
                let Sums { total, counts } = *sums;
                Self::Mean {
                    theta,
                    sums: Box::new(Sums {
                        total: total + (pasted * counted.clone()).sum_dim(0),
                        counts: counts + counted.sum_dim(0),
                    }),
                }
            }
            Self::Max(max) => Self::Max(Box::new(max.max_pair((pasted * kept).max_dim(0)))),
        }
    }

    /// The fused map: the mean over the counted patches (0 where none counted), or the maximum.
    ///
    /// # Shapes
    /// - returns `[1, m, H, W]`
    pub(super) fn result(self) -> Tensor<4> {
        match self {
            // Where no patch counted the total is 0 too: 0 / 1.
            Self::Mean { sums, .. } => sums.total / sums.counts.clamp_min(1.0),
            Self::Max(max) => *max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn the_lowest_patches_are_filtered_out_and_the_rest_weighted_by_the_best() {
        // Four patches, two targets: the second target's scores are all 0.
        let scores = [0.2, 0.0, 0.8, 0.0, 0.4, 0.0, 0.1, 0.0];
        let w = Weights::new(&scores, 2, 0.5);
        // Target 0: 0.1 and 0.2 left out, 0.4 / 0.8 and 0.8 / 0.8 kept.
        let column =
            |v: &[f32], t: usize| -> Vec<f32> { v.iter().skip(t).step_by(2).copied().collect() };
        assert_eq!(column(&w.kept, 0), vec![0.0, 1.0, 1.0, 0.0]);
        assert_eq!(column(&w.weights, 0), vec![0.0, 1.0, 0.5, 0.0]);
        // Target 1: ties kept in patch order (the first two left out), weights 1 (no best score).
        assert_eq!(column(&w.kept, 1), vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(column(&w.weights, 1), vec![0.0, 0.0, 1.0, 1.0]);
        let all = Weights::new(&scores, 2, 0.0);
        assert!(all.kept.iter().all(|&k| k == 1.0));
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_mean_counts_values_above_theta_and_the_max_starts_at_zero() {
        let device = burn::tensor::Device::flex();
        let t = |v: Vec<f32>, shape: [usize; 4]| {
            Tensor::<4>::from_data(TensorData::new(v, shape), &device)
        };
        // Three patches of one target over three pixels; the third patch is filtered out.
        let pasted = t(
            vec![0.5, 0.0, -1.0, 0.25, 0.0, -2.0, 9.0, 9.0, 9.0],
            [3, 1, 1, 3],
        );
        let kept = t(vec![1.0, 1.0, 0.0], [3, 1, 1, 1]);
        let zeros = Tensor::<4>::zeros([1, 1, 1, 3], &device);
        let mean = Fused::new(SessPool::Mean, 0.0, zeros.clone()).add(pasted.clone(), kept.clone());
        assert_eq!(crate::host::read(mean.result()), vec![0.375, 0.0, 0.0]);
        let above =
            Fused::new(SessPool::Mean, 0.3, zeros.clone()).add(pasted.clone(), kept.clone());
        assert_eq!(crate::host::read(above.result()), vec![0.5, 0.0, 0.0]);
        let max = Fused::new(SessPool::Max, 0.0, zeros).add(pasted, kept);
        assert_eq!(crate::host::read(max.result()), vec![0.5, 0.0, 0.0]);
    }
}
