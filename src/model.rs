//! The trait a model implements, and the probe its forward passes activations through.

use burn::module::Module;
use burn::tensor::Tensor;

/// A Burn model that Grad-CAM can explain.
///
/// Implement it on your own model: route the forward through [`GradCam::forward_probed`] and pass
/// the activation of every layer you want to be explainable through [`Probe::layer`], under a
/// stable name. Nothing else changes: no hooks, no global state, nothing to release afterwards.
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
    /// A configuration that names any other layer is rejected before anything runs.
    fn layers(&self) -> Vec<String>;

    /// The forward pass, passing each explainable activation through `probe`.
    ///
    /// Use the tensor that [`Probe::layer`] returns for the rest of the forward: while
    /// explaining, it is the gradient leaf (and may hold one row per image and target).
    /// Layers after an explained one must treat the rows independently, as every
    /// inference-mode CNN does.
    ///
    /// # Shapes
    /// - `input`: `[n, c, h, w]`
    /// - returns the pre-softmax logits `[n', classes]`, where `n'` is the number of rows of the
    ///   activations the probe returned (`n` times the targets per image while explaining).
    fn forward_probed(&self, input: Tensor<4>, probe: &mut Probe) -> Tensor<2>;

    /// The layer explained when a configuration names none: by default the last of
    /// [`GradCam::layers`]. Override it where another layer is the usual choice.
    fn default_layer(&self) -> Option<String> {
        self.layers().pop()
    }

    /// The `[channels, height, width]` the model accepts; `None` where it takes any size.
    ///
    /// Inputs that do not fit are rejected with [`GradCamError::InputShape`](crate::GradCamError)
    /// instead of failing inside the forward. The default accepts anything.
    fn input_shape(&self) -> [Option<usize>; 3] {
        [None; 3]
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
    Capture(Capture),
}

/// One captured layer: its activation, and the leaf whose gradient is dY/dA.
#[derive(Debug)]
pub(crate) struct Captured {
    pub name: String,
    /// The activation without autodiff: `[n, k, h, w]` at the cut, `[n * m, k, h, w]` after it.
    pub activation: Tensor<4>,
    /// Whether `activation` already holds one row per image and target.
    pub per_target: bool,
    /// The gradient leaf, `[n * m, k, h, w]`.
    pub leaf: Tensor<4>,
}

#[derive(Debug)]
pub(crate) struct Capture {
    wanted: Vec<String>,
    targets_per_image: usize,
    seen: Vec<String>,
    duplicate: Option<String>,
    captured: Vec<Captured>,
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

    /// A probe that captures `wanted` for `targets_per_image` targets per image.
    pub(crate) fn capture(wanted: Vec<String>, targets_per_image: usize) -> Self {
        Self {
            mode: Mode::Capture(Capture {
                wanted,
                targets_per_image,
                seen: Vec::new(),
                duplicate: None,
                captured: Vec::new(),
            }),
        }
    }

    /// Pass the activation of the layer `name` through the probe; continue the forward with
    /// what it returns.
    ///
    /// Outside an explanation this returns `activation` as it is. When `name` is the first
    /// explained layer, the returned tensor is a gradient leaf cut from everything before it
    /// (which ran without autodiff), repeated once per target when several targets per image
    /// are explained in one call. At later explained layers a zero-valued leaf is added, whose
    /// gradient is that layer's.
    ///
    /// # Shapes
    /// - `activation`: `[n, k, h, w]`
    /// - returns `[n', k, h, w]`, `n' = n` times the targets per image at the first explained
    ///   layer, `n' = n` elsewhere.
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
        }
    }

    pub(crate) fn into_recorded(self) -> Vec<LayerInfo> {
        match self.mode {
            Mode::Record(layers) => layers,
            _ => Vec::new(),
        }
    }

    pub(crate) fn into_capture(self) -> Option<Capture> {
        match self.mode {
            Mode::Capture(capture) => Some(capture),
            _ => None,
        }
    }
}

impl Capture {
    fn layer(&mut self, name: &str, activation: Tensor<4>) -> Tensor<4> {
        if self.seen.iter().any(|seen| seen == name) {
            self.duplicate.get_or_insert_with(|| name.to_string());
            return activation;
        }
        self.seen.push(name.to_string());
        if !self.wanted.iter().any(|wanted| wanted == name) {
            return activation;
        }
        let name = name.to_string();
        if self.captured.is_empty() {
            // The cut: everything before ran without autodiff; the graph starts here.
            let activation = activation.without_autodiff(); // [n, k, h, w]
            let leaf = repeat_rows(activation.clone(), self.targets_per_image)
                .autodiff()
                .require_grad(); // [n * m, k, h, w]
            self.captured.push(Captured {
                name,
                activation,
                per_target: false,
                leaf: leaf.clone(),
            });
            leaf
        } else {
            // A later layer: a zero-valued leaf added here receives dY/dA of this layer.
            let device = activation.device().without_autodiff();
            let zero = Tensor::<4>::zeros(activation.dims(), &device)
                .autodiff()
                .require_grad(); // [n * m, k, h, w]
            self.captured.push(Captured {
                name,
                activation: activation.clone().without_autodiff(),
                per_target: true,
                leaf: zero.clone(),
            });
            activation.autodiff() + zero
        }
    }

    /// The captured layers in forward order, or the name of a layer passed twice.
    pub(crate) fn finish(self) -> (Vec<Captured>, Option<String>) {
        (self.captured, self.duplicate)
    }
}

/// Repeat each row `times` times, keeping the rows of one image together.
///
/// # Shapes
/// - `x`: `[n, k, h, w]`
/// - returns `[n * times, k, h, w]`, row `i * times + j` = row `i` of `x`.
fn repeat_rows(x: Tensor<4>, times: usize) -> Tensor<4> {
    if times == 1 {
        return x;
    }
    let [n, k, h, w] = x.dims();
    x.unsqueeze_dim::<5>(1) // [n, 1, k, h, w]
        .repeat_dim(1, times) // [n, m, k, h, w]
        .reshape([n * times, k, h, w])
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn repeat_rows_keeps_images_together() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0], [2, 1, 1, 1]), &device);
        let got = repeat_rows(x, 3).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(got, vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }

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
