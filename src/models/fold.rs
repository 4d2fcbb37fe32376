//! BatchNorm folded into the convolution before it.
//!
//! In validation mode a BatchNorm is an affine map per channel, `y = (x - mean) * s + beta` with
//! `s = gamma / sqrt(var + eps)`, so a convolution followed by it is one convolution with weights
//! `w * s` (per output channel) and bias `(b - mean) * s + beta`. Folding removes a full pass over
//! every activation (and its backward) from each call; the result equals the unfolded model up to
//! float rounding.

use burn::module::Param;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// `conv` then `bn` (in validation mode) as one convolution.
fn fold_into_conv(mut conv: Conv2d, bn: &BatchNorm) -> Conv2d {
    let mean = bn.running_mean.value(); // [o]
    let var = bn.running_var.value(); // [o]
    let scale = bn.gamma.val() / (var + bn.epsilon).sqrt(); // [o]
    let o = scale.dims()[0];
    let bias = match conv.bias.take() {
        Some(b) => b.val(),
        None => Tensor::zeros([o], &scale.device()),
    }; // [o]
    let shift = (bias - mean) * scale.clone() + bn.beta.val(); // [o]
    conv.weight = conv.weight.map(|w| w * scale.reshape([o, 1, 1, 1])); // [o, i / groups, kh, kw]
    conv.bias = Some(Param::from_tensor(shift));
    conv
}

/// Folds `bn` into `conv` where it is still there.
pub(crate) fn fold(conv: Conv2d, bn: Option<BatchNorm>) -> (Conv2d, Option<BatchNorm>) {
    match bn {
        Some(bn) => (fold_into_conv(conv, &bn), None),
        None => (conv, None),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use burn::module::Module;
    use burn::module::RunningState;
    use burn::nn::BatchNormConfig;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;
    use crate::models::layers::conv_bn_probed;
    use crate::probe::Probe;

    /// A BatchNorm (eps 1e-3) with running statistics and affine parameters away from the
    /// identity, moderate enough to stack dozens deep.
    pub(crate) fn nontrivial_bn(channels: usize, device: &Device) -> BatchNorm {
        let mut bn = BatchNormConfig::new(channels)
            .with_epsilon(1e-3)
            .init(device);
        let random = |lo: f64, hi: f64| {
            Tensor::<1>::random([channels], Distribution::Uniform(lo, hi), device)
        };
        bn.gamma = Param::from_tensor(random(0.5, 1.5));
        bn.beta = Param::from_tensor(random(-0.5, 0.5));
        bn.running_mean = RunningState::new(random(-1.0, 1.0));
        bn.running_var = RunningState::new(random(0.5, 2.0));
        bn.valid()
    }

    #[test]
    fn folded_conv_equals_conv_then_batchnorm() {
        let device = Device::flex();
        device.seed(3);
        // With and without a conv bias, dense and depthwise, odd sizes and a stride.
        for (groups, bias, stride) in [(1, false, 1), (1, true, 2), (6, false, 2), (6, true, 1)] {
            let conv = Conv2dConfig::new([6, 6], [3, 3])
                .with_groups(groups)
                .with_stride([stride, stride])
                .with_bias(bias)
                .init(&device);
            let bn = nontrivial_bn(6, &device);
            let x = Tensor::<4>::random([2, 6, 9, 7], Distribution::Normal(0.0, 1.0), &device);
            let expected =
                conv_bn_probed(&mut Probe::passthrough(), "c", &conv, Some(&bn), x.clone());
            let (folded, rest) = fold(conv, Some(bn));
            assert!(rest.is_none());
            let got = conv_bn_probed(&mut Probe::passthrough(), "c", &folded, None, x);
            let diff: f32 = (got - expected.clone()).abs().max().into_scalar();
            let size: f32 = expected.abs().max().into_scalar();
            assert!(size > 1.0, "a map worth comparing: max |y| = {size}");
            assert!(
                diff < 1e-4 * size,
                "groups {groups}, bias {bias}: max diff {diff}"
            );
        }
    }
}
