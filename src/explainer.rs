//! The explainer's API: check the input, capture (forward, cut, backward), compute the maps, read
//! back once.

use std::sync::OnceLock;

use burn::tensor::{DType, Device, Tensor};

use crate::capture::{self, Capture, DeviceCapture};
use crate::checks::Checks;
use crate::config::ExplainerConfig;
use crate::error::{InputError, ModelError, Result};
use crate::explanation::Explanation;
use crate::forward::forward;
use crate::host::read;
use crate::maps::{Maps, layer_maps};
use crate::model::GradCam;
use crate::parameters::device_and_dtype;
use crate::probe::{LayerInfo, Probe};
use crate::readback::{Pending, Readback};
use crate::rerun::{RankedClasses, Reruns};
use crate::target::Targets;

impl ExplainerConfig {
    /// Build an explainer for `model`.
    ///
    /// The explainer keeps `model.valid()`: a copy without autodiff and with every training
    /// flag off (BatchNorm uses its running statistics, dropout is off). `model` itself is not
    /// changed.
    ///
    /// A model that declares its layers (`GradCam::layers`) has them checked here; one that does
    /// not has them found in its first call's forward (see [`GradCam::layers`]).
    ///
    /// # Errors
    /// [`InputError::UnknownLayer`] if a configured layer is not among `model.layers()`,
    /// [`InputError::RepeatedLayer`] if one is listed twice, [`InputError::NoLayer`] if none is
    /// configured and the model has no default.
    pub fn init<M: GradCam>(&self, model: &M) -> Result<Explainer<M>> {
        let declared = model.layers();
        let layers = OnceLock::new();
        let mut config = self.clone();
        if !declared.is_empty() {
            let resolved = self.resolve_layers(declared, model.default_layer())?;
            config.layers = resolved.clone();
            let _ = layers.set(resolved);
        }
        let model = model.valid();
        let (device, dtype) = device_and_dtype(&model).unzip();
        Ok(Explainer {
            model,
            config,
            layers,
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
    /// The layers explained: resolved at init for a model that declares its layers, at the
    /// first call otherwise.
    layers: OnceLock<Vec<String>>,
    device: Option<Device>,
    dtype: Option<DType>,
}

impl<M: GradCam> Explainer<M> {
    /// The configuration, with the default layer resolved (for a model that does not declare
    /// its layers, once the first call has found them: see [`Explainer::layers`]).
    pub fn config(&self) -> &ExplainerConfig {
        &self.config
    }

    /// The layers explained, once known: at init for a model that declares its layers, after
    /// the first call for one whose layers are found in its forward.
    pub fn layers(&self) -> Option<&[String]> {
        self.layers.get().map(Vec::as_slice)
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
    /// The input errors of [`Explainer::explain`], and [`ModelError::ForwardPanicked`].
    pub fn layer_shapes(&self, input: Tensor<4>) -> Result<Vec<LayerInfo>> {
        let input = self.check_input(input)?;
        let mut layers = Vec::new();
        forward(&self.model, input, &mut Probe::recording(&mut layers))
            .map_err(|message| ModelError::ForwardPanicked { message })?;
        Ok(layers)
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
    /// With [`ExplainerConfig::with_aug_smooth`] the heatmap averages six augmented calls (the
    /// layers' maps and the targets are the unaugmented input's); with
    /// [`ExplainerConfig::with_sess`] it is SESS's fusion of patches (the same holds).
    ///
    /// # Errors
    /// An input that is empty, has the wrong shape, is too small, lives on another device or has
    /// another dtype than the model; a target count or class out of range; a model that breaks
    /// its contract or panics; NaN or infinity in the scores, gradients or maps: see
    /// [`GradCamError`](crate::GradCamError).
    pub fn explain(&self, input: Tensor<4>, targets: &Targets) -> Result<Explanation> {
        if self.config.aug_smooth {
            return self.explain_aug_smoothed(input, targets);
        }
        self.explain_unaugmented(input, targets)
    }

    /// [`Explainer::explain`] of `input` as it is: with SESS if configured, else one call.
    pub(crate) fn explain_unaugmented(
        &self,
        input: Tensor<4>,
        targets: &Targets,
    ) -> Result<Explanation> {
        match &self.config.sess {
            Some(sess) => self.explain_sess(sess, input, targets),
            None => self.explain_once(input, targets),
        }
    }

    /// One call of [`Explainer::explain`] on `input` as it is (no augmentation smoothing, no
    /// SESS).
    pub(crate) fn explain_once(&self, input: Tensor<4>, targets: &Targets) -> Result<Explanation> {
        let pending = self.submit(input, targets)?;
        let host = read(pending.values(false));
        pending.finish(host).map(|(explanation, _)| explanation)
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
        let pending = self.submit(input, &Targets::top(1))?;
        let _ = read(pending.values(true));
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
        let capture = self.capture_on_device(input, targets)?;
        let readback = Readback::new(&capture, &capture.checks);
        let (targets, _) = readback.targets(&read(readback.values(None)))?;
        Ok(capture.read(targets))
    }

    /// The configured method and the shared post-processing on a [`Capture`]: per layer the
    /// method's map (channel weights become `sum_k w_k A^k`), then ReLU, normalisation,
    /// upsampling, and the fusion of the layers.
    ///
    /// # Errors
    /// [`InputError::CaptureWithoutGradients`] if the method needs gradients the capture lacks
    /// (it was made for a gradient-free method); the method's own errors, and
    /// [`GradCamError::Method`](crate::GradCamError::Method) if it returns maps of the wrong
    /// shape; [`NumericalError::NonFinite`](crate::NumericalError::NonFinite) if a map holds NaN
    /// or infinity; [`InputError::Argument`] with
    /// [`ExplainerConfig::with_aug_smooth`] or [`ExplainerConfig::with_sess`] (a capture holds
    /// one input; they explain several).
    pub fn explain_capture(&self, capture: &Capture) -> Result<Explanation> {
        if self.config.explains_other_inputs() {
            return Err(InputError::Argument {
                what: "augmentation smoothing and SESS explain other inputs than the captured \
                       one: call explain, or turn aug_smooth and sess off for explain_capture"
                    .into(),
            }
            .into());
        }
        let rerun = self.reruns(
            &capture.input,
            &capture.scores,
            &capture.resolved,
            RankedClasses::Read(&capture.targets),
        );
        let maps = self.maps(&capture.input, &capture.layers, &rerun)?;
        Checks::of_maps(&maps).read_and_verify()?;
        Ok(maps.explain(capture.targets.clone()))
    }

    /// Submit one batch: every device op of [`Explainer::explain`], nothing read back.
    pub(crate) fn submit(&self, input: Tensor<4>, targets: &Targets) -> Result<Pending> {
        let capture = self.capture_on_device(input, targets)?;
        let rerun = self.reruns(
            &capture.input,
            &capture.scores,
            &capture.resolved,
            RankedClasses::OnDevice(&capture.classes, Default::default()),
        );
        let maps = self.maps(&capture.input, &capture.layers, &rerun)?;
        let mut checks = capture.checks.clone();
        checks.extend(Checks::of_maps(&maps));
        Ok(Pending {
            capture,
            maps,
            checks,
        })
    }

    /// The capture of a checked input, nothing read back.
    fn capture_on_device(&self, input: Tensor<4>, targets: &Targets) -> Result<DeviceCapture> {
        let input = self.check_input(input)?; // [n, c, H, W]
        let layers = self.layers_for(&input)?;
        capture::capture(
            &self.model,
            layers,
            self.config.method.needs_gradients(),
            input,
            targets,
        )
    }

    /// The layers to explain: known, or found in a forward of `input`'s first image (the names
    /// the probe sees, in order; the last is the default) and kept.
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`, checked
    pub(crate) fn layers_for(&self, input: &Tensor<4>) -> Result<&[String]> {
        if let Some(layers) = self.layers.get() {
            return Ok(layers);
        }
        let mut seen = Vec::new();
        forward(
            &self.model,
            input.clone().narrow(0, 0, 1),
            &mut Probe::recording(&mut seen),
        )
        .map_err(|message| ModelError::ForwardPanicked { message })?;
        let available: Vec<String> = seen.into_iter().map(|layer| layer.name).collect();
        let default = available.last().cloned();
        let layers = self.config.resolve_layers(available, default)?;
        Ok(self.layers.get_or_init(|| layers))
    }

    /// The further forwards of a capture, for the methods that need them.
    fn reruns<'a>(
        &'a self,
        input: &'a Tensor<4>,
        scores: &'a Tensor<2>,
        resolved: &'a [crate::target::Resolved],
        ranked: RankedClasses<'a>,
    ) -> Reruns<'a, M> {
        Reruns {
            model: &self.model,
            input,
            scores,
            resolved,
            ranked,
            dtype: self.dtype,
            method: self.config.method.name(),
        }
    }

    /// The method's maps of captured layers.
    fn maps(
        &self,
        input: &Tensor<4>,
        layers: &[crate::methods::LayerCapture],
        rerun: &Reruns<'_, M>,
    ) -> Result<Maps> {
        let [_, _, height, width] = input.dims();
        layer_maps(&self.config, layers, [height, width], rerun)
    }

    /// The input without autodiff, after every check the model's declarations allow.
    pub(crate) fn check_input(&self, input: Tensor<4>) -> Result<Tensor<4>> {
        let shape = input.dims();
        if let Some(axis) = shape.iter().position(|&d| d == 0) {
            return Err(InputError::EmptyInput { shape, axis }.into());
        }
        let expected = self.model.input_shape();
        if expected
            .iter()
            .zip(&shape[1..])
            .any(|(want, got)| want.is_some_and(|want| want != *got))
        {
            return Err(InputError::InputShape {
                expected,
                got: shape,
            }
            .into());
        }
        let min = self.model.min_input_size();
        if shape[2] < min[0] || shape[3] < min[1] {
            return Err(InputError::InputTooSmall {
                min,
                got: [shape[2], shape[3]],
            }
            .into());
        }
        if let Some(device) = &self.device
            && input.device() != *device
        {
            return Err(InputError::DeviceMismatch {
                input: format!("{:?}", input.device()),
                model: format!("{device:?}"),
            }
            .into());
        }
        if let Some(dtype) = self.dtype
            && input.dtype() != dtype
        {
            return Err(InputError::DTypeMismatch {
                input: input.dtype(),
                model: dtype,
            }
            .into());
        }
        Ok(input.without_autodiff())
    }
}
