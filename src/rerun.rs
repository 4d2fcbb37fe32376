//! Further forwards of the model for the methods that score perturbed inputs or activations
//! (Score-CAM, Ablation-CAM): the explainer's implementation of [`Rerun`].

use std::sync::OnceLock;

use burn::tensor::{DType, FloatDType, Tensor};

use crate::capture::{capture, score, to_f32};
use crate::error::{ModelError, Result};
use crate::explanation::ExplainedTarget;
use crate::forward::forward;
use crate::host::read;
use crate::methods::{BiasGradient, BiasGradients, Rerun};
use crate::model::GradCam;
use crate::probe::{Probe, Replace, repeat_rows};
use crate::target::{Resolved, Target, Targets, score_rows};

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
        let got = logits.dims();
        if got[0] != rows {
            return Err(ModelError::OutputShape {
                got,
                expected_rows: rows,
            }
            .into());
        }
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
        let activations = self.in_model_dtype(activations);
        let input = self.input.clone().narrow(0, image, 1);
        let mut replace = Replace::new(layer.to_string(), activations);
        let logits = self.forward(input, &mut Probe::replacing(&mut replace))?;
        replace.finish(self.method)?;
        self.targets_of(logits, image, rows)
    }

    fn original_scores(&self) -> Tensor<2> {
        self.scores.clone()
    }

    fn bias_gradients(&self) -> Result<BiasGradients> {
        let [n, c, height, width] = self.input.dims();
        let [_, m] = self.scores.dims();
        let input = self.in_model_dtype(self.input.clone());
        let leaf = repeat_rows(input, m).autodiff().require_grad(); // [n * m, c, H, W]
        let mut leaves = Vec::new();
        let logits = self.forward(leaf.clone(), &mut Probe::keeping_biases(&mut leaves))?;
        // Row `t` is image `t / m` for its target `t % m`.
        let targets: Vec<Target> = (0..n * m).map(|t| self.fixed_target(t, m)).collect();
        let scores = match score(logits.clone(), &targets, [n, m], true, "the input") {
            Ok((scores, ..)) => scores, // [n * m]
            Err(error) => {
                // Free the graph the forward built (only a backward does).
                let _ = logits.sum().backward();
                return Err(error);
            }
        };
        let grads = scores.sum().backward();
        if leaves.is_empty() {
            return Err(ModelError::NoBiases.into());
        }
        let gradient = |leaf: &Tensor<4>| -> Tensor<4> {
            leaf.grad(&grads)
                .map(to_f32)
                .unwrap_or_else(|| Tensor::zeros(leaf.dims(), &leaf.device().without_autodiff()))
        };
        let input = gradient(&leaf).reshape([n, m, c, height, width]);
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

    fn gradients(&self, layer: &str, inputs: Tensor<4>, image: usize) -> Result<Tensor<5>> {
        let [_, m] = self.scores.dims();
        let targets = (image * m..(image + 1) * m).map(|t| self.fixed_target(t, m));
        let inputs = self.in_model_dtype(inputs); // [r, c, H, W]
        let layers = [layer.to_string()];
        let captured = capture(
            self.model,
            &layers,
            true,
            inputs,
            &Targets::every_image(targets),
        )?;
        let [layer] = layers;
        captured
            .layers
            .into_iter()
            .next()
            .and_then(|captured| captured.gradients)
            .ok_or_else(|| ModelError::NoGradient { name: layer }.into())
    }
}
