//! SqueezeNet 1.1 as in keras-squeezenet (DeepScale's weights): 227x227 BGR input, max-pools that
//! round down.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::layers::{conv_biased, pointwise};
use crate::image::{ChannelOrder, Preprocess, Resize};
use crate::model::GradCam;
use crate::probe::Probe;

/// A fire module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated (1x1 first).
#[derive(Module, Debug)]
pub struct Fire {
    /// 1x1 squeeze convolution.
    pub squeeze: Conv2d,
    /// 1x1 expand convolution.
    pub expand1x1: Conv2d,
    /// 3x3 expand convolution, padded to keep the size.
    pub expand3x3: Conv2d,
}

impl Fire {
    fn new(input: usize, squeeze: usize, expand: usize, device: &Device) -> Self {
        Self {
            squeeze: Conv2dConfig::new([input, squeeze], [1, 1]).init(device),
            expand1x1: Conv2dConfig::new([squeeze, expand], [1, 1]).init(device),
            expand3x3: Conv2dConfig::new([squeeze, expand], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[n, input, h, w]`
    /// - returns `[n, 2 * expand, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_probed(x, &mut Probe::passthrough())
    }

    /// [`Fire::forward`] with its ReLUs (guided in guided backpropagation) and its convolutions'
    /// biases (FullGrad) through `probe`.
    ///
    /// # Shapes
    /// As [`Fire::forward`].
    pub fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe<'_>) -> Tensor<4> {
        let s = conv_biased(probe, "squeeze", &self.squeeze, self.squeeze.forward(x));
        let s = probe.relu(s); // [n, squeeze, h, w]
        let left = self.expand1x1.forward(s.clone());
        let left = conv_biased(probe, "expand1x1", &self.expand1x1, left);
        let right = self.expand3x3.forward(s);
        let right = conv_biased(probe, "expand3x3", &self.expand3x3, right);
        let (left, right) = (probe.relu(left), probe.relu(right));
        Tensor::cat(vec![left, right], 1)
    }
}

/// SqueezeNet 1.1 with 1000 ImageNet classes.
///
/// Explainable layers: `conv1`, `fire2` ... `fire9` (fire9: 13x13x512, the usual Grad-CAM
/// layer and the default) and `conv10` (the class maps, after their ReLU).
#[derive(Module, Debug)]
pub struct SqueezeNet {
    /// 3x3 stride-2 stem.
    pub conv1: Conv2d,
    /// Fire modules 2 to 9.
    pub fire2: Fire,
    /// Fire 3.
    pub fire3: Fire,
    /// Fire 4.
    pub fire4: Fire,
    /// Fire 5.
    pub fire5: Fire,
    /// Fire 6.
    pub fire6: Fire,
    /// Fire 7.
    pub fire7: Fire,
    /// Fire 8.
    pub fire8: Fire,
    /// Fire 9.
    pub fire9: Fire,
    /// 1x1 classifier convolution.
    pub conv10: Conv2d,
    pool: MaxPool2d,
}

impl SqueezeNet {
    /// The input size.
    pub const INPUT_SIZE: usize = 227;

    /// An untrained network on `device`; load weights with
    /// [`load_weights`](crate::models::load_weights).
    pub fn new(device: &Device) -> Self {
        Self {
            conv1: Conv2dConfig::new([3, 64], [3, 3])
                .with_stride([2, 2])
                .init(device),
            fire2: Fire::new(64, 16, 64, device),
            fire3: Fire::new(128, 16, 64, device),
            fire4: Fire::new(128, 32, 128, device),
            fire5: Fire::new(256, 32, 128, device),
            fire6: Fire::new(256, 48, 192, device),
            fire7: Fire::new(384, 48, 192, device),
            fire8: Fire::new(384, 64, 256, device),
            fire9: Fire::new(512, 64, 256, device),
            conv10: Conv2dConfig::new([512, 1000], [1, 1]).init(device),
            pool: MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init(),
        }
    }

    /// The preprocessing the weights expect: 227x227, BGR, 0..255 minus the Caffe means.
    pub fn preprocess() -> Preprocess {
        Preprocess {
            size: [Self::INPUT_SIZE, Self::INPUT_SIZE],
            resize: Resize::Bilinear,
            order: ChannelOrder::Bgr,
            scale: 255.0,
            mean: [103.939, 116.779, 123.68],
            std: [1.0, 1.0, 1.0],
        }
    }

    /// The logits.
    ///
    /// # Shapes
    /// - `x`: `[n, 3, 227, 227]`
    /// - returns `[n, 1000]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_probed(x, &mut Probe::passthrough())
    }
}

impl GradCam for SqueezeNet {
    fn layers(&self) -> Vec<String> {
        [
            "conv1", "fire2", "fire3", "fire4", "fire5", "fire6", "fire7", "fire8", "fire9",
            "conv10",
        ]
        .map(String::from)
        .to_vec()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = conv_biased(probe, "conv1", &self.conv1, self.conv1.forward(x));
        let x = probe.relu(x);
        let x = probe.layer("conv1", x); // [n, 64, 113, 113]
        let mut x = self.pool.forward(x); // [n, 64, 56, 56]
        // The Fire modules, each an explainable layer; a max-pool after fire3 and fire5:
        // [n, 128, 56, 56] -> [n, 256, 27, 27] -> [n, 384 .. 512, 13, 13].
        for (name, fire, pool) in [
            ("fire2", &self.fire2, false),
            ("fire3", &self.fire3, true),
            ("fire4", &self.fire4, false),
            ("fire5", &self.fire5, true),
            ("fire6", &self.fire6, false),
            ("fire7", &self.fire7, false),
            ("fire8", &self.fire8, false),
            ("fire9", &self.fire9, false),
        ] {
            let y = fire.forward_probed(x, probe);
            x = probe.layer(name, y);
            if pool {
                x = self.pool.forward(x);
            }
        }
        let x = conv_biased(probe, "conv10", &self.conv10, pointwise(&self.conv10, x));
        let x = probe.relu(x);
        let x = probe.layer("conv10", x); // [n, 1000, 13, 13]
        x.mean_dims(&[2, 3]).flatten::<2>(1, 3) // [n, 1000]
    }

    /// `fire9`, the last feature layer (13x13x512); `conv10` is already the class maps.
    fn default_layer(&self) -> Option<String> {
        Some("fire9".to_string())
    }

    fn input_shape(&self) -> [Option<usize>; 3] {
        [Some(3), None, None]
    }

    /// 31 x 31: the stride-2 unpadded 3x3 stem and three unpadded 3x3/2 max-pools need
    /// `((((s - 3) / 2 + 1 - 3) / 2 + 1 - 3) / 2 + 1 - 3) / 2 + 1 >= 1`.
    fn min_input_size(&self) -> [usize; 2] {
        [31, 31]
    }
}
