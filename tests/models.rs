//! The bundled models and their loaders: real weights give the right classes on real photos, and
//! every kind of bad weights file is a typed error.
#![cfg(all(feature = "models", feature = "flex"))]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{DType, Device};
use common::host;
use gradcam::image::load_image;
use gradcam::models::{
    EfficientNetLite0, ResNet, SqueezeNet, imagenet_classes, load_torchvision, load_weights,
};
use gradcam::{GradCam, GradCamError, Probe};
use safetensors::{Dtype, SafeTensors, serialize, tensor::TensorView};

fn root(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn top(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    idx.truncate(k);
    idx
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradcam-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
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
            host(
                squeezenet.forward(
                    SqueezeNet::preprocess()
                        .to_tensor(&photos, &device)
                        .unwrap(),
                ),
            ),
        ),
        (
            "lite0",
            host(
                lite0.forward(
                    EfficientNetLite0::preprocess()
                        .to_tensor(&photos, &device)
                        .unwrap(),
                ),
            ),
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

/// The tensors of a safetensors file, as `(dtype, shape, bytes)`.
fn tensors(path: &Path) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: HashMap<String, TensorView> = tensors
        .iter()
        .map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(path, serialize(&views, None).unwrap()).unwrap();
}

#[test]
fn wrong_missing_or_truncated_weights_are_clear_errors() {
    let device = Device::flex();
    let bytes = std::fs::read(root("assets/squeezenet1_1.safetensors")).unwrap();
    let truncated = temp("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_weights(SqueezeNet::new(&device), &truncated).unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Input(gradcam::InputError::Weights { .. })
        ),
        "{err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the store's error is kept: {err}"
    );

    // Another model's file: missing and unexpected tensors.
    let err = load_weights(
        SqueezeNet::new(&device),
        root("assets/efficientnet_lite0.safetensors"),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Input(gradcam::InputError::Weights { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("conv1"), "{err}");
    // Once a 48-line table of every tensor: now one line that says what to suspect.
    let message = err.to_string();
    assert!(
        message.lines().count() == 1 && message.len() < 600,
        "{message}"
    );
    assert!(
        message.contains("are these the weights of this model?"),
        "{message}"
    );

    // A text file named .safetensors: said to be no safetensors file (once "header too large").
    let text = temp("notes.safetensors");
    std::fs::write(&text, "these are not weights\n".repeat(10)).unwrap();
    let err = load_weights(SqueezeNet::new(&device), &text).unwrap_err();
    assert!(err.to_string().contains("not a safetensors file"), "{err}");

    let err = load_weights(SqueezeNet::new(&device), temp("missing.safetensors")).unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Environment(gradcam::EnvironmentError::Io { .. })
        ),
        "{err}"
    );
    let err = load_torchvision(ResNet::resnet18(1000, &device), temp("missing.pth")).unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Environment(gradcam::EnvironmentError::Io { .. })
        ),
        "{err}"
    );

    // The right keys with a wrong shape.
    let mut all = tensors(&root("tests/fixtures/resnet18_seed0.safetensors"));
    let fc = all.iter_mut().find(|t| t.0 == "fc.weight").unwrap();
    fc.2 = vec![2000, 256];
    let wrong = temp("wrong_shape.safetensors");
    write(&wrong, &all);
    let err = load_torchvision(ResNet::resnet18(1000, &device), &wrong).unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Input(gradcam::InputError::Weights { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("fc"), "{err}");
}

#[test]
fn a_float64_export_loads_into_a_float32_model_unchanged() {
    // Every float32 value is exact in float64 and back: the cast on load must give the same
    // parameters, bit for bit, as the float32 file.
    let device = Device::flex();
    let f32_file = root("tests/fixtures/resnet18_seed0.safetensors");
    let widened: Vec<_> = tensors(&f32_file)
        .into_iter()
        .map(|(k, d, s, b)| {
            assert_eq!(d, Dtype::F32);
            let wide: Vec<u8> = b
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).to_le_bytes())
                .collect();
            (k, Dtype::F64, s, wide)
        })
        .collect();
    let f64_file = temp("resnet18_f64.safetensors");
    write(&f64_file, &widened);
    let narrow = load_torchvision(ResNet::resnet18(1000, &device), &f32_file).unwrap();
    let wide = load_torchvision(ResNet::resnet18(1000, &device), &f64_file).unwrap();
    assert_eq!(wide.conv1.weight.val().dtype(), DType::F32);
    assert_eq!(
        host(wide.conv1.weight.val()),
        host(narrow.conv1.weight.val())
    );
    assert_eq!(host(wide.fc.weight.val()), host(narrow.fc.weight.val()));
    let x = common::tensor(1, [1, 3, 64, 64], 1.0, &device);
    let logits = |m: &ResNet| host(m.forward_probed(x.clone(), &mut Probe::passthrough()));
    assert_eq!(logits(&wide), logits(&narrow));
}

#[test]
fn a_real_pth_with_shared_float16_storage_loads() {
    // scripts/make_pth_fixture.py: 102 views into one float16 storage, tensor i at offset
    // (7 i) % 64; conv1.weight at 0, bn1.weight at 7, bn1.bias at 14.
    let device = Device::flex();
    let model = load_torchvision(
        ResNet::resnet18(1000, &device),
        root("tests/fixtures/resnet18_views_f16.pth"),
    )
    .unwrap();
    assert_eq!(model.conv1.weight.val().dtype(), DType::F32);
    let conv1 = host(model.conv1.weight.val());
    let bn1 = model.bn1.as_ref().unwrap();
    let gamma = host(bn1.gamma.val());
    let beta = host(bn1.beta.val());
    assert_eq!(
        gamma,
        conv1[7..7 + 64].to_vec(),
        "bn1.weight is the storage from offset 7"
    );
    assert_eq!(
        beta,
        conv1[14..14 + 64].to_vec(),
        "bn1.bias is the storage from offset 14"
    );
    let all = host(model.fc.weight.val());
    assert!(
        all.iter().all(|v| (0.25..=0.75).contains(v)),
        "values of the storage"
    );
    // Every parameter (BatchNorm statistics included) became float32, so the network runs in
    // float32 (its all-positive weights overflow the logits: a loader fixture, not a model).
    let mut dtypes = Vec::new();
    model.visit(&mut DTypes(&mut dtypes));
    assert!(dtypes.iter().all(|d| *d == DType::F32), "{dtypes:?}");
    let logits = model.forward_probed(
        common::tensor(2, [1, 3, 32, 32], 1.0, &device),
        &mut Probe::passthrough(),
    );
    assert_eq!((logits.dims(), logits.dtype()), ([1, 1000], DType::F32));
}

struct DTypes<'a>(&'a mut Vec<DType>);

impl burn::module::ModuleVisitor for DTypes<'_> {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        self.0.push(param.val().dtype());
    }
}
