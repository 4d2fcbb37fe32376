//! The core's behaviour, proved with numbers: closed form, finite differences, ReLU, batch
//! invariance, targets, errors, and agreement between backends.
#![cfg(feature = "flex")]

use burn::module::{Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use gradcam::{Fault, GradCam, GradCamConfig, GradCamError, Normalization, Probe, Target, Targets};

// ---------------------------------------------------------------------------------------------
// Deterministic data: the same numbers on every backend.

/// `len` values in `[-scale, scale)` from a fixed-seed LCG.
fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn tensor<const D: usize>(seed: u64, shape: [usize; D], scale: f32, device: &Device) -> Tensor<D> {
    let len = shape.iter().product();
    Tensor::from_data(TensorData::new(values(seed, len, scale), shape), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.without_autodiff()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn conv(seed: u64, [i, o]: [usize; 2], k: usize, stride: usize, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([i, o], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device);
    let scale = (2.0 / (i * k * k) as f32).sqrt() * 1.5;
    c.weight = Param::from_tensor(tensor(seed, [o, i, k, k], scale, device));
    c.bias = Some(Param::from_tensor(tensor(seed + 1, [o], 0.1, device)));
    c
}

fn linear(seed: u64, [i, o]: [usize; 2], device: &Device) -> Linear {
    let mut l = LinearConfig::new(i, o).init(device);
    l.weight = Param::from_tensor(tensor(seed, [i, o], 1.0, device));
    l.bias = Some(Param::from_tensor(tensor(seed + 1, [o], 0.5, device)));
    l
}

// ---------------------------------------------------------------------------------------------
// Models.

/// conv-BN-ReLU, two more conv-ReLU stages, global average pool, linear: 5 classes.
#[derive(Module, Debug)]
struct TinyNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    conv3: Conv2d,
    fc: Linear,
}

impl TinyNet {
    fn new(device: &Device) -> Self {
        let mut bn1 = BatchNormConfig::new(8).init(device);
        bn1.gamma = Param::from_tensor(tensor(11, [8], 0.5, device) + 1.0);
        bn1.beta = Param::from_tensor(tensor(12, [8], 0.3, device));
        bn1.running_mean = RunningState::new(tensor(13, [8], 0.5, device));
        bn1.running_var = RunningState::new(tensor(14, [8], 0.4, device) + 1.0);
        Self {
            conv1: conv(1, [3, 8], 3, 1, device),
            bn1,
            conv2: conv(3, [8, 12], 3, 2, device),
            conv3: conv(5, [12, 16], 3, 1, device),
            fc: linear(7, [16, 5], device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_probed(x, &mut Probe::passthrough())
    }
}

impl GradCam for TinyNet {
    fn layers(&self) -> Vec<String> {
        ["block1", "block2", "block3"].map(String::from).to_vec()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = relu(self.bn1.forward(self.conv1.forward(x))); // [n, 8, h, w]
        let x = probe.layer("block1", x);
        let x = probe.layer("block2", relu(self.conv2.forward(x))); // [n, 12, h/2, w/2]
        let x = probe.layer("block3", relu(self.conv3.forward(x))); // [n, 16, h/2, w/2]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, 5]
    }

    fn input_shape(&self) -> [Option<usize>; 3] {
        [Some(3), None, None]
    }
}

/// The input is the explained layer; global average pool and a linear layer follow.
#[derive(Module, Debug)]
struct GapLinear {
    fc: Linear,
}

impl GradCam for GapLinear {
    fn layers(&self) -> Vec<String> {
        vec!["input".into()]
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("input", x); // [n, k, h, w]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, classes]
    }
}

/// The input is the explained layer; a smooth nonlinear head follows (conv, tanh, conv, GAP,
/// linear).
#[derive(Module, Debug)]
struct SmoothHead {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

impl GradCam for SmoothHead {
    fn layers(&self) -> Vec<String> {
        vec!["input".into()]
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("input", x); // [n, 4, h, w]
        let x = self.conv1.forward(x).tanh(); // [n, 6, h, w]
        let x = self.conv2.forward(x).tanh() * 2.0; // [n, 5, h, w]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, 3]
    }
}

/// Models that break the contract, one way each.
#[derive(Module, Debug)]
struct Broken {
    fc: Linear,
    #[module(skip)]
    how: u8,
}

const GHOST: u8 = 0; // declares a layer it never probes
const TWICE: u8 = 1; // probes one layer twice
const ONE_ROW: u8 = 2; // returns one row whatever the batch
const DETACHED: u8 = 3; // scores do not depend on the probed layer
const SQRT: u8 = 4; // finite scores, infinite gradients at zero inputs

impl GradCam for Broken {
    fn layers(&self) -> Vec<String> {
        vec!["input".into(), "ghost".into()]
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let probed = probe.layer("input", x.clone());
        let x = match self.how {
            TWICE => probe.layer("input", probed),
            DETACHED => x,
            SQRT => probed.sqrt(),
            _ => probed,
        };
        let logits = self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3));
        if self.how == ONE_ROW {
            logits.narrow(0, 0, 1)
        } else {
            logits
        }
    }
}

fn broken(how: u8, device: &Device) -> Broken {
    Broken {
        fc: linear(3, [2, 3], device),
        how,
    }
}

// ---------------------------------------------------------------------------------------------
// Closed form and finite differences.

#[test]
fn closed_form_gap_linear_raw_map_sums_to_logit_minus_bias() {
    let device = Device::flex();
    for (case, shape) in [[1, 4, 5, 5], [3, 6, 7, 3], [2, 1, 1, 1], [2, 9, 13, 13]]
        .into_iter()
        .enumerate()
    {
        let classes = 7;
        let model = GapLinear {
            fc: linear(100 + case as u64, [shape[1], classes], &device),
        };
        let x = tensor(200 + case as u64, shape, 3.0, &device);
        let logits = host(model.forward_probed(x.clone(), &mut Probe::passthrough()));
        let bias = host(model.fc.bias.as_ref().unwrap().val());
        let explainer = GradCamConfig::new()
            .with_relu(false)
            .with_normalization(Normalization::None)
            .init(&model)
            .unwrap();
        let chosen = [0, 3, 6];
        let explanation = explainer.explain(x, &Targets::classes(chosen)).unwrap();
        let raw = explanation.layers[0].raw.clone(); // [n, 3, h, w]
        let [n, m, h, w] = raw.dims();
        let sums = host(raw.reshape([n, m, h * w]).sum_dim(2)); // [n * m]
        for image in 0..n {
            for (j, &class) in chosen.iter().enumerate() {
                let expected = logits[image * classes + class] - bias[class];
                let got = sums[image * m + j];
                assert!(
                    (got - expected).abs() <= 1e-4 * expected.abs().max(1.0),
                    "shape {shape:?} image {image} class {class}: {got} vs {expected}"
                );
                assert_eq!(explanation.targets[image][j].class, Some(class));
                assert!(
                    (explanation.targets[image][j].score - logits[image * classes + class]).abs()
                        < 1e-6
                );
            }
        }
    }
}

#[test]
fn finite_differences_agree_with_the_captured_gradient() {
    let device = Device::flex();
    let model = SmoothHead {
        conv1: conv(21, [4, 6], 3, 1, &device),
        conv2: conv(23, [6, 5], 3, 1, &device),
        fc: linear(25, [5, 3], &device),
    };
    let shape = [1, 4, 6, 5];
    let x = tensor(27, shape, 1.0, &device);
    let explainer = GradCamConfig::new()
        .with_relu(false)
        .with_normalization(Normalization::None)
        .init(&model)
        .unwrap();
    for class in 0..3 {
        let explanation = explainer
            .explain(x.clone(), &Targets::class(class))
            .unwrap();
        let alpha = host(explanation.layers[0].weights.clone()); // [k]
        // alpha_k = mean_ij dY/dA_kij = (dY/dt of A_k + t) / (h w): a uniform shift of channel k.
        let score = |x: Tensor<4>| host(model.forward_probed(x, &mut Probe::passthrough()))[class];
        let eps = 1e-2;
        for k in 0..4 {
            let mut shift = vec![0.0f32; 4 * 30];
            shift[k * 30..(k + 1) * 30].fill(eps);
            let shift = Tensor::<4>::from_data(TensorData::new(shift, shape), &device);
            let fd =
                (score(x.clone() + shift.clone()) - score(x.clone() - shift)) / (2.0 * eps) / 30.0;
            assert!(
                (fd - alpha[k]).abs() <= 1e-3 * fd.abs().max(1e-1),
                "class {class} channel {k}: finite difference {fd} vs autodiff {}",
                alpha[k]
            );
        }
        // And the raw map is the alpha-weighted channel sum of the activation.
        let a = host(x.clone());
        let raw = host(explanation.layers[0].raw.clone());
        for p in 0..30 {
            let expected: f32 = (0..4).map(|k| alpha[k] * a[k * 30 + p]).sum();
            assert!((raw[p] - expected).abs() < 1e-5, "pixel {p}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ReLU, batch invariance, layers.

#[test]
fn relu_keeps_positive_evidence_and_zeroes_the_rest() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(31, [2, 3, 12, 12], 1.0, &device);
    let run = |relu_on| {
        let explainer = GradCamConfig::new()
            .with_layer("block2")
            .with_relu(relu_on)
            .with_normalization(Normalization::None)
            .init(&model)
            .unwrap();
        let e = explainer
            .explain(x.clone(), &Targets::classes([0, 1, 2, 3, 4]))
            .unwrap();
        (host(e.layers[0].raw.clone()), host(e.layers[0].cam.clone()))
    };
    let (raw_on, cam_on) = run(true);
    let (raw_off, cam_off) = run(false);
    assert_eq!(raw_on, raw_off, "the raw map does not depend on the switch");
    let positives = raw_on.iter().filter(|v| **v > 0.0).count();
    let negatives = raw_on.iter().filter(|v| **v < 0.0).count();
    assert!(
        positives > 20 && negatives > 20,
        "{positives} positive, {negatives} negative"
    );
    for i in 0..raw_on.len() {
        if raw_on[i] > 0.0 {
            assert_eq!(cam_on[i], cam_off[i]);
            assert_eq!(cam_on[i], raw_on[i]);
        } else {
            assert_eq!(cam_on[i], 0.0);
            assert_eq!(cam_off[i], raw_on[i]);
        }
    }
}

#[test]
fn a_map_does_not_depend_on_the_rest_of_the_batch() {
    // The model is built as for training: autodiff parameters, BatchNorm in training mode.
    let device = Device::flex().autodiff();
    let model = TinyNet::new(&device);
    let batch = tensor(41, [8, 3, 10, 10], 2.0, &device.clone().without_autodiff())
        + tensor(42, [8, 1, 1, 1], 1.0, &device.clone().without_autodiff());
    let image = 3;
    let alone = batch.clone().narrow(0, image, 1);

    // The trap is real: in training mode BatchNorm's output depends on the batch.
    let train_batch = host(model.forward(batch.clone().autodiff()).narrow(0, image, 1));
    let train_alone = host(model.forward(alone.clone().autodiff()));
    assert!(max_abs_diff(&train_batch, &train_alone) > 1e-2);

    let explainer = GradCamConfig::new()
        .with_layer("block1")
        .init(&model)
        .unwrap();
    let in_batch = explainer.explain(batch, &Targets::class(2)).unwrap();
    let single = explainer.explain(alone, &Targets::class(2)).unwrap();
    let raw_batch = host(in_batch.layers[0].raw.clone().narrow(0, image, 1));
    let raw_single = host(single.layers[0].raw.clone());
    assert!(max_abs_diff(&raw_batch, &raw_single) < 1e-5);
    let heat_batch = host(in_batch.heatmap.clone().narrow(0, image, 1));
    let heat_single = host(single.heatmap.clone());
    assert!(max_abs_diff(&heat_batch, &heat_single) < 1e-5);
    assert!((in_batch.targets[image][0].score - single.targets[0][0].score).abs() < 1e-5);
}

#[test]
fn several_layers_in_one_pass_equal_one_layer_at_a_time() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(51, [3, 3, 16, 16], 1.0, &device);
    let targets = Targets::classes([1, 4]);
    let both = GradCamConfig::new()
        .with_layers(["block1", "block3"])
        .init(&model)
        .unwrap()
        .explain(x.clone(), &targets)
        .unwrap();
    for (i, layer) in ["block1", "block3"].into_iter().enumerate() {
        let one = GradCamConfig::new()
            .with_layer(layer)
            .init(&model)
            .unwrap()
            .explain(x.clone(), &targets)
            .unwrap();
        assert_eq!(both.layers[i].name, layer);
        let diff = max_abs_diff(
            &host(both.layers[i].weights.clone()),
            &host(one.layers[0].weights.clone()),
        );
        assert!(diff < 1e-5, "{layer}: weights differ by {diff}");
        let diff = max_abs_diff(
            &host(both.layers[i].heatmap.clone()),
            &host(one.layers[0].heatmap.clone()),
        );
        assert!(diff < 1e-5, "{layer}: heatmaps differ by {diff}");
    }
    // The combination: clip at 0, average, normalise.
    let mean: Vec<f32> = host(both.layers[0].heatmap.clone())
        .iter()
        .zip(host(both.layers[1].heatmap.clone()))
        .map(|(a, b)| (a.max(0.0) + b.max(0.0)) / 2.0)
        .collect();
    let combined = host(both.heatmap.clone());
    let plane = 16 * 16;
    for (p, (got, mean)) in combined.chunks(plane).zip(mean.chunks(plane)).enumerate() {
        let (lo, hi) = mean
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        for (g, v) in got.iter().zip(mean) {
            assert!((g - (v - lo) / (hi - lo + 1e-7)).abs() < 1e-5, "plane {p}");
        }
    }
}

#[test]
fn layers_are_listed_with_their_shapes_and_the_default_is_the_last() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let explainer = GradCamConfig::new().init(&model).unwrap();
    assert_eq!(explainer.config().layers, vec!["block3".to_string()]);
    let layers = explainer
        .layer_shapes(tensor(1, [2, 3, 9, 9], 1.0, &device))
        .unwrap();
    let listed: Vec<_> = layers.iter().map(|l| (l.name.as_str(), l.shape)).collect();
    assert_eq!(
        listed,
        vec![
            ("block1", [2, 8, 9, 9]),
            ("block2", [2, 12, 5, 5]),
            ("block3", [2, 16, 5, 5])
        ]
    );
}

#[test]
fn maps_are_normalised_to_the_unit_interval_and_upsampled_to_the_input() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(61, [2, 3, 20, 14], 1.0, &device);
    let e = GradCamConfig::new()
        .with_layer("block3")
        .init(&model)
        .unwrap()
        .explain(x, &Targets::top1())
        .unwrap();
    assert_eq!(e.heatmap.dims(), [2, 1, 20, 14]);
    assert_eq!(e.layers[0].cam.dims(), [2, 1, 10, 7]);
    for image in 0..2 {
        let cam = host(e.layers[0].cam.clone().narrow(0, image, 1));
        let (lo, hi) = cam
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        assert_eq!(lo, 0.0);
        assert!((hi - 1.0).abs() < 1e-5, "max {hi}");
        let heat = e.heatmap_values(image, 0);
        assert!(heat.iter().all(|v| (0.0..=1.0 + 1e-6).contains(v)));
    }
}

#[test]
fn a_flat_map_is_all_zeros_not_nan() {
    let device = Device::flex();
    // A constant input: every pixel of the layer is the same, so the map is flat.
    let model = GapLinear {
        fc: linear(5, [3, 4], &device),
    };
    let x = Tensor::<4>::ones([1, 3, 6, 6], &device) * 2.5;
    for relu_on in [true, false] {
        let e = GradCamConfig::new()
            .with_relu(relu_on)
            .init(&model)
            .unwrap()
            .explain(x.clone(), &Targets::class(1))
            .unwrap();
        let heat = e.heatmap_values(0, 0);
        assert!(heat.iter().all(|v| *v == 0.0), "{heat:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Targets.

#[test]
fn per_image_targets_equal_one_image_at_a_time() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(71, [3, 3, 12, 12], 1.0, &device);
    let explainer = GradCamConfig::new()
        .with_layer("block2")
        .init(&model)
        .unwrap();
    let classes = [4, 0, 2];
    let batch = explainer
        .explain(x.clone(), &Targets::per_image(classes))
        .unwrap();
    for (i, class) in classes.into_iter().enumerate() {
        let alone = explainer
            .explain(x.clone().narrow(0, i, 1), &Targets::class(class))
            .unwrap();
        assert_eq!(batch.targets[i][0].class, Some(class));
        let diff = max_abs_diff(&batch.heatmap_values(i, 0), &alone.heatmap_values(0, 0));
        assert!(diff < 1e-5, "image {i}: {diff}");
    }
    // One target for all equals the same target given per image.
    let broadcast = explainer.explain(x.clone(), &Targets::class(2)).unwrap();
    let repeated = explainer
        .explain(x, &Targets::per_image([2, 2, 2]))
        .unwrap();
    assert_eq!(host(broadcast.heatmap), host(repeated.heatmap));
}

#[test]
fn several_classes_per_image_equal_separate_calls() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(81, [2, 3, 12, 12], 1.0, &device);
    let explainer = GradCamConfig::new()
        .with_layer("block2")
        .init(&model)
        .unwrap();
    let together = explainer
        .explain(x.clone(), &Targets::classes([3, 1, 0]))
        .unwrap();
    assert_eq!(together.heatmap.dims(), [2, 3, 12, 12]);
    for (j, class) in [3, 1, 0].into_iter().enumerate() {
        let separate = explainer
            .explain(x.clone(), &Targets::class(class))
            .unwrap();
        for i in 0..2 {
            let diff = max_abs_diff(
                &together.heatmap_values(i, j),
                &separate.heatmap_values(i, 0),
            );
            assert!(diff < 1e-5, "image {i} class {class}: {diff}");
            assert!((together.targets[i][j].score - separate.targets[i][0].score).abs() < 1e-5);
        }
    }
    // Different classes give different maps (the comparison above is not vacuous).
    assert!(
        max_abs_diff(
            &together.heatmap_values(0, 0),
            &together.heatmap_values(0, 1)
        ) > 1e-2
    );
}

#[test]
fn top1_is_the_argmax_logit() {
    let device = Device::flex();
    let classes = 7;
    let model = GapLinear {
        fc: linear(97, [4, classes], &device),
    };
    let x = tensor(91, [12, 4, 6, 6], 3.0, &device);
    let logits = host(model.forward_probed(x.clone(), &mut Probe::passthrough()));
    let explainer = GradCamConfig::new().init(&model).unwrap();
    let top = explainer.explain(x.clone(), &Targets::top1()).unwrap();
    let argmax: Vec<usize> = logits
        .chunks(classes)
        .map(|row| (0..classes).fold(0, |b, i| if row[i] > row[b] { i } else { b }))
        .collect();
    let explained: Vec<usize> = top.targets.iter().map(|t| t[0].class.unwrap()).collect();
    assert_eq!(explained, argmax);
    let distinct = argmax
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    assert!(
        distinct >= 3,
        "the batch should not all predict one class: {argmax:?}"
    );
    let by_class = explainer.explain(x, &Targets::per_image(argmax)).unwrap();
    assert_eq!(host(top.heatmap), host(by_class.heatmap));
}

#[test]
fn a_custom_score_works_like_the_logit_it_selects_and_softmax_is_reported() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(95, [2, 3, 12, 12], 1.0, &device);
    let explainer = GradCamConfig::new().init(&model).unwrap();
    let logit = Target::score(|l: Tensor<2>| l.narrow(1, 2, 1).flatten(0, 1));
    let by_fn = explainer.explain(x.clone(), &Targets::all(logit)).unwrap();
    let by_class = explainer.explain(x.clone(), &Targets::class(2)).unwrap();
    assert!(max_abs_diff(&host(by_fn.heatmap.clone()), &host(by_class.heatmap)) < 1e-5);
    assert_eq!(by_fn.targets[0][0].class, None);

    let prob = Target::score(|l: Tensor<2>| softmax(l, 1).narrow(1, 2, 1).flatten(0, 1));
    let by_prob = explainer.explain(x.clone(), &Targets::all(prob)).unwrap();
    let logits = host(model.forward(x));
    for i in 0..2 {
        let row = &logits[i * 5..(i + 1) * 5];
        let z: f32 = row.iter().map(|v| v.exp()).sum();
        assert!((by_prob.targets[i][0].score - row[2].exp() / z).abs() < 1e-5);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: every variant, from the input that causes it.

#[test]
fn every_error_is_typed_and_says_whose_fault_it_is() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let explainer = GradCamConfig::new().init(&model).unwrap();
    let x = tensor(1, [2, 3, 8, 8], 1.0, &device);

    let err = explainer
        .explain(Tensor::zeros([0, 3, 8, 8], &device), &Targets::top1())
        .unwrap_err();
    assert!(matches!(
        err,
        GradCamError::EmptyBatch {
            shape: [0, 3, 8, 8]
        }
    ));
    assert_eq!(err.fault(), Fault::Input);

    let err = explainer
        .explain(tensor(1, [2, 4, 8, 8], 1.0, &device), &Targets::top1())
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::InputShape {
                got: [2, 4, 8, 8],
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("[n, 3, _, _]"), "{err}");

    let err = GradCamConfig::new()
        .with_layer("layer4")
        .init(&model)
        .unwrap_err();
    assert!(matches!(err, GradCamError::UnknownLayer { .. }));
    assert!(err.to_string().contains("block1, block2, block3"), "{err}");

    let err = explainer
        .explain(x.clone(), &Targets::per_image([0, 1, 2]))
        .unwrap_err();
    assert!(matches!(
        err,
        GradCamError::TargetCount { got: 3, batch: 2 }
    ));

    let ragged = Targets::rows(vec![vec![0.into()], vec![0.into(), 1.into()]]);
    let err = explainer.explain(x.clone(), &ragged).unwrap_err();
    assert!(matches!(
        err,
        GradCamError::RaggedTargets {
            image: 1,
            got: 2,
            expected: 1
        }
    ));

    let err = explainer
        .explain(x.clone(), &Targets::class(5))
        .unwrap_err();
    assert!(matches!(
        err,
        GradCamError::ClassOutOfRange {
            class: 5,
            num_classes: 5
        }
    ));

    let bad_score = Target::score(|l: Tensor<2>| l.flatten(0, 1));
    let err = explainer
        .explain(x.clone(), &Targets::all(bad_score))
        .unwrap_err();
    assert!(
        matches!(err, GradCamError::ScoreShape { expected: 2, .. }),
        "{err}"
    );

    let nan_score = Target::score(|l: Tensor<2>| l.narrow(1, 0, 1).flatten(0, 1) * f32::NAN);
    let err = explainer
        .explain(x.clone(), &Targets::all(nan_score))
        .unwrap_err();
    assert!(matches!(err, GradCamError::NonFinite { .. }));
    assert_eq!(err.fault(), Fault::Numerical);

    let x2 = tensor(2, [2, 2, 4, 4], 1.0, &device);
    let contract = |how: u8, layer: &str, x: Tensor<4>| {
        GradCamConfig::new()
            .with_layer(layer)
            .init(&broken(how, &device))
            .unwrap()
            .explain(x, &Targets::class(1))
            .unwrap_err()
    };
    let err = contract(GHOST, "ghost", x2.clone());
    assert!(matches!(err, GradCamError::LayerNotReached { ref name } if name == "ghost"));
    assert_eq!(err.fault(), Fault::Model);
    let err = contract(TWICE, "input", x2.clone());
    assert!(matches!(err, GradCamError::DuplicateLayer { .. }));
    let err = contract(ONE_ROW, "input", x2.clone());
    assert!(matches!(
        err,
        GradCamError::OutputShape {
            got: [1, 3],
            expected_rows: 2
        }
    ));
    let err = contract(DETACHED, "input", x2.clone());
    assert!(matches!(err, GradCamError::NoGradient { .. }), "{err}");
    // sqrt at 0: the score is finite, its gradient is not.
    let err = contract(SQRT, "input", Tensor::zeros([1, 2, 4, 4], &device));
    assert!(
        matches!(err, GradCamError::NonFinite { ref what } if what.contains("gradients")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Backends: the same cases, the same numbers.

/// Every map of a set of cases on `device`: relu on/off, several targets, two layers.
fn cases(device: &Device) -> Vec<Vec<f32>> {
    let model = TinyNet::new(device);
    let x = tensor(111, [3, 3, 15, 13], 1.0, device);
    let mut out = Vec::new();
    for (layers, relu_on) in [
        (vec!["block3"], true),
        (vec!["block2"], false),
        (vec!["block1", "block3"], true),
    ] {
        let e = GradCamConfig::new()
            .with_layers(layers)
            .with_relu(relu_on)
            .init(&model)
            .unwrap()
            .explain(x.clone(), &Targets::classes([0, 3]))
            .unwrap();
        out.push(host(e.heatmap.clone()));
        for layer in e.layers {
            out.push(host(layer.raw));
            out.push(host(layer.cam));
        }
    }
    out
}

fn assert_same_maps(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (a, b)) in a.iter().zip(b).enumerate() {
        let diff = max_abs_diff(a, b);
        assert!(diff <= 1e-4, "{what}: map {i} differs by {diff}");
    }
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
fn flex_and_ndarray_agree() {
    let flex = cases(&Device::flex());
    let ndarray = cases(&Device::ndarray());
    assert_same_maps(&flex, &ndarray, "flex vs ndarray");
}

/// The wgpu device, after checking that an adapter really exists (no silent skip).
#[cfg(feature = "wgpu")]
fn wgpu_device() -> Device {
    let device = Device::wgpu(Default::default());
    let identity = device
        .identity()
        .expect("a wgpu adapter: install a Vulkan driver (lavapipe: mesa-vulkan-drivers)");
    eprintln!("wgpu adapter: {}", identity.name);
    device
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_agrees_with_flex() {
    let device = wgpu_device();
    let flex = cases(&Device::flex());
    let wgpu = cases(&device);
    assert_same_maps(&flex, &wgpu, "flex vs wgpu");
}

// ---------------------------------------------------------------------------------------------
// The map-reduction kernel against the tensor-op reference.

/// `(b, k, h, w, m)`: odd sizes, one pixel, one channel, batches of 1 and 33, pixel counts that
/// are not multiples of a workgroup.
const KERNEL_SHAPES: [[usize; 5]; 6] = [
    [1, 1, 1, 1, 1],
    [33, 3, 5, 7, 2],
    [2, 17, 13, 11, 3],
    [1, 64, 1, 1, 1],
    [3, 1, 16, 16, 1],
    [1, 300, 7, 7, 1],
];

fn kernel_against_reference(device: &Device) {
    use gradcam::{kernel, reduce};
    for (i, [b, k, h, w, m]) in KERNEL_SHAPES.into_iter().enumerate() {
        let acts = tensor(300 + i as u64, [b, k, h, w], 2.0, device);
        let weights = tensor(400 + i as u64, [b, m, k], 1.0, device);
        let got = kernel::weighted_sum(acts.clone(), weights.clone());
        assert_eq!(got.dims(), [b, m, h, w]);
        let expected = host(reduce::weighted_sum(acts, weights));
        let got = host(got);
        let scale = expected.iter().fold(1.0f32, |s, v| s.max(v.abs()));
        let diff = max_abs_diff(&got, &expected);
        assert!(
            diff <= 1e-5 * scale,
            "shape {:?}: kernel differs by {diff} (scale {scale})",
            [b, k, h, w, m]
        );
        // The ReLU'd and normalised maps agree as well.
        for relu_on in [true, false] {
            let a = host(gradcam::reduce::finish(
                Tensor::from_data(TensorData::new(got.clone(), [b, m, h, w]), device),
                relu_on,
                Normalization::MinMax,
            ));
            let e = host(gradcam::reduce::finish(
                Tensor::from_data(TensorData::new(expected.clone(), [b, m, h, w]), device),
                relu_on,
                Normalization::MinMax,
            ));
            assert!(
                max_abs_diff(&a, &e) <= 1e-5,
                "shape {:?} relu {relu_on}",
                [b, k, h, w, m]
            );
        }
    }
}

#[test]
fn kernel_matches_the_tensor_op_reference_on_cpu() {
    kernel_against_reference(&Device::flex());
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
    kernel_against_reference(&Device::ndarray());
}

#[test]
fn gradients_through_the_kernel_op_equal_the_reference() {
    use gradcam::{kernel, reduce};
    let device = Device::flex();
    let [b, k, h, w, m] = [3, 5, 4, 6, 2];
    let probe = tensor(7, [b, m, h, w], 1.0, &device);
    let grads = |use_kernel: bool| {
        let acts = tensor(5, [b, k, h, w], 1.0, &device)
            .autodiff()
            .require_grad();
        let weights = tensor(6, [b, m, k], 1.0, &device).autodiff().require_grad();
        let out = if use_kernel {
            kernel::weighted_sum(acts.clone(), weights.clone())
        } else {
            reduce::weighted_sum(acts.clone(), weights.clone())
        };
        let g = (out * probe.clone()).sum().backward();
        (
            host(acts.grad(&g).unwrap()),
            host(weights.grad(&g).unwrap()),
        )
    };
    let (ka, kw) = grads(true);
    let (ra, rw) = grads(false);
    assert!(max_abs_diff(&ka, &ra) < 1e-5 && max_abs_diff(&kw, &rw) < 1e-5);
    assert!(
        ka.iter().any(|v| v.abs() > 1e-3),
        "the gradient is not trivially zero"
    );
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_kernel_matches_the_tensor_op_reference() {
    kernel_against_reference(&wgpu_device());
}
