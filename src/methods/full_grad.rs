//! FullGrad: Srinivas and Fleuret, "Full-Gradient Representation for Neural Network
//! Visualization", NeurIPS 2019 ([arXiv:1905.00780](https://arxiv.org/abs/1905.00780)), as
//! pytorch-grad-cam 1.5.7's `FullGrad`.

use burn::tensor::Tensor;

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::Result;
use crate::postprocess::{normalize_min_max, upsample};

/// FullGrad: the input's gradient times the input, and every bias's gradient times the bias,
/// each channel's map normalised on its own, summed at the input's resolution,
///
/// ```text
/// map = sum_c norm(|x_c (.) dy/dx_c|) + sum_l sum_k up(norm(|b_lk dy/dz_lk|))
/// norm(M) = (M - min M) / (1e-7 + max(M - min M))     per image, target and channel
/// ```
///
/// over the outputs `z_l` the model routes through [`Probe::bias`](crate::Probe::bias) with
/// their biases `b_l` (a convolution's, or a BatchNorm's effective
/// `beta - mean gamma / sqrt(var + eps)`: [`batch_norm_bias`](crate::batch_norm_bias)). gradcam-onnx's generated models route
/// every convolution with a bias, the bundled models every convolution and BatchNorm; a model
/// that routes none gets [`ModelError::NoBiases`](crate::ModelError::NoBiases). As in
/// pytorch-grad-cam, the explained layer plays no part (its `target_layers` are ignored too) and
/// the map is at the input's resolution; eigen smoothing leaves it as it is. One difference
/// follows from the model rather than the method: a BatchNorm folded into the convolution before
/// it (PyTorch's ONNX export folds them, our ResNets too) is one biased output, where
/// pytorch-grad-cam on the unfolded PyTorch model counts the convolution's bias and the
/// BatchNorm's as two; the maps agree wherever that convolution has no bias of its own
/// (torchvision's ResNets, MobileNets, EfficientNets). One forward and one backward of the whole
/// model (the input repeated once per target), after the unperturbed forward.
///
/// # Shapes
/// - input gradients `[n, m, c, H, W]`, each bias's gradients `[n, m, k, h, w]`; returns a map
///   `[n, m, H, W]`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FullGrad;

impl CamMethod for FullGrad {
    fn name(&self) -> &'static str {
        "fullgrad"
    }

    /// The unperturbed capture needs none: FullGrad runs its own backward.
    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, _: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        let full = model.bias_gradients()?;
        let x = model.input().unsqueeze_dim::<5>(1); // [n, 1, c, H, W]
        let [n, m, _, height, width] = full.input.dims();
        let input = (full.input * x).abs(); // [n, m, c, H, W]
        let mut map = channels_normalised(input).reshape([n, m, height, width]);
        for biased in full.layers {
            let [_, _, k, h, w] = biased.gradients.dims();
            let bias = biased.bias.reshape([1, 1, k, 1, 1]);
            let term = (biased.gradients * bias).abs(); // [n, m, k, h, w]
            // Upsampling is linear: the channels' sum upsampled is the sum of each upsampled.
            let term = channels_normalised(term).reshape([n, m, h, w]);
            map = map + upsample(term, [height, width]); // [n, m, H, W]
        }
        Ok(CamMap::Map(map))
    }
}

/// The sum over the channels of each `[h, w]` map min-max normalised
/// ([`normalize_min_max`], pytorch-grad-cam's `scale_cam_image`).
///
/// # Shapes
/// - `t`: `[n, m, k, h, w]`
/// - returns `[n, m, 1, h, w]`
fn channels_normalised(t: Tensor<5>) -> Tensor<5> {
    let [n, m, k, h, w] = t.dims();
    normalize_min_max(t.reshape([n, m * k, h, w]))
        .reshape([n, m, k, h, w])
        .sum_dim(2)
}
