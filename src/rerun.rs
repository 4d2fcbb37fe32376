//! Further forwards of the model for the methods that score perturbed inputs or activations
//! (Score-CAM, Ablation-CAM): the explainer's implementation of [`Rerun`].

use std::sync::OnceLock;

use burn::tensor::{DType, FloatDType, Tensor};

use crate::capture::{capture, free_graph, to_f32, whole_pass};
use crate::error::{GradCamError, ModelError, Result};
use crate::explanation::ExplainedTarget;
use crate::forward::forward;
use crate::host::read;
use crate::methods::{AttentionGradient, BiasGradient, BiasGradients, Chunks, Rerun};
use crate::model::GradCam;
use crate::probe::{Attention, Probe, Replace, repeat_rows};
use crate::target::{Resolved, ScoreFn, Target, Targets, row_scores, score_rows};

/// Where the classes of a capture's rank targets come from.
pub(crate) enum RankedClasses<'a> {
    /// Read back already: the capture's explained targets, `[n][m]`.
    Read(&'a [Vec<ExplainedTarget>]),
    /// Still on the device, `[n * m]` as `f32`: read the first time a rank target needs its
    /// class.
    OnDevice(&'a Tensor<1>, OnceLock<Vec<f32>>),
}

impl RankedClasses<'_> {
    /// The class target `t` (of `m` per image) ranked as, when the capture was made.
    fn class(&self, t: usize, m: usize) -> usize {
        match self {
            Self::Read(targets) => targets[t / m][t % m].class.unwrap_or_default(),
            Self::OnDevice(classes, read_back) => {
                read_back.get_or_init(|| read((*classes).clone()))[t] as usize
            }
        }
    }
}

/// The model, the capture it reruns, and the targets to score the reruns by.
pub(crate) struct Reruns<'a, M> {
    pub model: &'a M,
    /// The explained batch `[n, c, H, W]`, without autodiff.
    pub input: &'a Tensor<4>,
    /// The unperturbed scores `[n, m]`.
    pub scores: &'a Tensor<2>,
    /// The targets, `n * m`.
    pub resolved: &'a [Resolved],
    pub ranked: RankedClasses<'a>,
    /// The model's float dtype: what the reruns' inputs and activations are cast to.
    pub dtype: Option<DType>,
    /// The method, named in its errors.
    pub method: &'static str,
}

impl<M: GradCam> Reruns<'_, M> {
    /// Each of image `image`'s targets on every row of `logits`, `[r, m]`: a rank stays the
    /// class the unperturbed image ranked there.
    fn targets_of(&self, logits: Tensor<2>, image: usize, rows: usize) -> Result<Tensor<2>> {
        ModelError::check_rows(logits.dims(), rows)?;
        let logits = to_f32(logits);
        let [_, m] = self.scores.dims();
        let scores = (image * m..(image + 1) * m)
            .map(|t| score_rows(logits.clone(), &self.fixed(t, m)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(scores, 1))
    }

    /// [`fixed`](Self::fixed) as a [`Target`], for a capture or a whole forward of other rows.
    fn fixed_target(&self, t: usize, m: usize) -> Target {
        match &self.resolved[t] {
            Resolved::Class(class) => Target::Class(*class),
            Resolved::Top(_) => Target::Class(self.ranked.class(t, m)),
            Resolved::Score(score) => Target::Score(score.clone()),
        }
    }

    /// Target `t` (of `m` per image) with a rank fixed to the class the unperturbed image
    /// ranked there.
    fn fixed(&self, t: usize, m: usize) -> Resolved {
        match &self.resolved[t] {
            Resolved::Top(_) => Resolved::Class(self.ranked.class(t, m)),
            target => target.clone(),
        }
    }

    /// `x` in the model's float dtype.
    fn in_model_dtype(&self, x: Tensor<4>) -> Tensor<4> {
        match self.dtype {
            Some(dtype) if x.dtype() != dtype => x.cast(FloatDType::from(dtype)),
            _ => x,
        }
    }

    /// The logits of image `image`'s input with `layer`'s activations replaced by `activations`
    /// (in the model's dtype; an autodiff leaf keeps its graph), `[r, classes]`.
    fn logits_with_layer(
        &self,
        layer: &str,
        activations: Tensor<4>,
        image: usize,
    ) -> Result<Tensor<2>> {
        let input = self.input.clone().narrow(0, image, 1);
        let mut replace = Replace::new(layer.to_string(), activations);
        let logits = self.forward(input, &mut Probe::replacing(&mut replace));
        let finished = replace.finish(self.method);
        match (logits, finished) {
            (Ok(logits), Ok(())) => Ok(logits),
            (Ok(logits), Err(error)) => {
                free_graph(logits);
                Err(error)
            }
            (Err(error), _) => Err(error),
        }
    }

    /// `J A` for image `image`: the derivative of every logit along `layer`'s activations `A`
    /// (`[1, k, h, w]`), `<dz_c/dA, A>` for each class `c`, from one backward row per class in
    /// passes of `rows_per_pass` rows. Returns `[1, classes]`, `f32`.
    fn logit_derivatives(
        &self,
        layer: &str,
        activations: Tensor<4>,
        image: usize,
        rows_per_pass: usize,
    ) -> Result<Tensor<2>> {
        let a = self.in_model_dtype(activations); // [1, k, h, w]
        let classes = if self.model.affine_after(layer) {
            // An affine head: J A = z(A) - z(0), checked by z(2A) - 2 z(A) + z(0) = 0.
            let rows = Tensor::cat(vec![a.clone() * 2.0, a.clone(), a.clone().zeros_like()], 0);
            let z = to_f32(self.logits_with_layer(layer, rows, image)?); // [3, classes]
            let [z2, z1, z0] = [0, 1, 2].map(|row| z.clone().narrow(0, row, 1)); // [1, classes]
            let second = (z2 - z1.clone() * 2.0 + z0.clone())
                .abs()
                .max()
                .reshape([1]);
            let classes = z.dims()[1];
            let values = read(Tensor::cat(vec![second, z.abs().max().reshape([1])], 0));
            let (second, scale) = (values[0], values[1]);
            if second <= AFFINE_CHECK * scale {
                return Ok(z1 - z0);
            }
            classes
        } else {
            self.logits_with_layer(layer, a.clone(), image)?.dims()[1]
        };
        let chunks = Chunks::new(rows_per_pass);
        let mut derivatives = Vec::new();
        for (first, rows) in chunks.of(classes)? {
            let leaf = repeat_rows(a.clone(), rows).autodiff().require_grad(); // [r, k, h, w]
            let logits = to_f32(self.logits_with_layer(layer, leaf.clone(), image)?); // [r, classes]
            if logits.dims() != [rows, classes] {
                let got = logits.dims();
                free_graph(logits);
                return Err(ModelError::OutputShape {
                    got,
                    expected_rows: rows,
                }
                .into());
            }
            // Row i scores class first + i.
            let picks: Vec<Resolved> = (first..first + rows).map(Resolved::Class).collect();
            let (scores, _) = match row_scores(logits.clone(), &picks) {
                Ok(scored) => scored, // [r]
                Err(error) => {
                    free_graph(logits);
                    return Err(error);
                }
            };
            let grads = scores.sum().backward();
            let g = leaf
                .grad(&grads)
                .map(to_f32)
                .ok_or_else(|| ModelError::NoGradient {
                    name: layer.to_string(),
                })?; // [r, k, h, w]
            let along = (g * to_f32(a.clone().without_autodiff())).sum_dims(&[1, 2, 3]); // [r, 1, 1, 1]
            derivatives.push(along.reshape([1, rows]));
        }
        Ok(Tensor::cat(derivatives, 1))
    }

    /// The gradient at `layer` of `targets` for `inputs` (in the model's dtype): one capture.
    ///
    /// # Shapes
    /// - `inputs`: `[r, c, H, W]`
    /// - returns `[r, m, k, h, w]`
    fn layer_gradients(
        &self,
        layer: &str,
        inputs: Tensor<4>,
        targets: &Targets,
    ) -> Result<Tensor<5>> {
        let layers = [layer.to_string()];
        let captured = capture(self.model, &layers, true, inputs, targets)?;
        let [layer] = layers;
        captured
            .layers
            .into_iter()
            .next()
            .and_then(|captured| captured.gradients)
            .ok_or_else(|| ModelError::NoGradient { name: layer }.into())
    }

    /// Image `image`'s targets as the scores whose gradients are `S (J A)` ([`curvature`]), a
    /// logit (or a score along whose `J A` is 0) as a [`flat`] one; `J A` from
    /// [`logit_derivatives`](Self::logit_derivatives), only if some target is a score.
    ///
    /// # Shapes
    /// - `activations`: `[1, k, h, w]`
    fn curvatures(
        &self,
        layer: &str,
        activations: Tensor<4>,
        image: usize,
        rows_per_pass: usize,
    ) -> Result<Vec<Target>> {
        let [_, m] = self.scores.dims();
        let scores: Vec<Option<ScoreFn>> = self.resolved[image * m..(image + 1) * m]
            .iter()
            .map(|target| match target {
                Resolved::Score(score) => Some(score.clone()),
                Resolved::Class(_) | Resolved::Top(_) => None,
            })
            .collect();
        let mut direction = None;
        if scores.iter().any(Option::is_some) {
            let v = self.logit_derivatives(layer, activations, image, rows_per_pass)?; // [1, classes]
            let largest = read(v.clone().abs().max())[0];
            if !largest.is_finite() {
                return Err(GradCamError::non_finite(format!(
                    "derivatives of the logits along layer `{layer}`"
                )));
            }
            direction = (largest > 0.0).then_some((v, largest));
        }
        Ok(scores
            .into_iter()
            .map(|score| match (score, &direction) {
                (Some(score), Some((v, largest))) => {
                    curvature(score, v.clone(), CURVATURE_STEP / largest)
                }
                _ => Target::score(flat),
            })
            .collect())
    }

    /// The model's forward, a panic an error.
    fn forward(&self, input: Tensor<4>, probe: &mut Probe<'_>) -> Result<Tensor<2>> {
        forward(self.model, input, probe)
            .map_err(|message| ModelError::ForwardPanicked { message }.into())
    }
}

impl<M: GradCam> Rerun for Reruns<'_, M> {
    fn input(&self) -> Tensor<4> {
        to_f32(self.input.clone())
    }

    fn scores(&self, inputs: Tensor<4>, image: usize) -> Result<Tensor<2>> {
        let rows = inputs.dims()[0];
        let inputs = self.in_model_dtype(inputs);
        let logits = self.forward(inputs, &mut Probe::passthrough())?;
        self.targets_of(logits, image, rows)
    }

    fn scores_with_layer(
        &self,
        layer: &str,
        activations: Tensor<4>,
        image: usize,
    ) -> Result<Tensor<2>> {
        let rows = activations.dims()[0];
        let logits = self.logits_with_layer(layer, self.in_model_dtype(activations), image)?;
        self.targets_of(logits, image, rows)
    }

    fn original_scores(&self) -> Tensor<2> {
        self.scores.clone()
    }

    fn bias_gradients(&self) -> Result<BiasGradients> {
        let [n, c, height, width] = self.input.dims();
        let [_, m] = self.scores.dims();
        let input = self.in_model_dtype(self.input.clone());
        // Row `t` is image `t / m` for its target `t % m`.
        let targets: Vec<Target> = (0..n * m).map(|t| self.fixed_target(t, m)).collect();
        let mut leaves = Vec::new();
        let pass = whole_pass(
            self.model,
            input,
            &targets,
            m,
            &mut Probe::keeping_biases(&mut leaves),
        )?;
        let grads = pass.grads;
        if leaves.is_empty() {
            return Err(ModelError::NoBiases.into());
        }
        let gradient = |leaf: &Tensor<4>| -> Tensor<4> {
            leaf.grad(&grads)
                .map(to_f32)
                .unwrap_or_else(|| Tensor::zeros(leaf.dims(), &leaf.device().without_autodiff()))
        };
        let input = gradient(&pass.leaf).reshape([n, m, c, height, width]);
        let layers = leaves
            .iter()
            .map(|biased| {
                let g = gradient(&biased.leaf); // [n * m, k, h, w]
                let [_, k, h, w] = g.dims();
                BiasGradient {
                    name: biased.name.clone(),
                    bias: to_f32(biased.bias.clone()),
                    gradients: g.reshape([n, m, k, h, w]),
                }
            })
            .collect();
        Ok(BiasGradients { input, layers })
    }

    fn attention_gradients(&self) -> Result<Vec<AttentionGradient>> {
        let [n, m] = self.scores.dims();
        let input = repeat_rows(self.in_model_dtype(self.input.clone()), m); // [n * m, c, H, W]
        let mut attention = Attention::default();
        let logits = self.forward(input, &mut Probe::keeping_attention(&mut attention));
        let scored = logits.and_then(|logits| {
            free_graph(logits);
            let picks: Vec<Resolved> = (0..n * m).map(|t| self.fixed(t, m)).collect();
            block_scores(&attention, &picks)
        });
        let total = match scored {
            Ok(total) => total,
            Err(error) => {
                // A tracked graph stays alive until a backward consumes it.
                for block in attention.scores {
                    free_graph(block.scores);
                }
                return Err(error);
            }
        };
        let grads = total.backward();
        attention
            .leaves
            .iter()
            .map(|block| {
                let g = block.leaf.grad(&grads).map(to_f32).ok_or_else(|| {
                    ModelError::UnroutedBlock {
                        name: block.name.clone(),
                        problem: "has a score that does not depend on its attention",
                    }
                })?; // [n * m, heads, queries, keys]
                let [_, heads, queries, keys] = g.dims();
                Ok(AttentionGradient {
                    name: block.name.clone(),
                    gradients: g.reshape([n, m, heads, queries, keys]),
                    grid: block.grid,
                    special: block.special,
                })
            })
            .collect()
    }

    fn hessian_products(
        &self,
        layer: &str,
        activations: Tensor<4>,
        rows_per_pass: usize,
    ) -> Result<Tensor<5>> {
        let [n, m] = self.scores.dims();
        let [_, k, h, w] = activations.dims();
        if !self
            .resolved
            .iter()
            .any(|t| matches!(t, Resolved::Score(_)))
        {
            // Every target is a logit: no curvature anywhere, and no pass.
            let device = activations.device().without_autodiff();
            return Ok(Tensor::zeros([n, m, k, h, w], (&device, DType::F32)));
        }
        let targets = (0..n)
            .map(|image| {
                let a = activations.clone().narrow(0, image, 1); // [1, k, h, w]
                self.curvatures(layer, a, image, rows_per_pass)
            })
            .collect::<Result<Vec<_>>>()?;
        let input = self.in_model_dtype(self.input.clone());
        self.layer_gradients(layer, input, &Targets::rows_per_image(targets))
    }

    fn gradients(&self, layer: &str, inputs: Tensor<4>, image: usize) -> Result<Tensor<5>> {
        let [_, m] = self.scores.dims();
        let targets = (image * m..(image + 1) * m).map(|t| self.fixed_target(t, m));
        let inputs = self.in_model_dtype(inputs); // [r, c, H, W]
        self.layer_gradients(layer, inputs, &Targets::every_image(targets))
    }
}

/// The sum over every block and row of the row's target scored on the block's projected
/// logits (`picks`, one per row), after checking that the blocks' attention and outputs pair
/// up, by name and in forward order.
fn block_scores(attention: &Attention, picks: &[Resolved]) -> Result<Tensor<1>> {
    let unrouted = |name: &str, problem| ModelError::UnroutedBlock {
        name: name.to_string(),
        problem,
    };
    if attention.leaves.is_empty() {
        return Err(match attention.scores.first() {
            Some(block) => unrouted(&block.name, "routes its output but no attention"),
            None => ModelError::NoAttention,
        }
        .into());
    }
    let mut total = Vec::with_capacity(attention.leaves.len());
    for (i, leaf) in attention.leaves.iter().enumerate() {
        let block = attention
            .scores
            .get(i)
            .filter(|block| block.name == leaf.name)
            .ok_or_else(|| unrouted(&leaf.name, "routes its attention but not its output"))?;
        ModelError::check_rows(block.scores.dims(), picks.len())?;
        let (scores, _) = row_scores(to_f32(block.scores.clone()), picks)?; // [rows]
        total.push(scores.sum());
    }
    if let Some(extra) = attention.scores.get(attention.leaves.len()) {
        return Err(unrouted(&extra.name, "routes its output but no attention").into());
    }
    let total = Tensor::cat(total, 0).sum();
    if !total.is_tracked() {
        let name = &attention.leaves[0].name;
        return Err(unrouted(name, "has a score that does not depend on its attention").into());
    }
    Ok(total)
}

/// The second difference along the activation, over the logits' scale, above which a head
/// declared affine ([`GradCam::affine_after`]) is not taken for one: float32 rounding of an
/// affine head's `n`-term sums is at most `n 2^-24` of their terms' magnitudes, 1.2e-4 for
/// ResNet-50's 2048 channels.
const AFFINE_CHECK: f32 = 1.0 / 1024.0;

/// `h max|v|` of [`curvature`]'s difference: small enough for its `h^4` truncation, large enough
/// that float32 rounding of the gradients (`2^-24`, times `18 / 12h`) stays near `1e-5` of `S v`.
const CURVATURE_STEP: f32 = 1.0 / 32.0;

/// A score whose gradient in the logits is `S v`, `S` the Hessian of `score`, to fourth order in
/// `h`: `(f(z - 2hv) - 8 f(z - hv) + 8 f(z + hv) - f(z + 2hv)) / 12h`.
///
/// # Shapes
/// - `v`: `[1, classes]`
fn curvature(score: ScoreFn, v: Tensor<2>, h: f32) -> Target {
    Target::score(move |z: Tensor<2>| {
        let at = |steps: f32| score(z.clone() + v.clone() * (steps * h)); // [r]
        (at(-2.0) - at(2.0) + (at(1.0) - at(-1.0)) * 8.0) / (12.0 * h)
    })
}

/// A score with no curvature that still depends on the logits (a zero gradient, not a missing
/// one): for a target linear in the logits.
fn flat(z: Tensor<2>) -> Tensor<1> {
    let [rows, _] = z.dims();
    z.sum_dim(1).reshape([rows]) * 0.0
}
