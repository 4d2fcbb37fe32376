//! SESS against pytorch-grad-cam 1.5.7's `SESS`, base method GradCAM at `block.relu_a` of the
//! network generated from `tiny_residual.onnx`, each image's top class
//! (`scripts/make_onnx_fixtures.py`, `make_sess`): 4 scales (64, 82, 100, 118), a 64-pixel
//! window at a stride of 48 (overlapping windows, border windows moved back inside), 18 patches
//! per image; setting `default` (nothing filtered out, mean fusion above 0, blurred, softmax
//! scores: each patch scored by the forward that explains it), `mean` (the same with the lowest
//! quarter of the patches filtered out: every patch scored first) and `max` (max fusion, no
//! blur, logit scores).
//!
//! What is compared: SESS's composition. The patches' maps are pgc's own: a test method hands
//! each patch the Grad-CAM map pgc computed for it, recognised by its activations' channel
//! means, so the ReLU, normalisations and upsampling run on the same numbers on both sides and
//! mean fusion counts the same pixels (Grad-CAM itself is checked against pgc in `pgc.rs`).
//! Everything else is ours: resizing and cutting the patches (checked through the activations
//! they give, and by which patches are explained), their scores from our network, the filter,
//! the weights, pasting, fusion, blur and normalisation.
//!
//! Bound. The two float32 networks' logits lie within `d = 2 DELTA L` of each other (`L` the
//! largest |logit| over the patches; each within `DELTA L` of float64, `pgc.rs`'s bound; the
//! patch inputs differ by a few resize roundings, far below it). A softmax weight `p / p_best`
//! then moves by a factor within `exp(+-4d)`, a logit weight `s / s_best` by at most
//! `2d / (s_best - d)`; each patch map value (in [0, 1]) by at most `rho = 64 2^-24`, the float32
//! roundings of the same operations on both sides; a pasted value `w h` (both at most 1) by
//! `E = max|dw| + rho`, which the bilinear resize (a convex combination), the mean over the
//! same counted patches, the maximum and the blur (convex) do not increase; the final
//! `(x - min) / (max - min + 1e-7)` by at most `4 E / R`, `R` pgc's range before it. The filter
//! keeps the same patches when the scores at its cut are further apart than twice their bound
//! (asserted).

mod common;

use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Tensor, TensorData};
use common::{DELTA, Fixture, apart, fixture, generated, here, host, input, largest};
use gradcam::methods::{CamMap, CamMethod, LayerCapture, Rerun};
use gradcam::{
    ExplainerConfig, GradCamError, InputError, Method, SessConfig, SessPool, SessScales, Target,
    Targets,
};

mod tiny_residual {
    include!("generated/tiny_residual.rs");
}

const LAYER: &str = "block.relu_a";
/// Patches per image.
const PATCHES: usize = 18;

fn model(device: &Device) -> tiny_residual::Model {
    let weights = generated(&here("tests/fixtures"), "tiny_residual");
    tiny_residual::Model::from_file(weights, device)
}

/// The fixture, with the input of `smoothing.safetensors` (the same photos).
fn oracle() -> Fixture {
    let mut fx = fixture(&here("tests/fixtures"), "sess");
    let smoothing = fixture(&here("tests/fixtures"), "smoothing");
    fx.tensors
        .insert("input".into(), smoothing.tensors["input"].clone());
    fx
}

/// The fixture's two settings.
fn setting(name: &str) -> SessConfig {
    let common = SessConfig::new()
        .with_scales(SessScales::Steps {
            count: 4,
            ratio: 2.0 / 7.0,
        })
        .with_window(64)
        .with_step(48)
        .with_batch_size(8);
    match name {
        "default" => common,
        "mean" => common.with_pre_filter_ratio(0.25),
        "max" => common
            .with_pool(SessPool::Max)
            .with_smooth(false)
            .with_softmax_scores(false),
        _ => unreachable!("the fixture has three settings"),
    }
}

/// A method that returns, for every row, pgc's raw Grad-CAM map of the patch whose channel
/// means are nearest (and within `tolerance`), and counts which patches it was asked for.
#[derive(Debug, Clone)]
struct PgcPatchMaps {
    /// `[patches, k]`.
    means: Vec<f32>,
    /// `[patches, h, w]`.
    maps: Vec<f32>,
    tolerance: f64,
    asked: Arc<Mutex<Vec<usize>>>,
}

impl PgcPatchMaps {
    fn new(fx: &Fixture) -> Self {
        let (_, means) = &fx.tensors["patch/means"];
        let (_, maps) = &fx.tensors["patch/raw"];
        // Activations, like maps, lie within DELTA of their scale of float64's on each side.
        let scale = largest(means);
        let tolerance = 2.0 * DELTA * scale;
        let k = means.len() / (2 * PATCHES);
        for (i, a) in means.chunks_exact(k).enumerate() {
            for b in means.chunks_exact(k).skip(i + 1) {
                assert!(
                    apart(a, b) > 2.0 * tolerance,
                    "two patches too alike to tell apart"
                );
            }
        }
        Self {
            means: means.clone(),
            maps: maps.clone(),
            tolerance,
            asked: Arc::new(Mutex::new(vec![0; 2 * PATCHES])),
        }
    }
}

impl CamMethod for PgcPatchMaps {
    fn name(&self) -> &'static str {
        "pgc-patch-maps"
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> gradcam::Result<CamMap> {
        let [b, k, h, w] = layer.activations.dims();
        let m = layer.targets_per_image;
        let a = host(layer.activations.clone());
        let mut maps = Vec::with_capacity(b * m * h * w);
        for row in 0..b {
            let means: Vec<f32> = (0..k)
                .map(|c| {
                    let at = (row * k + c) * h * w;
                    (a[at..at + h * w].iter().map(|v| *v as f64).sum::<f64>() / (h * w) as f64)
                        as f32
                })
                .collect();
            let (patch, apart) = self
                .means
                .chunks_exact(k)
                .map(|theirs| apart(&means, theirs))
                .enumerate()
                .min_by(|x, y| x.1.total_cmp(&y.1))
                .unwrap();
            assert!(
                apart <= self.tolerance,
                "a patch unlike any of pgc's ({apart:.2e} from the nearest; tolerance {:.2e})",
                self.tolerance
            );
            self.asked.lock().unwrap()[patch] += 1;
            for _ in 0..m {
                maps.extend_from_slice(&self.maps[patch * h * w..(patch + 1) * h * w]);
            }
        }
        let device = layer.activations.device();
        Ok(CamMap::Map(Tensor::<4>::from_data(
            TensorData::new(maps, [b, m, h, w]),
            &device,
        )))
    }
}

/// Our SESS with pgc's patch maps under setting `name` (changed by `alter`) against pgc's
/// output: panics past the bound; returns the worst difference over the bound, and the worst
/// difference.
fn case(fx: &Fixture, name: &str, alter: impl Fn(SessConfig) -> SessConfig) -> (f64, f64) {
    let device = Device::flex();
    let method = PgcPatchMaps::new(fx);
    let config = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(method.clone())
        .with_sess(alter(setting(name)));
    let x = input(fx, &device);
    let [n, _, height, width] = x.dims();
    let explanation = config
        .init(&model(&device))
        .unwrap()
        .explain(x, &Targets::top(1))
        .unwrap();
    let ours = host(explanation.heatmap);
    let classes: Vec<Option<usize>> = explanation.targets.iter().map(|t| t[0].class).collect();
    let expected: Vec<Option<usize>> = fx.classes.iter().map(|c| Some(c[0])).collect();
    assert_eq!(classes, expected, "the whole images' top classes");

    let (_, pgc) = &fx.tensors[&format!("{name}/pgc")];
    let (_, scores) = &fx.tensors[&format!("{name}/scores")];
    let (_, ranges) = &fx.tensors[&format!("{name}/range")];
    let d = 2.0 * DELTA * fx.tensors["logit_scale"].1[0] as f64;
    let rho = 64.0 * f64::from(f32::EPSILON) / 2.0;
    let config = setting(name);
    let asked = method.asked.lock().unwrap().clone();
    let mut worst = (0.0f64, 0.0f64);
    for image in 0..n {
        let scores = &scores[image * PATCHES..(image + 1) * PATCHES];
        let best = scores.iter().fold(0.0f64, |m, s| m.max(*s as f64));
        let (weight, score) = if config.softmax_scores {
            ((4.0 * d).exp() - 1.0, best * ((2.0 * d).exp() - 1.0))
        } else {
            (2.0 * d / (best - d), d)
        };
        // The filter's cut is not decided within the scores' bound, and the patches explained
        // are those pgc kept (the first patch once more: the whole image is its first patch).
        let mut sorted: Vec<f32> = scores.to_vec();
        sorted.sort_by(f32::total_cmp);
        let cut = (PATCHES as f64 * config.pre_filter_ratio) as usize;
        if cut > 0 {
            assert!(
                (sorted[cut] - sorted[cut - 1]) as f64 > 2.0 * score,
                "image {image}: scores too close at the filter's cut"
            );
        }
        let kept: Vec<usize> = scores
            .iter()
            .map(|s| usize::from(*s >= sorted[cut]))
            .collect();
        let mut want = kept;
        want[0] += 1;
        assert_eq!(
            &asked[image * PATCHES..(image + 1) * PATCHES],
            want.as_slice(),
            "image {image}: patches explained"
        );
        let bound = 4.0 * (weight + rho) / ranges[image] as f64;
        let at = image * height * width..(image + 1) * height * width;
        let difference = apart(&ours[at.clone()], &pgc[at]);
        assert!(
            difference <= bound,
            "image {image}: difference {difference:.3e} over the bound {bound:.3e}"
        );
        worst = (worst.0.max(difference / bound), worst.1.max(difference));
    }
    worst
}

#[test]
fn sess_with_pytorch_grad_cams_defaults_matches_it() {
    let (ratio, difference) = case(&oracle(), "default", |c| c);
    eprintln!("sess default: worst difference / bound {ratio:.1e}, difference {difference:.1e}");
}

#[test]
fn sess_with_mean_fusion_and_a_filter_matches_pytorch_grad_cam() {
    let (ratio, difference) = case(&oracle(), "mean", |c| c);
    eprintln!("sess mean: worst difference / bound {ratio:.1e}, difference {difference:.1e}");
}

#[test]
fn sess_with_max_fusion_and_logit_scores_matches_pytorch_grad_cam() {
    let (ratio, difference) = case(&oracle(), "max", |c| c);
    eprintln!("sess max: worst difference / bound {ratio:.1e}, difference {difference:.1e}");
}

/// A change to a setting.
type Alter = fn(SessConfig) -> SessConfig;

#[test]
fn other_settings_fail_the_oracle() {
    let fx = oracle();
    let wrong: [(&str, Alter); 5] = [
        ("default", |c| c.with_theta(0.3)),
        ("mean", |c| c.with_smooth(false)),
        ("mean", |c| c.with_pool(SessPool::Max)),
        ("mean", |c| c.with_softmax_scores(false)),
        ("max", |c| c.with_step(64)),
    ];
    for (name, alter) in wrong {
        let result = std::panic::catch_unwind(|| case(&fx, name, alter));
        assert!(result.is_err(), "a wrong setting passed the {name} oracle");
    }
}

/// SESS explained with Grad-CAM on the network: the layers' maps and targets are those of the
/// input as it is, a rank target explains the class it found, a custom score runs, and a
/// capture or a stream treats SESS as `explain` does.
#[test]
fn sess_keeps_the_whole_input_s_layers_and_targets() {
    let device = Device::flex();
    let fx = oracle();
    let model = model(&device);
    let plain = ExplainerConfig::new().with_layer(LAYER);
    let sess = plain.clone().with_sess(setting("mean"));
    let x = input(&fx, &device);
    let whole = plain
        .init(&model)
        .unwrap()
        .explain(x.clone(), &Targets::top(1))
        .unwrap();
    let explainer = sess.init(&model).unwrap();
    let top = explainer.explain(x.clone(), &Targets::top(1)).unwrap();
    assert_eq!(top.targets, whole.targets);
    assert_eq!(
        host(top.layers[0].raw.clone()),
        host(whole.layers[0].raw.clone())
    );
    let heat = host(top.heatmap.clone());
    assert!(heat.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_ne!(heat, host(whole.heatmap.clone()));
    let classes = Targets::one_per_image(fx.classes.iter().map(|c| c[0]));
    let by_class = explainer.explain(x.clone(), &classes).unwrap();
    assert_eq!(host(by_class.heatmap), heat);
    // A custom score: the softmax probability of the class (patches weighted by the
    // probability of the probabilities, as pgc applies a target to the softmax).
    let class = fx.classes[0][0];
    let score = Target::score(move |z| {
        burn::tensor::activation::softmax(z, 1)
            .narrow(1, class, 1)
            .flatten(0, 1)
    });
    let custom = explainer
        .explain(x.clone(), &Targets::every_image([score]))
        .unwrap();
    assert!(host(custom.heatmap).iter().all(|v| v.is_finite()));
    // A capture holds one input; a stream explains as `explain` does.
    let capture = explainer.capture(x.clone(), &Targets::top(1)).unwrap();
    let error = explainer.explain_capture(&capture).unwrap_err();
    assert!(
        matches!(error, GradCamError::Input(InputError::Argument { .. })),
        "{error}"
    );
    let streamed: Vec<Vec<f32>> = explainer
        .stream([x], &Targets::top(1))
        .map(|batch| batch.unwrap().heatmaps)
        .collect();
    assert_eq!(streamed, vec![heat]);
}

#[test]
fn a_scale_below_the_shorter_side_is_an_error_that_says_what_to_do() {
    let device = Device::flex();
    let fx = oracle();
    let explainer = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(Method::GradCam)
        .with_sess(SessConfig::new().with_scales(SessScales::Sizes(vec![48, 64])))
        .init(&model(&device))
        .unwrap();
    let error = explainer
        .explain(input(&fx, &device), &Targets::top(1))
        .unwrap_err();
    assert!(
        error.to_string().contains("at least the shorter side"),
        "{error}"
    );
}
