//! The map reduction: from activations and gradients to normalised, upsampled heatmaps.
//!
//! Backend-agnostic tensor ops, all on the device: no value comes back to the host here.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use crate::config::Normalization;

/// The epsilon of min-max normalisation (pytorch-grad-cam's).
pub const NORMALIZATION_EPSILON: f32 = 1e-7;

/// Grad-CAM's channel weights: `alpha_k = mean over (i, j) of dY/dA^k_ij`.
///
/// # Shapes
/// - `grads`: `[b, k, h, w]`
/// - returns `[b, k]`
pub fn channel_weights(grads: Tensor<4>) -> Tensor<2> {
    let [b, k, h, w] = grads.dims();
    grads
        .reshape([b, k, h * w]) // one reduction instead of one per axis
        .mean_dim(2) // [b, k, 1]
        .reshape([b, k])
}

/// The weighted channel sum `sum_k alpha_k A^k`, for `m` weight vectors per activation.
///
/// One batched matrix product: each activation is read once for all its `m` targets. This is
/// the tensor-op reference; the explainer runs [`kernel::weighted_sum`](crate::kernel::weighted_sum),
/// the same op as one device kernel on CubeCL backends.
///
/// # Shapes
/// - `activations`: `[b, k, h, w]`
/// - `weights`: `[b, m, k]`
/// - returns `[b, m, h, w]`
pub fn weighted_sum(activations: Tensor<4>, weights: Tensor<3>) -> Tensor<4> {
    let [b, k, h, w] = activations.dims();
    let [_, m, _] = weights.dims();
    weights
        .matmul(activations.reshape([b, k, h * w])) // [b, m, h * w]
        .reshape([b, m, h, w])
}

/// Per-map min-max normalisation: `(x - min) / (max - min + 1e-7)` over each `[h, w]` map.
///
/// A flat map becomes all zeros.
///
/// # Shapes
/// - `maps`: `[b, m, h, w]`
/// - returns `[b, m, h, w]`
pub fn normalize_min_max(maps: Tensor<4>) -> Tensor<4> {
    let [b, m, h, w] = maps.dims();
    let flat = maps.reshape([b, m, h * w]); // [b, m, h * w]
    let shifted = flat.clone() - flat.min_dim(2); // [b, m, h * w]
    let range = shifted.clone().max_dim(2) + NORMALIZATION_EPSILON; // [b, m, 1]
    (shifted / range).reshape([b, m, h, w])
}

/// Bilinear upsampling with half-pixel centres (`align_corners = false`), the convention of
/// OpenCV's `INTER_LINEAR` and PyTorch's `interpolate(.., align_corners=False)`.
///
/// # Shapes
/// - `maps`: `[b, m, h, w]`
/// - returns `[b, m, size[0], size[1]]`
pub fn upsample(maps: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = maps.dims();
    if [h, w] == size {
        return maps;
    }
    interpolate(
        maps,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size(size),
    )
}

/// ReLU (if on) and normalisation of signed maps at the layer's resolution.
///
/// # Shapes
/// - `raw`: `[b, m, h, w]`
/// - returns `[b, m, h, w]`
pub fn finish(raw: Tensor<4>, relu_on: bool, normalization: Normalization) -> Tensor<4> {
    let cam = if relu_on { relu(raw) } else { raw };
    match normalization {
        Normalization::MinMax => normalize_min_max(cam),
        Normalization::None => cam,
    }
}

/// pytorch-grad-cam's aggregation of the upsampled maps of one or more layers: clip each at 0
/// (only when the ReLU is on), average them, and min-max normalise the mean again. The second
/// normalisation runs even for one layer, as in pytorch-grad-cam 1.5.7: bilinear upsampling
/// rarely lands on the exact extremes, and this makes the final map span exactly `[0, 1]`.
///
/// # Shapes
/// - `heatmaps`: `L >= 1` maps of `[b, m, H, W]`
/// - returns `[b, m, H, W]`
pub fn combine_layers(
    heatmaps: Vec<Tensor<4>>,
    relu_on: bool,
    normalization: Normalization,
) -> Tensor<4> {
    let stacked = Tensor::stack::<5>(heatmaps, 0); // [L, b, m, H, W]
    let stacked = if relu_on { relu(stacked) } else { stacked };
    let mean = stacked.mean_dim(0).squeeze_dim::<4>(0); // [b, m, H, W]
    match normalization {
        Normalization::MinMax => normalize_min_max(mean),
        Normalization::None => mean,
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    #[test]
    fn channel_weights_are_spatial_means() {
        let grads = tensor((0..12).map(|v| v as f32).collect(), [1, 3, 2, 2]);
        assert_eq!(values(channel_weights(grads)), vec![1.5, 5.5, 9.5]);
    }

    #[test]
    fn weighted_sum_matches_a_hand_sum_for_each_target() {
        // Two channels of 1x2; targets weight them (1, 0) and (2, -1).
        let acts = tensor(vec![1.0, 2.0, 10.0, 20.0], [1, 2, 1, 2]);
        let weights = tensor(vec![1.0, 0.0, 2.0, -1.0], [1, 2, 2]);
        let got = values(weighted_sum(acts, weights));
        assert_eq!(got, vec![1.0, 2.0, -8.0, -16.0]);
    }

    #[test]
    fn min_max_scales_each_map_and_flat_maps_are_zero() {
        let maps = tensor(vec![-1.0, 1.0, 3.0, 5.0, 5.0, 5.0], [1, 2, 1, 3]);
        let got = values(normalize_min_max(maps));
        let expected = [0.0, 0.5, 1.0, 0.0, 0.0, 0.0];
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn upsampling_uses_half_pixel_centres() {
        // 2 -> 4 with half-pixel centres: output x maps to source (x + 0.5) / 2 - 0.5, clamped:
        // [-0.25, 0.25, 0.75, 1.25] -> [0, 0.25, 0.75, 1] of the way from a to b.
        let maps = tensor(vec![0.0, 4.0], [1, 1, 1, 2]);
        let got = values(upsample(maps, [1, 4]));
        let expected = [0.0, 1.0, 3.0, 4.0];
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn finish_applies_relu_before_scaling() {
        let raw = tensor(vec![-2.0, 0.0, 2.0, 4.0], [1, 1, 2, 2]);
        let on = values(finish(raw.clone(), true, Normalization::None));
        assert_eq!(on, vec![0.0, 0.0, 2.0, 4.0]);
        let off = values(finish(raw, false, Normalization::MinMax));
        let expected = [0.0, 2.0 / 6.0, 4.0 / 6.0, 1.0];
        for (g, e) in off.iter().zip(expected) {
            assert!((g - e).abs() < 1e-6, "{off:?}");
        }
    }

    #[test]
    fn combining_renormalises_one_layer_and_averages_two() {
        let a = tensor(vec![0.1, 0.3, 0.9], [1, 1, 1, 3]);
        let b = tensor(vec![-1.0, 1.0, 1.0], [1, 1, 1, 3]);
        let one = values(combine_layers(vec![a.clone()], true, Normalization::MinMax));
        for (g, e) in one.iter().zip([0.0, 0.25, 1.0]) {
            assert!((g - e).abs() < 1e-6, "{one:?}");
        }
        let two = values(combine_layers(
            vec![a.clone(), b.clone()],
            true,
            Normalization::None,
        ));
        for (g, e) in two.iter().zip([0.05, 0.65, 0.95]) {
            assert!((g - e).abs() < 1e-6, "{two:?}");
        }
        // Without the ReLU nothing is clipped.
        let signed = values(combine_layers(vec![a, b], false, Normalization::None));
        assert!((signed[0] - (-0.45)).abs() < 1e-6, "{signed:?}");
    }
}
