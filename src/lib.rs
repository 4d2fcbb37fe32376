#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The core: one call goes config -> explainer -> forward (model, probe) -> capture (target) ->
// maps (methods, kernels, postprocess, rerun) -> readback -> explanation; docs/architecture.md
// draws it.
mod aug_smooth;
mod capture;
mod checks;
mod config;
mod eigen_smooth;
mod explainer;
mod explanation;
mod feature_factorization;
mod forward;
mod gaussian_blur;
mod guided;
mod linear_resize;
mod maps;
mod model;
mod nmf;
mod postprocess;
mod probe;
mod readback;
mod rerun;
mod scores;
mod sess;
mod stream;
mod target;

mod error;
mod host;
mod parameters;

#[cfg(feature = "eval")]
pub mod eval;
#[cfg(feature = "image")]
pub mod image;
pub mod kernels;
pub mod methods;
#[cfg(feature = "models")]
pub mod models;

pub use capture::Capture;
pub use config::ExplainerConfig;
pub use error::{
    EnvironmentError, GradCamError, InputError, MethodError, ModelError, NumericalError, Result,
};
pub use explainer::Explainer;
pub use explanation::{ExplainedTarget, Explanation, LayerMap};
pub use feature_factorization::{Factorization, FactorizationConfig};
pub use guided::{GuidedBackprop, guided_grad_cam};
pub use methods::{CamMethod, Method};
pub use model::GradCam;
pub use parameters::cast_model;
pub use postprocess::{Fusion, Normalization};
pub use probe::{LayerInfo, Probe, batch_norm_bias};
pub use sess::{SessConfig, SessPool, SessScales};
pub use stream::{Stream, StreamedBatch};
pub use target::{ScoreFn, Target, Targets};

/// The architecture guide (docs/architecture.md), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/architecture.md")]
pub struct ArchitectureGuide;

/// The ViT guide (docs/vit.md), compiled and run as doctests.
#[cfg(all(doctest, feature = "flex"))]
#[doc = include_str!("../docs/vit.md")]
pub struct VitGuide;

/// The GPU guide (docs/gpu.md), compiled as doctests.
#[cfg(all(doctest, feature = "wgpu", feature = "models"))]
#[doc = include_str!("../docs/gpu.md")]
pub struct GpuGuide;

/// The guide for pytorch-grad-cam users (docs/pytorch-grad-cam.md), compiled as doctests.
#[cfg(all(doctest, feature = "models"))]
#[doc = include_str!("../docs/pytorch-grad-cam.md")]
pub struct PytorchGradCamGuide;
