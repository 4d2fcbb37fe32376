#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ablation;
mod config;
mod error;
mod explainer;
mod image_io;
pub mod kernel;
pub mod metrics;
mod model;
#[cfg(feature = "models")]
pub mod models;
mod overlay;
pub mod reduce;
pub mod synthetic;
mod target;

pub use config::{GradCamConfig, Normalization};
pub use error::{Fault, GradCamError, Result};
pub use explainer::{ExplainedTarget, Explanation, GradCamExplainer, LayerMap};
pub use image_io::{ChannelOrder, Preprocess, load_image, save_png};
pub use model::{GradCam, LayerInfo, Probe};
pub use overlay::{Colormap, overlay, resize_map, signed_to_unit, strip};
pub use target::{ScoreFn, Target, Targets};

/// The architecture guide (docs/architecture.md), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/architecture.md")]
pub struct ArchitectureGuide;

/// The guide for pytorch-grad-cam users (docs/pytorch-grad-cam.md), compiled as doctests.
#[cfg(all(doctest, feature = "models"))]
#[doc = include_str!("../docs/pytorch-grad-cam.md")]
pub struct PytorchGradCamGuide;
