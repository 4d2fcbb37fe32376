//! Research and evaluation beside `gradcam` (not published): synthetic two-object scenes with
//! exact boxes, the small BatchNorm CNN trained on them (`examples/train_shapes.rs`, weights in
//! `weights/`), and the ReLU ablation over any method that has a ReLU
//! (`examples/relu_ablation.rs`, write-up in the repository's `docs/relu-ablation.md`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ablation;
pub mod synthetic;

/// The committed weights of the scenes CNN (`weights/shapes_net.safetensors`).
pub fn shapes_net_weights() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/shapes_net.safetensors")
}
