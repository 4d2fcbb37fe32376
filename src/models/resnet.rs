//! ResNet-18/34/50/101 in torchvision's layout: parameter names match torchvision's
//! `state_dict`, so a user's own `.pth` or safetensors export loads in one call.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::fold::fold;
use super::layers::conv_bn_probed;
use crate::image::{ChannelOrder, Preprocess, Resize};
use crate::model::GradCam;
use crate::probe::Probe;

fn conv(i: usize, o: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([i, o], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

fn bn(channels: usize, device: &Device) -> Option<BatchNorm> {
    Some(BatchNormConfig::new(channels).init(device))
}

/// The 1x1 projection of a block's shortcut (torchvision's `downsample.0` and `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1x1 strided convolution.
    pub conv: Conv2d,
    /// Its BatchNorm (`None` once folded into `conv`).
    pub bn: Option<BatchNorm>,
}

/// A basic block (ResNet-18/34: two 3x3) or a bottleneck (ResNet-50/101: 1x1, 3x3, 1x1).
#[derive(Module, Debug)]
pub struct Block {
    /// First convolution.
    pub conv1: Conv2d,
    /// First BatchNorm (`None` once folded into `conv1`, as for every BatchNorm here).
    pub bn1: Option<BatchNorm>,
    /// Second convolution (3x3, carries the stride).
    pub conv2: Conv2d,
    /// Second BatchNorm.
    pub bn2: Option<BatchNorm>,
    /// Third convolution (bottlenecks only).
    pub conv3: Option<Conv2d>,
    /// Third BatchNorm (bottlenecks only).
    pub bn3: Option<BatchNorm>,
    /// Shortcut projection where the shape changes.
    pub downsample: Option<Downsample>,
}

impl Block {
    fn basic(i: usize, o: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: conv(i, o, 3, stride, device),
            bn1: bn(o, device),
            conv2: conv(o, o, 3, 1, device),
            bn2: bn(o, device),
            conv3: None,
            bn3: None,
            downsample: (stride != 1 || i != o).then(|| Downsample {
                conv: conv(i, o, 1, stride, device),
                bn: bn(o, device),
            }),
        }
    }

    fn bottleneck(i: usize, width: usize, stride: usize, device: &Device) -> Self {
        let o = width * 4;
        Self {
            conv1: conv(i, width, 1, 1, device),
            bn1: bn(width, device),
            conv2: conv(width, width, 3, stride, device),
            bn2: bn(width, device),
            conv3: Some(conv(width, o, 1, 1, device)),
            bn3: bn(o, device),
            downsample: (stride != 1 || i != o).then(|| Downsample {
                conv: conv(i, o, 1, stride, device),
                bn: bn(o, device),
            }),
        }
    }

    /// # Shapes
    /// - `x`: `[n, i, h, w]`
    /// - returns `[n, o, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_probed(x, &mut Probe::passthrough())
    }

    /// [`Block::forward`] with its ReLUs (guided in guided backpropagation) and its
    /// convolutions' biases (FullGrad) through `probe`.
    ///
    /// # Shapes
    /// As [`Block::forward`].
    pub fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe<'_>) -> Tensor<4> {
        let shortcut = match &self.downsample {
            Some(d) => conv_bn_probed(probe, "downsample", &d.conv, d.bn.as_ref(), x.clone()),
            None => x.clone(),
        };
        let h = conv_bn_probed(probe, "conv1", &self.conv1, self.bn1.as_ref(), x);
        let h = probe.relu(h);
        let h = conv_bn_probed(probe, "conv2", &self.conv2, self.bn2.as_ref(), h);
        let h = match &self.conv3 {
            Some(conv3) => {
                let h = probe.relu(h);
                conv_bn_probed(probe, "conv3", conv3, self.bn3.as_ref(), h)
            }
            None => h,
        };
        probe.relu(h + shortcut)
    }

    fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold(self.conv1, self.bn1);
        let (conv2, bn2) = fold(self.conv2, self.bn2);
        let (conv3, bn3) = match self.conv3 {
            Some(conv3) => {
                let (conv3, bn3) = fold(conv3, self.bn3);
                (Some(conv3), bn3)
            }
            None => (None, self.bn3),
        };
        let downsample = self.downsample.map(|d| {
            let (conv, bn) = fold(d.conv, d.bn);
            Downsample { conv, bn }
        });
        Self {
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            bn3,
            downsample,
        }
    }
}

/// A torchvision ResNet.
///
/// Explainable layers: `stem` (after the max-pool), `layer1` ... `layer4` (the outputs of the
/// stages; `layer4` is the usual Grad-CAM layer).
#[derive(Module, Debug)]
pub struct ResNet {
    /// 7x7 stride-2 stem convolution.
    pub conv1: Conv2d,
    /// Stem BatchNorm (`None` once folded into `conv1`).
    pub bn1: Option<BatchNorm>,
    /// Stage 1.
    pub layer1: Vec<Block>,
    /// Stage 2.
    pub layer2: Vec<Block>,
    /// Stage 3.
    pub layer3: Vec<Block>,
    /// Stage 4.
    pub layer4: Vec<Block>,
    /// The classifier.
    pub fc: Linear,
    pool: MaxPool2d,
}

impl ResNet {
    fn build(depths: [usize; 4], bottleneck: bool, classes: usize, device: &Device) -> Self {
        let expansion = if bottleneck { 4 } else { 1 };
        let mut channels = 64;
        let mut stage = |width: usize, depth: usize, stride: usize| -> Vec<Block> {
            (0..depth)
                .map(|d| {
                    let stride = if d == 0 { stride } else { 1 };
                    let block = if bottleneck {
                        Block::bottleneck(channels, width, stride, device)
                    } else {
                        Block::basic(channels, width, stride, device)
                    };
                    channels = width * expansion;
                    block
                })
                .collect()
        };
        let layer1 = stage(64, depths[0], 1);
        let layer2 = stage(128, depths[1], 2);
        let layer3 = stage(256, depths[2], 2);
        let layer4 = stage(512, depths[3], 2);
        Self {
            conv1: conv(3, 64, 7, 2, device),
            bn1: bn(64, device),
            layer1,
            layer2,
            layer3,
            layer4,
            fc: LinearConfig::new(512 * expansion, classes).init(device),
            pool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
        }
    }

    /// ResNet-18 (basic blocks, [2, 2, 2, 2]).
    pub fn resnet18(classes: usize, device: &Device) -> Self {
        Self::build([2, 2, 2, 2], false, classes, device)
    }

    /// ResNet-34 (basic blocks, [3, 4, 6, 3]).
    pub fn resnet34(classes: usize, device: &Device) -> Self {
        Self::build([3, 4, 6, 3], false, classes, device)
    }

    /// ResNet-50 (bottlenecks, [3, 4, 6, 3]).
    pub fn resnet50(classes: usize, device: &Device) -> Self {
        Self::build([3, 4, 6, 3], true, classes, device)
    }

    /// ResNet-101 (bottlenecks, [3, 4, 23, 3]).
    pub fn resnet101(classes: usize, device: &Device) -> Self {
        Self::build([3, 4, 23, 3], true, classes, device)
    }

    /// Every BatchNorm folded into the convolution before it: the same logits (up to float
    /// rounding) from one pass fewer over each activation. For explanation and inference, after
    /// the weights are loaded; a folded model has no BatchNorm left to train or to load into.
    ///
    /// Folding uses the running statistics, as [`Module::valid`] does: call it on a model whose
    /// statistics are final.
    pub fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold(self.conv1, self.bn1);
        let stage = |blocks: Vec<Block>| blocks.into_iter().map(Block::fold_batchnorm).collect();
        Self {
            conv1,
            bn1,
            layer1: stage(self.layer1),
            layer2: stage(self.layer2),
            layer3: stage(self.layer3),
            layer4: stage(self.layer4),
            fc: self.fc,
            pool: self.pool,
        }
    }

    /// torchvision's ImageNet preprocessing: 224x224 RGB, ImageNet mean and std on `[0, 1]`.
    pub fn preprocess() -> Preprocess {
        Preprocess {
            size: [224, 224],
            resize: Resize::Bilinear,
            order: ChannelOrder::Rgb,
            scale: 1.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    /// The logits.
    ///
    /// # Shapes
    /// - `x`: `[n, 3, h, w]`
    /// - returns `[n, classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_probed(x, &mut Probe::passthrough())
    }
}

impl GradCam for ResNet {
    fn layers(&self) -> Vec<String> {
        ["stem", "layer1", "layer2", "layer3", "layer4"]
            .map(String::from)
            .to_vec()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = conv_bn_probed(probe, "conv1", &self.conv1, self.bn1.as_ref(), x);
        let x = probe.relu(x); // [n, 64, h/2, w/2]
        let mut x = probe.layer("stem", self.pool.forward(x)); // [n, 64, h/4, w/4]
        for (name, stage) in [
            ("layer1", &self.layer1),
            ("layer2", &self.layer2),
            ("layer3", &self.layer3),
            ("layer4", &self.layer4),
        ] {
            for block in stage {
                x = block.forward_probed(x, probe);
            }
            x = probe.layer(name, x);
        }
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, classes]
    }

    /// A global average pool and `fc` follow `layer4`.
    fn affine_after(&self, layer: &str) -> bool {
        layer == "layer4"
    }

    fn input_shape(&self) -> [Option<usize>; 3] {
        [Some(3), None, None]
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::models::fold::tests::nontrivial_bn;

    /// A BatchNorm with non-trivial statistics over `conv`'s output channels.
    fn randomized(conv: &Conv2d, device: &Device) -> Option<BatchNorm> {
        Some(nontrivial_bn(conv.weight.dims()[0], device))
    }

    /// ResNet without its declaration that the logits are affine in `layer4`.
    #[derive(Module, Debug)]
    struct Undeclared {
        inner: ResNet,
    }

    impl GradCam for Undeclared {
        fn layers(&self) -> Vec<String> {
            self.inner.layers()
        }

        fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
            self.inner.forward_probed(x, probe)
        }
    }

    #[test]
    fn the_logits_are_affine_in_layer4_as_declared() {
        // ShapleyCAM's J A from two forwards (the declaration) and from one backward row per
        // class (without it) give the same weights: both are exact but for float32 rounding of
        // the pool's and fc's 512-term sums, at most 512 * 2^-24 = 3.1e-5 of their terms'
        // magnitudes, so 1e-4 of the weights' scale.
        let device = Device::flex();
        device.seed(11);
        let model = ResNet::resnet18(10, &device);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Default, &device);
        let weights = |net: &dyn Fn(crate::ExplainerConfig) -> crate::Explanation| -> Vec<f32> {
            let config = crate::ExplainerConfig::new()
                .with_layer("layer4")
                .with_method(crate::Method::ShapleyCam);
            crate::host::read(net(config).layers[0].weights.clone().unwrap())
        };
        let targets = crate::Targets::every_image([crate::Target::rest(3)]);
        let declared = weights(&|c| {
            c.init(&model)
                .unwrap()
                .explain(x.clone(), &targets)
                .unwrap()
        });
        let plain = Undeclared {
            inner: model.clone(),
        };
        let rows = weights(&|c| {
            c.init(&plain)
                .unwrap()
                .explain(x.clone(), &targets)
                .unwrap()
        });
        let scale = rows.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let apart = declared
            .iter()
            .zip(&rows)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(apart <= 1e-4 * scale, "{apart:e} of {scale:e}");
        // The Hessian term is there: Grad-CAM's weights for the same score are further.
        let grad_cam = crate::host::read(
            crate::ExplainerConfig::new()
                .with_layer("layer4")
                .init(&model)
                .unwrap()
                .explain(x.clone(), &targets)
                .unwrap()
                .layers[0]
                .weights
                .clone()
                .unwrap(),
        );
        let moved = grad_cam
            .iter()
            .zip(&rows)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(moved > 1e-4 * scale, "{moved:e} of {scale:e}");
    }

    #[test]
    fn folding_every_batchnorm_keeps_the_logits() {
        let device = Device::flex();
        device.seed(5);
        for mut model in [ResNet::resnet18(10, &device), ResNet::resnet50(10, &device)] {
            model.bn1 = randomized(&model.conv1, &device);
            let stages = [
                &mut model.layer1,
                &mut model.layer2,
                &mut model.layer3,
                &mut model.layer4,
            ];
            for block in stages.into_iter().flatten() {
                block.bn1 = randomized(&block.conv1, &device);
                block.bn2 = randomized(&block.conv2, &device);
                if let Some(conv3) = &block.conv3 {
                    block.bn3 = randomized(conv3, &device);
                }
                if let Some(d) = block.downsample.as_mut() {
                    d.bn = randomized(&d.conv, &device);
                }
            }
            let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
            let expected = model.forward(x.clone()); // [2, 10]
            let folded = model.fold_batchnorm();
            let got = folded.forward(x);
            let diff: f32 = (got - expected.clone()).abs().max().into_scalar();
            let size: f32 = expected.abs().max().into_scalar();
            assert!(size > 1e-3, "logits worth comparing: max |y| = {size}");
            assert!(
                diff <= 1e-4 * size,
                "max diff {diff} against max |y| {size}"
            );
        }
    }
}
