//! Score-CAM: Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional
//! Neural Networks", CVPR Workshops 2020 ([arXiv:1910.01279](https://arxiv.org/abs/1910.01279)).

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;

/// Score-CAM: each channel weighted by the score of the input masked with it,
///
/// ```text
/// M_k = minmax(upsample(A^k))      s_k = y(x (.) M_k)      w = softmax_k(s)      map = sum_k w_k A^k
/// ```
///
/// No gradients; `k` forwards of the whole model per image, in chunks of
/// [`ScoreCam::with_batch_size`] on the device. One set of forwards serves every target of an
/// image. As in pytorch-grad-cam 1.5.7, the masks are upsampled with `align_corners = true`
/// (`UpsamplingBilinear2d`) and scaled by `(u - min) / (max - min + 1e-8)`.
#[derive(Clone)]
pub struct ScoreCam {
    chunks: super::Chunks,
}

chunked_method!(ScoreCam, 32);

impl CamMethod for ScoreCam {
    fn name(&self) -> &'static str {
        "score-cam"
    }

    fn runs_many_forwards(&self) -> bool {
        true
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        let x = model.input(); // [n, c, H, W]
        let [n, _, height, width] = x.dims();
        let [_, k, _, _] = layer.activations.dims();
        let mut weights = Vec::with_capacity(n);
        for i in 0..n {
            let image = x.clone().narrow(0, i, 1); // [1, c, H, W]
            let mut scores = Vec::new();
            for (start, chunk) in self.chunks.of(k)? {
                let a = layer
                    .activations
                    .clone()
                    .narrow(0, i, 1)
                    .narrow(1, start, chunk);
                let masks = masks(a, [height, width]).reshape([chunk, 1, height, width]);
                scores.push(model.scores(image.clone() * masks, i)?); // [chunk, m]
                self.chunks
                    .report(&layer.name, i * k + start + chunk, n * k);
            }
            let scores = Tensor::cat(scores, 0).transpose(); // [m, k]
            weights.push(softmax(scores, 1));
        }
        Ok(CamMap::Weights(Tensor::stack(weights, 0))) // [n, m, k]
    }
}

/// The activation maps upsampled to the input (`align_corners = true`) and min-max scaled.
///
/// # Shapes
/// - `a`: `[1, k, h, w]`
/// - returns `[1, k, H, W]`
fn masks(a: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, k, _, _] = a.dims();
    let up = interpolate(
        a,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(true)
            .with_output_size(size),
    ); // [1, k, H, W]
    let flat = up.reshape([1, k, size[0] * size[1]]);
    let min = flat.clone().min_dim(2); // [1, k, 1]
    let range = flat.clone().max_dim(2) - min.clone() + 1e-8;
    ((flat - min) / range).reshape([1, k, size[0], size[1]])
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn masks_keep_the_corners_and_span_the_unit_interval() {
        // 2 -> 3 with align_corners: the middle sample is the mean of the two corners.
        let a = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 3.0], [1, 1, 1, 2]),
            &Device::flex(),
        );
        let got = crate::host::read(masks(a, [1, 3]));
        for (g, e) in got.iter().zip([0.0, 0.5, 1.0]) {
            assert!((g - e).abs() < 1e-6, "{got:?}");
        }
    }
}
