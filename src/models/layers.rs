//! Convolution helpers shared by the bundled models.

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use crate::probe::{Probe, batch_norm_bias};

/// A 1x1, stride-1, ungrouped, unpadded convolution as one batched matrix product: the same
/// numbers as `conv.forward(x)`, with a backward that is a matrix product on every backend.
/// burn-ndarray takes a convolution's input gradient through a scalar loop: for SqueezeNet's
/// `conv10`, the layer after `fire9`, that cost 9x the whole forward. On `flex` the general
/// convolution is faster for 1x1 layers *before* the cut (measured: ResNet-50 was 7-11 % slower
/// with every 1x1 layer routed here), so only the layers a backward crosses use it.
///
/// # Shapes
/// - `x`: `[n, i, h, w]`
/// - returns `[n, o, h, w]`
///
/// # Panics
/// If `conv` is not a 1x1, stride-1, ungrouped convolution (a bug in the model, not input).
pub(crate) fn pointwise(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    assert!(
        conv.kernel_size == [1, 1] && conv.stride == [1, 1] && conv.groups == 1,
        "pointwise needs a 1x1, stride-1, ungrouped convolution"
    );
    let [n, i, h, w] = x.dims();
    let [o, ..] = conv.weight.dims();
    let weight = conv.weight.val().reshape([1, o, i]); // [1, o, i]
    let y = weight.matmul(x.reshape([n, i, h * w])); // [n, o, h * w]
    let y = match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, o, 1]),
        None => y,
    };
    y.reshape([n, o, h, w])
}

/// `conv`, then `bn` unless it was folded into `conv`, with their biases through `probe`
/// (FullGrad): the convolution's at its output (after folding, the BatchNorm's with it), an
/// unfolded BatchNorm's at its own, both named `name`.
///
/// # Shapes
/// - `x`: `[n, i, h, w]`
/// - returns `[n, o, h', w']`
pub(crate) fn conv_bn_probed(
    probe: &mut Probe<'_>,
    name: &str,
    conv: &Conv2d,
    bn: Option<&BatchNorm>,
    x: Tensor<4>,
) -> Tensor<4> {
    let x = probe.bias(name, conv.forward(x), || {
        conv.bias.as_ref().map(|b| b.val())
    });
    match bn {
        Some(bn) => probe.bias(name, bn.forward(x), || Some(batch_norm_bias(bn))),
        None => x,
    }
}

/// `output` of `conv` with the convolution's bias through `probe` (FullGrad).
///
/// # Shapes
/// - `output`: `[n, o, h, w]`; returns the same
pub(crate) fn conv_biased(
    probe: &mut Probe<'_>,
    name: &str,
    conv: &Conv2d,
    output: Tensor<4>,
) -> Tensor<4> {
    probe.bias(name, output, || conv.bias.as_ref().map(|b| b.val()))
}

#[cfg(test)]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution};

    use super::*;

    #[test]
    fn pointwise_equals_the_1x1_convolution() {
        let device = Device::flex();
        device.seed(7);
        for bias in [true, false] {
            let conv = Conv2dConfig::new([6, 9], [1, 1])
                .with_bias(bias)
                .init(&device);
            let x = Tensor::<4>::random([3, 6, 7, 5], Distribution::Normal(0.0, 1.0), &device);
            let expected = conv.forward(x.clone());
            let got = pointwise(&conv, x);
            assert_eq!(got.dims(), expected.dims());
            let diff: f32 = (got - expected.clone()).abs().max().into_scalar();
            let size: f32 = expected.abs().max().into_scalar();
            assert!(
                size > 0.1 && diff <= 1e-5 * size,
                "bias {bias}: max diff {diff} of {size}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "1x1, stride-1")]
    fn pointwise_refuses_a_strided_convolution() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([2, 3], [1, 1])
            .with_stride([2, 2])
            .init(&device);
        let _ = pointwise(&conv, Tensor::zeros([1, 2, 4, 4], &device));
    }
}
