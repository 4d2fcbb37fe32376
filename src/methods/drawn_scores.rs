//! torchcam's Score-CAM family with several draws per mask (IS-CAM's path, SS-CAM's noise): the
//! masks, the scores of every draw of every masked input, their mean, and the softmax weights.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::{Chunks, LayerCapture, Rerun};
use crate::error::{GradCamError, Result};
use crate::postprocess::upsample;

/// One draw of a masked input: `(image, draw, first channel, masks [chunk, 1, H, W])` to the
/// masks actually applied, `[chunk, 1, H, W]`. Called in order: image by image, draw by draw,
/// chunk by chunk.
pub(super) type Draw<'a> = dyn FnMut(usize, usize, usize, Tensor<4>) -> Tensor<4> + 'a;

/// `softmax_k(1/N sum_s y(draw(s, M_k) (.) x))` for every image and target, with torchcam's masks
/// ([`scaled_then_upsampled`]) and `draws = N` draws, `draw` making each draw's masks.
///
/// # Shapes
/// - returns `[n, m, k]`
///
/// # Errors
/// An argument error for 0 draws or a batch size of 0; the model's errors.
pub(super) fn drawn_score_weights(
    layer: &LayerCapture,
    model: &dyn Rerun,
    chunks: &Chunks,
    draws: usize,
    draw: &mut Draw<'_>,
) -> Result<Tensor<3>> {
    if draws == 0 {
        return Err(GradCamError::argument("0 draws per mask; use at least 1"));
    }
    let x = model.input(); // [n, c, H, W]
    let [n, _, height, width] = x.dims();
    let [_, k, _, _] = layer.activations.dims();
    let m = layer.targets_per_image;
    let total = n * k * draws;
    let mut weights = Vec::with_capacity(n);
    for i in 0..n {
        let image = x.clone().narrow(0, i, 1); // [1, c, H, W]
        let a = layer.activations.clone().narrow(0, i, 1); // [1, k, h, w]
        let masks = scaled_then_upsampled(a, [height, width]); // [k, 1, H, W]
        let mut samples = Vec::with_capacity(draws);
        for s in 0..draws {
            let mut scores = Vec::new();
            for (start, chunk) in chunks.of(k)? {
                let drawn = draw(i, s, start, masks.clone().narrow(0, start, chunk));
                scores.push(model.scores(drawn * image.clone(), i)?); // [chunk, m]
                chunks.report(&layer.name, (i * draws + s) * k + start + chunk, total);
            }
            samples.push(Tensor::cat(scores, 0)); // [k, m]
        }
        let mean = Tensor::stack::<3>(samples, 0).mean_dim(0).reshape([k, m]); // [k, m]
        weights.push(softmax(mean.transpose(), 1)); // [m, k]
    }
    Ok(Tensor::stack(weights, 0)) // [n, m, k]
}

/// torchcam's Score-CAM masks: each channel min-max scaled at the layer's resolution
/// (`(a - min) / (max - min + 1e-8)`), then upsampled bilinearly with half-pixel centres.
///
/// # Shapes
/// - `a`: `[1, k, h, w]`
/// - returns `[k, 1, H, W]`
fn scaled_then_upsampled(a: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, k, h, w] = a.dims();
    let a = a.reshape([1, k, h * w]);
    let min = a.clone().min_dim(2); // [1, k, 1]
    let scaled = a - min;
    let range = scaled.clone().max_dim(2) + 1e-8; // [1, k, 1]
    upsample((scaled / range).reshape([1, k, h, w]), size).reshape([k, 1, size[0], size[1]])
}
