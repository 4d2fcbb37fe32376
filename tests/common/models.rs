//! The test models: a small CNN with BatchNorm and its absolute twin, a linear head.

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use gradcam::methods::{CamMethod, Method};
use gradcam::{GradCam, Probe, batch_norm_bias};

use super::{gamma, host, tensor};

/// Every built-in method these networks can run: all but those that explain a transformer's
/// attention (LeGrad), which none of them has (LeGrad is checked on a ViT in tests/vit.rs).
pub fn convolutional() -> Vec<Method> {
    Method::ALL
        .into_iter()
        .filter(|m| !m.reads_attention())
        .collect()
}

pub fn conv(seed: u64, [i, o]: [usize; 2], k: usize, stride: usize, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([i, o], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device);
    let scale = (2.0 / (i * k * k) as f32).sqrt() * 1.5;
    c.weight = Param::from_tensor(tensor(seed, [o, i, k, k], scale, device));
    c.bias = Some(Param::from_tensor(tensor(seed + 1, [o], 0.1, device)));
    c
}

pub fn linear(seed: u64, [i, o]: [usize; 2], device: &Device) -> Linear {
    let mut l = LinearConfig::new(i, o).init(device);
    l.weight = Param::from_tensor(tensor(seed, [i, o], 1.0, device));
    l.bias = Some(Param::from_tensor(tensor(seed + 1, [o], 0.5, device)));
    l
}

/// conv-BN-ReLU, two more conv-ReLU stages, global average pool, linear: 5 classes.
#[derive(Module, Debug)]
pub struct TinyNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub conv3: Conv2d,
    pub fc: Linear,
}

impl TinyNet {
    pub fn new(device: &Device) -> Self {
        let mut bn1 = BatchNormConfig::new(8).init(device);
        bn1.gamma = Param::from_tensor(tensor(11, [8], 0.5, device) + 1.0);
        bn1.beta = Param::from_tensor(tensor(12, [8], 0.3, device));
        bn1.running_mean = RunningState::new(tensor(13, [8], 0.5, device));
        bn1.running_var = RunningState::new(tensor(14, [8], 0.4, device) + 1.0);
        Self {
            conv1: conv(1, [3, 8], 3, 1, device),
            bn1,
            conv2: conv(3, [8, 12], 3, 2, device),
            conv3: conv(5, [12, 16], 3, 1, device),
            fc: linear(7, [16, 5], device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_probed(x, &mut Probe::passthrough())
    }

    /// The inputs of the three ReLUs.
    pub fn pre_activations(&self, x: Tensor<4>) -> [Tensor<4>; 3] {
        let p1 = self.bn1.forward(self.conv1.forward(x));
        let p2 = self.conv2.forward(relu(p1.clone()));
        let p3 = self.conv3.forward(relu(p2.clone()));
        [p1, p2, p3]
    }

    /// The absolute twin: every weight, bias and BatchNorm term replaced by its magnitude. On
    /// `|x|` its activations, gradients and maps bound the sum of the magnitudes of every path
    /// through the network, so a float32 result of this network is within `gamma_N` times the
    /// twin's of the exact one, `N` the operations along a path (Higham, lemma 3.1), as long as
    /// no ReLU input lies within that bound of its kink ([`assert_no_kink`] checks).
    pub fn twin(&self) -> Self {
        let abs = |p: &Param<Tensor<1>>| Param::from_tensor(p.val().abs());
        let abs4 = |p: &Param<Tensor<4>>| Param::from_tensor(p.val().abs());
        let abs2 = |p: &Param<Tensor<2>>| Param::from_tensor(p.val().abs());
        let conv = |c: &Conv2d| {
            let mut t = c.clone();
            t.weight = abs4(&c.weight);
            t.bias = c.bias.as_ref().map(abs);
            t
        };
        // BN(x) = g (x - mu) / s + b is bounded by |g / s| |x| + |g mu / s| + |b|.
        let bn = &self.bn1;
        let s = (bn.running_var.value() + bn.epsilon).sqrt();
        let mut bn1 = bn.clone();
        bn1.gamma = Param::from_tensor(bn.gamma.val().abs());
        bn1.beta = Param::from_tensor(
            bn.beta.val().abs() + (bn.gamma.val() * bn.running_mean.value() / s).abs(),
        );
        bn1.running_mean = RunningState::new(bn.running_mean.value().zeros_like());
        let mut fc = self.fc.clone();
        fc.weight = abs2(&self.fc.weight);
        fc.bias = self.fc.bias.as_ref().map(abs);
        Self {
            conv1: conv(&self.conv1),
            bn1,
            conv2: conv(&self.conv2),
            conv3: conv(&self.conv3),
            fc,
        }
    }

    /// `N` for [`TinyNet::twin`] and Grad-CAM at `layer` of an `h x w` input: the float32
    /// operations along one path of the forward to the layer (fan-in plus one per convolution,
    /// four for BatchNorm: 32, 105, 214 at the three blocks), of the backward from the logit to
    /// the layer (2 through the linear layer and the pooling, plus 144 and 108 through conv3 and
    /// conv2), and of the method (a mean over the layer's `h w` pixels and a sum over its `k`
    /// channels, 4 more each).
    pub fn path_ops(layer: &str, h: usize, w: usize) -> usize {
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let (forward, backward, pixels, k) = match layer {
            "block1" => (32, 2 + 144 + 108, h * w, 8),
            "block2" => (105, 2 + 144, h2 * w2, 12),
            _ => (214, 2, h2 * w2, 16),
        };
        forward + backward + pixels + k + 8
    }
}

impl GradCam for TinyNet {
    fn layers(&self) -> Vec<String> {
        ["block1", "block2", "block3"].map(String::from).to_vec()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        // Every bias through the probe too (FullGrad).
        let bias = |conv: &Conv2d| conv.bias.as_ref().map(|b| b.val());
        let x = probe.bias("conv1", self.conv1.forward(x), || bias(&self.conv1));
        let x = probe.bias("bn1", self.bn1.forward(x), || {
            Some(batch_norm_bias(&self.bn1))
        });
        let x = probe.layer("block1", relu(x)); // [n, 8, h, w]
        let x = probe.bias("conv2", self.conv2.forward(x), || bias(&self.conv2));
        let x = probe.layer("block2", relu(x)); // [n, 12, h/2, w/2]
        let x = probe.bias("conv3", self.conv3.forward(x), || bias(&self.conv3));
        let x = probe.layer("block3", relu(x)); // [n, 16, h/2, w/2]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, 5]
    }

    fn input_shape(&self) -> [Option<usize>; 3] {
        [Some(3), None, None]
    }
}

/// Fail unless every ReLU input of `model` on `x` after `layer` is farther from 0 than `3 gamma_(N_i)` times
/// its twin's (`N_i`: the operations up to ReLU `i`: 32, 105, 214). Each float32 evaluation is
/// within `gamma_(N_i)` of the exact input, so then every evaluation takes the same side of
/// every kink, and the network's derivative is the same piecewise-linear branch for all of them
/// (the bound of [`TinyNet::twin`] needs that).
///
/// Only the ReLUs *after* the explained layer matter (their derivatives enter the gradient;
/// ReLU itself is continuous, so the activations are bounded either way): none for `block3`.
pub fn assert_no_kink(model: &TinyNet, x: Tensor<4>, layer: &str) {
    let after = match layer {
        "block1" => 1,
        "block2" => 2,
        _ => 3,
    };
    let twin = model.twin();
    let exact = model.pre_activations(x.clone());
    let bound = twin.pre_activations(x.abs());
    for (i, ((e, b), n)) in exact
        .into_iter()
        .zip(bound)
        .zip([32, 105, 214])
        .enumerate()
        .skip(after)
    {
        let (e, b) = (host(e), host(b));
        let margin = 3.0 * gamma(n);
        let close = e
            .iter()
            .zip(&b)
            .filter(|(e, b)| (e.abs() as f64) <= margin * **b as f64)
            .count();
        assert_eq!(
            close,
            0,
            "ReLU {i}: {close} of {} inputs within {margin:e} of the kink (relative to the twin); \
             choose another seed",
            e.len()
        );
    }
}

/// The input is the explained layer, followed by global average pooling and a linear layer.
#[derive(Module, Debug)]
pub struct GapLinear {
    pub fc: Linear,
}

impl GradCam for GapLinear {
    fn layers(&self) -> Vec<String> {
        vec!["input".into()]
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("input", x); // [n, k, h, w]
        // A zero bias through the probe, for FullGrad: the gradient after it is constant over
        // each channel, so its normalised term is 0 whatever the bias, and FullGrad's map here is
        // its input term alone (a closed form).
        let [_, k, _, _] = x.dims();
        let device = x.device();
        let x = probe.bias("input", x, || Some(Tensor::zeros([k], &device)));
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, classes]
    }

    /// A global average pool and a linear layer follow the input.
    fn affine_after(&self, layer: &str) -> bool {
        layer == "input"
    }
}

pub fn abs_conv(c: &Conv2d) -> Conv2d {
    let mut t = c.clone();
    t.weight = Param::from_tensor(c.weight.val().abs());
    t.bias = c.bias.as_ref().map(|b| Param::from_tensor(b.val().abs()));
    t
}

pub fn abs_linear(l: &Linear) -> Linear {
    let mut t = l.clone();
    t.weight = Param::from_tensor(l.weight.val().abs());
    t.bias = l.bias.as_ref().map(|b| Param::from_tensor(b.val().abs()));
    t
}
