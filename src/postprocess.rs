//! What every method's map goes through: ReLU switch, normalisation, upsampling, layer fusion.
//!
//! Backend-agnostic tensor ops, all on the device: no value comes back to the host here.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// How each map is scaled before it is upsampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Normalization {
    /// Per map, at the layer's resolution: `x = x - min(x); x = x / (max(x) + 1e-7)`, which is
    /// `(x - min) / (max - min + 1e-7)`, exactly pytorch-grad-cam's `scale_cam_image`. A flat map
    /// becomes all zeros, never NaN. Bilinear upsampling is a convex combination, so the
    /// upsampled map stays in `[0, 1]`.
    #[default]
    MinMax,
    /// No scaling: maps keep the units of the score (after the ReLU, if it is on).
    Off,
}

/// How the heatmaps of several explained layers are fused into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fusion {
    /// Their mean, pytorch-grad-cam's `aggregate_multi_layers`.
    #[default]
    Mean,
    /// Their pixel-wise maximum, torchcam's `fuse_cams`: what any one layer finds counts fully.
    /// torchcam takes it at the largest layer's resolution; here each layer's map is upsampled
    /// to the input's first (as for the mean), so the two agree where the layers share a
    /// resolution up to the upsampling.
    Max,
    /// Their product, each layer's heatmap first normalised on its own (pytorch-grad-cam's
    /// `RefineCAM`, [arXiv:2605.14641](https://arxiv.org/abs/2605.14641)): only
    /// what every layer finds survives, which denoises the maps of early layers.
    Product,
}

/// The epsilon of min-max normalisation (pytorch-grad-cam's).
pub(crate) const NORMALIZATION_EPSILON: f32 = 1e-7;

/// Per-map min-max normalisation: `(x - min) / (max - min + 1e-7)` over each `[h, w]` map.
///
/// A flat map becomes all zeros.
///
/// # Shapes
/// - `maps`: `[b, m, h, w]`
/// - returns `[b, m, h, w]`
pub(crate) fn normalize_min_max(maps: Tensor<4>) -> Tensor<4> {
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
pub(crate) fn upsample(maps: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
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
pub(crate) fn finish(raw: Tensor<4>, relu_on: bool, normalization: Normalization) -> Tensor<4> {
    let cam = if relu_on { relu(raw) } else { raw };
    match normalization {
        Normalization::MinMax => normalize_min_max(cam),
        Normalization::Off => cam,
    }
}

/// pytorch-grad-cam's aggregation of the upsampled maps of one or more layers: clip each at 0
/// (only when the ReLU is on), average them (or, [`Fusion::Max`], take their maximum; or,
/// [`Fusion::Product`], normalise each and multiply them), and min-max normalise the result
/// again. The second
/// normalisation runs even for one layer, as in pytorch-grad-cam 1.5.7: bilinear upsampling
/// rarely lands on the exact extremes, and this makes the final map span exactly `[0, 1]`.
///
/// # Shapes
/// - `heatmaps`: `L >= 1` maps of `[b, m, H, W]`
/// - returns `[b, m, H, W]`
///
/// # Panics
/// If `heatmaps` is empty: the explainer always passes one map per explained layer, and a
/// configuration has at least one.
pub(crate) fn combine_layers(
    heatmaps: Vec<Tensor<4>>,
    relu_on: bool,
    normalization: Normalization,
    fusion: Fusion,
) -> Tensor<4> {
    assert!(
        !heatmaps.is_empty(),
        "combine_layers needs at least one layer"
    );
    let stacked = Tensor::stack::<5>(heatmaps, 0); // [L, b, m, H, W]
    let stacked = if relu_on { relu(stacked) } else { stacked };
    let fused = match fusion {
        Fusion::Mean => stacked.mean_dim(0),
        Fusion::Max => stacked.max_dim(0),
        Fusion::Product => {
            let [layers, b, m, height, width] = stacked.dims();
            let each = match normalization {
                Normalization::MinMax => {
                    normalize_min_max(stacked.reshape([layers * b, m, height, width]))
                        .reshape([layers, b, m, height, width])
                }
                Normalization::Off => stacked,
            }; // [L, b, m, H, W]
            each.prod_dim(0)
        }
    }
    .squeeze_dim::<4>(0); // [b, m, H, W]
    match normalization {
        Normalization::MinMax => normalize_min_max(fused),
        Normalization::Off => fused,
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
        let on = values(finish(raw.clone(), true, Normalization::Off));
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
        let one = values(combine_layers(
            vec![a.clone()],
            true,
            Normalization::MinMax,
            Fusion::Mean,
        ));
        for (g, e) in one.iter().zip([0.0, 0.25, 1.0]) {
            assert!((g - e).abs() < 1e-6, "{one:?}");
        }
        let two = values(combine_layers(
            vec![a.clone(), b.clone()],
            true,
            Normalization::Off,
            Fusion::Mean,
        ));
        for (g, e) in two.iter().zip([0.05, 0.65, 0.95]) {
            assert!((g - e).abs() < 1e-6, "{two:?}");
        }
        // Without the ReLU nothing is clipped.
        let signed = values(combine_layers(
            vec![a.clone(), b.clone()],
            false,
            Normalization::Off,
            Fusion::Mean,
        ));
        assert!((signed[0] - (-0.45)).abs() < 1e-6, "{signed:?}");
        // The maximum instead: clipped, [0.1, 1.0, 1.0]; unclipped the same here.
        for relu in [true, false] {
            let max = values(combine_layers(
                vec![a.clone(), b.clone()],
                relu,
                Normalization::Off,
                Fusion::Max,
            ));
            assert_eq!(max, vec![0.1, 1.0, 1.0], "relu {relu}");
        }
        // The product of each normalised: a -> [0, 0.25, 1], b (clipped) -> [0, 1, 1].
        let product = values(combine_layers(
            vec![a.clone(), b.clone()],
            true,
            Normalization::MinMax,
            Fusion::Product,
        ));
        for (g, e) in product.iter().zip([0.0, 0.25, 1.0]) {
            assert!((g - e).abs() < 1e-6, "{product:?}");
        }
        // And renormalised: (x - 0.1) / (0.9 + 1e-7).
        let max = values(combine_layers(
            vec![a, b],
            true,
            Normalization::MinMax,
            Fusion::Max,
        ));
        for (g, e) in max.iter().zip([0.0, 1.0, 1.0]) {
            assert!((g - e).abs() < 1e-6, "{max:?}");
        }
    }
}
