//! Deep Feature Factorization (Collins, Achanta and Süsstrunk, "Deep Feature Factorization for
//! Concept Discovery", ECCV 2018, [arXiv:1806.10206](https://arxiv.org/abs/1806.10206)), as
//! pytorch-grad-cam's `DeepFeatureFactorization`: a non-negative matrix factorisation of a
//! layer's activations over the whole batch into `k` concepts, each a channel vector with one map
//! per image. No target and no gradient: the maps say where each concept is, not what the model
//! predicts from it (run the model's classifier on [`Factorization::concepts`] for that).

use burn::tensor::{DType, Tensor, TensorData};
use nalgebra::DMatrix;

use crate::capture::capture;
use crate::error::{GradCamError, ModelError, Result};
use crate::explainer::Explainer;
use crate::host::read_finite;
use crate::model::GradCam;
use crate::nmf::{factorize, random_start};
use crate::postprocess::{normalize_min_max, upsample};
use crate::target::Targets;

/// The settings of [`Explainer::factorize`]: scikit-learn's `NMF` defaults, pytorch-grad-cam's
/// 16 concepts unless [`new`](Self::new) says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorizationConfig {
    /// `k`, the concepts (at least 1).
    pub components: usize,
    /// The seed of the random start (scikit-learn's `init='random'`, drawn from our stream).
    pub seed: u64,
    /// Sweeps at most (scikit-learn's `max_iter`, 200).
    pub max_iterations: usize,
    /// Stop once a sweep's projected gradient is this fraction of the first's (`tol`, 1e-4).
    pub tolerance: f64,
}

impl FactorizationConfig {
    /// `components` concepts, seed 0, at most 200 sweeps, tolerance 1e-4.
    pub fn new(components: usize) -> Self {
        Self {
            components,
            seed: 0,
            max_iterations: 200,
            tolerance: 1e-4,
        }
    }

    /// The seed of the random start.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sweeps at most (at least 1).
    pub fn with_max_iterations(mut self, max_iterations: usize) -> Self {
        self.max_iterations = max_iterations;
        self
    }

    /// The stopping tolerance.
    pub fn with_tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Factorise activations: each channel's values over the batch's pixels, shifted by their
    /// minimum to be non-negative, form `X` (`[c, n h w]`); `X ~ W H` by non-negative
    /// coordinate descent (scikit-learn's solver `cd`) from a seeded start; the concepts are `W` plus the shift,
    /// the maps `H`. As pytorch-grad-cam's `dff`, except that NaN is an error (it sets NaN to 0).
    ///
    /// # Shapes
    /// - `activations`: `[n, c, h, w]`
    ///
    /// # Errors
    /// [`InputError::Argument`](crate::InputError::Argument) for 0 components or 0 sweeps;
    /// [`NumericalError::NonFinite`](crate::NumericalError::NonFinite) if an activation is NaN or
    /// infinite.
    pub fn factorize(&self, activations: Tensor<4>) -> Result<Factorization> {
        if self.components == 0 || self.max_iterations == 0 {
            return Err(GradCamError::argument(
                "deep feature factorization needs at least 1 component and 1 sweep",
            ));
        }
        let [n, c, h, w] = activations.dims();
        let device = activations.device().without_autodiff();
        let values = read_finite(activations, "activations to factorize")?; // [n, c, h, w]
        let p = h * w;
        let value = |ch: usize, j: usize| values[((j / p) * c + ch) * p + j % p];
        let offsets: Vec<f32> = (0..c)
            .map(|ch| {
                (0..n * p)
                    .map(|j| value(ch, j))
                    .fold(f32::INFINITY, f32::min)
            })
            .collect();
        // X[channel, image * p + pixel], each row shifted to a minimum of 0 in f32, as
        // pytorch-grad-cam shifts its f32 activations (the same X, so the same factors).
        let x = DMatrix::<f64>::from_fn(c, n * p, |ch, j| f64::from(value(ch, j) - offsets[ch]));
        let k = self.components;
        let (w0, h0) = random_start(&x, k, self.seed);
        let nmf = factorize(&x, w0, h0, self.tolerance, self.max_iterations);
        // concepts[t, channel] = W[channel, t] + offset[channel]
        let concepts: Vec<f32> = (0..k)
            .flat_map(|t| (0..c).map(move |ch| (t, ch)))
            .map(|(t, ch)| (nmf.w[(ch, t)] + f64::from(offsets[ch])) as f32)
            .collect();
        // maps[image, t, pixel] = H[t, image * p + pixel]
        let maps: Vec<f32> = (0..n * k * p)
            .map(|i| {
                let (image, t, pixel) = (i / (k * p), i / p % k, i % p);
                nmf.h[(t, image * p + pixel)] as f32
            })
            .collect();
        let options = (&device, DType::F32);
        Ok(Factorization {
            concepts: Tensor::from_data(TensorData::new(concepts, [k, c]), options),
            layer_maps: Tensor::from_data(TensorData::new(maps, [n, k, h, w]), options),
            iterations: nmf.iterations,
        })
    }
}

/// The concepts of a batch and where each image holds them.
#[derive(Debug, Clone)]
pub struct Factorization {
    /// One channel vector per concept, `[k, c]`: what a classifier head takes (pytorch-grad-cam's
    /// `concepts`, transposed).
    pub concepts: Tensor<2>,
    /// Each concept's map in each image at the layer's resolution, unnormalised: `[n, k, h, w]`.
    pub layer_maps: Tensor<4>,
    /// The sweeps the factorisation ran.
    pub iterations: usize,
}

impl Factorization {
    /// The maps as pytorch-grad-cam shows them: each min-max normalised, then upsampled
    /// bilinearly to `size` (its `scale_cam_image`).
    ///
    /// # Shapes
    /// - returns `[n, k, size[0], size[1]]`
    pub fn maps(&self, size: [usize; 2]) -> Tensor<4> {
        upsample(normalize_min_max(self.layer_maps.clone()), size)
    }
}

impl<M: GradCam> Explainer<M> {
    /// Deep Feature Factorization of the explained layer for a batch: one forward (no backward,
    /// no target), then [`FactorizationConfig::factorize`] of the layer's activations on the
    /// host. Its maps at the input's size are [`Factorization::maps`]`([H, W])`.
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`
    ///
    /// # Errors
    /// [`InputError::Argument`](crate::InputError::Argument) if the explainer explains several
    /// layers (a factorisation is of one); the input and model errors of
    /// [`Explainer::explain`]; those of [`FactorizationConfig::factorize`].
    pub fn factorize(
        &self,
        input: Tensor<4>,
        config: &FactorizationConfig,
    ) -> Result<Factorization> {
        let input = self.check_input(input)?; // [n, c, H, W]
        let layers = self.layers_for(&input)?;
        if layers.len() != 1 {
            return Err(GradCamError::argument(format!(
                "deep feature factorization factorizes one layer and the explainer has {} ({}): \
                 configure one with ExplainerConfig::with_layer",
                layers.len(),
                layers.join(", ")
            )));
        }
        let captured = capture(self.model(), layers, false, input, &Targets::top(1))?;
        // The capture holds every layer it was asked for, or failed with LayerNotReached.
        match captured.layers.into_iter().next() {
            Some(layer) => config.factorize(layer.activations),
            None => Err(ModelError::LayerNotReached {
                name: layers[0].clone(),
            }
            .into()),
        }
    }
}
