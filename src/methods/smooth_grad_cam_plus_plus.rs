//! SmoothGrad-CAM++: Omeiza et al., "Smooth Grad-CAM++: An Enhanced Inference Level
//! Visualization Technique for Deep Convolutional Neural Network Models", 2019
//! ([arXiv:1908.01224](https://arxiv.org/abs/1908.01224)), as torchcam 0.5's `SmoothGradCAMpp`.

use burn::tensor::activation::relu;
use burn::tensor::{DType, Tensor, TensorData};

use super::{CamMap, CamMethod, Chunks, LayerCapture, Rerun};
use crate::error::{GradCamError, Result};

/// SmoothGrad-CAM++: Grad-CAM++'s pixel weights with the gradient's powers averaged over `N`
/// noisy copies `x + d_s` of the input, `d_s ~ N(0, std^2)` per pixel,
///
/// ```text
/// G_s = dy/dA at x + d_s      alpha_kij = mean_s(G_s^2) / (2 mean_s(G_s^2) + sum_ab A_ab mean_s(G_s^3)_ab + 1e-8)
/// w_k = sum_ij alpha_kij ReLU(mean_s G_s)_kij      map = sum_k w_k A^k
/// ```
///
/// with `A` the unperturbed input's activations; `N = 4`, `std = 0.3` (absolute, in the input's
/// units) and the denominator as torchcam 0.5 (its sum over `a, b` of the powers at every
/// position, not pytorch-grad-cam's Grad-CAM++ reading). One choice differs: torchcam multiplies
/// `alpha` by `ReLU` of the *last* draw's gradient, which makes the map depend on the order of
/// the draws; we take the mean gradient over the draws, the paper's `D^1` (the same for `N = 1`,
/// where the two are compared). Where `sum_ab A_ab mean_s(G_s^3)_ab` is negative, the denominator
/// can vanish at a pixel with a positive gradient and that channel's weight is a singular ratio
/// (in torchcam too): rounding alone moves it. The noise is reproducible: a function of the seed
/// ([`with_seed`](Self::with_seed), default 0), the image, the draw and the position, as
/// [`SsCam`](super::SsCam)'s. `N` forwards and backwards of the whole model per image, on top
/// of the unperturbed forward.
///
/// # Shapes
/// - activations `[n, k, h, w]`; each draw's gradients `[N, m, k, h, w]`; returns weights
///   `[n, m, k]`
#[derive(Clone)]
pub struct SmoothGradCamPlusPlus {
    chunks: Chunks,
    samples: usize,
    std: f32,
    seed: u64,
}

/// torchcam's epsilon of the denominator.
const EPSILON: f32 = 1e-8;

impl SmoothGradCamPlusPlus {
    /// 4 draws of standard deviation 0.3, seed 0, 8 rows per forward.
    pub fn new() -> Self {
        Self {
            chunks: Chunks::new(8),
            samples: 4,
            std: 0.3,
            seed: 0,
        }
    }

    /// Draws `first..first + count` of image `image`, `[count, c, H, W]`.
    fn noisy(&self, x: &Tensor<4>, image: usize, first: usize, count: usize) -> Tensor<4> {
        let [_, c, height, width] = x.dims();
        let per_draw = c * height * width;
        let values: Vec<f32> = (first..first + count)
            .flat_map(|s| self.noise(image, s).take(per_draw))
            .map(|v| v * self.std)
            .collect();
        let noise = Tensor::<4>::from_data(
            TensorData::new(values, [count, c, height, width]),
            (&x.device(), DType::F32),
        );
        x.clone().narrow(0, image, 1) + noise // [count, c, H, W]
    }
}

noisy_method!(SmoothGradCamPlusPlus);

impl CamMethod for SmoothGradCamPlusPlus {
    fn name(&self) -> &'static str {
        "smoothgrad-cam++"
    }

    /// The unperturbed capture needs none: the gradients are the noisy draws'.
    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        if self.samples == 0 {
            return Err(GradCamError::argument("0 draws of noise; use at least 1"));
        }
        let x = model.input(); // [n, c, H, W]
        let [n, k, h, w] = layer.activations.dims();
        let m = layer.targets_per_image;
        let draws = self.samples as f32;
        let mut weights = Vec::with_capacity(n);
        for image in 0..n {
            // Each chunk's sums of G, G^2 and G^3 over its draws, [1, m, k, hw] each.
            let mut powers: [Vec<Tensor<4>>; 3] = Default::default();
            for (first, count) in self.chunks.of(self.samples)? {
                let noisy = self.noisy(&x, image, first, count);
                let g = model.gradients(&layer.name, noisy, image)?; // [count, m, k, h, w]
                let g = g.reshape([count, m, k, h * w]);
                let g2 = g.clone() * g.clone();
                let g3 = g2.clone() * g.clone();
                for (sums, p) in powers.iter_mut().zip([g, g2, g3]) {
                    sums.push(p.sum_dim(0));
                }
                let done = image * self.samples + first + count;
                self.chunks.report(&layer.name, done, n * self.samples);
            }
            // The means over the draws (at least one chunk: `samples >= 1`).
            let [g1, g2, g3] = powers.map(|sums| Tensor::cat(sums, 0).sum_dim(0) / draws);
            let a = layer
                .activations
                .clone()
                .narrow(0, image, 1)
                .reshape([1, 1, k, h * w]); // [1, 1, k, hw]
            let spread = (g3 * a).sum_dim(3); // [1, m, k, 1]
            let alpha = g2.clone() / (g2 * 2.0 + spread + EPSILON); // [1, m, k, hw]
            weights.push((alpha * relu(g1)).sum_dim(3).reshape([1, m, k]));
        }
        Ok(CamMap::Weights(Tensor::cat(weights, 0))) // [n, m, k]
    }
}
