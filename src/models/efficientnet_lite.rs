//! EfficientNet-Lite0: MBConv blocks with ReLU6, no squeeze-excite, BatchNorm eps 1e-3 and
//! TensorFlow "SAME" padding (the extra row and column go bottom and right).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::fold::fold;
use super::layers::conv_bn_probed;
use crate::image::{ChannelOrder, Preprocess, Resize};
use crate::model::GradCam;
use crate::probe::Probe;

/// Convolution (no bias) and BatchNorm.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution.
    pub conv: Conv2d,
    /// Its BatchNorm (eps 1e-3); `None` once folded into `conv`.
    pub bn: Option<BatchNorm>,
}

impl ConvBn {
    fn new(
        [i, o]: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        device: &Device,
    ) -> Self {
        Self {
            conv: Conv2dConfig::new([i, o], [kernel, kernel])
                .with_stride([stride, stride])
                .with_groups(groups)
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false)
                .init(device),
            bn: Some(BatchNormConfig::new(o).with_epsilon(1e-3).init(device)),
        }
    }

    /// # Shapes
    /// - `x`: `[n, i, h, w]`
    /// - returns `[n, o, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_probed(x, &mut Probe::passthrough(), "conv")
    }

    /// [`ConvBn::forward`] with its biases through `probe` (FullGrad), named `name`.
    ///
    /// # Shapes
    /// As [`ConvBn::forward`].
    pub fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe<'_>, name: &str) -> Tensor<4> {
        conv_bn_probed(probe, name, &self.conv, self.bn.as_ref(), x)
    }

    fn fold_batchnorm(self) -> Self {
        let (conv, bn) = fold(self.conv, self.bn);
        Self { conv, bn }
    }
}

fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

/// Mobile inverted bottleneck: 1x1 expand (unless the ratio is 1), depthwise, 1x1 project, and a
/// residual when the shape is kept.
#[derive(Module, Debug)]
pub struct MbConv {
    /// 1x1 expansion, absent for expand ratio 1.
    pub expand: Option<ConvBn>,
    /// Depthwise convolution.
    pub depthwise: ConvBn,
    /// 1x1 projection (linear: no activation).
    pub project: ConvBn,
    #[module(skip)]
    residual: bool,
}

impl MbConv {
    fn new(
        i: usize,
        o: usize,
        kernel: usize,
        stride: usize,
        ratio: usize,
        device: &Device,
    ) -> Self {
        let hidden = i * ratio;
        Self {
            expand: (ratio != 1).then(|| ConvBn::new([i, hidden], 1, 1, 1, device)),
            depthwise: ConvBn::new([hidden, hidden], kernel, stride, hidden, device),
            project: ConvBn::new([hidden, o], 1, 1, 1, device),
            residual: stride == 1 && i == o,
        }
    }

    /// # Shapes
    /// - `x`: `[n, i, h, w]`
    /// - returns `[n, o, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_probed(x, &mut Probe::passthrough())
    }

    /// [`MbConv::forward`] with its convolutions' biases through `probe` (FullGrad).
    ///
    /// # Shapes
    /// As [`MbConv::forward`].
    pub fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe<'_>) -> Tensor<4> {
        let h = match &self.expand {
            Some(expand) => relu6(expand.forward_probed(x.clone(), probe, "expand")),
            None => x.clone(),
        };
        let h = relu6(self.depthwise.forward_probed(h, probe, "depthwise"));
        let h = self.project.forward_probed(h, probe, "project");
        if self.residual { h + x } else { h }
    }

    fn fold_batchnorm(self) -> Self {
        Self {
            expand: self.expand.map(ConvBn::fold_batchnorm),
            depthwise: self.depthwise.fold_batchnorm(),
            project: self.project.fold_batchnorm(),
            residual: self.residual,
        }
    }
}

/// The stages of EfficientNet-Lite0: (repeats, kernel, stride, expand ratio, input, output).
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// EfficientNet-Lite0 with 1000 ImageNet classes.
///
/// Explainable layers: `stem`, `blocks.0` ... `blocks.15`, and `head` (7x7x1280 after its
/// ReLU6, the usual Grad-CAM layer).
#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    /// 3x3 stride-2 stem.
    pub stem: ConvBn,
    /// The 16 MBConv blocks.
    pub blocks: Vec<MbConv>,
    /// 1x1 head convolution to 1280 channels.
    pub head: ConvBn,
    /// The classifier, `[1280, 1000]`.
    pub fc: Linear,
}

impl EfficientNetLite0 {
    /// The input size.
    pub const INPUT_SIZE: usize = 224;

    /// An untrained network on `device`; load weights with
    /// [`load_weights`](crate::models::load_weights).
    pub fn new(device: &Device) -> Self {
        let mut blocks = Vec::new();
        for (repeats, kernel, stride, ratio, i, o) in STAGES {
            for r in 0..repeats {
                let (i, stride) = if r == 0 { (i, stride) } else { (o, 1) };
                blocks.push(MbConv::new(i, o, kernel, stride, ratio, device));
            }
        }
        Self {
            stem: ConvBn::new([3, 32], 3, 2, 1, device),
            blocks,
            head: ConvBn::new([320, 1280], 1, 1, 1, device),
            fc: LinearConfig::new(1280, 1000).init(device),
        }
    }

    /// Every BatchNorm folded into the convolution before it: the same logits (up to float
    /// rounding) from one pass fewer over each activation. For explanation and inference, after
    /// [`load_weights`](crate::models::load_weights); a folded model has no BatchNorm left to
    /// train or to load into.
    pub fn fold_batchnorm(self) -> Self {
        Self {
            stem: self.stem.fold_batchnorm(),
            blocks: self
                .blocks
                .into_iter()
                .map(MbConv::fold_batchnorm)
                .collect(),
            head: self.head.fold_batchnorm(),
            fc: self.fc,
        }
    }

    /// The preprocessing the weights expect: 224x224 RGB, `(p - 127) / 128` on 0..255 pixels.
    pub fn preprocess() -> Preprocess {
        Preprocess {
            size: [Self::INPUT_SIZE, Self::INPUT_SIZE],
            resize: Resize::Bilinear,
            order: ChannelOrder::Rgb,
            scale: 255.0,
            mean: [127.0; 3],
            std: [128.0; 3],
        }
    }

    /// The logits.
    ///
    /// # Shapes
    /// - `x`: `[n, 3, 224, 224]`
    /// - returns `[n, 1000]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_probed(x, &mut Probe::passthrough())
    }
}

impl GradCam for EfficientNetLite0 {
    fn layers(&self) -> Vec<String> {
        let mut layers = vec!["stem".to_string()];
        layers.extend((0..self.blocks.len()).map(|i| format!("blocks.{i}")));
        layers.push("head".to_string());
        layers
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = relu6(self.stem.forward_probed(x, probe, "stem"));
        let mut x = probe.layer("stem", x); // [n, 32, 112, 112]
        for (i, block) in self.blocks.iter().enumerate() {
            let y = block.forward_probed(x, probe);
            x = probe.layer(&format!("blocks.{i}"), y);
        }
        let x = relu6(self.head.forward_probed(x, probe, "head"));
        let x = probe.layer("head", x); // [n, 1280, 7, 7]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, 1000]
    }

    /// A global average pool and `fc` follow `head`.
    fn affine_after(&self, layer: &str) -> bool {
        layer == "head"
    }

    fn input_shape(&self) -> [Option<usize>; 3] {
        [Some(3), None, None]
    }
}
