//! The probe's attention mode (LeGrad): every attention-probability tensor routed through
//! [`Probe::attention`](super::Probe::attention) gets a zero-valued gradient leaf, and every block
//! output routed through [`Probe::block_output`](super::Probe::block_output) is scored by the
//! model's own projection and handed on without autodiff, so that a block's score reaches no
//! other block's attention.

use burn::tensor::Tensor;

/// What one forward in attention mode recorded: each block's attention leaf and its score.
#[derive(Debug, Default)]
pub(crate) struct Attention {
    /// In forward order.
    pub leaves: Vec<AttentionLeaf>,
    /// In forward order.
    pub scores: Vec<BlockScores>,
}

/// One block's attention probabilities as a gradient leaf, with the token layout of its keys.
#[derive(Debug)]
pub(crate) struct AttentionLeaf {
    pub name: String,
    /// `[rows, heads, queries, keys]`, a gradient leaf of zeros added to the probabilities.
    pub leaf: Tensor<4>,
    /// The keys after the first `special` laid out as `[height, width]`.
    pub grid: [usize; 2],
    pub special: usize,
}

/// One block's class scores, projected from its output tokens: `[rows, classes]`, tracked.
#[derive(Debug)]
pub(crate) struct BlockScores {
    pub name: String,
    pub scores: Tensor<2>,
}

impl Attention {
    /// `probabilities` with a zero leaf added, recorded under `name`.
    ///
    /// # Shapes
    /// - `probabilities`: `[rows, heads, queries, keys]`; returns the same
    pub(crate) fn leaf(
        &mut self,
        name: &str,
        probabilities: Tensor<4>,
        grid: [usize; 2],
        special: usize,
    ) -> Tensor<4> {
        let leaf = super::zero_leaf(&probabilities); // [rows, heads, queries, keys]
        self.leaves.push(AttentionLeaf {
            name: name.to_string(),
            leaf: leaf.clone(),
            grid,
            special,
        });
        probabilities.autodiff() + leaf
    }

    /// Record `project(tokens)` under `name`; return the tokens without autodiff, so the blocks
    /// after this one are constants to its attention.
    ///
    /// # Shapes
    /// - `tokens`: `[rows, tokens, dim]`; `project` returns `[rows, classes]`
    /// - returns `[rows, tokens, dim]`
    pub(crate) fn score(
        &mut self,
        name: &str,
        tokens: Tensor<3>,
        project: impl FnOnce(Tensor<3>) -> Tensor<2>,
    ) -> Tensor<3> {
        self.scores.push(BlockScores {
            name: name.to_string(),
            scores: project(tokens.clone()),
        });
        tokens.without_autodiff()
    }
}
