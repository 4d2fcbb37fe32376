//! Bad input never panics: every error variant from the input that causes it, NaN and infinity
//! kept out of every `Ok` explanation, properties over random models, threads, and memory over
//! many failing calls.
#![cfg(feature = "flex")]

mod common;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use common::models::{GapLinear, TinyNet, convolutional, linear};
use common::{Iv, gamma, host, tensor};
use gradcam::kernels::weighted_sum;
use gradcam::methods::{AblationCam, IsCam, Method, ScoreCam, SmoothGradCamPlusPlus, SsCam};
use gradcam::{ExplainerConfig, GradCam, GradCamError, Normalization, Probe, Target, Targets};
use proptest::prelude::*;

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
const STALE: u8 = 6; // passes the pre-cut tensor to a second explained layer
const PANICS: u8 = 7; // its forward panics
const UNUSED: u8 = 8; // the logits use channel 0 only
const HALF_BLOCK: u8 = 10; // routes an attention through the probe, not the block's output

impl GradCam for Broken {
    fn layers(&self) -> Vec<String> {
        vec!["input".into(), "ghost".into(), "later".into()]
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let probed = probe.layer("input", x.clone());
        let x = match self.how {
            TWICE => probe.layer("input", probed),
            DETACHED => x,
            SQRT => probed.sqrt(),
            STALE => {
                let _ = probe.layer("later", x.clone());
                probed
            }
            PANICS => panic!("the model's own check failed"),
            UNUSED => {
                // A zero bias through the probe, so that FullGrad runs here too.
                let device = probed.device();
                let probed = probe.bias("input", probed, || Some(Tensor::zeros([2], &device)));
                let first = probed.narrow(1, 0, 1);
                first.clone().repeat_dim(1, 2) * 0.5 + first * 0.5
            }
            HALF_BLOCK => {
                // The channels as two heads' attention over 4 keys on a 2 x 2 grid.
                let [n, c, h, w] = probed.dims();
                let a = softmax(probed.reshape([n, c, h, w]), 3);
                probe.attention("block", a, [2, 2], 0)
            }
            _ => probed,
        };
        let logits = self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3));
        match self.how {
            ONE_ROW => logits.narrow(0, 0, 1),
            _ => logits,
        }
    }
}

fn broken(how: u8, device: &Device) -> Broken {
    Broken {
        fc: linear(3, [2, 3], device),
        how,
    }
}

/// A model with a convolution and no declared input shape.
#[derive(Module, Debug)]
struct Undeclared {
    conv: Conv2d,
    fc: Linear,
}

impl GradCam for Undeclared {
    fn layers(&self) -> Vec<String> {
        vec!["conv".into()]
    }
    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("conv", self.conv.forward(x));
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3))
    }
}

#[test]
fn every_input_error_is_typed_and_says_whose_fault_it_is() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    let x = tensor(1, [2, 3, 8, 8], 1.0, &device);
    let top = Targets::top(1);

    for (shape, axis) in [([0, 3, 8, 8], 0), ([2, 3, 0, 8], 2), ([2, 0, 8, 8], 1)] {
        let err = explainer
            .explain(Tensor::zeros(shape, &device), &top)
            .unwrap_err();
        assert!(
            matches!(err, GradCamError::Input(gradcam::InputError::EmptyInput { axis: a, .. }) if a == axis),
            "{err}"
        );
        assert!(matches!(err, GradCamError::Input(_)));
    }

    let err = explainer
        .explain(tensor(1, [2, 4, 8, 8], 1.0, &device), &top)
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Input(gradcam::InputError::InputShape {
                got: [2, 4, 8, 8],
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("[n, 3, _, _]"), "{err}");

    let f64_input = tensor(1, [2, 3, 8, 8], 1.0, &device).cast(burn::tensor::FloatDType::F64);
    assert_eq!(f64_input.dtype(), burn::tensor::DType::F64);
    let err = explainer.explain(f64_input, &top).unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Input(gradcam::InputError::DTypeMismatch { .. })
        ),
        "{err}"
    );

    #[cfg(feature = "ndarray")]
    {
        #[allow(deprecated)]
        let other = Device::ndarray();
        let err = explainer
            .explain(tensor(1, [2, 3, 8, 8], 1.0, &other), &top)
            .unwrap_err();
        assert!(
            matches!(
                err,
                GradCamError::Input(gradcam::InputError::DeviceMismatch { .. })
            ),
            "{err}"
        );
        assert!(matches!(err, GradCamError::Input(_)));
    }

    let err = ExplainerConfig::new()
        .with_layer("layer4")
        .init(&model)
        .unwrap_err();
    assert!(matches!(
        err,
        GradCamError::Input(gradcam::InputError::UnknownLayer { .. })
    ));
    assert!(err.to_string().contains("block1, block2, block3"), "{err}");
    let err = ExplainerConfig::new()
        .with_layers(["block2", "block3", "block2"])
        .init(&model)
        .unwrap_err();
    assert!(
        matches!(err, GradCamError::Input(gradcam::InputError::RepeatedLayer { ref name }) if name == "block2"),
        "{err}"
    );

    let err = explainer
        .explain(x.clone(), &Targets::one_per_image([0, 1, 2]))
        .unwrap_err();
    assert!(matches!(
        err,
        GradCamError::Input(gradcam::InputError::TargetCount { got: 3, batch: 2 })
    ));
    let ragged = Targets::rows_per_image(vec![vec![0.into()], vec![0.into(), 1.into()]]);
    let err = explainer.explain(x.clone(), &ragged).unwrap_err();
    assert!(matches!(
        err,
        GradCamError::Input(gradcam::InputError::RaggedTargets {
            image: 1,
            got: 2,
            expected: 1
        })
    ));
    for method in [Method::GradCam, Method::EigenCam, Method::ScoreCam] {
        let err = ExplainerConfig::new()
            .with_method(method)
            .init(&model)
            .unwrap()
            .explain(x.clone(), &Targets::class(5))
            .unwrap_err();
        assert!(
            matches!(
                err,
                GradCamError::Input(gradcam::InputError::ClassOutOfRange {
                    class: 5,
                    num_classes: 5
                })
            ),
            "{method}: {err}"
        );
    }
    let bad_score = Target::score(|l: Tensor<2>| l.flatten(0, 1));
    let err = explainer
        .explain(x.clone(), &Targets::every_image([bad_score]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Input(gradcam::InputError::ScoreShape { expected: 2, .. })
        ),
        "{err}"
    );

    let e = explainer.explain(x.clone(), &top).unwrap();
    assert!(matches!(
        e.heatmap_values(2, 0),
        Err(GradCamError::Input(gradcam::InputError::Argument { .. }))
    ));
    assert!(matches!(
        e.heatmap_values(0, 1),
        Err(GradCamError::Input(gradcam::InputError::Argument { .. }))
    ));

    let zero_batch = ExplainerConfig::new()
        .with_method(ScoreCam::new().with_batch_size(0))
        .init(&model)
        .unwrap()
        .explain(x.clone(), &top)
        .unwrap_err();
    assert!(
        matches!(
            zero_batch,
            GradCamError::Input(gradcam::InputError::Argument { .. })
        ),
        "{zero_batch}"
    );

    let err = "gradcam".parse::<Method>().unwrap_err();
    assert!(matches!(
        err,
        GradCamError::Input(gradcam::InputError::Argument { .. })
    ));

    let a = Tensor::<4>::ones([2, 3, 4, 4], &device);
    for w in [
        Tensor::<3>::ones([2, 1, 4], &device),
        Tensor::<3>::ones([1, 1, 3], &device),
        Tensor::<3>::ones([2, 0, 3], &device),
    ] {
        assert!(matches!(
            weighted_sum(a.clone(), w),
            Err(GradCamError::Input(gradcam::InputError::Argument { .. }))
        ));
    }
}

#[test]
fn an_input_below_the_models_minimum_size_is_an_error_not_an_underflow() {
    let device = Device::flex();
    // Random weights: only the sizes matter here.
    let model = gradcam::models::SqueezeNet::new(&device);
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    for side in [1, 16, 30] {
        let err = explainer
            .explain(Tensor::zeros([1, 3, side, 31], &device), &Targets::top(1))
            .unwrap_err();
        assert!(
            matches!(
                err,
                GradCamError::Input(gradcam::InputError::InputTooSmall { min: [31, 31], .. })
            ),
            "{side}: {err}"
        );
    }
    // 31 x 31 is the smallest that runs; its fire9 is 1 x 1.
    let layers = explainer
        .layer_shapes(Tensor::zeros([1, 3, 31, 31], &device))
        .unwrap();
    assert_eq!(
        layers.iter().find(|l| l.name == "fire9").unwrap().shape,
        [1, 512, 1, 1]
    );
    // The other bundled models pad every convolution: one pixel is enough.
    let lite0 = gradcam::models::EfficientNetLite0::new(&device);
    let e = ExplainerConfig::new().init(&lite0).unwrap();
    assert!(
        e.explain(tensor(2, [1, 3, 1, 1], 1.0, &device), &Targets::top(1))
            .is_ok()
    );
    let resnet = gradcam::models::ResNet::resnet18(10, &device);
    let e = ExplainerConfig::new().init(&resnet).unwrap();
    assert!(
        e.explain(tensor(2, [1, 3, 1, 1], 1.0, &device), &Targets::top(1))
            .is_ok()
    );
}

#[test]
fn a_model_that_breaks_its_contract_gets_a_model_error() {
    let device = Device::flex();
    let x = tensor(2, [2, 2, 4, 4], 1.0, &device);
    let contract = |how: u8, layers: &[&str], targets: Targets| {
        ExplainerConfig::new()
            .with_layers(layers.iter().copied())
            .init(&broken(how, &device))
            .unwrap()
            .explain(x.clone(), &targets)
            .unwrap_err()
    };
    let one = || Targets::class(1);
    let err = contract(GHOST, &["ghost"], one());
    assert!(
        matches!(err, GradCamError::Model(gradcam::ModelError::LayerNotReached { ref name }) if name == "ghost")
    );
    assert!(matches!(err, GradCamError::Model(_)));
    let err = contract(TWICE, &["input"], one());
    assert!(matches!(
        err,
        GradCamError::Model(gradcam::ModelError::DuplicateLayer { .. })
    ));
    let err = contract(ONE_ROW, &["input"], one());
    assert!(matches!(
        err,
        GradCamError::Model(gradcam::ModelError::OutputShape {
            got: [1, 3],
            expected_rows: 2
        })
    ));
    let err = contract(DETACHED, &["input"], one());
    assert!(
        matches!(
            err,
            GradCamError::Model(gradcam::ModelError::NoGradient { .. })
        ),
        "{err}"
    );
    // A classifier with no class at all (`ResNet::resnet18(0, ..)`): top-1 has nothing to pick.
    let no_classes = gradcam::models::ResNet::resnet18(0, &device);
    let err = ExplainerConfig::new()
        .init(&no_classes)
        .unwrap()
        .explain(tensor(4, [2, 3, 16, 16], 1.0, &device), &Targets::top(1))
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Model(gradcam::ModelError::ZeroClasses { rows: 2 })
        ),
        "{err}"
    );
    let err = contract(STALE, &["input", "later"], Targets::every_image([0, 1]));
    assert!(
        matches!(
            err,
            GradCamError::Model(gradcam::ModelError::LayerBatch {
                got: 2,
                expected: 4,
                ..
            })
        ),
        "{err}"
    );
    let err = contract(PANICS, &["input"], one());
    assert!(
        matches!(err, GradCamError::Model(gradcam::ModelError::ForwardPanicked { ref message }) if message.contains("own check")),
        "{err}"
    );
    // sqrt at 0: the score is finite, its gradient is not.
    let err = ExplainerConfig::new()
        .with_layer("input")
        .init(&broken(SQRT, &device))
        .unwrap()
        .explain(Tensor::zeros([1, 2, 4, 4], &device), &one())
        .unwrap_err();
    assert!(
        matches!(err, GradCamError::Numerical(gradcam::NumericalError::NonFinite { ref what }) if what.contains("gradients")),
        "{err}"
    );
    assert!(matches!(err, GradCamError::Numerical(_)));

    // A wrong channel count for a model that does not declare its input: Burn's convolution
    // panics, and that comes back as an error.
    let undeclared = Undeclared {
        conv: Conv2dConfig::new([3, 4], [3, 3]).init(&device),
        fc: LinearConfig::new(4, 2).init(&device),
    };
    let err = ExplainerConfig::new()
        .init(&undeclared)
        .unwrap()
        .explain(tensor(3, [1, 5, 8, 8], 1.0, &device), &one())
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Model(gradcam::ModelError::ForwardPanicked { .. })
        ),
        "{err}"
    );
}

#[test]
fn nan_and_infinity_never_reach_an_ok_explanation() {
    let device = Device::flex();
    // NaN in a score.
    let model = TinyNet::new(&device);
    let x = tensor(1, [2, 3, 8, 8], 1.0, &device);
    let nan_score = Target::score(|l: Tensor<2>| l.narrow(1, 0, 1).flatten(0, 1) * f32::NAN);
    let err = ExplainerConfig::new()
        .init(&model)
        .unwrap()
        .explain(x.clone(), &Targets::every_image([nan_score]))
        .unwrap_err();
    assert!(matches!(
        err,
        GradCamError::Numerical(gradcam::NumericalError::NonFinite { .. })
    ));

    // NaN and infinity in the input, in a channel the scores do not use: the scores stay finite,
    // the maps would not.
    let mut values = common::values(4, 2 * 2 * 4 * 4, 1.0);
    values[16 + 5] = f32::NAN; // image 0, channel 1
    values[32 + 16 + 7] = f32::INFINITY; // image 1, channel 1
    let poisoned = Tensor::<4>::from_data(TensorData::new(values, [2, 2, 4, 4]), &device);
    for method in convolutional() {
        let result = ExplainerConfig::new()
            .with_method(method)
            .with_layer("input")
            .init(&broken(UNUSED, &device))
            .unwrap()
            .explain(poisoned.clone(), &Targets::class(1));
        match result {
            Err(GradCamError::Numerical(gradcam::NumericalError::NonFinite { .. })) => {}
            Err(other) => panic!("{method}: {other}"),
            Ok(e) => {
                let all = [
                    host(e.heatmap),
                    host(e.layers[0].raw.clone()),
                    host(e.layers[0].cam.clone()),
                ];
                assert!(
                    all.iter().flatten().all(|v| v.is_finite()),
                    "{method}: an Ok explanation holds NaN"
                );
            }
        }
    }

    // NaN in a weight of the layers before the explained one.
    let mut poisoned_model = TinyNet::new(&device);
    let mut w = host(poisoned_model.conv1.weight.val());
    w[3] = f32::NAN;
    poisoned_model.conv1.weight =
        Param::from_tensor(Tensor::from_data(TensorData::new(w, [8, 3, 3, 3]), &device));
    for method in convolutional() {
        let result = ExplainerConfig::new()
            .with_method(method)
            .init(&poisoned_model)
            .unwrap()
            .explain(x.clone(), &Targets::class(1));
        assert!(
            matches!(
                result,
                Err(GradCamError::Numerical(
                    gradcam::NumericalError::NonFinite { .. }
                ))
            ),
            "{method}: {result:?}"
        );
    }

    // Ablation-CAM divides by the score: a zero score is an error, not an infinite weight.
    let zero = Target::score(|l: Tensor<2>| l.narrow(1, 0, 1).flatten(0, 1) * 0.0);
    let err = ExplainerConfig::new()
        .with_method(AblationCam::new())
        .init(&model)
        .unwrap()
        .explain(x, &Targets::every_image([zero]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Numerical(gradcam::NumericalError::ZeroScore { .. })
        ),
        "{err}"
    );
}

#[test]
fn a_capture_without_gradients_cannot_feed_a_gradient_method() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(1, [1, 3, 8, 8], 1.0, &device);
    let eigen = ExplainerConfig::new()
        .with_method(Method::EigenCam)
        .init(&model)
        .unwrap();
    let capture = eigen.capture(x, &Targets::top(1)).unwrap();
    assert!(capture.layers[0].gradients.is_none());
    let grad = ExplainerConfig::new().init(&model).unwrap();
    let err = grad.explain_capture(&capture).unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Input(gradcam::InputError::CaptureWithoutGradients { .. })
        ),
        "{err}"
    );
    // One capture serves several gradient methods.
    let capture = grad
        .capture(tensor(1, [1, 3, 8, 8], 1.0, &device), &Targets::top(1))
        .unwrap();
    for method in [
        Method::GradCam,
        Method::HiResCam,
        Method::LayerCam,
        Method::EigenCam,
    ] {
        let e = ExplainerConfig::new()
            .with_method(method)
            .init(&model)
            .unwrap();
        assert!(e.explain_capture(&capture).is_ok(), "{method}");
    }
}

#[test]
fn many_forward_methods_report_progress_and_any_chunk_size_gives_the_same_map() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(3, [2, 3, 10, 10], 1.0, &device);
    // (IS-CAM and SS-CAM with 2 draws each: every draw goes through the chunks.)
    for (method, draws) in [
        (Method::ScoreCam, 1),
        (Method::AblationCam, 1),
        (Method::IsCam, 2),
        (Method::SsCam, 2),
    ] {
        let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = reports.clone();
        let record =
            move |p: &gradcam::methods::Progress| sink.lock().unwrap().push((p.done, p.total));
        let configured: Box<dyn gradcam::CamMethod> = match method {
            Method::ScoreCam => Box::new(ScoreCam::new().with_batch_size(5).with_progress(record)),
            Method::IsCam => Box::new(
                IsCam::new()
                    .with_samples(2)
                    .with_batch_size(5)
                    .with_progress(record),
            ),
            Method::SsCam => Box::new(
                SsCam::new()
                    .with_samples(2)
                    .with_batch_size(5)
                    .with_progress(record),
            ),
            _ => Box::new(AblationCam::new().with_batch_size(5).with_progress(record)),
        };
        let run = |m: Box<dyn gradcam::CamMethod>| {
            let config = ExplainerConfig {
                method: m.into(),
                ..ExplainerConfig::new()
            };
            let e = config
                .init(&model)
                .unwrap()
                .explain(x.clone(), &Targets::top(1))
                .unwrap();
            (host(e.layers[0].weights.clone().unwrap()), e.targets)
        };
        let (chunked, targets) = run(configured);
        // block3 has 16 channels: chunks of 5, 5, 5, 1 for each draw of each of the 2 images.
        let seen = reports.lock().unwrap().clone();
        let total = 2 * draws * 16;
        let expected: Vec<(usize, usize)> = (0..2 * draws)
            .flat_map(|block| [5, 10, 15, 16].map(|end| (block * 16 + end, total)))
            .collect();
        assert_eq!(seen, expected, "{method}");
        // One chunk of everything: the same forwards in other batch sizes, so the scores agree
        // within the networks' float32 agreement `d = DELTA L` (L: the largest logit); then
        // softmax weights within a factor exp(+-2 d), ablation weights within (2 + |w|) d / |y|.
        let whole: Box<dyn gradcam::CamMethod> = match method {
            Method::ScoreCam => Box::new(ScoreCam::new().with_batch_size(64)),
            // Their masked inputs are scaled (IS-CAM's path) or noisy (SS-CAM): `DELTA L` of the
            // plain input's logits bounds none of their scores, so only the reports are checked
            // (SS-CAM's noise per chunk: its own unit test).
            Method::IsCam | Method::SsCam => continue,
            _ => Box::new(AblationCam::new().with_batch_size(64)),
        };
        let (all, _) = run(whole);
        let logits = host(model.forward(x.clone()));
        let d = common::DELTA * logits.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64)) * 2.0;
        for (i, (a, b)) in chunked.iter().zip(&all).enumerate() {
            let (a, b) = (*a as f64, *b as f64);
            let ok = match method {
                Method::ScoreCam => {
                    b >= a * (-2.0 * d).exp() - 1e-12 && b <= a * (2.0 * d).exp() + 1e-12
                }
                _ => {
                    (a - b).abs()
                        <= 2.0 * (2.0 + a.abs()) * d / targets[i / 16][0].score.abs() as f64
                }
            };
            assert!(ok, "{method}: weight {i}: {a} vs {b}");
        }
    }
}

#[test]
fn legrad_on_a_model_without_attention_or_half_a_block_says_so() {
    let device = Device::flex();
    let x = tensor(8, [1, 2, 4, 4], 1.0, &device);
    let legrad = |how| {
        ExplainerConfig::new()
            .with_method(Method::LeGrad)
            .with_layer("input")
            .init(&broken(how, &device))
            .unwrap()
            .explain(x.clone(), &Targets::class(1))
            .unwrap_err()
    };
    let err = legrad(UNUSED);
    assert!(
        matches!(err, GradCamError::Model(gradcam::ModelError::NoAttention)),
        "{err}"
    );
    assert!(err.to_string().contains("probe.attention"), "{err}");
    let err = legrad(HALF_BLOCK);
    assert!(
        matches!(
            &err,
            GradCamError::Model(gradcam::ModelError::UnroutedBlock { name, .. }) if name == "block"
        ),
        "{err}"
    );
    assert!(err.to_string().contains("probe.block_output"), "{err}");
}

#[test]
fn fullgrad_on_a_model_that_routes_no_bias_says_so() {
    let device = Device::flex();
    let x = tensor(8, [1, 2, 4, 4], 1.0, &device);
    const PLAIN: u8 = 9; // the layer as it is, no bias through the probe
    let err = ExplainerConfig::new()
        .with_method(Method::FullGrad)
        .with_layer("input")
        .init(&broken(PLAIN, &device))
        .unwrap()
        .explain(x.clone(), &Targets::class(1))
        .unwrap_err();
    assert!(
        matches!(err, GradCamError::Model(gradcam::ModelError::NoBiases)),
        "{err}"
    );
    assert!(err.to_string().contains("probe.bias"), "{err}");
    // The same model with a bias routed explains.
    let routed = ExplainerConfig::new()
        .with_method(Method::FullGrad)
        .with_layer("input")
        .init(&broken(UNUSED, &device))
        .unwrap()
        .explain(x, &Targets::class(1));
    assert!(routed.is_ok());
}

#[test]
fn smoothgrad_cam_plus_plus_reports_each_chunk_of_draws_and_keeps_a_rank_s_class() {
    let device = Device::flex();
    // A linear head on the input: every draw's gradient is its class's weights, so the weights
    // tell which class each draw explained.
    let (k, classes_count) = (3, 4);
    let model = gap(21, k, classes_count, &device);
    let x = tensor(3, [2, k, 10, 10], 1.0, &device);
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = reports.clone();
    // Noise far larger than the input: the noisy copies rank other classes first.
    let std = 100.0;
    let method = SmoothGradCamPlusPlus::new()
        .with_samples(5)
        .with_std(std)
        .with_batch_size(2);
    let recorded = method
        .clone()
        .with_progress(move |p| sink.lock().unwrap().push((p.done, p.total)));
    let explain = |method: SmoothGradCamPlusPlus, targets: &Targets| {
        ExplainerConfig::new()
            .with_method(method)
            .init(&model)
            .unwrap()
            .explain(x.clone(), targets)
            .unwrap()
    };
    let top = explain(recorded, &Targets::top(1));
    // 5 draws in chunks of 2, 2, 1, for each of the 2 images.
    let seen = reports.lock().unwrap().clone();
    assert_eq!(seen, [2, 4, 5, 7, 9, 10].map(|done| (done, 10)));
    // A rank is the class the unperturbed image ranked there, for every noisy copy.
    let classes: Vec<usize> = top.targets.iter().map(|t| t[0].class.unwrap()).collect();
    let fixed = explain(method.clone(), &Targets::one_per_image(classes.clone()));
    let [ours, theirs] = [&top, &fixed].map(|e| host(e.layers[0].weights.clone().unwrap()));
    assert_eq!(ours, theirs);
    // Ranking each noisy copy again would explain other classes for some draws (the noise
    // moves the top class), and another class gives other weights.
    let xs = host(x.clone());
    let per_image = k * 10 * 10;
    let moved_rank = (0..2).any(|image| {
        (0..5).any(|draw| {
            let noisy: Vec<f32> = method
                .noise(image, draw)
                .zip(&xs[image * per_image..(image + 1) * per_image])
                .map(|(z, v)| v + std * z)
                .collect();
            let noisy = Tensor::<4>::from_data(TensorData::new(noisy, [1, k, 10, 10]), &device);
            let logits = host(model.forward_probed(noisy, &mut Probe::passthrough()));
            let top = (0..classes_count)
                .max_by(|a, b| logits[*a].total_cmp(&logits[*b]))
                .unwrap();
            top != classes[image]
        })
    });
    assert!(
        moved_rank,
        "the noise never moved a top class: the test shows nothing"
    );
    let other: Vec<usize> = classes.iter().map(|c| (c + 1) % classes_count).collect();
    let moved = explain(method, &Targets::one_per_image(other));
    assert_ne!(ours, host(moved.layers[0].weights.clone().unwrap()));
}

// ---------------------------------------------------------------------------------------------
// Properties over random models, shapes, batches, targets and settings. Fixed case counts and
// seed (proptest's default seed is fixed unless PROPTEST_RNG_SEED says otherwise).

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A random linear head over `k` channels and `classes` classes.
fn gap(seed: u64, k: usize, classes: usize, device: &Device) -> GapLinear {
    GapLinear {
        fc: linear(seed, [k, classes], device),
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn maps_are_finite_in_the_unit_interval(
        seed in 0u64..1000, n in 1usize..4, k in 1usize..6, h in 1usize..7, w in 1usize..7,
        method in prop::sample::select(convolutional()), relu in any::<bool>(),
    ) {
        let device = Device::flex();
        let model = gap(seed, k, 3, &device);
        let x = tensor(seed + 1, [n, k, h, w], 2.0, &device);
        let e = ExplainerConfig::new().with_method(method).with_relu(relu).init(&model).unwrap()
            .explain(x, &Targets::top(1)).unwrap();
        for v in host(e.heatmap).iter().chain(&host(e.layers[0].cam.clone())) {
            prop_assert!(v.is_finite() && (0.0..=1.0).contains(v), "{method}: {v}");
        }
    }

    #[test]
    fn explanations_are_permutation_equivariant_and_batch_invariant(
        seed in 0u64..1000, n in 2usize..5,
    ) {
        // Grad-CAM on the linear head: each raw value is a float32 sum of k products of a weight
        // (a mean of h w gradients) and an activation, within gamma_(k + h w + 8) times the sum of
        // their magnitudes of the exact value, however the batch is arranged.
        let device = Device::flex();
        let [k, h, w] = [3, 5, 4];
        let model = gap(seed, k, 4, &device);
        let x = tensor(seed + 7, [n, k, h, w], 2.0, &device);
        let explainer = ExplainerConfig::new().with_relu(false).with_normalization(Normalization::Off).init(&model).unwrap();
        let all = explainer.explain(x.clone(), &Targets::class(2)).unwrap();
        let order: Vec<usize> = (0..n).rev().collect();
        let index = Tensor::<1, burn::tensor::Int>::from_data(
            TensorData::new(order.iter().map(|&i| i as i64).collect::<Vec<_>>(), [n]), &device);
        let reversed = explainer.explain(x.clone().select(0, index), &Targets::class(2)).unwrap();
        let (xs, weights) = (host(x.clone()), host(all.layers[0].weights.clone().unwrap()));
        let (raw_all, raw_rev) = (host(all.layers[0].raw.clone()), host(reversed.layers[0].raw.clone()));
        let p = h * w;
        for (j, &i) in order.iter().enumerate() {
            let alone = explainer.explain(x.clone().narrow(0, i, 1), &Targets::class(2)).unwrap();
            let raw_alone = host(alone.layers[0].raw.clone());
            for q in 0..p {
                let abs: f64 = (0..k).map(|c| (weights[i * k + c] * xs[(i * k + c) * p + q]).abs() as f64).sum();
                let e = Iv::around(raw_all[i * p + q] as f64, 2.0 * gamma(k + p + 8) * abs * (1.0 + 1e-3));
                prop_assert!(e.contains(raw_rev[j * p + q] as f64) && e.contains(raw_alone[q] as f64), "image {i} pixel {q}");
            }
        }
    }

    #[test]
    fn a_class_target_equals_per_image_and_a_score_selecting_its_logit(
        seed in 0u64..1000, n in 1usize..4, class in 0usize..4,
    ) {
        let device = Device::flex();
        let model = gap(seed, 3, 4, &device);
        let x = tensor(seed + 3, [n, 3, 4, 6], 2.0, &device);
        let explainer = ExplainerConfig::new().init(&model).unwrap();
        let a = host(explainer.explain(x.clone(), &Targets::class(class)).unwrap().heatmap);
        let b = host(explainer.explain(x.clone(), &Targets::one_per_image(vec![class; n])).unwrap().heatmap);
        let logit = Target::score(move |l: Tensor<2>| l.narrow(1, class, 1).flatten(0, 1));
        let c = host(explainer.explain(x, &Targets::every_image([logit])).unwrap().heatmap);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
    }

    #[test]
    fn scaling_the_logits_scales_raw_and_weights_and_keeps_the_map(
        seed in 0u64..1000, scale in 0.1f32..10.0,
    ) {
        // Grad-CAM is linear in the score: y -> a y scales dy/dA, the weights and the raw map by
        // a; min-max normalisation removes a. Each float32 value is a sum of at most
        // k h w + 4 products, within gamma of the exact: the enclosure of a times the unscaled
        // value holds the scaled one.
        let device = Device::flex();
        let [k, h, w] = [3, 4, 5];
        let model = gap(seed, k, 4, &device);
        let x = tensor(seed + 5, [1, k, h, w], 2.0, &device);
        let scaled = Target::score(move |l: Tensor<2>| l.narrow(1, 1, 1).flatten(0, 1) * scale);
        let explainer = ExplainerConfig::new().with_relu(false).with_normalization(Normalization::Off).init(&model).unwrap();
        let plain = explainer.explain(x.clone(), &Targets::class(1)).unwrap();
        let times = explainer.explain(x.clone(), &Targets::every_image([scaled])).unwrap();
        let n = k * h * w + 8;
        let (r0, r1) = (host(plain.layers[0].raw.clone()), host(times.layers[0].raw.clone()));
        let abs: f64 = r0.iter().map(|v| v.abs() as f64).sum::<f64>().max(1e-30) * 10.0;
        for (a, b) in r0.iter().zip(&r1) {
            let e = Iv::around(*a as f64 * scale as f64, 2.0 * gamma(n) * abs * scale as f64);
            prop_assert!(e.contains(*b as f64), "{a} * {scale} vs {b}");
        }
        let normalised = ExplainerConfig::new().init(&model).unwrap();
        let m0 = host(normalised.explain(x.clone(), &Targets::class(1)).unwrap().layers[0].cam.clone());
        let scaled = Target::score(move |l: Tensor<2>| l.narrow(1, 1, 1).flatten(0, 1) * scale);
        let m1 = host(normalised.explain(x, &Targets::every_image([scaled])).unwrap().layers[0].cam.clone());
        let range = r0.iter().fold(0.0f32, |m, v| m.max(*v)) - r0.iter().fold(0.0f32, |m, v| m.min(v.max(0.0)));
        if range > 0.0 {
            let bound = 8.0 * gamma(n) * abs / range as f64 + 1e-7 / range as f64;
            for (a, b) in m0.iter().zip(&m1) {
                prop_assert!(((a - b).abs() as f64) <= bound, "{a} vs {b} (bound {bound})");
            }
        }
    }

    #[test]
    fn relu_on_equals_relu_off_where_the_raw_map_is_positive(
        seed in 0u64..1000, method in prop::sample::select(convolutional()),
    ) {
        // A positive input and positive weights for class 0 make every method's map positive
        // (Grad-CAM-family weights and products are positive); then the ReLU changes nothing.
        let device = Device::flex();
        let mut model = gap(seed, 3, 2, &device);
        model.fc.weight = Param::from_tensor(model.fc.weight.val().abs() + 0.1);
        let x = tensor(seed + 9, [1, 3, 4, 4], 1.0, &device).abs() + 0.5;
        let run = |relu| host(ExplainerConfig::new().with_method(method).with_relu(relu).init(&model).unwrap()
            .explain(x.clone(), &Targets::class(0)).unwrap().heatmap);
        let raw = host(ExplainerConfig::new().with_method(method).with_relu(false).init(&model).unwrap()
            .explain(x.clone(), &Targets::class(0)).unwrap().layers[0].raw.clone());
        if raw.iter().all(|v| *v > 0.0) {
            prop_assert_eq!(run(true), run(false));
        }
    }

    #[test]
    fn the_weighted_sum_equals_its_reference_for_random_shapes(
        seed in 0u64..1000, b in 1usize..4, k in 1usize..40, h in 1usize..9, w in 1usize..9, m in 1usize..4,
    ) {
        let device = Device::flex();
        let a = tensor(seed, [b, k, h, w], 2.0, &device);
        let weights = tensor(seed + 1, [b, m, k], 1.0, &device);
        let got = host(weighted_sum(a.clone(), weights.clone()).unwrap());
        let (av, wv) = (host(a), host(weights));
        let p = h * w;
        for i in 0..b { for j in 0..m { for q in 0..p {
            let terms: Vec<Iv> = (0..k).map(|c| Iv::exact(wv[(i * m + j) * k + c] as f64).mul(Iv::exact(av[(i * k + c) * p + q] as f64))).collect();
            let e = Iv::sum(terms);
            let v = got[(i * m + j) * p + q] as f64;
            prop_assert!(e.contains(v), "{v} outside {e:?}");
        }}}
    }
}

// ---------------------------------------------------------------------------------------------
// Threads and memory.

#[test]
fn the_explainer_is_send_and_sync_and_threads_get_the_same_maps() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<gradcam::Explainer<TinyNet>>();
    send_sync::<gradcam::Explainer<gradcam::models::SqueezeNet>>();
    send_sync::<gradcam::Capture>();
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    let x = tensor(5, [3, 3, 12, 12], 1.0, &device);
    let alone = host(
        explainer
            .explain(x.clone(), &Targets::every_image([0, 2]))
            .unwrap()
            .heatmap,
    );
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    host(
                        explainer
                            .explain(x.clone(), &Targets::every_image([0, 2]))
                            .unwrap()
                            .heatmap,
                    )
                })
            })
            .collect();
        for handle in handles {
            // The same operations on the same data and shapes: the same bits.
            assert_eq!(handle.join().unwrap(), alone);
        }
    });
}

/// Two unpadded 3x3 convolutions and the default `min_input_size`.
#[derive(Module, Debug)]
struct TwoValid {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

impl GradCam for TwoValid {
    fn layers(&self) -> Vec<String> {
        vec!["conv1".into(), "conv2".into()]
    }
    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("conv1", self.conv1.forward(x)); // [n, 4, h - 2, w - 2]
        let x = probe.layer("conv2", self.conv2.forward(x)); // [n, 4, h - 4, w - 4]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3))
    }
}

/// A residual around the explained layer, with or without `Probe::carry` on the skip tensor.
#[derive(Module, Debug)]
struct Residual {
    conv: Conv2d,
    fc: Linear,
    #[module(skip)]
    carry: bool,
}

impl GradCam for Residual {
    fn layers(&self) -> Vec<String> {
        vec!["conv".into()]
    }
    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let skip = x.clone(); // [n, 3, h, w]
        let y = probe.layer("conv", self.conv.forward(x)); // [n', 3, h, w]
        let skip = if self.carry {
            Probe::carry(skip, y.dims()[0])
        } else {
            skip
        };
        self.fc
            .forward((y + skip).mean_dims(&[2, 3]).flatten::<2>(1, 3))
    }
}

#[test]
fn an_input_too_small_for_undeclared_convolutions_is_an_error_not_a_panic() {
    // 4 x 4 through two unpadded 3 x 3 convolutions: conv2's activation is [1, 4, 0, 0]. Its
    // reshape after the forward once panicked outside the forward ("index out of bounds").
    let device = Device::flex();
    let model = TwoValid {
        conv1: Conv2dConfig::new([3, 4], [3, 3]).init(&device),
        conv2: Conv2dConfig::new([4, 4], [3, 3]).init(&device),
        fc: LinearConfig::new(4, 3).init(&device),
    };
    for method in [Method::GradCam, Method::EigenCam, Method::AblationCam] {
        let err = ExplainerConfig::new()
            .with_method(method)
            .init(&model)
            .unwrap()
            .explain(tensor(3, [1, 3, 4, 4], 1.0, &device), &Targets::top(1))
            .unwrap_err();
        assert!(
            matches!(
                err,
                GradCamError::Model(gradcam::ModelError::EmptyActivation {
                    shape: [1, 4, 0, 0],
                    ..
                })
            ),
            "{method}: {err}"
        );
        assert!(err.to_string().contains("min_input_size"), "{err}");
    }
}

#[test]
fn a_score_function_that_panics_or_ignores_the_logits_is_an_error() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    let x = tensor(1, [2, 3, 8, 8], 1.0, &device);
    let panics = Target::score(|_: Tensor<2>| -> Tensor<1> { panic!("the caller's bug") });
    let err = explainer
        .explain(x.clone(), &Targets::every_image([panics]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Input(gradcam::InputError::ScorePanicked { ref message })
                if message.contains("the caller's bug")
        ),
        "{err}"
    );
    // A score from a detached copy of the logits: the same fault as a model whose scores do not
    // depend on the layer, once an all-zero map returned as Ok.
    let detached = Target::score(|l: Tensor<2>| l.detach().narrow(1, 0, 1).flatten(0, 1));
    let err = explainer
        .explain(x, &Targets::every_image([detached]))
        .unwrap_err();
    assert!(
        matches!(err, GradCamError::Input(gradcam::InputError::ScoreDetached)),
        "{err}"
    );
}

#[test]
fn a_residual_without_carry_is_named_as_such() {
    // Batch 2, two targets an image: the rows after the layer are [4, ..], the skip [2, ..].
    let device = Device::flex();
    let residual = |carry| Residual {
        conv: Conv2dConfig::new([3, 3], [3, 3])
            .with_padding(burn::nn::PaddingConfig2d::Same)
            .init(&device),
        fc: LinearConfig::new(3, 4).init(&device),
        carry,
    };
    let x = tensor(5, [2, 3, 6, 6], 1.0, &device);
    let two = Targets::every_image([0, 1]);
    let err = ExplainerConfig::new()
        .init(&residual(false))
        .unwrap()
        .explain(x.clone(), &two)
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradCamError::Model(gradcam::ModelError::MissingCarry { targets: 2, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Probe::carry"), "{err}");
    let explained = ExplainerConfig::new()
        .init(&residual(true))
        .unwrap()
        .explain(x, &two)
        .unwrap();
    assert_eq!(explained.heatmap.dims(), [2, 2, 6, 6]);
}

/// A model that does not declare its layers.
#[derive(Module, Debug)]
struct Undeclaring {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

impl GradCam for Undeclaring {
    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("conv1", self.conv1.forward(x)); // [n, 4, h, w]
        let x = probe.layer("conv2", self.conv2.forward(x)); // [n, 4, h, w]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3))
    }
}

#[test]
fn undeclared_layers_are_found_in_the_first_forward() {
    let device = Device::flex();
    let same = burn::nn::PaddingConfig2d::Same;
    let model = Undeclaring {
        conv1: Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(same.clone())
            .init(&device),
        conv2: Conv2dConfig::new([4, 4], [3, 3])
            .with_padding(same)
            .init(&device),
        fc: LinearConfig::new(4, 3).init(&device),
    };
    let x = tensor(3, [2, 3, 6, 6], 1.0, &device);
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    assert_eq!(explainer.layers(), None, "not known before a forward");
    let default = explainer.explain(x.clone(), &Targets::top(1)).unwrap();
    assert_eq!(
        explainer.layers(),
        Some(&["conv2".to_string()][..]),
        "the last one seen"
    );
    // The same map as a declared explanation of `conv2` gives.
    let named = ExplainerConfig::new()
        .with_layer("conv2")
        .init(&model)
        .unwrap()
        .explain(x.clone(), &Targets::top(1))
        .unwrap();
    assert_eq!(host(default.heatmap), host(named.heatmap));
    // A name the forward never shows: an error at the first call, listing what it shows.
    let err = ExplainerConfig::new()
        .with_layer("conv3")
        .init(&model)
        .unwrap()
        .explain(x, &Targets::top(1))
        .unwrap_err();
    assert!(
        matches!(err, GradCamError::Input(gradcam::InputError::UnknownLayer { ref available, .. })
            if available == &["conv1".to_string(), "conv2".to_string()]),
        "{err}"
    );
}
