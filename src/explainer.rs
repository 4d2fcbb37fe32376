//! The configuration, its init, and explain: forward to the layer without autodiff, backward
//! only through the rest when the method needs gradients, the method, then the shared
//! post-processing.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use burn::tensor::{DType, Device, FloatDType, Tensor};

use crate::capture::{Capture, CaptureProbe, Replace, repeat_rows};
use crate::error::{GradCamError, Result};
use crate::explanation::{ExplainedTarget, Explanation, LayerMap};
use crate::host::read;
use crate::methods::{CamMap, CamMethod, GradCam as GradCamMethod, LayerCapture, Rerun};
use crate::postprocess::{self, Normalization};
use crate::probe::{CamModel, LayerInfo, Probe};
use crate::target::{Resolved, Targets, resolve_classes, row_scores, score_rows};
use crate::weighted_sum::weighted_sum_unchecked;

/// Configuration of an explainer, in burn's `XConfig::new().with_..()` style.
///
/// ```
/// use gradcam::methods::{Method, ScoreCam};
/// use gradcam::{ExplainerConfig, Normalization};
///
/// let config = ExplainerConfig::new()
///     .with_layer("layer4")
///     .with_method(Method::HiResCam)
///     .with_relu(false)
///     .with_normalization(Normalization::None);
/// assert_eq!(config.layers, vec!["layer4".to_string()]);
/// assert_eq!(config.method.name(), "hires-cam");
///
/// // Methods with settings are configured themselves.
/// let score_cam = ExplainerConfig::new().with_method(ScoreCam::new().with_batch_size(64));
/// ```
#[derive(Clone)]
pub struct ExplainerConfig {
    /// The layers to explain, by the names the model announces. Empty: the model's
    /// [`default_layer`](crate::CamModel::default_layer) (its last layer unless it says
    /// otherwise).
    pub layers: Vec<String>,
    /// Apply the ReLU to the method's map (every method's default, and pytorch-grad-cam's only
    /// choice: keep only evidence *for* the target). With `false` the map keeps its negative
    /// evidence.
    pub relu: bool,
    /// How each map is scaled before upsampling.
    pub normalization: Normalization,
    /// The CAM method: Grad-CAM unless set.
    pub method: Arc<dyn CamMethod>,
}

impl fmt::Debug for ExplainerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExplainerConfig")
            .field("layers", &self.layers)
            .field("relu", &self.relu)
            .field("normalization", &self.normalization)
            .field("method", &self.method)
            .finish()
    }
}

impl Default for ExplainerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ExplainerConfig {
    /// The default: Grad-CAM at the model's default layer, ReLU on, min-max normalisation.
    pub fn new() -> Self {
        Self {
            layers: Vec::new(),
            relu: true,
            normalization: Normalization::MinMax,
            method: Arc::new(GradCamMethod),
        }
    }

    /// Explain this one layer.
    pub fn with_layer(mut self, layer: impl Into<String>) -> Self {
        self.layers = vec![layer.into()];
        self
    }

    /// Explain several layers in one pass; the fused heatmap averages them as pytorch-grad-cam
    /// does.
    pub fn with_layers<S: Into<String>>(mut self, layers: impl IntoIterator<Item = S>) -> Self {
        self.layers = layers.into_iter().map(Into::into).collect();
        self
    }

    /// Turn the ReLU on the method's map on or off.
    pub fn with_relu(mut self, relu: bool) -> Self {
        self.relu = relu;
        self
    }

    /// Choose the normalisation.
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// Choose the method: a [`Method`](crate::methods::Method) by name, a configured built-in
    /// such as [`ScoreCam`](crate::methods::ScoreCam), or your own [`CamMethod`].
    pub fn with_method(mut self, method: impl CamMethod + 'static) -> Self {
        self.method = Arc::new(method);
        self
    }

    /// Build an explainer for `model`.
    ///
    /// The explainer keeps `model.valid()`: a copy without autodiff and with every training
    /// flag off (BatchNorm uses its running statistics, dropout is off). `model` itself is not
    /// changed.
    ///
    /// # Errors
    /// [`GradCamError::UnknownLayer`] if a configured layer is not among `model.layers()`,
    /// [`GradCamError::RepeatedLayer`] if one is listed twice.
    pub fn init<M: CamModel>(&self, model: &M) -> Result<Explainer<M>> {
        let available = model.layers();
        let layers = if self.layers.is_empty() {
            match model.default_layer() {
                Some(layer) => vec![layer],
                None => {
                    return Err(GradCamError::UnknownLayer {
                        name: "<the default layer>".to_string(),
                        available,
                    });
                }
            }
        } else {
            self.layers.clone()
        };
        if let Some(name) = layers.iter().find(|name| !available.contains(name)) {
            return Err(GradCamError::UnknownLayer {
                name: name.clone(),
                available,
            });
        }
        if let Some((_, name)) = layers
            .iter()
            .enumerate()
            .find(|(i, name)| layers[..*i].contains(name))
        {
            return Err(GradCamError::RepeatedLayer { name: name.clone() });
        }
        let model = model.valid();
        let (device, dtype) = crate::parameters::device_and_dtype(&model).unzip();
        Ok(Explainer {
            model,
            config: Self {
                layers,
                ..self.clone()
            },
            device,
            dtype,
        })
    }
}

/// Explains a model with the configured CAM method. Built by [`ExplainerConfig::init`].
///
/// `Send + Sync` when the model is: one explainer can serve several threads at once.
#[derive(Debug)]
pub struct Explainer<M> {
    model: M,
    config: ExplainerConfig,
    device: Option<Device>,
    dtype: Option<DType>,
}

impl<M: CamModel> Explainer<M> {
    /// The configuration, with the default layer resolved.
    pub fn config(&self) -> &ExplainerConfig {
        &self.config
    }

    /// The model in validation mode, as the explainer runs it.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The layers the model announces, with their activation shapes for this input.
    ///
    /// # Shapes
    /// - `input`: `[n, c, h, w]`
    ///
    /// # Errors
    /// The input errors of [`Explainer::explain`], and [`GradCamError::ForwardPanicked`].
    pub fn layer_shapes(&self, input: Tensor<4>) -> Result<Vec<LayerInfo>> {
        let input = self.check_input(input)?;
        let mut probe = Probe::recorder();
        forward(&self.model, input, &mut probe)?;
        Ok(probe.into_recorded())
    }

    /// Explain `targets` for a batch of images: [`Explainer::capture`], then
    /// [`Explainer::explain_capture`], with one read back to the host at the end.
    ///
    /// One forward runs up to the first explained layer without autodiff. For methods that need
    /// gradients, the activation becomes a gradient leaf there (repeated once per target when
    /// there are several per image) and one backward runs through the rest of the network only;
    /// no parameter gets a gradient. The top prediction is found on the device, so the device
    /// never waits for the host in the middle of a call: the scores, classes and finiteness
    /// checks come back together, after the maps are computed.
    ///
    /// The model may hold `f16` (or `bf16`) parameters: the network runs in its dtype, and the
    /// scores, gradients, channel weights, weighted sum and normalisation are computed in `f32`
    /// from the activations and gradients cast at the layer. Maps are always `f32`.
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`
    /// - the explanation's maps are `[n, m, ..]` for `m` targets per image.
    ///
    /// # Errors
    /// An input that is empty, has the wrong shape, is too small, lives on another device or has
    /// another dtype than the model; a target count or class out of range; a model that breaks
    /// its contract or panics; NaN or infinity in the scores, gradients or maps: see
    /// [`GradCamError`].
    pub fn explain(&self, input: Tensor<4>, targets: &Targets) -> Result<Explanation> {
        let submitted = self.submit(input, targets)?;
        let host = read(submitted.values(false));
        submitted.finish(host).map(|(explanation, _)| explanation)
    }

    /// A forward and the method's computation for one batch, compiled ahead of time: run it
    /// once with the batch shape you will explain, before the first batch that counts. On
    /// `wgpu`/`vulkan` the first call of a shape compiles its kernels and autotunes them (tens
    /// of seconds on a large model); later calls of the same shapes reuse them, and CubeCL's
    /// autotune cache keeps the tuning for later processes (see docs/gpu.md).
    ///
    /// Returns how long the call took.
    ///
    /// # Shapes
    /// - `shape`: `[n, c, H, W]` of the batches to come
    ///
    /// # Errors
    /// As [`Explainer::explain`] for an input of zeros of that shape.
    pub fn warm_up(&self, shape: [usize; 4]) -> Result<std::time::Duration> {
        let start = std::time::Instant::now();
        let device = self.device.clone().unwrap_or_default();
        let input = match self.dtype {
            Some(dtype) => Tensor::<4>::zeros(shape, (&device, dtype)),
            None => Tensor::<4>::zeros(shape, &device),
        };
        let submitted = self.submit(input, &Targets::top1())?;
        let _ = read(submitted.values(true));
        Ok(start.elapsed())
    }

    /// The forward (and, when the method needs them, the backward) of [`Explainer::explain`]:
    /// the activations and gradients at the explained layers (in `f32`, whatever the model's
    /// dtype) and the resolved targets.
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`
    ///
    /// # Errors
    /// As [`Explainer::explain`].
    pub fn capture(&self, input: Tensor<4>, targets: &Targets) -> Result<Capture> {
        let (mut capture, checks) = self.capture_deferred(input, targets)?;
        let values = deferred_values(&capture, &checks, None);
        capture.targets = finish_checks(&capture, &checks, &read(values))?;
        Ok(capture)
    }

    /// Submit one batch: every device op of [`Explainer::explain`], nothing read back.
    pub(crate) fn submit(&self, input: Tensor<4>, targets: &Targets) -> Result<Submitted> {
        let (capture, mut checks) = self.capture_deferred(input, targets)?;
        let explanation = self.explain_layers(&capture)?;
        checks.extend(map_checks(&explanation)); // its targets are the capture's: empty so far
        Ok(Submitted {
            explanation,
            capture,
            checks,
        })
    }

    /// [`Explainer::capture`] without its read: the targets stay empty, and the sums to check
    /// for finiteness are returned beside it.
    fn capture_deferred(&self, input: Tensor<4>, targets: &Targets) -> Result<(Capture, Checks)> {
        let input = self.check_input(input)?; // [n, c, H, W]
        let [n, _, _, _] = input.dims();
        let (m, targets) = targets.resolve(n)?;
        let gradients = self.config.method.needs_gradients();

        let mut probe = Probe::capture(CaptureProbe::new(
            self.config.layers.clone(),
            n,
            m,
            gradients,
        ));
        let logits = forward(&self.model, input.clone(), &mut probe)?; // [n * m or n, classes]
        let captured = probe.into_capture().expect("a capture probe").finish();
        if let Some(name) = captured.duplicate {
            return Err(GradCamError::DuplicateLayer { name });
        }
        if let Some((name, got, expected)) = captured.batch_error {
            return Err(GradCamError::LayerBatch {
                name,
                got,
                expected,
            });
        }
        if let Some(name) = self
            .config
            .layers
            .iter()
            .find(|name| !captured.layers.iter().any(|c| &c.name == *name))
        {
            return Err(GradCamError::LayerNotReached { name: name.clone() });
        }
        let [rows, classes] = logits.dims();
        let expected_rows = if gradients { n * m } else { n };
        if rows != expected_rows {
            return Err(GradCamError::OutputShape {
                got: [rows, classes],
                expected_rows,
            });
        }
        if classes == 0 {
            return Err(GradCamError::ZeroClasses { rows });
        }

        let logits = to_f32(logits); // [n * m or n, classes]
        let resolved = resolve_classes(&targets, classes)?;
        let per_target_logits = if gradients {
            logits
        } else {
            repeat_rows(logits, m)
        }; // [n * m, classes]
        let (scores, classes_of) = row_scores(per_target_logits, &resolved)?; // [n * m] each
        let mut checks = vec![(
            "scores".to_string(),
            scores.clone().without_autodiff().sum(),
        )];

        let mut grads = None;
        if gradients {
            let objective = scores.clone().sum();
            if !objective.is_tracked() {
                // The scores do not depend on any explained layer: nothing to differentiate.
                return Err(GradCamError::NoGradient {
                    name: self.config.layers[0].clone(),
                });
            }
            grads = Some(objective.backward());
        }
        let mut layers = Vec::with_capacity(captured.layers.len());
        for layer in captured.layers {
            let gradients = match (&grads, layer.leaf) {
                (Some(grads), Some(leaf)) => {
                    let g = leaf.grad(grads).ok_or_else(|| GradCamError::NoGradient {
                        name: layer.name.clone(),
                    })?; // [n * m, k, h, w]
                    let [_, k, h, w] = g.dims();
                    let g = to_f32(g).reshape([n, m, k, h, w]);
                    checks.push((
                        format!("gradients of layer `{}`", layer.name),
                        g.clone().sum(),
                    ));
                    Some(g)
                }
                _ => None,
            };
            layers.push(LayerCapture {
                name: layer.name,
                activations: to_f32(layer.activations),
                gradients,
                targets_per_image: m,
            });
        }
        Ok((
            Capture {
                input,
                layers,
                targets: Vec::new(),
                scores: scores.without_autodiff().reshape([n, m]),
                resolved,
                classes: classes_of,
            },
            checks,
        ))
    }

    /// The configured method and the shared post-processing on a [`Capture`]: per layer the
    /// method's map (channel weights become `sum_k w_k A^k`), then ReLU, normalisation,
    /// upsampling, and the fusion of the layers.
    ///
    /// # Errors
    /// [`GradCamError::InvalidArgument`] if the method needs gradients the capture lacks (it was
    /// made for a gradient-free method) or returns maps of the wrong shape; the method's own
    /// errors; [`GradCamError::NonFinite`] if a map holds NaN or infinity.
    pub fn explain_capture(&self, capture: &Capture) -> Result<Explanation> {
        let explanation = self.explain_layers(capture)?;
        check_finite(map_checks(&explanation))?;
        Ok(explanation)
    }

    /// [`Explainer::explain_capture`] without the finiteness check (nothing read back).
    fn explain_layers(&self, capture: &Capture) -> Result<Explanation> {
        let method = &self.config.method;
        let [n, _, height, width] = capture.input.dims();
        let m = capture.scores.dims()[1];
        let rerun = Reruns {
            model: &self.model,
            capture,
            dtype: self.dtype,
            classes: OnceLock::new(),
        };
        let mut layers = Vec::with_capacity(capture.layers.len());
        for layer in &capture.layers {
            if method.needs_gradients() && layer.gradients.is_none() {
                return Err(GradCamError::invalid(format!(
                    "{} needs gradients, and this capture has none: capture with an explainer \
                     whose method needs them",
                    method.name()
                )));
            }
            let [_, k, h, w] = layer.activations.dims();
            let (weights, raw) = match method.compute(layer, &rerun)? {
                CamMap::Weights(weights) if weights.dims() == [n, m, k] => {
                    let raw = weighted_sum_unchecked(layer.activations.clone(), weights.clone());
                    (Some(weights), raw)
                }
                CamMap::Map(raw) if raw.dims() == [n, m, h, w] => (None, raw),
                other => {
                    return Err(GradCamError::invalid(format!(
                        "method {} returned {other:?} for activations {:?} and {m} targets per \
                         image; expected weights [{n}, {m}, {k}] or a map [{n}, {m}, {h}, {w}]",
                        method.name(),
                        [n, k, h, w]
                    )));
                }
            }; // raw: [n, m, h, w]
            let cam = postprocess::finish(raw.clone(), self.config.relu, self.config.normalization);
            let heatmap = postprocess::upsample(cam.clone(), [height, width]); // [n, m, H, W]
            layers.push(LayerMap {
                name: layer.name.clone(),
                weights,
                raw,
                cam,
                heatmap,
            });
        }
        let heatmap = postprocess::combine_layers(
            layers.iter().map(|l| l.heatmap.clone()).collect(),
            self.config.relu,
            self.config.normalization,
        );
        Ok(Explanation {
            layers,
            heatmap,
            targets: capture.targets.clone(),
        })
    }

    /// The input without autodiff, after every check the model's declarations allow.
    fn check_input(&self, input: Tensor<4>) -> Result<Tensor<4>> {
        let shape = input.dims();
        if let Some(axis) = shape.iter().position(|&d| d == 0) {
            return Err(GradCamError::EmptyInput { shape, axis });
        }
        let expected = self.model.input_shape();
        if expected
            .iter()
            .zip(&shape[1..])
            .any(|(want, got)| want.is_some_and(|want| want != *got))
        {
            let expected = expected
                .iter()
                .map(|d| d.map_or("_".to_string(), |d| d.to_string()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(GradCamError::InputShape {
                expected,
                got: shape,
            });
        }
        let min = self.model.min_input_size();
        if shape[2] < min[0] || shape[3] < min[1] {
            return Err(GradCamError::InputTooSmall {
                min,
                got: [shape[2], shape[3]],
            });
        }
        if let Some(device) = &self.device
            && input.device() != *device
        {
            return Err(GradCamError::DeviceMismatch {
                input: format!("{:?}", input.device()),
                model: format!("{device:?}"),
            });
        }
        if let Some(dtype) = self.dtype
            && input.dtype() != dtype
        {
            return Err(GradCamError::DTypeMismatch {
                input: input.dtype(),
                model: dtype,
            });
        }
        Ok(input.without_autodiff())
    }
}

/// Further forwards for Score-CAM and Ablation-CAM.
struct Reruns<'a, M> {
    model: &'a M,
    capture: &'a Capture,
    /// The model's float dtype: what the reruns' inputs and activations are cast to.
    dtype: Option<DType>,
    /// The capture's classes read back, the first time a top-prediction target needs its class.
    classes: OnceLock<Vec<f32>>,
}

impl<M: CamModel> Reruns<'_, M> {
    /// Each of image `image`'s targets on every row of `logits`, `[r, m]`: the top prediction
    /// stays the class the unperturbed image predicted.
    fn targets_of(&self, logits: Tensor<2>, image: usize, rows: usize) -> Result<Tensor<2>> {
        let got = logits.dims();
        if got[0] != rows {
            return Err(GradCamError::OutputShape {
                got,
                expected_rows: rows,
            });
        }
        let logits = to_f32(logits);
        let m = self.capture.scores.dims()[1];
        let scores = (image * m..(image + 1) * m)
            .map(|t| match &self.capture.resolved[t] {
                Resolved::Top => {
                    let classes = self
                        .classes
                        .get_or_init(|| read(self.capture.classes.clone()));
                    score_rows(logits.clone(), &Resolved::Class(classes[t] as usize))
                }
                target => score_rows(logits.clone(), target),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(scores, 1))
    }

    /// `x` in the model's float dtype.
    fn in_model_dtype(&self, x: Tensor<4>) -> Tensor<4> {
        match self.dtype {
            Some(dtype) if x.dtype() != dtype => x.cast(FloatDType::from(dtype)),
            _ => x,
        }
    }
}

impl<M: CamModel> Rerun for Reruns<'_, M> {
    fn input(&self) -> Tensor<4> {
        to_f32(self.capture.input.clone())
    }

    fn scores(&self, inputs: Tensor<4>, image: usize) -> Result<Tensor<2>> {
        let rows = inputs.dims()[0];
        let inputs = self.in_model_dtype(inputs);
        let logits = forward(self.model, inputs, &mut Probe::passthrough())?;
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
        let input = self.capture.input.clone().narrow(0, image, 1);
        let mut probe = Probe::replace(Replace::new(layer.to_string(), activations));
        let logits = forward(self.model, input, &mut probe)?;
        let replace = probe.into_replace().expect("a replacing probe");
        if let Some(shape) = replace.mismatch {
            return Err(GradCamError::invalid(format!(
                "the replacement for layer `{layer}` does not fit its activations [_, {}, {}, {}]",
                shape[0], shape[1], shape[2]
            )));
        }
        if !replace.done() {
            return Err(GradCamError::LayerNotReached {
                name: layer.to_string(),
            });
        }
        self.targets_of(logits, image, rows)
    }

    fn original_scores(&self) -> Tensor<2> {
        self.capture.scores.clone()
    }
}

/// The model's forward, with a panic inside it turned into [`GradCamError::ForwardPanicked`].
fn forward<M: CamModel>(model: &M, input: Tensor<4>, probe: &mut Probe) -> Result<Tensor<2>> {
    catch_unwind(AssertUnwindSafe(|| model.forward_probed(input, probe))).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        GradCamError::ForwardPanicked { message }
    })
}

/// Fail with [`GradCamError::NonFinite`] naming the first non-finite sum, reading all sums in
/// one transfer.
fn check_finite(sums: Checks) -> Result<()> {
    if sums.is_empty() {
        return Ok(());
    }
    let values = read(Tensor::cat(
        sums.iter().map(|(_, sum)| sum.clone()).collect(),
        0,
    ));
    first_non_finite(&sums, &values)
}

/// [`GradCamError::NonFinite`] naming the first check whose value read back is not finite.
fn first_non_finite(checks: &Checks, values: &[f32]) -> Result<()> {
    match checks.iter().zip(values).find(|(_, v)| !v.is_finite()) {
        Some(((what, _), _)) => Err(GradCamError::NonFinite { what: what.clone() }),
        None => Ok(()),
    }
}

/// `x` as `f32` (unchanged when it already is).
fn to_f32<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if x.dtype() == DType::F32 {
        x
    } else {
        x.cast(FloatDType::F32)
    }
}

/// Named one-value sums whose finiteness a call checks, in the order they are reported.
type Checks = Vec<(String, Tensor<1>)>;

/// The sums of every layer's map and of the fused heatmap.
fn map_checks(explanation: &Explanation) -> Checks {
    let mut sums: Checks = explanation
        .layers
        .iter()
        .map(|l| (format!("map of layer `{}`", l.name), l.raw.clone().sum()))
        .collect();
    sums.push((
        "fused heatmap".to_string(),
        explanation.heatmap.clone().sum(),
    ));
    sums
}

/// Everything a call reads back, in one `f32` tensor: the scores `[n * m]`, the classes
/// `[n * m]`, the checked sums, then (when given) the heatmap `[n * m * H * W]`.
fn deferred_values(capture: &Capture, checks: &Checks, heatmap: Option<Tensor<4>>) -> Tensor<1> {
    let mut parts = vec![
        capture.scores.clone().flatten::<1>(0, 1),
        capture.classes.clone(),
    ];
    parts.extend(checks.iter().map(|(_, sum)| sum.clone()));
    parts.extend(heatmap.map(|h| h.flatten::<1>(0, 3)));
    Tensor::cat(parts, 0)
}

/// The targets from the values of [`deferred_values`], after the finiteness checks.
fn finish_checks(
    capture: &Capture,
    checks: &Checks,
    host: &[f32],
) -> Result<Vec<Vec<ExplainedTarget>>> {
    let targets = capture.resolved.len();
    let m = capture.scores.dims()[1];
    let (scores, rest) = host.split_at(targets);
    let (classes, sums) = rest.split_at(targets);
    first_non_finite(checks, sums)?;
    let explained = capture
        .resolved
        .iter()
        .zip(scores.iter().zip(classes))
        .map(|(target, (&score, &class))| ExplainedTarget {
            class: match target {
                Resolved::Score(_) => None,
                Resolved::Class(_) | Resolved::Top => Some(class as usize),
            },
            score,
        })
        .collect::<Vec<_>>();
    Ok(explained.chunks(m).map(<[_]>::to_vec).collect())
}

/// One batch submitted to the device, its results not read yet.
pub(crate) struct Submitted {
    explanation: Explanation,
    capture: Capture,
    checks: Checks,
}

impl Submitted {
    /// The one tensor to read back: scores, classes, checks, and the heatmap when asked for.
    pub(crate) fn values(&self, heatmap: bool) -> Tensor<1> {
        let heatmap = heatmap.then(|| self.explanation.heatmap.clone());
        deferred_values(&self.capture, &self.checks, heatmap)
    }

    /// The explanation from the values read back, with the heatmap's values when they were.
    pub(crate) fn finish(self, host: Vec<f32>) -> Result<(Explanation, Vec<f32>)> {
        let mut explanation = self.explanation;
        explanation.targets = finish_checks(&self.capture, &self.checks, &host)?;
        let head = 2 * self.capture.resolved.len() + self.checks.len();
        let heatmap = host.get(head..).map(<[f32]>::to_vec).unwrap_or_default();
        Ok((explanation, heatmap))
    }
}
