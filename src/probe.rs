//! The trait a model implements, and the probe its forward passes activations through.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::capture::{CaptureProbe, Replace};

/// A Burn model that can be explained.
///
/// Implement it on your own model: route the forward through [`CamModel::forward_probed`] and
/// pass the activation of every layer you want to be explainable through [`Probe::layer`], under
/// a stable name. Nothing else changes: no hooks, no global state, nothing to release afterwards.
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig, conv::{Conv2d, Conv2dConfig}};
/// use burn::tensor::{Device, Tensor, activation::relu};
/// use gradcam::{CamModel, Probe};
///
/// #[derive(Module, Debug)]
/// struct Net {
///     conv: Conv2d,
///     fc: Linear,
/// }
///
/// impl CamModel for Net {
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
pub trait CamModel: Module {
    /// The names of the layers the forward passes to [`Probe::layer`], in forward order.
    ///
    /// A configuration that names any other layer is rejected before anything runs.
    fn layers(&self) -> Vec<String>;

    /// The forward pass, passing each explainable activation through `probe`.
    ///
    /// Use the tensor that [`Probe::layer`] returns for the rest of the forward: while
    /// explaining, it may be a gradient leaf, hold one row per image and target, or (for
    /// Ablation-CAM) hold other values altogether. Layers after an explained one must treat the
    /// rows independently, as every inference-mode CNN does, and must not combine them with
    /// tensors computed before the layer.
    ///
    /// # Shapes
    /// - `input`: `[n, c, h, w]`
    /// - returns the pre-softmax logits `[n', classes]`, where `n'` is the number of rows of the
    ///   activations the probe returned (`n` times the targets per image while explaining).
    fn forward_probed(&self, input: Tensor<4>, probe: &mut Probe) -> Tensor<2>;

    /// The layer explained when a configuration names none: by default the last of
    /// [`CamModel::layers`]. Override it where another layer is the usual choice.
    fn default_layer(&self) -> Option<String> {
        self.layers().pop()
    }

    /// The `[channels, height, width]` the model accepts; `None` where it takes any size.
    ///
    /// Inputs that do not fit are rejected with
    /// [`GradCamError::InputShape`](crate::GradCamError::InputShape) instead of failing inside
    /// the forward. The default accepts anything.
    fn input_shape(&self) -> [Option<usize>; 3] {
        [None; 3]
    }

    /// The smallest `[height, width]` the model's layers can take (convolutions and pools
    /// without padding shrink the input; below this size their output size would be negative).
    ///
    /// Smaller inputs are rejected with
    /// [`GradCamError::InputTooSmall`](crate::GradCamError::InputTooSmall). The default is one
    /// pixel: override it whenever the model has unpadded convolutions or pools, because Burn's
    /// size arithmetic does not check for that.
    fn min_input_size(&self) -> [usize; 2] {
        [1, 1]
    }
}

/// A layer the model announced, with its activation shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The name passed to [`Probe::layer`].
    pub name: String,
    /// The activation's `[n, k, h, w]`.
    pub shape: [usize; 4],
}

/// What the model's forward passes its activations through.
///
/// Built by the explainer; a model only calls [`Probe::layer`]. [`Probe::passthrough`] gives the
/// one to use for an ordinary forward.
#[derive(Debug)]
pub struct Probe {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Pass,
    Record(Vec<LayerInfo>),
    Capture(CaptureProbe),
    Replace(Box<Replace>),
}

impl Probe {
    /// A probe that returns every activation unchanged: for ordinary inference.
    pub fn passthrough() -> Self {
        Self { mode: Mode::Pass }
    }

    /// A probe that records the name and shape of every layer passed through it.
    pub(crate) fn recorder() -> Self {
        Self {
            mode: Mode::Record(Vec::new()),
        }
    }

    /// A probe that captures the layers of `capture`.
    pub(crate) fn capture(capture: CaptureProbe) -> Self {
        Self {
            mode: Mode::Capture(capture),
        }
    }

    /// A probe that replaces one layer's activation.
    pub(crate) fn replace(replace: Replace) -> Self {
        Self {
            mode: Mode::Replace(Box::new(replace)),
        }
    }

    /// Pass the activation of the layer `name` through the probe; continue the forward with
    /// what it returns.
    ///
    /// Outside an explanation this returns `activation` as it is. While explaining, the
    /// returned tensor may be a gradient leaf cut from everything before it (which ran without
    /// autodiff), repeated once per target when several targets per image are explained in one
    /// call; at later explained layers a zero-valued leaf is added, whose gradient is that
    /// layer's. Ablation-CAM returns copies of the activation with channels zeroed.
    ///
    /// # Shapes
    /// - `activation`: `[n, k, h, w]`
    /// - returns `[n', k, h, w]`: `n' = n` outside an explanation.
    pub fn layer(&mut self, name: &str, activation: Tensor<4>) -> Tensor<4> {
        match &mut self.mode {
            Mode::Pass => activation,
            Mode::Record(layers) => {
                layers.push(LayerInfo {
                    name: name.to_string(),
                    shape: activation.dims(),
                });
                activation
            }
            Mode::Capture(capture) => capture.layer(name, activation),
            Mode::Replace(replace) => replace.layer(name, activation),
        }
    }

    pub(crate) fn into_recorded(self) -> Vec<LayerInfo> {
        match self.mode {
            Mode::Record(layers) => layers,
            _ => Vec::new(),
        }
    }

    pub(crate) fn into_capture(self) -> Option<CaptureProbe> {
        match self.mode {
            Mode::Capture(capture) => Some(capture),
            _ => None,
        }
    }

    pub(crate) fn into_replace(self) -> Option<Replace> {
        match self.mode {
            Mode::Replace(replace) => Some(*replace),
            _ => None,
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn passthrough_returns_the_activation_and_recorder_lists_layers() {
        let device = Device::flex();
        let x = Tensor::<4>::ones([2, 3, 4, 5], &device);
        let mut probe = Probe::passthrough();
        assert_eq!(probe.layer("a", x.clone()).dims(), [2, 3, 4, 5]);
        let mut probe = Probe::recorder();
        let _ = probe.layer("a", x.clone());
        let _ = probe.layer("b", x.slice([0..1, 0..2]));
        let layers = probe.into_recorded();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[1].name, "b");
        assert_eq!(layers[1].shape, [1, 2, 4, 5]);
    }
}
