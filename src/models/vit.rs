//! A Vision Transformer in torchvision's `VisionTransformer` layout (pre-norm blocks, a class
//! token, learned positions, the head on the class token), routed through the probe: each
//! block's first norm is an explainable token layer, its attention and output go to LeGrad.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor};

use crate::model::GradCam;
use crate::probe::Probe;

/// The shape of a [`Vit`]: ViT-B/16 is `VitConfig::new(224, 16, 768, 12, 12, 3072, 1000)`.
#[derive(Config, Debug)]
pub struct VitConfig {
    /// The input's side, in pixels.
    pub image: usize,
    /// The patches' side, in pixels (a divisor of `image`).
    pub patch: usize,
    /// The tokens' width.
    pub dim: usize,
    /// Attention heads (a divisor of `dim`).
    pub heads: usize,
    /// Blocks.
    pub depth: usize,
    /// The MLP's hidden width.
    pub mlp: usize,
    /// Classes.
    pub classes: usize,
    /// The layer norms' epsilon: torchvision's `1e-6` (PyTorch's `nn.LayerNorm` default is
    /// `1e-5`).
    #[config(default = 1e-6)]
    pub eps: f64,
}

impl VitConfig {
    /// A model with random weights: load torchvision's with
    /// [`load_torchvision_vit`](crate::models::load_torchvision_vit), or a file whose keys are
    /// the fields' paths (`patch.weight`, `cls`, `pos`, `blocks.0.qkv.weight`, ...,
    /// `norm.gamma`, `head.weight`; `Linear` weights `[in, out]`) with
    /// [`load_weights`](crate::models::load_weights).
    ///
    /// # Panics
    /// If `patch` does not divide `image` or `heads` does not divide `dim`: the configuration's
    /// contract.
    pub fn init(&self, device: &Device) -> Vit {
        assert!(
            self.patch > 0 && self.image.is_multiple_of(self.patch),
            "a patch of {} does not divide an image of {}",
            self.patch,
            self.image
        );
        assert!(
            self.heads > 0 && self.dim.is_multiple_of(self.heads),
            "{} heads do not divide {} dims",
            self.heads,
            self.dim
        );
        let grid = self.image / self.patch;
        let tokens = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Vit {
            patch: Conv2dConfig::new([3, self.dim], [self.patch, self.patch])
                .with_stride([self.patch, self.patch])
                .init(device),
            cls: tokens.init([1, 1, self.dim], device),
            pos: tokens.init([1, 1 + grid * grid, self.dim], device),
            blocks: (0..self.depth).map(|_| self.block(device)).collect(),
            norm: self.norm(device),
            head: LinearConfig::new(self.dim, self.classes).init(device),
            image: self.image,
            grid,
            heads: self.heads,
        }
    }

    fn norm(&self, device: &Device) -> LayerNorm {
        LayerNormConfig::new(self.dim)
            .with_epsilon(self.eps)
            .init(device)
    }

    fn block(&self, device: &Device) -> EncoderBlock {
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        EncoderBlock {
            norm1: self.norm(device),
            norm2: self.norm(device),
            qkv: linear(self.dim, 3 * self.dim),
            proj: linear(self.dim, self.dim),
            fc1: linear(self.dim, self.mlp),
            fc2: linear(self.mlp, self.dim),
        }
    }
}

/// One pre-norm encoder block: `x + proj(attention(norm1(x)))`, then `x + fc2(gelu(fc1(norm2(x))))`.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    /// Before the attention: the explainable layer `blocks.<i>.norm1`.
    pub norm1: LayerNorm,
    /// Before the MLP.
    pub norm2: LayerNorm,
    /// The queries', keys' and values' projections, in that order along the output
    /// (torchvision's `in_proj`).
    pub qkv: Linear,
    /// The heads' output projection (torchvision: `out_proj`).
    pub proj: Linear,
    /// The MLP's first layer.
    pub fc1: Linear,
    /// The MLP's second layer.
    pub fc2: Linear,
}

/// A Vision Transformer ([`VitConfig`]). Its layers are `blocks.<i>.norm1` (the tokens on the
/// patch grid, [`Probe::tokens`]); its blocks `blocks.<i>` route their attention probabilities
/// ([`Probe::attention`]) and output tokens ([`Probe::block_output`], scored by
/// `head(norm(mean_t(tokens)))`, torchcam's projection for torchvision's ViTs) for
/// [`LeGrad`](crate::methods::LeGrad); its patch embedding routes its bias for
/// [`FullGrad`](crate::methods::FullGrad).
#[derive(Module, Debug)]
pub struct Vit {
    /// The patch embedding: a convolution of the patch's size and stride.
    pub patch: Conv2d,
    /// The class token, `[1, 1, dim]`.
    pub cls: Param<Tensor<3>>,
    /// The learned positions of the class token and the patches, `[1, 1 + grid * grid, dim]`.
    pub pos: Param<Tensor<3>>,
    /// The encoder blocks.
    pub blocks: Vec<EncoderBlock>,
    /// The final norm.
    pub norm: LayerNorm,
    /// The classifier, on the class token.
    pub head: Linear,
    #[module(skip)]
    image: usize,
    #[module(skip)]
    grid: usize,
    #[module(skip)]
    heads: usize,
}

impl Vit {
    /// Block `i` on the tokens `x`.
    ///
    /// # Shapes
    /// - `x`: `[n, 1 + grid * grid, dim]`; returns `[n', 1 + grid * grid, dim]`
    fn block(&self, i: usize, x: Tensor<3>, probe: &mut Probe) -> Tensor<3> {
        let block = &self.blocks[i];
        let grid = [self.grid, self.grid];
        let name = format!("blocks.{i}");
        let y = probe.tokens(
            &format!("{name}.norm1"),
            block.norm1.forward(x.clone()),
            grid,
            1,
        );
        let [n, t, d] = y.dims();
        let x = Probe::carry(x, n); // the residual, to the rows the probe returned
        let hd = d / self.heads;
        let split = |z: Tensor<3>| z.reshape([n, t, self.heads, hd]).swap_dims(1, 2); // [n, heads, t, hd]
        let qkv = block.qkv.forward(y); // [n, t, 3 dim]
        let q = split(qkv.clone().narrow(2, 0, d));
        let k = split(qkv.clone().narrow(2, d, d));
        let v = split(qkv.narrow(2, 2 * d, d));
        let scale = (hd as f64).powf(-0.5);
        let attention = softmax(q.matmul(k.swap_dims(2, 3)) * scale, 3); // [n, heads, t, t]
        let attention = probe.attention(&name, attention, grid, 1);
        let mixed = attention.matmul(v).swap_dims(1, 2).reshape([n, t, d]);
        let x = x + block.proj.forward(mixed);
        let x = x.clone()
            + block
                .fc2
                .forward(gelu(block.fc1.forward(block.norm2.forward(x))));
        probe.block_output(&name, x, |tokens| self.project(tokens))
    }

    /// The head on the tokens' mean: each block's scores for LeGrad.
    ///
    /// # Shapes
    /// - `tokens`: `[n, t, dim]`; returns `[n, classes]`
    fn project(&self, tokens: Tensor<3>) -> Tensor<2> {
        let mean = tokens.mean_dim(1).squeeze_dim::<2>(1); // [n, dim]
        self.head.forward(self.norm.forward(mean))
    }
}

impl GradCam for Vit {
    fn layers(&self) -> Vec<String> {
        (0..self.blocks.len())
            .map(|i| format!("blocks.{i}.norm1"))
            .collect()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = self.patch.forward(x); // [n, dim, grid, grid]
        let x = probe.bias("patch", x, || self.patch.bias.as_ref().map(|b| b.val()));
        let [n, d, h, w] = x.dims();
        let x = x.reshape([n, d, h * w]).swap_dims(1, 2); // [n, grid * grid, dim], row-major
        let cls = self.cls.val().repeat_dim(0, n); // [n, 1, dim]
        let mut x = Tensor::cat(vec![cls, x], 1) + self.pos.val(); // [n, 1 + grid * grid, dim]
        for i in 0..self.blocks.len() {
            x = self.block(i, x, probe);
        }
        let x = self.norm.forward(x);
        let rows = x.dims()[0];
        self.head.forward(x.narrow(1, 0, 1).reshape([rows, d])) // [n', classes]
    }

    fn input_shape(&self) -> [Option<usize>; 3] {
        [Some(3), Some(self.image), Some(self.image)]
    }
}
