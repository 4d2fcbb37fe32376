//! The trait a model implements, and the probe its forward passes activations through.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::capture::{CaptureProbe, Replace, repeat_rows};

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

    /// Pass a transformer layer's token activations through the probe: the tokens after the
    /// first `special` (a class token, distillation or register tokens) laid out on a
    /// `[height, width]` grid become the `[n, dim, height, width]` activation that
    /// [`Probe::layer`] sees, so every method explains them as a feature map on the grid (what
    /// pytorch-grad-cam's `reshape_transform` does for a ViT). Continue the forward with the
    /// tokens it returns: the special tokens unchanged (repeated with the rows), the grid tokens
    /// as [`Probe::layer`] returned them.
    ///
    /// The gradients of the grid tokens are those of the whole tensor's: the special tokens are
    /// held at their values, which does not change a partial derivative.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use gradcam::Probe;
    ///
    /// let device = Device::flex();
    /// let tokens = Tensor::<3>::ones([2, 1 + 14 * 14, 192], &device); // class token + 14 x 14
    /// let out = Probe::passthrough().tokens("blocks.11.norm1", tokens, [14, 14], 1);
    /// assert_eq!(out.dims(), [2, 197, 192]);
    /// ```
    ///
    /// # Shapes
    /// - `tokens`: `[n, special + height * width, dim]`, grid tokens in row-major order
    /// - returns `[n', special + height * width, dim]`, `n'` as [`Probe::layer`]'s
    ///
    /// # Panics
    /// If the token count is not `special + height * width`: the model's own layout, a contract
    /// of its code rather than of its input.
    pub fn tokens(
        &mut self,
        name: &str,
        tokens: Tensor<3>,
        [height, width]: [usize; 2],
        special: usize,
    ) -> Tensor<3> {
        let [n, count, dim] = tokens.dims();
        assert_eq!(
            count,
            special + height * width,
            "layer `{name}`: {count} tokens, not {special} special + {height} x {width}"
        );
        if matches!(self.mode, Mode::Pass) {
            return tokens;
        }
        let leading = tokens.clone().narrow(1, 0, special); // [n, special, dim]
        let grid = tokens
            .narrow(1, special, height * width)
            .reshape([n, height, width, dim])
            .permute([0, 3, 1, 2]); // [n, dim, height, width]
        let out = self.layer(name, grid); // [n', dim, height, width]
        let rows = out.dims()[0];
        let grid = out
            .permute([0, 2, 3, 1])
            .reshape([rows, height * width, dim]); // [n', height * width, dim]
        if special == 0 {
            return grid;
        }
        // The rows of one image stay together, as the probe repeats them.
        let mut leading = Self::carry(leading, rows); // [n', special, dim]
        if grid.is_autodiff() {
            leading = leading.autodiff();
        }
        Tensor::cat(vec![leading, grid], 1)
    }

    /// Bring a tensor computed before an explained layer to the rows of one computed after it,
    /// for a connection around the layer (a transformer block's residual around its attention,
    /// where [`Probe::tokens`] taps the block's first norm): each image's row repeated as the
    /// probe repeats it (rows of one image together). Combined with a tensor after the layer it
    /// is a constant, which is what the layer's gradient is taken with.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use gradcam::Probe;
    ///
    /// let device = Device::flex();
    /// let x = Tensor::<3>::ones([2, 17, 32], &device); // before the block's norm
    /// let y = Tensor::<3>::ones([6, 17, 32], &device); // after the probe: 3 targets an image
    /// assert_eq!((Probe::carry(x, y.dims()[0]) + y).dims(), [6, 17, 32]);
    /// ```
    ///
    /// # Shapes
    /// - `before`: `[n, ...]`
    /// - returns `[rows, ...]`
    ///
    /// # Panics
    /// If `rows` is not a multiple of `n`: rows from the probe always are.
    pub fn carry<const D: usize>(before: Tensor<D>, rows: usize) -> Tensor<D> {
        let dims = before.dims();
        let n = dims[0];
        if rows == n {
            return before;
        }
        assert!(
            n > 0 && rows.is_multiple_of(n),
            "{rows} rows are not a multiple of the {n} rows before the layer"
        );
        repeat_rows(before, rows / n)
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

    #[test]
    fn tokens_become_a_grid_for_the_probe_and_come_back_in_place() {
        let device = Device::flex();
        // 2 images, a class token and a 2 x 3 grid of 4-dim tokens; token value = 100 i + 10 t + d.
        let values: Vec<f32> = (0..2 * 7 * 4)
            .map(|v| (100 * (v / 28) + 10 * (v % 28 / 4) + v % 4) as f32)
            .collect();
        let tokens = Tensor::<3>::from_data(
            burn::tensor::TensorData::new(values.clone(), [2, 7, 4]),
            &device,
        );
        let mut probe = Probe::recorder();
        let back = probe.tokens("t", tokens, [2, 3], 1);
        assert_eq!(
            back.into_data().try_into_vec::<f32>().unwrap(),
            values,
            "the round trip is exact"
        );
        assert_eq!(probe.into_recorded()[0].shape, [2, 4, 2, 3]);

        // Replaced (as Ablation-CAM does) by 3 copies: the class token repeats with the rows,
        // and grid token 1 + 3 y + x, dim d, is the replacement's [r, d, y, x].
        let with: Vec<f32> = (0..3 * 4 * 6).map(|v| 1000.0 + v as f32).collect();
        let with =
            Tensor::<4>::from_data(burn::tensor::TensorData::new(with, [3, 4, 2, 3]), &device);
        let mut probe = Probe::replace(Replace::new("t".into(), with));
        let one = Tensor::<3>::from_data(
            burn::tensor::TensorData::new(values[..28].to_vec(), [1, 7, 4]),
            &device,
        );
        let out = probe.tokens("t", one, [2, 3], 1);
        assert_eq!(out.dims(), [3, 7, 4]);
        let out: Vec<f32> = out.into_data().try_into_vec().unwrap();
        let at = |r: usize, t: usize, d: usize| out[(r * 7 + t) * 4 + d];
        assert_eq!([at(0, 0, 2), at(2, 0, 2)], [2.0, 2.0]); // the class token, every row
        // r = 2, d = 1, y = 1, x = 2: 1000 + ((2 * 4 + 1) * 2 + 1) * 3 + 2 = 1059, token 1 + 5
        assert_eq!(at(2, 6, 1), 1059.0);
    }

    #[test]
    #[should_panic(expected = "6 tokens, not 1 special + 2 x 3")]
    fn a_token_count_off_the_grid_is_a_contract_panic() {
        let device = Device::flex();
        let _ = Probe::passthrough().tokens("t", Tensor::<3>::zeros([1, 6, 4], &device), [2, 3], 1);
    }
}
