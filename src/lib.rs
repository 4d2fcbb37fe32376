#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod capture;
mod error;
#[cfg(feature = "eval")]
pub mod eval;
mod explainer;
mod explanation;
mod host;
#[cfg(feature = "image")]
pub mod image;
pub mod methods;
#[cfg(feature = "models")]
pub mod models;
mod parameters;
mod postprocess;
mod probe;
mod stream;
mod target;
mod weighted_sum;

pub use capture::Capture;
pub use error::{Fault, GradCamError, Result};
pub use explainer::{Explainer, ExplainerConfig};
pub use explanation::{ExplainedTarget, Explanation, LayerMap};
pub use methods::{CamMethod, Method};
pub use parameters::cast_model;
pub use postprocess::Normalization;
pub use probe::{CamModel, LayerInfo, Probe};
pub use stream::{Stream, Streamed};
pub use target::{ScoreFn, Target, Targets};
pub use weighted_sum::{weighted_sum, weighted_sum_split};

#[cfg(feature = "image")]
pub use crate::image::{
    ChannelOrder, Colormap, Preprocess, Resize, load_image, overlay, resize_map, save_png,
    signed_to_unit, strip,
};

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
