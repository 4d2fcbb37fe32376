//! The probe a model's forward passes its activations through, and its modes: pass through,
//! record, cut and capture ([`cut`]), replace one layer ([`replace`]), guide every ReLU, keep
//! every bias's leaf ([`biases`]), keep every block's attention leaf and score ([`attention`]).

mod attention;
mod biases;
mod cut;
mod replace;
mod rows;

use burn::tensor::Tensor;

pub(crate) use attention::Attention;
pub(crate) use biases::BiasLeaf;
pub use biases::batch_norm_bias;
pub(crate) use cut::{CapturedLayer, Cut};
pub(crate) use replace::Replace;
pub(crate) use rows::{repeat_rows, zero_leaf};

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
/// Built by the explainer, which keeps what the probe records; a model calls [`Probe::layer`]
/// (or [`Probe::tokens`], [`Probe::carry`]) for its explainable layers, and optionally
/// [`Probe::relu`] (guided backpropagation), [`Probe::bias`] (FullGrad), [`Probe::attention`]
/// and [`Probe::block_output`] (LeGrad). [`Probe::passthrough`] gives the one to use for an
/// ordinary forward.
#[derive(Debug)]
pub struct Probe<'a> {
    mode: Mode<'a>,
}

#[derive(Debug)]
enum Mode<'a> {
    Pass,
    Record(&'a mut Vec<LayerInfo>),
    Cut(&'a mut Cut),
    Replace(&'a mut Replace),
    /// Guided backpropagation: every layer passes through, every [`Probe::relu`] is guided;
    /// counts them.
    Guided(&'a mut usize),
    /// FullGrad: every layer passes through, every [`Probe::bias`] gets a gradient leaf.
    Biases(&'a mut Vec<BiasLeaf>),
    /// LeGrad: every layer passes through, every [`Probe::attention`] gets a gradient leaf,
    /// every [`Probe::block_output`] is scored.
    Attention(&'a mut Attention),
}

impl Probe<'static> {
    /// A probe that returns every activation unchanged: for ordinary inference.
    pub fn passthrough() -> Self {
        Self { mode: Mode::Pass }
    }
}

impl<'a> Probe<'a> {
    /// A probe that records the name and shape of every layer passed through it into `layers`.
    pub(crate) fn recording(layers: &'a mut Vec<LayerInfo>) -> Self {
        Self {
            mode: Mode::Record(layers),
        }
    }

    /// A probe that captures the layers `cut` wants.
    pub(crate) fn cutting(cut: &'a mut Cut) -> Self {
        Self {
            mode: Mode::Cut(cut),
        }
    }

    /// A probe that replaces one layer's activation.
    pub(crate) fn replacing(replace: &'a mut Replace) -> Self {
        Self {
            mode: Mode::Replace(replace),
        }
    }

    /// A probe that guides every [`Probe::relu`] and counts them into `relus`.
    pub(crate) fn guiding(relus: &'a mut usize) -> Self {
        Self {
            mode: Mode::Guided(relus),
        }
    }

    /// A probe that adds a gradient leaf to every [`Probe::bias`] output and keeps it in
    /// `leaves`.
    pub(crate) fn keeping_biases(leaves: &'a mut Vec<BiasLeaf>) -> Self {
        Self {
            mode: Mode::Biases(leaves),
        }
    }

    /// A probe that adds a gradient leaf to every [`Probe::attention`] and scores every
    /// [`Probe::block_output`], keeping both in `attention`.
    pub(crate) fn keeping_attention(attention: &'a mut Attention) -> Self {
        Self {
            mode: Mode::Attention(attention),
        }
    }

    /// A transformer block's attention probabilities (after the softmax), routed through the
    /// probe for LeGrad ([`LeGrad`](crate::methods::LeGrad)), which differentiates the block's
    /// score ([`Probe::block_output`], under the same `name`) with respect to them. The keys
    /// after the first `special` (a class token, register tokens) lie on a `[height, width]`
    /// grid, row-major, as in [`Probe::tokens`]. Returns `probabilities` (with a zero-valued
    /// gradient leaf added while LeGrad explains): continue the attention with it
    /// (`probabilities.matmul(values)`).
    ///
    /// ```
    /// use burn::tensor::activation::softmax;
    /// use burn::tensor::{Device, Tensor};
    /// use gradcam::Probe;
    ///
    /// let device = Device::flex();
    /// let logits = Tensor::<4>::ones([1, 2, 17, 17], &device); // [n, heads, queries, keys]
    /// let mut probe = Probe::passthrough();
    /// let a = probe.attention("blocks.0", softmax(logits, 3), [4, 4], 1);
    /// assert_eq!(a.dims(), [1, 2, 17, 17]);
    /// ```
    ///
    /// # Shapes
    /// - `probabilities`: `[n, heads, queries, special + height * width]`; returns the same
    ///
    /// # Panics
    /// If the key count is not `special + height * width`: the model's own layout, a contract
    /// of its code rather than of its input.
    pub fn attention(
        &mut self,
        name: &str,
        probabilities: Tensor<4>,
        [height, width]: [usize; 2],
        special: usize,
    ) -> Tensor<4> {
        let keys = probabilities.dims()[3];
        assert_eq!(
            keys,
            special + height * width,
            "attention `{name}`: {keys} keys, not {special} special + {height} x {width}"
        );
        match &mut self.mode {
            Mode::Attention(attention) => {
                attention.leaf(name, probabilities, [height, width], special)
            }
            _ => probabilities,
        }
    }

    /// A transformer block's output tokens, routed through the probe for LeGrad with the
    /// block's class scores: `project` maps the tokens to logits as the model's head would
    /// (torchcam's `score_projection`; for a ViT, its final norm and head on the tokens' mean,
    /// `head(norm(mean_t(tokens)))`). `project` is called only while LeGrad explains. Returns
    /// `tokens` (while LeGrad explains, without autodiff: each block's score is differentiated
    /// with respect to its own attention only).
    ///
    /// ```
    /// use burn::nn::LinearConfig;
    /// use burn::tensor::{Device, Tensor};
    /// use gradcam::Probe;
    ///
    /// let device = Device::flex();
    /// let head = LinearConfig::new(8, 10).init(&device);
    /// let tokens = Tensor::<3>::ones([1, 17, 8], &device);
    /// let mut probe = Probe::passthrough();
    /// let out = probe.block_output("blocks.0", tokens, |t| head.forward(t.mean_dim(1).squeeze_dim(1)));
    /// assert_eq!(out.dims(), [1, 17, 8]);
    /// ```
    ///
    /// # Shapes
    /// - `tokens`: `[n, tokens, dim]`; `project` returns `[n, classes]`
    /// - returns `[n, tokens, dim]`
    pub fn block_output(
        &mut self,
        name: &str,
        tokens: Tensor<3>,
        project: impl FnOnce(Tensor<3>) -> Tensor<2>,
    ) -> Tensor<3> {
        match &mut self.mode {
            Mode::Attention(attention) => attention.score(name, tokens, project),
            _ => tokens,
        }
    }

    /// A layer's output and its per-channel bias, routed through the probe for FullGrad
    /// ([`FullGrad`](crate::methods::FullGrad)), which weighs the output's gradient by the bias:
    /// a convolution's bias, or a BatchNorm's effective one ([`batch_norm_bias`](crate::batch_norm_bias)).
    /// `bias` is called only while FullGrad explains; it returns `None` for a layer without a
    /// bias. Returns `output` (with a zero-valued gradient leaf added while FullGrad explains).
    ///
    /// ```
    /// use burn::nn::conv::Conv2dConfig;
    /// use burn::tensor::{Device, Tensor};
    /// use gradcam::Probe;
    ///
    /// let device = Device::flex();
    /// let conv = Conv2dConfig::new([3, 8], [3, 3]).init(&device);
    /// let x = Tensor::<4>::ones([1, 3, 16, 16], &device);
    /// let mut probe = Probe::passthrough();
    /// let y = probe.bias("conv", conv.forward(x), || conv.bias.as_ref().map(|b| b.val()));
    /// assert_eq!(y.dims(), [1, 8, 14, 14]);
    /// ```
    ///
    /// # Shapes
    /// - `output`: `[n, k, h, w]`; `bias` returns `[k]`
    /// - returns `[n, k, h, w]`
    pub fn bias(
        &mut self,
        name: &str,
        output: Tensor<4>,
        bias: impl FnOnce() -> Option<Tensor<1>>,
    ) -> Tensor<4> {
        match &mut self.mode {
            Mode::Biases(leaves) => match bias() {
                Some(bias) => biases::with_leaf(leaves, name, output, bias),
                None => output,
            },
            _ => output,
        }
    }

    /// A ReLU the model routes through the probe: `max(x, 0)`, except that during guided
    /// backpropagation ([`Explainer::guided_backprop`](crate::Explainer::guided_backprop)) its
    /// backward lets only positive gradients through where the input was positive. A model
    /// whose ReLUs go through here supports guided backpropagation; one that calls
    /// `burn::tensor::activation::relu` directly gets the plain input gradient there (as
    /// pytorch-grad-cam, which guides only `torch.nn.ReLU` modules).
    ///
    /// # Shapes
    /// - `x`: any; returns the same
    pub fn relu<const D: usize>(&mut self, x: Tensor<D>) -> Tensor<D> {
        match &mut self.mode {
            Mode::Guided(relus) => {
                **relus += 1;
                crate::kernels::guided_relu::guided_relu(x)
            }
            _ => burn::tensor::activation::relu(x),
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
            Mode::Cut(cut) => cut.layer(name, activation),
            Mode::Replace(replace) => replace.layer(name, activation),
            Mode::Guided(_) | Mode::Biases(_) | Mode::Attention(_) => activation,
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
        if matches!(
            self.mode,
            Mode::Pass | Mode::Guided(_) | Mode::Biases(_) | Mode::Attention(_)
        ) {
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
        let mut layers = Vec::new();
        let mut probe = Probe::recording(&mut layers);
        let _ = probe.layer("a", x.clone());
        let _ = probe.layer("b", x.slice([0..1, 0..2]));
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
        let mut recorded = Vec::new();
        let back = Probe::recording(&mut recorded).tokens("t", tokens, [2, 3], 1);
        assert_eq!(
            back.into_data().try_into_vec::<f32>().unwrap(),
            values,
            "the round trip is exact"
        );
        assert_eq!(recorded[0].shape, [2, 4, 2, 3]);

        // Replaced (as Ablation-CAM does) by 3 copies: the class token repeats with the rows,
        // and grid token 1 + 3 y + x, dim d, is the replacement's [r, d, y, x].
        let with: Vec<f32> = (0..3 * 4 * 6).map(|v| 1000.0 + v as f32).collect();
        let with =
            Tensor::<4>::from_data(burn::tensor::TensorData::new(with, [3, 4, 2, 3]), &device);
        let mut replace = Replace::new("t".into(), with);
        let mut probe = Probe::replacing(&mut replace);
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
