//! The probe's bias mode (FullGrad): the whole forward on autodiff, every output routed through
//! [`Probe::bias`](super::Probe::bias) with a zero-valued leaf added (whose gradient is the
//! output's) and its bias kept.

use burn::nn::BatchNorm;
use burn::tensor::Tensor;

/// One biased output of the forward: its name, its per-channel bias and the leaf whose gradient
/// is the output's.
#[derive(Debug)]
pub(crate) struct BiasLeaf {
    pub name: String,
    /// `[k]`, without autodiff.
    pub bias: Tensor<1>,
    /// `[rows, k, h, w]`, a gradient leaf of zeros.
    pub leaf: Tensor<4>,
}

/// `output` with a zero leaf added, recorded with `bias` into `leaves`.
///
/// # Shapes
/// - `output`: `[rows, k, h, w]`; `bias`: `[k]`
/// - returns `[rows, k, h, w]`
pub(crate) fn with_leaf(
    leaves: &mut Vec<BiasLeaf>,
    name: &str,
    output: Tensor<4>,
    bias: Tensor<1>,
) -> Tensor<4> {
    let leaf = super::zero_leaf(&output); // [rows, k, h, w]
    leaves.push(BiasLeaf {
        name: name.to_string(),
        bias: bias.without_autodiff(),
        leaf: leaf.clone(),
    });
    output.autodiff() + leaf
}

/// A BatchNorm's effective bias in inference, `beta - mean gamma / sqrt(var + eps)` (what it adds
/// to each channel after scaling its input): its bias for [`Probe::bias`](super::Probe::bias),
/// as pytorch-grad-cam's FullGrad takes it.
///
/// # Shapes
/// - returns `[k]`
pub fn batch_norm_bias(bn: &BatchNorm) -> Tensor<1> {
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt(); // [k]
    bn.beta.val() - bn.running_mean.value() * scale
}
