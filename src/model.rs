//! The trait a model implements to be explained: its forward with a probe, and what it declares
//! about its layers and input.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::probe::Probe;

/// A Burn model that can be explained.
///
/// Implement it on your own model: route the forward through [`GradCam::forward_probed`] and
/// pass the activation of every layer you want to be explainable through [`Probe::layer`], under
/// a stable name. Nothing else changes: no hooks, no global state, nothing to release afterwards.
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig, conv::{Conv2d, Conv2dConfig}};
/// use burn::tensor::{Device, Tensor, activation::relu};
/// use gradcam::{GradCam, Probe};
///
/// #[derive(Module, Debug)]
/// struct Net {
///     conv: Conv2d,
///     fc: Linear,
/// }
///
/// impl GradCam for Net {
///     fn layers(&self) -> Vec<String> {
///         vec!["conv".into()]
///     }
///
///     fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
///         let x = relu(self.conv.forward(x)); // [n, 8, h, w]
///         let x = probe.layer("conv", x);
///         let x = x.mean_dims(&[2, 3]).flatten::<2>(1, 3); // [n, 8]
///         self.fc.forward(x) // [n, classes]
///     }
///
///     // Optional: declare what the first convolution takes, so that a wrong input is an
///     // error before anything runs.
///     fn input_shape(&self) -> [Option<usize>; 3] {
///         [Some(3), None, None]
///     }
///     fn min_input_size(&self) -> [usize; 2] {
///         [3, 3]
///     }
/// }
///
/// impl Net {
///     /// The ordinary forward: the same code with a probe that does nothing.
///     fn forward(&self, x: Tensor<4>) -> Tensor<2> {
///         self.forward_probed(x, &mut Probe::passthrough())
///     }
/// }
///
/// let device = Device::flex();
/// let net = Net {
///     conv: Conv2dConfig::new([3, 8], [3, 3]).init(&device),
///     fc: LinearConfig::new(8, 4).init(&device),
/// };
/// assert_eq!(net.forward(Tensor::zeros([2, 3, 16, 16], &device)).dims(), [2, 4]);
/// ```
pub trait GradCam: Module {
    /// The names of the layers the forward passes to [`Probe::layer`], in forward order.
    ///
    /// A configuration that names any other layer is rejected before anything runs. The
    /// default, no list, leaves them to be found: the explainer records the names the probe
    /// sees in one forward of the first call's first image (an extra forward, once), checks the
    /// configured layers against them then, and explains the last one when none is configured.
    fn layers(&self) -> Vec<String> {
        Vec::new()
    }

    /// The forward pass, passing each explainable activation through `probe`.
    ///
    /// Use the tensor that [`Probe::layer`] (or [`Probe::tokens`] for a transformer's tokens)
    /// returns for the rest of the forward: while explaining, it may be a gradient leaf, hold
    /// one row per image and target, or (for Ablation-CAM) hold other values altogether. Layers
    /// after an explained one must treat the rows independently, as every inference-mode CNN
    /// does, and combine them with a tensor computed before the layer only through
    /// [`Probe::carry`] (a residual connection around the layer).
    ///
    /// # Shapes
    /// - `input`: `[n, c, h, w]`
    /// - returns the pre-softmax logits `[n', classes]`, where `n'` is the number of rows of the
    ///   activations the probe returned (`n` times the targets per image while explaining).
    fn forward_probed(&self, input: Tensor<4>, probe: &mut Probe<'_>) -> Tensor<2>;

    /// The layer explained when a configuration names none: by default the last of
    /// [`GradCam::layers`]. Override it where another layer is the usual choice.
    fn default_layer(&self) -> Option<String> {
        self.layers().pop()
    }

    /// Whether the logits are an affine function of `layer`'s activation: only pooling and
    /// linear layers follow it (ResNet's `layer4`: a global average pool and `fc`). ShapleyCAM
    /// then takes the logits' derivative along the activation, `J A = z(A) - z(0)`, from one
    /// forward of two rows instead of one backward row per class. The default, `false`, is always
    /// right; a wrong `true` is caught by the second difference `z(2A) - 2 z(A) + z(0)` (above
    /// `2^-10` of the logits' scale, the rows per class run instead).
    fn affine_after(&self, layer: &str) -> bool {
        let _ = layer;
        false
    }

    /// The `[channels, height, width]` the model accepts; `None` where it takes any size.
    ///
    /// Inputs that do not fit are rejected with
    /// [`InputError::InputShape`](crate::InputError::InputShape) instead of failing inside
    /// the forward. The default accepts anything.
    fn input_shape(&self) -> [Option<usize>; 3] {
        [None; 3]
    }

    /// The smallest `[height, width]` the model's layers can take (convolutions and pools
    /// without padding shrink the input; below this size their output size would be negative).
    ///
    /// Smaller inputs are rejected with
    /// [`InputError::InputTooSmall`](crate::InputError::InputTooSmall). The default is one
    /// pixel: override it whenever the model has unpadded convolutions or pools, because Burn's
    /// size arithmetic does not check for that.
    fn min_input_size(&self) -> [usize; 2] {
        [1, 1]
    }
}
