//! The CAM methods, each one small file over one seam: [`CamMethod`].
//!
//! The explainer runs the forward (and the backward, for methods that need gradients), hands
//! each explained layer to the method as a [`LayerCapture`], and post-processes what comes back
//! the same way for every method: ReLU switch, normalisation, upsampling, layer fusion. A method
//! returns channel weights, which the explainer turns into `sum_k w_k A^k` with one device
//! kernel, per-pixel channel contributions, which it sums over the channels, or a map of its own.
//! Eigen smoothing (pytorch-grad-cam's `eigen_smooth`) replaces the channel sum of the first two
//! by the first principal component of the same contributions.
//!
//! | method | map | passes |
//! |---|---|---|
//! | [`GradCam`] | `sum_k mean_ij(G_k) A_k` | forward + partial backward |
//! | [`GradCamPlusPlus`] | `sum_k (sum_ij alpha_kij ReLU(G_kij)) A_k` | same |
//! | [`XGradCam`] | `sum_k (sum_ij G_k A_k / (sum_ij A_k + 1e-7)) A_k` | same |
//! | [`HiResCam`] | `sum_k G_k (.) A_k` | same |
//! | [`ElementWiseGradCam`] | `sum_k ReLU(G_k (.) A_k)` | same |
//! | [`LayerCam`] | `sum_k ReLU(G_k) (.) A_k` | same |
//! | [`EigenCam`] | first principal component of `A` | forward only |
//! | [`EigenGradCam`] | first principal component of `G (.) A` | forward + partial backward |
//! | [`ScoreCam`] | `sum_k softmax_k(score(x (.) M_k)) A_k` | 1 + k forwards per image |
//! | [`AblationCam`] | `sum_k (y - y_k) / y A_k` | forward + k forwards after the layer |
//! | [`Fem`] | `sum_k mean_ij[A_k > mean(A_k) + 2 std(A_k)] A_k` | forward only |
//! | [`SegEigenCam`] | first principal component of `abs(G) (.) A`, larger extreme positive | forward + partial backward |
//! | [`KpcaCam`] | first kernel-PCA component of the pixels' channel vectors | forward only |
//! | [`RandomCam`] | `sum_k w_k A_k`, `w_k` uniform in `[-1, 1)` (a baseline) | forward only |
//! | [`IsCam`] | `sum_k softmax_k(mean_s score(c_s x (.) M_k)) A_k` | 1 + N k forwards per image |
//! | [`SsCam`] | `sum_k softmax_k(mean_s score(x (.) (M_k + noise_s))) A_k` | 1 + N k forwards per image |
//! | [`SmoothGradCamPlusPlus`] | Grad-CAM++'s weights from `mean_s G_s^2`, `mean_s G_s^3` over noisy inputs | 1 + N forwards and backwards per image |
//! | [`ShapleyCam`] | `sum_k mean_ij(G_k - (H A)_k / 2) A_k`, `H` the score's Hessian in `A` | forward + partial backward; per image a forward of 3 rows after the layer (affine head) or `classes / 1024` passes; a forward and backward |
//! | [`FullGrad`] | `sum_c norm(abs(x_c dy/dx_c)) + sum_l sum_k up(norm(abs(b_lk dy/dz_lk)))` over the model's biased outputs `z_l` | forward + backward of the whole model |
//! | [`LeGrad`] | `mean_l mean_{heads, queries} ReLU(ds^l/dA^l)` over transformer blocks `l`, `A^l` the attention probabilities, `s^l` the block's own score | forward + backward of the whole model |
//!
//! `A` is the layer's activation `[k, h, w]`, `G = dy/dA` the gradient of the target score.
//!
//! # What is shared, and where it does not apply
//!
//! - **The ReLU switch and the signed map** work for every method. Element-wise Grad-CAM's map
//!   is a sum of ReLUs and never negative, so the switch changes nothing; LayerCAM's is never
//!   negative on post-ReLU layers (`ReLU(G) >= 0`, `A >= 0`), where the same holds.
//! - **Several targets per image** cost one forward up to the layer for the gradient methods
//!   (the rows are repeated at the cut), one set of `k` forwards per image for Score-CAM and
//!   Ablation-CAM (every target reads its score from the same logits), and nothing at all for
//!   Eigen-CAM, whose map does not depend on the target (every target gets the same map).
//! - **Several layers**: every method; Score-CAM and Ablation-CAM run their forwards once per
//!   layer.
//! - **Every backend**: every method runs the same code on `flex`, `ndarray`, `wgpu` and
//!   `vulkan`. The Eigen methods read the activations back and project on the host in `f64`.
//! - **The CubeCL kernel** ([`weighted_sum`](crate::kernels::weighted_sum)) forms the map of every method
//!   that returns channel weights (Grad-CAM, Grad-CAM++, XGrad-CAM, Score-CAM, Ablation-CAM);
//!   HiResCAM, Element-wise Grad-CAM and LayerCAM weight each pixel, so their map is an
//!   element-wise product and a channel sum in tensor ops.

/// The settings of a method that runs many forwards: rows per forward, and a callback after
/// each chunk.
#[derive(Clone)]
pub(crate) struct Chunks {
    batch_size: usize,
    progress: Option<ProgressFn>,
}

impl Chunks {
    /// `batch_size` rows per forward, no callback.
    pub(crate) fn new(batch_size: usize) -> Self {
        Self {
            batch_size,
            progress: None,
        }
    }

    /// The chunks `(start, len)` of `total` rows, after checking the setting.
    pub(crate) fn of(&self, total: usize) -> Result<impl Iterator<Item = (usize, usize)>> {
        let size = self.batch_size;
        if size == 0 {
            return Err(GradCamError::argument("a batch size of 0; use at least 1"));
        }
        Ok((0..total)
            .step_by(size)
            .map(move |start| (start, size.min(total - start))))
    }

    /// Report `done` of `total` forwards for `layer`.
    fn report(&self, layer: &str, done: usize, total: usize) {
        if let Some(progress) = &self.progress {
            progress(&Progress {
                layer: layer.to_string(),
                done,
                total,
            });
        }
    }
}

/// The chunk settings (`with_batch_size`, `with_progress`) of a method with a `chunks` field.
macro_rules! chunk_settings {
    ($method:ident) => {
        impl $method {
            /// Rows per forward (at least 1): more use more memory and fewer launches.
            pub fn with_batch_size(mut self, batch_size: usize) -> Self {
                self.chunks.batch_size = batch_size;
                self
            }

            /// Called after every chunk of forwards.
            pub fn with_progress(
                mut self,
                progress: impl Fn(&super::Progress) + Send + Sync + 'static,
            ) -> Self {
                self.chunks.progress = Some(std::sync::Arc::new(progress));
                self
            }
        }
    };
}

/// The constructor, settings, `Default` and `Debug` of a method whose only state is [`Chunks`],
/// with its default rows per forward.
macro_rules! chunked_method {
    ($method:ident, $batch_size:literal) => {
        chunk_settings!($method);

        impl $method {
            #[doc = concat!(stringify!($batch_size), " rows per forward, no progress callback.")]
            pub fn new() -> Self {
                Self {
                    chunks: super::Chunks::new($batch_size),
                }
            }
        }

        impl Default for $method {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Debug for $method {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($method))
                    .field("batch_size", &self.chunks.batch_size)
                    .finish()
            }
        }
    };
}

/// The settings of a method that draws Gaussian noise from a seed (SS-CAM, SmoothGrad-CAM++),
/// whose fields are `chunks`, `samples`, `std` and `seed`: the chunk settings, `with_samples`,
/// `with_std`, `with_seed`, `noise`, and `Default` (its `new`) and `Debug`.
macro_rules! noisy_method {
    ($method:ident) => {
        chunk_settings!($method);

        impl $method {
            /// Draws of noise (at least 1).
            pub fn with_samples(mut self, samples: usize) -> Self {
                self.samples = samples;
                self
            }

            /// The noise's standard deviation, in the units of what it is added to (0: none).
            pub fn with_std(mut self, std: f32) -> Self {
                self.std = std;
                self
            }

            /// The seed the noise is drawn from.
            pub fn with_seed(mut self, seed: u64) -> Self {
                self.seed = seed;
                self
            }

            /// The noise of draw `sample` for image `image`: a stream of standard normal values,
            /// read in channel-major order (times `std` by the method).
            pub fn noise(&self, image: usize, sample: usize) -> impl Iterator<Item = f32> {
                super::splitmix::normal_noise(self.seed, image, sample, 0)
            }
        }

        impl Default for $method {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Debug for $method {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($method))
                    .field("samples", &self.samples)
                    .field("std", &self.std)
                    .field("seed", &self.seed)
                    .field("batch_size", &self.chunks.batch_size)
                    .finish()
            }
        }
    };
}

mod drawn_scores;
mod projection;
mod splitmix;

pub(crate) use splitmix::normal_noise;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use burn::tensor::Tensor;

use crate::error::{GradCamError, InputError, Result};

pub use projection::{
    ProjectionSign, first_component_projection, first_component_projection_signed,
};

/// The built-in methods, one line each: the [`Method`] variant, then the file and the type that
/// implements it. Everything that lists methods (the command's help, the example, the benches,
/// the README's table, checked by a test) reads [`Method::ALL`]; adding a method is its file and
/// one line here.
macro_rules! builtin_methods {
    ($($variant:ident => $file:ident :: $method:ident,)+) => {
        $(
            mod $file;
            pub use $file::$method;
        )+

        /// The built-in methods by name, for command lines and configuration files: each the
        /// method of the same name with its default settings.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Method {
            $(
                #[doc = concat!("[`", stringify!($method), "`].")]
                $variant,
            )+
        }

        impl Method {
            /// Every built-in method, in the order of the README's table.
            pub const ALL: [Method; [$(Method::$variant),+].len()] = [$(Method::$variant),+];

            /// The method with its default settings.
            pub fn build(self) -> Arc<dyn CamMethod> {
                match self {
                    $(Method::$variant => Arc::new($method::default()),)+
                }
            }

            /// The name, as [`CamMethod::name`] spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Method::$variant => CamMethod::name(&$method::default()),)+
                }
            }
        }
    };
}

builtin_methods! {
    GradCam => grad_cam::GradCam,
    GradCamPlusPlus => grad_cam_plus_plus::GradCamPlusPlus,
    XGradCam => xgrad_cam::XGradCam,
    HiResCam => hires_cam::HiResCam,
    ElementWiseGradCam => element_wise::ElementWiseGradCam,
    LayerCam => layer_cam::LayerCam,
    EigenCam => eigen_cam::EigenCam,
    EigenGradCam => eigen_grad_cam::EigenGradCam,
    ScoreCam => score_cam::ScoreCam,
    AblationCam => ablation_cam::AblationCam,
    Fem => fem::Fem,
    SegEigenCam => seg_eigen_cam::SegEigenCam,
    KpcaCam => kpca_cam::KpcaCam,
    RandomCam => random_cam::RandomCam,
    IsCam => is_cam::IsCam,
    SsCam => ss_cam::SsCam,
    SmoothGradCamPlusPlus => smooth_grad_cam_plus_plus::SmoothGradCamPlusPlus,
    FullGrad => full_grad::FullGrad,
    ShapleyCam => shapley_cam::ShapleyCam,
    LeGrad => legrad::LeGrad,
}

pub use kpca_cam::KpcaKernel;

impl Default for Method {
    /// Grad-CAM.
    fn default() -> Self {
        Self::GradCam
    }
}

/// A class-activation-map method: from one layer's activations (and gradients) to a map.
///
/// Implement it to add a method; pass it to
/// [`ExplainerConfig::with_method`](crate::ExplainerConfig::with_method).
///
/// ```
/// use burn::tensor::activation::relu;
/// use gradcam::methods::{CamMap, CamMethod, LayerCapture, Rerun};
///
/// /// Gradient-weighted activations, but only where the gradient is positive on average.
/// #[derive(Debug)]
/// struct PositiveGradCam;
///
/// impl CamMethod for PositiveGradCam {
///     fn name(&self) -> &'static str {
///         "positive-grad-cam"
///     }
///     fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> gradcam::Result<CamMap> {
///         let g = layer.gradients(); // [n, m, k, h, w]
///         let [n, m, k, h, w] = g.dims();
///         let weights = relu(g.reshape([n, m, k, h * w]).mean_dim(3)); // [n, m, k, 1]
///         Ok(CamMap::Weights(weights.reshape([n, m, k])))
///     }
/// }
/// ```
pub trait CamMethod: fmt::Debug + Send + Sync {
    /// The method's name, as the `explain` example and the CLI spell it (`"grad-cam"`).
    fn name(&self) -> &'static str;

    /// Whether the method needs `dy/dA` (then the explainer runs the backward through the
    /// layers after the first explained one). Default: yes.
    fn needs_gradients(&self) -> bool {
        true
    }

    /// Whether the method runs further forwards of the model for every channel (Score-CAM,
    /// Ablation-CAM, IS-CAM, SS-CAM): tens to thousands of forwards per image, where the others
    /// run one. Tests and benchmarks give such methods fewer cases. Default: no.
    fn runs_many_forwards(&self) -> bool {
        false
    }

    /// Whether the method explains a transformer's attention (LeGrad): it needs a model whose
    /// blocks route through [`Probe::attention`](crate::Probe::attention) and
    /// [`Probe::block_output`](crate::Probe::block_output), and returns
    /// [`ModelError::NoAttention`](crate::ModelError::NoAttention) on any other. Default: no.
    fn reads_attention(&self) -> bool {
        false
    }

    /// The map of one layer, for every image and target.
    ///
    /// # Errors
    /// Whatever the method finds wrong with its numbers, and the errors of `model`'s forwards.
    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap>;
}

/// One explained layer as a method sees it.
#[derive(Debug, Clone)]
pub struct LayerCapture {
    /// The layer's name.
    pub name: String,
    /// The activations `A`, `[n, k, h, w]`, without autodiff.
    pub activations: Tensor<4>,
    /// `dy/dA` for each image and target, `[n, m, k, h, w]`; `None` for methods that do not need
    /// gradients.
    pub gradients: Option<Tensor<5>>,
    /// `m`: targets per image.
    pub targets_per_image: usize,
}

impl LayerCapture {
    /// The gradients, for a method that declared [`CamMethod::needs_gradients`].
    ///
    /// # Shapes
    /// - returns `[n, m, k, h, w]`
    ///
    /// # Panics
    /// If the method declared that it does not need gradients: a bug in the method.
    pub fn gradients(&self) -> Tensor<5> {
        self.gradients
            .clone()
            .expect("a method that reads gradients must return true from `needs_gradients`")
    }

    /// The activations with a target axis, to broadcast against the gradients.
    ///
    /// # Shapes
    /// - returns `[n, 1, k, h, w]`
    pub fn activations5(&self) -> Tensor<5> {
        self.activations.clone().unsqueeze_dim::<5>(1)
    }
}

/// What a method computes for one layer.
#[derive(Debug, Clone)]
pub enum CamMap {
    /// Channel weights `w`, `[n, m, k]`: the map is `sum_k w_k A^k`, formed by the explainer with
    /// one device kernel that reads `A` once for all targets.
    Weights(Tensor<3>),
    /// Per-pixel channel contributions, `[n, m, k, h, w]`: the map is their sum over the
    /// channels (or, with [`ExplainerConfig::with_eigen_smooth`](crate::ExplainerConfig::with_eigen_smooth),
    /// their first principal component).
    Channels(Tensor<5>),
    /// A map the method formed itself, signed, before the ReLU (eigen smoothing leaves it as it
    /// is): `[n, m, h, w]` at the layer's resolution, or `[n, m, H, W]` at the input's (FullGrad).
    Map(Tensor<4>),
}

/// Further forwards of the model, for the methods that score perturbed inputs or activations
/// (Score-CAM, Ablation-CAM) or take gradients of perturbed inputs (SmoothGrad-CAM++).
/// Implemented by the explainer.
pub trait Rerun {
    /// The explained batch, `[n, c, H, W]`, without autodiff.
    fn input(&self) -> Tensor<4>;

    /// The score of every row under each of image `image`'s targets, for inputs derived from
    /// that image.
    ///
    /// # Shapes
    /// - `inputs`: `[r, c, H, W]`
    /// - returns `[r, m]`
    fn scores(&self, inputs: Tensor<4>, image: usize) -> Result<Tensor<2>>;

    /// The same, with the activations of `layer` replaced by `activations` (rows derived from
    /// image `image`'s); only the layers after it do new work.
    ///
    /// # Shapes
    /// - `activations`: `[r, k, h, w]`
    /// - returns `[r, m]`
    fn scores_with_layer(
        &self,
        layer: &str,
        activations: Tensor<4>,
        image: usize,
    ) -> Result<Tensor<2>>;

    /// The unperturbed scores, `[n, m]`.
    fn original_scores(&self) -> Tensor<2>;

    /// The gradient at `layer` of each of image `image`'s target scores, for other inputs
    /// derived from that image (SmoothGrad-CAM++'s noisy copies); a rank target stays the class
    /// the unperturbed image ranked there. One forward and one backward of the rows.
    ///
    /// # Shapes
    /// - `inputs`: `[r, c, H, W]`
    /// - returns `[r, m, k, h, w]`
    fn gradients(&self, layer: &str, inputs: Tensor<4>, image: usize) -> Result<Tensor<5>>;

    /// The gradient of every target's score with respect to the input and to every output the
    /// model routes through [`Probe::bias`](crate::Probe::bias), with the biases (FullGrad). One
    /// forward and one backward of the whole model, the input repeated once per target.
    ///
    /// # Errors
    /// [`ModelError::NoBiases`](crate::ModelError::NoBiases) if the forward routed no bias; the
    /// model's and the targets' errors.
    fn bias_gradients(&self) -> Result<BiasGradients>;

    /// The gradient of every target's score, as each transformer block's own projection scores
    /// it ([`Probe::block_output`](crate::Probe::block_output)), with respect to that block's
    /// attention probabilities ([`Probe::attention`](crate::Probe::attention)) (LeGrad): one
    /// forward of the input repeated once per target and one backward, each block's output
    /// handed on without autodiff so that its score reaches its own attention only. A rank
    /// target stays the class the unperturbed input ranked there.
    ///
    /// # Errors
    /// [`ModelError::NoAttention`](crate::ModelError::NoAttention) if the forward routed no
    /// attention; [`ModelError::UnroutedBlock`](crate::ModelError::UnroutedBlock) if a block
    /// routed its attention without its output (or the other way), or its score does not reach
    /// its attention; the model's and the targets' errors.
    fn attention_gradients(&self) -> Result<Vec<AttentionGradient>>;

    /// ShapleyCAM's second-order term: for every image and target, `H A`, the Hessian of the
    /// target's score with respect to `layer`'s activations `A` (`activations`) times `A`,
    /// taken through the logits `z`: `J^T S (J A)` with `J = dz/dA` and `S` the score's Hessian
    /// in the logits. `J A` is exact: `z(A) - z(0)` from one forward of three rows per image
    /// where the model declares the logits affine in the layer
    /// ([`GradCam::affine_after`](crate::GradCam::affine_after); the third row, `2A`, checks
    /// it), else one backward row per class after the layer, in passes of `rows_per_pass` rows;
    /// `S (J A)` is a five-point central difference of the score's gradient along `J A` (a step
    /// of `2^-5 / max|J A|`, fourth order); `J^T` one
    /// forward and backward of the batch. A class or rank target is linear in the logits (`S =
    /// 0`): zeros, and no pass for a batch of such targets. The curvature of the layers between
    /// `A` and the logits is left out: none for ReLU, ReLU6, max-pooling, BatchNorm in eval mode,
    /// convolutions and linear layers (as PyTorch's autograd differentiates them); a smooth
    /// activation's (SiLU, GELU) would add to it.
    ///
    /// # Shapes
    /// - `activations`: `[n, k, h, w]`
    /// - returns `[n, m, k, h, w]`
    ///
    /// # Errors
    /// [`InputError::Argument`] for 0 rows per pass; the model's
    /// and the targets' errors; [`NumericalError::NonFinite`](crate::NumericalError::NonFinite)
    /// if `J A` is not finite.
    fn hessian_products(
        &self,
        layer: &str,
        activations: Tensor<4>,
        rows_per_pass: usize,
    ) -> Result<Tensor<5>>;
}

/// What FullGrad reads: the gradients of every target's score with respect to the input and to
/// each biased output of the forward.
#[derive(Debug, Clone)]
pub struct BiasGradients {
    /// `dy/dx`, `[n, m, c, H, W]`.
    pub input: Tensor<5>,
    /// Each output routed through [`Probe::bias`](crate::Probe::bias), in forward order.
    pub layers: Vec<BiasGradient>,
}

/// One biased output: its name, bias and gradients.
#[derive(Debug, Clone)]
pub struct BiasGradient {
    /// The name passed to [`Probe::bias`](crate::Probe::bias).
    pub name: String,
    /// The per-channel bias, `[k]`.
    pub bias: Tensor<1>,
    /// `dy/dz` of the output `z`, `[n, m, k, h, w]`.
    pub gradients: Tensor<5>,
}

/// One transformer block as LeGrad reads it: the gradient of its score with respect to its
/// attention probabilities.
#[derive(Debug, Clone)]
pub struct AttentionGradient {
    /// The name passed to [`Probe::attention`](crate::Probe::attention) and
    /// [`Probe::block_output`](crate::Probe::block_output).
    pub name: String,
    /// `ds/dA` for every image and target, `[n, m, heads, queries, keys]`.
    pub gradients: Tensor<5>,
    /// The keys after the first `special` lie on this `[height, width]` grid, row-major.
    pub grid: [usize; 2],
    /// Keys before the grid (a class token, register tokens).
    pub special: usize,
}

/// Progress of a method that runs many forwards: called after each chunk.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How far a many-forward method has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The layer being explained.
    pub layer: String,
    /// Forwards done so far for this layer (rows, over all images).
    pub done: usize,
    /// Forwards this layer needs in all.
    pub total: usize,
}

/// A built-in method with its default settings is a method itself.
impl CamMethod for Method {
    fn name(&self) -> &'static str {
        Method::name(*self)
    }

    fn needs_gradients(&self) -> bool {
        self.build().needs_gradients()
    }

    fn runs_many_forwards(&self) -> bool {
        self.build().runs_many_forwards()
    }

    fn reads_attention(&self) -> bool {
        self.build().reads_attention()
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        self.build().compute(layer, model)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = GradCamError;

    /// Parse a name as [`CamMethod::name`] spells it (`grad-cam`, `grad-cam++`, `score-cam`, ...),
    /// ignoring case and treating `_` as `-`.
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.to_ascii_lowercase().replace('_', "-");
        Method::ALL
            .into_iter()
            .find(|m| m.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<_> = Method::ALL.iter().map(|m| m.name()).collect();
                InputError::Argument {
                    what: format!("unknown method `{s}`; the methods are {}", names.join(", ")),
                }
                .into()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_parses_from_its_name() {
        for method in Method::ALL {
            assert_eq!(method.name().parse::<Method>().unwrap(), method);
            assert_eq!(method.to_string(), method.name());
        }
        assert_eq!("Grad_CAM".parse::<Method>().unwrap(), Method::GradCam);
        let err = "gradcam".parse::<Method>().unwrap_err();
        assert!(err.to_string().contains("score-cam"), "{err}");
    }

    #[test]
    fn the_readmes_table_lists_every_method_in_order() {
        let readme = include_str!("../../README.md");
        let table = &readme[readme.find("## The methods").expect("the methods section")..];
        let rows: Vec<&str> = table
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .filter_map(|row| row.strip_prefix("| `")?.split('`').next())
            .collect();
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(
            rows, names,
            "README.md's method table and Method::ALL disagree"
        );
    }
}
