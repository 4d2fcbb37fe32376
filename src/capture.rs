//! Building a [`Capture`]: the forward without autodiff up to the first explained layer, the cut
//! there (rows repeated once per target), the targets scored on the device, and the backward
//! through the layers after the cut when the method needs gradients.

use burn::tensor::{DType, FloatDType, Gradients, Tensor};

use crate::checks::Checks;
use crate::error::{GradCamError, ModelError, Result};
use crate::explanation::ExplainedTarget;
use crate::forward::forward;
use crate::methods::LayerCapture;
use crate::model::GradCam;
use crate::probe::{CapturedLayer, Cut, Probe, repeat_rows};
use crate::target::{Resolved, Target, Targets, resolve_classes, row_scores};

/// One forward (and backward) through the model: what every method needs, captured once.
///
/// Made by [`Explainer::capture`](crate::Explainer::capture); turned into maps by
/// [`Explainer::explain_capture`](crate::Explainer::explain_capture), by any explainer whose
/// method needs no more than the capture holds. Several methods can share one capture.
#[derive(Clone)]
pub struct Capture {
    /// The input batch, `[n, c, H, W]`, without autodiff.
    pub input: Tensor<4>,
    /// The explained layers in forward order.
    pub layers: Vec<LayerCapture>,
    /// `[n][m]`: what each image's targets resolved to, with their scores.
    pub targets: Vec<Vec<ExplainedTarget>>,
    /// The targets' scores, `[n, m]`, without autodiff.
    pub scores: Tensor<2>,
    /// The targets as resolved against the model's classes, `n * m`.
    pub(crate) resolved: Vec<Resolved>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("input", &self.input.dims())
            .field("layers", &self.layers)
            .field("targets", &self.targets)
            .finish()
    }
}

/// A capture still on the device: nothing has been read back, so the classes that ranks
/// resolved to are a tensor, and the sums to check for finiteness are pending.
pub(crate) struct DeviceCapture {
    /// `[n, c, H, W]`, without autodiff.
    pub input: Tensor<4>,
    pub layers: Vec<LayerCapture>,
    /// `[n, m]`, without autodiff.
    pub scores: Tensor<2>,
    /// `n * m`, the targets of one image together.
    pub resolved: Vec<Resolved>,
    /// Each target's class, `[n * m]` as `f32`, read with [`Resolved::class`].
    pub classes: Tensor<1>,
    /// The scores' and gradients' sums.
    pub checks: Checks,
}

impl DeviceCapture {
    /// The capture with its targets read back.
    pub fn read(self, targets: Vec<Vec<ExplainedTarget>>) -> Capture {
        Capture {
            input: self.input,
            layers: self.layers,
            targets,
            scores: self.scores,
            resolved: self.resolved,
        }
    }
}

/// Capture `layers` of `model` for `input` and `targets`: activations always, gradients when
/// `gradients` (then one backward runs through the layers after the first of them).
///
/// # Shapes
/// - `input`: `[n, c, H, W]`, checked, without autodiff
///
/// # Errors
/// The targets' errors, and the model's contract violations: see [`GradCamError`].
pub(crate) fn capture<M: GradCam>(
    model: &M,
    layers: &[String],
    gradients: bool,
    input: Tensor<4>,
    targets: &Targets,
) -> Result<DeviceCapture> {
    let [n, _, _, _] = input.dims();
    let (m, targets) = targets.resolve(n)?;
    let mut cut = Cut::new(layers.to_vec(), n, m, gradients);
    let logits = match forward(model, input.clone(), &mut Probe::cutting(&mut cut)) {
        Ok(logits) => logits, // [n * m or n, classes]
        Err(message) => return Err(forward_panicked(&cut, message)),
    };
    let captured = cut.finish()?;
    // Until the backward runs, the autodiff graph from the cut to the logits is alive in Burn's
    // graph registry; only a backward frees it. A call that fails in between runs it anyway.
    let scored = score(logits.clone(), &targets, [n, m], gradients, &layers[0]);
    let (scores, classes, resolved) = match scored {
        Ok(scored) => scored,
        Err(error) => {
            free_graph(logits);
            return Err(error);
        }
    };
    let mut checks = Checks::new();
    checks.push("scores", scores.clone().without_autodiff().sum());
    let grads = gradients.then(|| scores.clone().sum().backward());
    let mut captures = Vec::with_capacity(captured.len());
    for CapturedLayer {
        name,
        activations,
        leaf,
    } in captured
    {
        let gradients = match (&grads, leaf) {
            (Some(grads), Some(leaf)) => {
                let g = leaf
                    .grad(grads)
                    .ok_or_else(|| ModelError::NoGradient { name: name.clone() })?; // [n * m, k, h, w]
                let [_, k, h, w] = g.dims();
                let g = to_f32(g).reshape([n, m, k, h, w]);
                checks.push(format!("gradients of layer `{name}`"), g.clone().sum());
                Some(g)
            }
            _ => None,
        };
        captures.push(LayerCapture {
            name,
            activations: to_f32(activations),
            gradients,
            targets_per_image: m,
        });
    }
    Ok(DeviceCapture {
        input,
        layers: captures,
        scores: scores.without_autodiff().reshape([n, m]),
        resolved,
        classes,
        checks,
    })
}

/// One forward and backward of the whole model for every image and target (guided
/// backpropagation, FullGrad): the input repeated once per target as the gradient leaf, the
/// forward under `probe`, each row scored by its target, one backward.
pub(crate) struct WholePass {
    /// `[n * m, c, H, W]`, the gradient leaf.
    pub leaf: Tensor<4>,
    pub grads: Gradients,
    /// `[n * m]`, with autodiff.
    pub scores: Tensor<1>,
    /// `[n * m]` as `f32`, read with [`Resolved::class`].
    pub classes: Tensor<1>,
    pub resolved: Vec<Resolved>,
}

/// [`WholePass`] of `input` (`[n, c, H, W]`, in the model's dtype, without autodiff) for
/// `targets` (`n * m`, one image's together).
pub(crate) fn whole_pass<M: GradCam>(
    model: &M,
    input: Tensor<4>,
    targets: &[Target],
    m: usize,
    probe: &mut Probe<'_>,
) -> Result<WholePass> {
    let [n, _, _, _] = input.dims();
    let leaf = repeat_rows(input, m).autodiff().require_grad(); // [n * m, c, H, W]
    let logits = forward(model, leaf.clone(), probe)
        .map_err(|message| ModelError::ForwardPanicked { message })?; // [n * m, classes]
    let (scores, classes, resolved) =
        match score(logits.clone(), targets, [n, m], true, "the input") {
            Ok(scored) => scored,
            Err(error) => {
                free_graph(logits);
                return Err(error);
            }
        };
    let grads = scores.clone().sum().backward();
    Ok(WholePass {
        leaf,
        grads,
        scores,
        classes,
        resolved,
    })
}

/// Free the autodiff graph of a forward that will not be differentiated: until a backward runs,
/// it stays alive in Burn's graph registry, and only a backward frees it.
pub(crate) fn free_graph(logits: Tensor<2>) {
    if logits.is_tracked() {
        let _ = logits.sum().backward();
    }
}

/// The logits checked and scored: each target's score `[n * m]` (differentiable with
/// gradients), its class `[n * m]`, and the targets resolved.
///
/// # Shapes
/// - `logits`: `[n * m, classes]` with gradients, `[n, classes]` without
pub(crate) fn score(
    logits: Tensor<2>,
    targets: &[Target],
    [n, m]: [usize; 2],
    gradients: bool,
    first_layer: &str,
) -> Result<(Tensor<1>, Tensor<1>, Vec<Resolved>)> {
    let [rows, classes] = logits.dims();
    ModelError::check_rows([rows, classes], if gradients { n * m } else { n })?;
    if classes == 0 {
        return Err(ModelError::ZeroClasses { rows }.into());
    }
    let resolved = resolve_classes(targets, classes)?;
    let logits = to_f32(logits); // [n * m or n, classes]
    let per_target = if gradients {
        logits
    } else {
        repeat_rows(logits, m)
    }; // [n * m, classes]
    let (scores, classes) = row_scores(per_target, &resolved)?; // [n * m] each
    if gradients && !scores.is_tracked() {
        // The scores do not depend on any explained layer: nothing to differentiate.
        return Err(ModelError::NoGradient {
            name: first_layer.to_string(),
        }
        .into());
    }
    Ok((scores, classes, resolved))
}

/// The error for a forward that panicked: the contract violation the probe saw first, a missing
/// [`Probe::carry`] when the rows had been repeated, or the panic itself.
fn forward_panicked(cut: &Cut, message: String) -> GradCamError {
    if let Some(error) = cut.error() {
        return error.clone().into();
    }
    match cut.repeated_at() {
        Some((layer, targets)) => ModelError::MissingCarry {
            layer: layer.to_string(),
            targets,
            message,
        },
        None => ModelError::ForwardPanicked { message },
    }
    .into()
}

/// `x` as `f32` (unchanged when it already is).
pub(crate) fn to_f32<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() == DType::F32 {
        x
    } else {
        x.cast(FloatDType::F32)
    }
}
