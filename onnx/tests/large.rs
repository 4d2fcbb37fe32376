//! gradcam-onnx on the real models, against pytorch-grad-cam 1.5.7 as `pgc.rs` does (same
//! bounds): torchvision's ResNet-18 (the seeded weights of `tests/fixtures/resnet18_seed0`), our
//! SqueezeNet 1.1 and EfficientNet-Lite0 with their ImageNet weights. Their ONNX files hold those
//! weights again, so they are not committed: `scripts/make_onnx_fixtures.py --large` writes them
//! and their oracles to `$GRADCAM_ONNX_CACHE` (default `target/onnx-large/`), then
//! `cargo test -p gradcam-onnx --test large -- --ignored`. The generated sources are committed
//! (`tests/generated/`), so every build compiles them.

mod common;

use std::path::PathBuf;

use burn::tensor::Device;
use common::{check, fixture, generated, here};
use gradcam::GradCam;

mod resnet18 {
    include!("generated/resnet18.rs");
}
mod squeezenet {
    include!("generated/squeezenet.rs");
}
mod efficientnet_lite0 {
    include!("generated/efficientnet_lite0.rs");
}

fn cache() -> PathBuf {
    std::env::var_os("GRADCAM_ONNX_CACHE")
        .map_or_else(|| here("../target/onnx-large"), PathBuf::from)
}

#[test]
#[ignore = "needs scripts/make_onnx_fixtures.py --large"]
fn resnet18_matches_pytorch_grad_cam() {
    let device = Device::flex();
    let model = resnet18::Model::from_file(generated(&cache(), "resnet18"), &device);
    assert_eq!(model.default_layer().as_deref(), Some("layer4"));
    let (raw, heat) = check(&model, &fixture(&cache(), "resnet18"), &device);
    eprintln!("resnet18: worst raw / bound {raw:.3}, heatmap / bound {heat:.3}");
}

#[test]
#[ignore = "needs scripts/make_onnx_fixtures.py --large"]
fn squeezenet_matches_pytorch_grad_cam() {
    let device = Device::flex();
    let model = squeezenet::Model::from_file(generated(&cache(), "squeezenet"), &device);
    let (raw, heat) = check(&model, &fixture(&cache(), "squeezenet"), &device);
    eprintln!("squeezenet: worst raw / bound {raw:.3}, heatmap / bound {heat:.3}");
}

#[test]
#[ignore = "needs scripts/make_onnx_fixtures.py --large"]
fn efficientnet_lite0_matches_pytorch_grad_cam() {
    let device = Device::flex();
    let model =
        efficientnet_lite0::Model::from_file(generated(&cache(), "efficientnet_lite0"), &device);
    let (raw, heat) = check(&model, &fixture(&cache(), "efficientnet_lite0"), &device);
    eprintln!("efficientnet_lite0: worst raw / bound {raw:.3}, heatmap / bound {heat:.3}");
}

/// Without their weights, the generated real models still explain (random weights from
/// `Model::new`): a batch of 2 with 2 targets each at the default layer and at a layer inside a
/// residual block, which needs every carry the tool placed. Runs in every test run.
#[test]
fn the_real_models_explain_batches_of_several_targets() {
    use burn::tensor::{Distribution, Tensor};
    use gradcam::{ExplainerConfig, Targets};
    let device = Device::flex();
    let x = Tensor::<4>::random([2, 3, 224, 224], Distribution::Normal(0.0, 1.0), &device);
    let resnet = resnet18::Model::new(&device);
    for layer in ["layer4", "/layer4/layer4.0/relu/Relu", "layer2.0"] {
        let explanation = ExplainerConfig::new()
            .with_layer(layer)
            .init(&resnet)
            .unwrap()
            .explain(x.clone(), &Targets::every_image([3, 7]))
            .unwrap();
        assert_eq!(explanation.heatmap.dims(), [2, 2, 224, 224], "{layer}");
    }
    let lite0 = efficientnet_lite0::Model::new(&device);
    let explanation = ExplainerConfig::new()
        .with_layer("blocks.10")
        .init(&lite0)
        .unwrap()
        .explain(x, &Targets::top(2))
        .unwrap();
    assert_eq!(explanation.heatmap.dims(), [2, 2, 224, 224]);
}
