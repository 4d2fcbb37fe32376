//! `gradcam-onnx`: from an ONNX file to an explainable Burn model, with nothing to write.
//!
//! It writes the Burn model of the file through [`burn-onnx`](https://crates.io/crates/burn-onnx)
//! 0.22 (its own code generation, unchanged) **and** that model's `gradcam::GradCam`
//! implementation: every activation `[n, c, h, w]` of the graph is an explainable layer, named
//! after the ONNX node that computes it (`/layer4/layer4.1/relu_1/Relu`) and after the modules
//! it is the output of (`layer4`, as pytorch-grad-cam's `model.layer4`); residual connections
//! around a layer are carried for any batch and any number of targets; partitioned graphs
//! (over 200 nodes) work.
//!
//! ```sh
//! cargo run -p gradcam-onnx -- resnet18.onnx --out src/model    # once; commit the two files
//! ```
//!
//! ```ignore
//! mod resnet18 {
//!     include!("model/resnet18.rs");
//! }
//! let model = resnet18::Model::from_file("src/model/resnet18.bpk", &device);
//! let explanation = gradcam::ExplainerConfig::new()
//!     .with_layer("layer4")
//!     .init(&model)?
//!     .explain(images, &gradcam::Targets::top(1))?;
//! ```
//!
//! The crate that includes the generated file needs `burn`, `burn-store` (`std`) and `gradcam`,
//! not burn-onnx. From a `build.rs` call [`generate`] with `OUT_DIR` (a second build of Burn for
//! the build script: docs/onnx.md has the costs measured).
//!
//! The layers, their module names and the rules are in [`Layer`]'s module docs; what the graph
//! must satisfy (one image input with a dynamic batch axis, one `[n, classes]` output, rows
//! independent after the first layer) in [`OnnxError`].

mod affine;
mod error;
mod generate;
mod graph;
mod layers;
mod ops;
mod rewrite;
mod rust;

pub use error::{OnnxError, Result};
pub use generate::{Generated, GeneratorConfig, generate};
pub use layers::Layer;
