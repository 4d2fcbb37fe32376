//! Real models, real photos: the converted weights are real (top-1 on the photos, logits equal
//! PyTorch's), and our maps equal pytorch-grad-cam 1.5.7's on the same weights and input.
//!
//! Fixtures: `tests/fixtures/*.safetensors`, made by `scripts/make_fixtures.py` (see
//! `tests/fixtures/README.md`).
#![cfg(all(feature = "models", feature = "flex"))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use gradcam::models::{
    EfficientNetLite0, ResNet, SqueezeNet, imagenet_classes, load_torchvision, load_weights,
};
use gradcam::{GradCam, GradCamConfig, GradCamError, Probe, Targets, load_image};
use safetensors::SafeTensors;

fn root(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// A fixture file: name -> (shape, values).
struct Fixture(BTreeMap<String, (Vec<usize>, Vec<f32>)>);

impl Fixture {
    fn load(name: &str) -> Self {
        let bytes = std::fs::read(root("tests/fixtures").join(name)).unwrap();
        let tensors = SafeTensors::deserialize(&bytes).unwrap();
        let mut map = BTreeMap::new();
        for (key, view) in tensors.tensors() {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            map.insert(key, (view.shape().to_vec(), values));
        }
        Self(map)
    }

    fn get(&self, key: &str) -> &(Vec<usize>, Vec<f32>) {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("fixture key {key}"))
    }

    fn tensor4(&self, key: &str, device: &Device) -> Tensor<4> {
        let (shape, values) = self.get(key);
        let shape: [usize; 4] = shape.as_slice().try_into().unwrap();
        Tensor::from_data(TensorData::new(values.clone(), shape), device)
    }

    /// `(layer, class)` pairs present in the fixture.
    fn cases(&self) -> Vec<(String, usize)> {
        let mut cases: Vec<(String, usize)> = self
            .0
            .keys()
            .filter_map(|k| k.strip_suffix("/pgc"))
            .map(|k| {
                let (layer, class) = k.rsplit_once('/').unwrap();
                (layer.to_string(), class.parse().unwrap())
            })
            .collect();
        cases.sort();
        cases
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn top(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    idx.truncate(k);
    idx
}

/// Logits, then every (layer, class) map against the oracle, ReLU on and off.
fn check_against_pgc<M: GradCam>(model: &M, fixture: &str, device: &Device) {
    let fx = Fixture::load(fixture);
    let input = fx.tensor4("input", device);
    let logits = host(model.forward_probed(input.clone(), &mut Probe::passthrough()));
    let reference = &fx.get("logits").1;
    let top5 = top(reference, 5);
    assert_eq!(top(&logits, 5), top5, "{fixture}: top-5 classes");
    for &c in &top5 {
        assert!(
            (logits[c] - reference[c]).abs() <= 1e-3,
            "{fixture}: logit {c}: {} vs {}",
            logits[c],
            reference[c]
        );
    }

    let cases = fx.cases();
    assert!(cases.len() >= 6, "{fixture}: {} cases", cases.len());
    let mut worst = [0.0f32; 2]; // at layer resolution, upsampled
    let layers: Vec<String> = cases
        .iter()
        .map(|(l, _)| l.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for layer in layers {
        let classes: Vec<usize> = cases
            .iter()
            .filter(|(l, _)| *l == layer)
            .map(|(_, c)| *c)
            .collect();
        for relu in [true, false] {
            let e = GradCamConfig::new()
                .with_layer(layer.clone())
                .with_relu(relu)
                .init(model)
                .unwrap()
                .explain(input.clone(), &Targets::classes(classes.clone()))
                .unwrap();
            let lm = &e.layers[0];
            for (j, class) in classes.iter().enumerate() {
                let key = |what: &str| format!("{layer}/{class}/{what}");
                let pick = |t: &Tensor<4>| host(t.clone().slice([0..1, j..j + 1]));
                // ReLU on: pgc's own output, normalised, upsampled and normalised again. ReLU off
                // (pgc cannot): its activations and gradients by hand, upsampled with cv2.
                let (cam_key, up_key, up) = if relu {
                    ("norm", "pgc", pick(&e.heatmap))
                } else {
                    ("norelu_norm", "norelu_up", pick(&lm.heatmap))
                };
                let diff = max_abs_diff(&pick(&lm.cam), &fx.get(&key(cam_key)).1);
                worst[0] = worst[0].max(diff);
                assert!(
                    diff <= 1e-4,
                    "{fixture} {layer} class {class} relu {relu}: map at layer resolution differs by {diff}"
                );
                let diff = max_abs_diff(&up, &fx.get(&key(up_key)).1);
                worst[1] = worst[1].max(diff);
                assert!(
                    diff <= 1e-4,
                    "{fixture} {layer} class {class} relu {relu}: upsampled map differs by {diff}"
                );
                let raw = &fx.get(&key("raw")).1;
                let scale = raw.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let diff = max_abs_diff(&pick(&lm.raw), raw);
                assert!(
                    diff <= 1e-4 * scale.max(1e-3),
                    "{fixture} {layer} class {class}: raw map differs by {diff} (scale {scale})"
                );
            }
        }
    }
    eprintln!(
        "{fixture}: worst difference from the oracle {:.2e} at layer resolution, {:.2e} upsampled",
        worst[0], worst[1]
    );
}

#[test]
fn squeezenet_matches_pytorch_grad_cam() {
    let device = Device::flex();
    let model = load_weights(
        SqueezeNet::new(&device),
        root("assets/squeezenet1_1.safetensors"),
    )
    .unwrap();
    for photo in ["chelsea", "coffee"] {
        check_against_pgc(&model, &format!("squeezenet_{photo}.safetensors"), &device);
    }
}

#[test]
fn efficientnet_lite0_matches_pytorch_grad_cam() {
    let device = Device::flex();
    let model = load_weights(
        EfficientNetLite0::new(&device),
        root("assets/efficientnet_lite0.safetensors"),
    )
    .unwrap();
    // As loaded, and with every BatchNorm (real running statistics, eps 1e-3) folded into its
    // convolution: both must match the oracle.
    let folded = model.clone().fold_batchnorm();
    assert!(folded.stem.bn.is_none() && folded.head.bn.is_none());
    assert!(
        folded
            .blocks
            .iter()
            .all(|b| b.depthwise.bn.is_none() && b.project.bn.is_none())
    );
    for model in [model, folded] {
        for photo in ["chelsea", "coffee"] {
            check_against_pgc(
                &model,
                &format!("efficientnet_lite0_{photo}.safetensors"),
                &device,
            );
        }
    }
}

#[test]
fn resnet18_in_torchvision_layout_matches_pytorch_grad_cam() {
    // PyTorch-initialised weights (seed 0) exported with torchvision's key names.
    let device = Device::flex();
    let model = load_torchvision(
        ResNet::resnet18(1000, &device),
        root("tests/fixtures/resnet18_seed0.safetensors"),
    )
    .unwrap();
    check_against_pgc(&model, "resnet18_chelsea.safetensors", &device);
    let folded = model.fold_batchnorm();
    assert!(folded.bn1.is_none());
    assert!(
        folded.layer2[0]
            .downsample
            .as_ref()
            .is_some_and(|d| d.bn.is_none())
    );
    check_against_pgc(&folded, "resnet18_chelsea.safetensors", &device);
}

#[test]
fn the_weights_are_real_photos_through_our_own_pipeline() {
    let device = Device::flex();
    let names = imagenet_classes();
    assert_eq!(names.len(), 1000);
    let squeezenet = load_weights(
        SqueezeNet::new(&device),
        root("assets/squeezenet1_1.safetensors"),
    )
    .unwrap();
    let lite0 = load_weights(
        EfficientNetLite0::new(&device),
        root("assets/efficientnet_lite0.safetensors"),
    )
    .unwrap();
    let photos = ["assets/chelsea.png", "assets/coffee.png"].map(|p| load_image(root(p)).unwrap());
    let cats = 281..=285; // tabby, tiger cat, Persian, Siamese, Egyptian cat
    for (name, logits) in [
        (
            "squeezenet",
            host(squeezenet.forward(SqueezeNet::preprocess().to_tensor(&photos, &device))),
        ),
        (
            "lite0",
            host(lite0.forward(EfficientNetLite0::preprocess().to_tensor(&photos, &device))),
        ),
    ] {
        let cat = top(&logits[..1000], 1)[0];
        let coffee = top(&logits[1000..], 1)[0];
        assert!(
            cats.contains(&cat),
            "{name}: chelsea -> {cat} {}",
            names[cat]
        );
        assert_eq!(coffee, 967, "{name}: coffee -> {coffee} {}", names[coffee]);
    }
}

#[test]
fn wrong_or_truncated_weights_are_clear_errors() {
    let device = Device::flex();
    let dir = std::env::temp_dir().join(format!("gradcam-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(root("assets/squeezenet1_1.safetensors")).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_weights(SqueezeNet::new(&device), &truncated).unwrap_err();
    assert!(matches!(err, GradCamError::Weights { .. }), "{err}");

    // Another model's file: missing and unexpected tensors.
    let err = load_weights(
        SqueezeNet::new(&device),
        root("assets/efficientnet_lite0.safetensors"),
    )
    .unwrap_err();
    assert!(matches!(err, GradCamError::Weights { .. }), "{err}");
    assert!(err.to_string().contains("conv1"), "{err}");

    let err = load_weights(SqueezeNet::new(&device), dir.join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, GradCamError::Weights { .. }), "{err}");
}
