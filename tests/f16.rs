//! `f16` (and `bf16`) end to end on flex and on wgpu: a SqueezeNet cast to half precision
//! explains the oracle's photo.
//!
//! The bounds are float32 enclosures (tests/common): the explainer must compute its maps in
//! `f32` from the `f16` network's activations and gradients, so the maps lie in the float32
//! enclosure of Grad-CAM over those very values; an `f16` result does not. Agreement with the
//! `f32` network and with pytorch-grad-cam is the enclosure over the hull of the runs'
//! activations and gradients: the difference the `f16` network makes, and nothing more.

#![cfg(all(feature = "models", feature = "flex"))]

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData};
use common::{
    Iv, assert_inside, assert_inside_mostly_narrow, host, max_abs_diff, outside, pipeline,
};
use gradcam::models::{SqueezeNet, load_weights};
use gradcam::{ExplainerConfig, Targets, cast_model};

fn root(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

const CLASS: usize = 282; // tiger cat, the fixture's second class
const LAYER: &str = "fire9";

/// The fixture's input, pytorch-grad-cam's activations and gradients at fire9 for CLASS, and
/// its heatmap.
struct Oracle {
    input: (Vec<usize>, Vec<f32>),
    activations: Vec<f64>,
    gradients: Vec<f64>,
    heatmap: Vec<f32>,
}

fn oracle() -> Oracle {
    let (tensors, _) = common::read_fixture(&root("tests/fixtures/squeezenet_chelsea.safetensors"));
    let get = |key: &str| {
        tensors
            .get(key)
            .unwrap_or_else(|| panic!("no {key}"))
            .clone()
    };
    let (shape, input) = get("input");
    Oracle {
        input: (shape, input.iter().map(|v| *v as f32).collect()),
        activations: get(&format!("{LAYER}/activations")).1,
        gradients: get(&format!("{LAYER}/{CLASS}/gradients")).1,
        heatmap: get(&format!("grad_cam/{LAYER}/{CLASS}/pgc"))
            .1
            .iter()
            .map(|v| *v as f32)
            .collect(),
    }
}

/// One run's capture at fire9 and its heatmap, `f32` on the host.
struct Run {
    activations: Vec<f64>,
    gradients: Vec<f64>,
    raw: Vec<f32>,
    heatmap: Vec<f32>,
    map_dtype: DType,
    capture_dtype: DType,
    device: String,
    dtype: FloatDType,
}

fn run(dtype: FloatDType, oracle: &Oracle, device: &Device) -> Run {
    let device = device.clone();
    let model = load_weights(
        SqueezeNet::new(&device),
        root("assets/squeezenet1_1.safetensors"),
    )
    .unwrap();
    let model = cast_model(model, dtype);
    let shape: [usize; 4] = oracle.input.0.as_slice().try_into().unwrap();
    let input =
        Tensor::<4>::from_data(TensorData::new(oracle.input.1.clone(), shape), &device).cast(dtype);
    let explainer = ExplainerConfig::new()
        .with_layer(LAYER)
        .init(&model)
        .unwrap();
    let targets = Targets::class(CLASS);
    let capture = explainer.capture(input.clone(), &targets).unwrap();
    let layer = &capture.layers[0];
    let explanation = explainer.explain(input, &targets).unwrap();
    let f64s = |v: Vec<f32>| v.into_iter().map(f64::from).collect();
    Run {
        capture_dtype: layer.activations.dtype(),
        activations: f64s(host(layer.activations.clone())),
        gradients: f64s(host(layer.gradients())),
        raw: host(explanation.layers[0].raw.clone()),
        map_dtype: explanation.heatmap.dtype(),
        device: format!("{device:?}"),
        dtype,
        heatmap: host(explanation.heatmap),
    }
}

const K: usize = 512;
const HW: usize = 13 * 13;
const SIDE: usize = 227;

/// Grad-CAM's raw map over activation and gradient enclosures: `w_k = mean(G_k)`,
/// `raw = sum_k w_k A_k`, each a float32 evaluation in any order.
fn raw_enclosure(activations: &[Iv], gradients: &[Iv]) -> Vec<Iv> {
    let weights: Vec<Iv> = (0..K)
        .map(|k| Iv::mean(&gradients[k * HW..(k + 1) * HW]))
        .collect();
    (0..HW)
        .map(|p| Iv::sum((0..K).map(|k| weights[k].mul(activations[k * HW + p]))))
        .collect()
}

fn hull(runs: &[&[f64]]) -> Vec<Iv> {
    (0..runs[0].len())
        .map(|i| {
            let lo = runs.iter().map(|r| r[i]).fold(f64::INFINITY, f64::min);
            let hi = runs.iter().map(|r| r[i]).fold(f64::NEG_INFINITY, f64::max);
            Iv::hull(lo, hi)
        })
        .collect()
}

#[test]
fn an_f16_model_gets_f32_maps_computed_in_f32_from_its_own_activations() {
    let oracle = oracle();
    f32_arithmetic(&run(FloatDType::F16, &oracle, &Device::flex()));
}

#[test]
fn a_bf16_model_gets_f32_maps_computed_in_f32_from_its_own_activations() {
    let oracle = oracle();
    let half = run(FloatDType::BF16, &oracle, &Device::flex());
    f32_arithmetic(&half);
    agreement(&half, None, &oracle);
}

#[test]
fn f16_maps_agree_with_f32_and_pytorch_grad_cam_within_what_the_f16_network_changes() {
    let oracle = oracle();
    let half = run(FloatDType::F16, &oracle, &Device::flex());
    let full = run(FloatDType::F32, &oracle, &Device::flex());
    agreement(&half, Some(&full), &oracle);
}

#[test]
#[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
fn wgpu_f16_maps_are_f32_arithmetic_and_agree_with_pytorch_grad_cam() {
    let device = common::wgpu_device();
    assert!(
        device.supports_dtype(FloatDType::F16),
        "this adapter has no shader f16"
    );
    // One f16 run (lavapipe is slow): its arithmetic, and its agreement with PyTorch's f32.
    let oracle = oracle();
    let half = run(FloatDType::F16, &oracle, &device);
    f32_arithmetic(&half);
    agreement(&half, None, &oracle);
}

/// From the f16 run's own activations and gradients, the maps are a float32 computation.
fn f32_arithmetic(half: &Run) {
    assert_eq!(
        half.capture_dtype,
        DType::F32,
        "the capture is cast at the layer"
    );
    assert_eq!(half.map_dtype, DType::F32, "maps are f32");

    // The float32 enclosure of Grad-CAM over the f16 network's own activations and gradients.
    let exact = |v: &[f64]| v.iter().map(|x| Iv::exact(*x)).collect::<Vec<_>>();
    let raw = raw_enclosure(&exact(&half.activations), &exact(&half.gradients));
    let scale = raw.iter().map(|v| v.mag()).fold(0.0, f64::max);
    // Narrower than one f16 rounding (2^-11 relative) of the largest value.
    assert_inside(
        "raw map from the f16 capture",
        &half.raw,
        &raw,
        scale / 2048.0,
    );
    let (_, heatmap) = pipeline(&raw, [13, 13], [SIDE, SIDE], true);
    // The normalisations divide by the map's range, which widens the enclosure: nine pixels
    // in ten within 1e-3 (of the heatmap's [0, 1]).
    assert_inside_mostly_narrow(
        "heatmap from the f16 capture",
        &half.heatmap,
        &heatmap,
        1e-3,
    );

    // The raw map rounded to f16 (what an f16 accumulation would at best return) fails.
    let rounded: Vec<f32> = half
        .raw
        .iter()
        .map(|v| burn::tensor::f16::from_f32(*v).to_f32())
        .collect();
    assert!(
        outside(&rounded, &raw).is_some(),
        "an f16 raw map would pass: the check could not tell f16 from f32 arithmetic"
    );
}

/// The f16 heatmap, the f32 one (when given) and PyTorch's lie in one float32 enclosure: that of
/// Grad-CAM on activations and gradients anywhere between the runs'.
fn agreement(half: &Run, full: Option<&Run>, oracle: &Oracle) {
    let mut activations: Vec<&[f64]> = vec![&half.activations, &oracle.activations];
    let mut gradients: Vec<&[f64]> = vec![&half.gradients, &oracle.gradients];
    if let Some(full) = full {
        activations.push(&full.activations);
        gradients.push(&full.gradients);
    }
    let activations = hull(&activations);
    let gradients = hull(&gradients);
    let raw = raw_enclosure(&activations, &gradients);
    let (_, heatmap) = pipeline(&raw, [13, 13], [SIDE, SIDE], true);
    let mut maps = vec![
        ("f16 heatmap", &half.heatmap),
        ("pytorch-grad-cam's heatmap", &oracle.heatmap),
    ];
    maps.extend(full.map(|full| ("f32 heatmap", &full.heatmap)));
    for (what, map) in maps {
        // Informative for nine pixels in ten: a tenth of the heatmap's range.
        assert_inside_mostly_narrow(what, map, &heatmap, 0.1);
    }
    eprintln!(
        "SqueezeNet fire9 class {CLASS} on {}: max |{:?} - pgc| = {:.2e}, max |{:?} - f32| = {}",
        half.device,
        half.dtype,
        max_abs_diff(&half.heatmap, &oracle.heatmap),
        half.dtype,
        full.map_or("-".to_string(), |full| format!(
            "{:.2e}",
            max_abs_diff(&half.heatmap, &full.heatmap)
        )),
    );

    // A map from the wrong channel weights (one channel dropped) leaves the enclosure.
    let mut wrong_gradients = half.gradients.clone();
    let strongest = (0..K)
        .max_by(|&a, &b| {
            let w = |k: usize| {
                wrong_gradients[k * HW..(k + 1) * HW]
                    .iter()
                    .sum::<f64>()
                    .abs()
            };
            w(a).total_cmp(&w(b))
        })
        .unwrap();
    wrong_gradients[strongest * HW..(strongest + 1) * HW].fill(0.0);
    let exact = |v: &[f64]| v.iter().map(|x| Iv::exact(*x)).collect::<Vec<_>>();
    let (_, wrong) = pipeline(
        &raw_enclosure(&exact(&half.activations), &exact(&wrong_gradients)),
        [13, 13],
        [SIDE, SIDE],
        true,
    );
    let wrong: Vec<f32> = wrong.iter().map(|v| v.mid() as f32).collect();
    assert!(
        outside(&wrong, &heatmap).is_some(),
        "a map without its strongest channel would pass"
    );
}
