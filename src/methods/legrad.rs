//! LeGrad: Bousselham, Boggust, Chaybouti, Strobelt and Kuehne, "LeGrad: An Explainability
//! Method for Vision Transformers via Feature Formation Sensitivity", 2024
//! ([arXiv:2404.03214](https://arxiv.org/abs/2404.03214)), as torchcam 0.5.0's `LeGrad`.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use super::{AttentionGradient, CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::{GradCamError, Result};
use crate::postprocess::upsample;

/// LeGrad: for each transformer block `l`, the gradient of the block's own class score `s^l`
/// with respect to its attention probabilities `A^l`, its positive part averaged over heads and
/// queries, on the grid of the keys; averaged over the blocks,
///
/// ```text
/// map = mean_l mean_{heads, queries} ReLU(ds^l / dA^l)[keys after the special ones]
/// s^l = the target's score of project(tokens after block l)
/// ```
///
/// for transformers whose blocks route their attention probabilities through
/// [`Probe::attention`](crate::Probe::attention) and their output tokens, with the projection to
/// logits, through [`Probe::block_output`](crate::Probe::block_output) (torchcam's
/// `score_projection`; for a ViT `head(norm(mean_t(tokens)))`, torchcam's built-in one for
/// torchvision's `VisionTransformer`); a model that routes none gets
/// [`ModelError::NoAttention`](crate::ModelError::NoAttention). The attention values are not
/// multiplied in. Every block, or those named with [`LeGrad::with_blocks`] (torchcam requires
/// them named; its example takes the last four). As FullGrad, the explained layer plays no part:
/// the map is on the blocks' grid, at the layer's resolution when the layer lies on that grid
/// (a token layer through [`Probe::tokens`](crate::Probe::tokens)), else upsampled to the input's.
/// torchcam's targets are classes; here a rank is the class the model ranked there and a score
/// target scores the block's projected logits. One forward (the input repeated once per target)
/// and one backward, after the unperturbed forward.
///
/// # Shapes
/// - each block's gradients `[n, m, heads, queries, keys]`; returns a map `[n, m, h, w]`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeGrad {
    /// The blocks averaged over; `None`: every block.
    blocks: Option<Vec<String>>,
}

impl LeGrad {
    /// Every block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Average over these blocks only (names as passed to
    /// [`Probe::attention`](crate::Probe::attention)).
    pub fn with_blocks<S: Into<String>>(mut self, blocks: impl IntoIterator<Item = S>) -> Self {
        self.blocks = Some(blocks.into_iter().map(Into::into).collect());
        self
    }

    /// The blocks averaged over, in the order the forward routed them (none if `with_blocks`
    /// named none: `compute` says so).
    fn chosen(&self, blocks: Vec<AttentionGradient>) -> Result<Vec<AttentionGradient>> {
        let Some(wanted) = &self.blocks else {
            return Ok(blocks);
        };
        if let Some(missing) = wanted.iter().find(|w| !blocks.iter().any(|b| &b.name == *w)) {
            let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
            return Err(GradCamError::argument(format!(
                "LeGrad: no block `{missing}`; the model routes {}",
                names.join(", ")
            )));
        }
        Ok(blocks
            .into_iter()
            .filter(|b| wanted.contains(&b.name))
            .collect())
    }
}

impl CamMethod for LeGrad {
    fn name(&self) -> &'static str {
        "legrad"
    }

    /// The unperturbed capture needs none: LeGrad runs its own backward.
    fn needs_gradients(&self) -> bool {
        false
    }

    fn reads_attention(&self) -> bool {
        true
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        let blocks = self.chosen(model.attention_gradients()?)?;
        let Some(grid) = blocks.first().map(|b| b.grid) else {
            return Err(GradCamError::argument("LeGrad: no block chosen; name at least one"));
        };
        let maps = blocks
            .into_iter()
            .map(|block| relevance(block, grid))
            .collect::<Result<Vec<_>>>()?; // each [n, m, h, w]
        let map = Tensor::stack::<5>(maps, 0).mean_dim(0).squeeze_dim::<4>(0); // [n, m, h, w]
        let [_, _, h, w] = layer.activations.dims();
        if grid == [h, w] {
            return Ok(CamMap::Map(map));
        }
        let [_, _, height, width] = model.input().dims();
        Ok(CamMap::Map(upsample(map, [height, width])))
    }
}

/// One block's relevance: `ReLU(ds/dA)` averaged over heads and queries, its grid keys.
///
/// # Shapes
/// - `block.gradients`: `[n, m, heads, queries, keys]`
/// - returns `[n, m, h, w]`
fn relevance(block: AttentionGradient, grid: [usize; 2]) -> Result<Tensor<4>> {
    if block.grid != grid {
        return Err(GradCamError::argument(format!(
            "LeGrad averages blocks on one grid, and block `{}` has {:?} where the first has \
             {grid:?}; choose blocks of one grid with `LeGrad::with_blocks`",
            block.name, block.grid
        )));
    }
    let [n, m, heads, queries, keys] = block.gradients.dims();
    let [h, w] = grid;
    Ok(relu(block.gradients)
        .reshape([n, m, heads * queries, keys])
        .mean_dim(2) // [n, m, 1, keys]
        .narrow(3, block.special, h * w)
        .reshape([n, m, h, w]))
}
