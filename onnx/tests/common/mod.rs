//! What the tests against pytorch-grad-cam share: generating a model from its ONNX file (and
//! checking the committed source is what the tool writes), reading an oracle fixture, and the
//! two checks with their bounds (see `pgc.rs`).
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::{Device, Tensor, TensorData};
use gradcam::{ExplainerConfig, GradCam, Target, Targets};
use gradcam_onnx::{GeneratorConfig, generate};

/// The float32 network's error against float64, as a share of a map's largest magnitude.
pub const DELTA: f64 = 1e-4;

pub fn here(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Generate `name` from `dir/name.onnx` into a fresh folder; check the source equals the
/// committed `tests/generated/name.rs`; return the weights' path. Once per test binary and name:
/// the tests of a file run in parallel, and a model loads its weights from the file lazily, so a
/// second generation must not replace the folder under a running test.
pub fn generated(dir: &Path, name: &str) -> PathBuf {
    static DONE: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut done = DONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(weights) = done.get(name) {
        return weights.clone();
    }
    // A folder per test binary too (another runner may run the binaries in parallel).
    let binary = env!("CARGO_CRATE_NAME");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("onnx-{binary}-{name}"));
    let _ = std::fs::remove_dir_all(&out);
    let made = generate(
        dir.join(format!("{name}.onnx")),
        &out,
        &GeneratorConfig::new(),
    )
    .unwrap();
    let fresh = std::fs::read_to_string(&made.source).unwrap();
    let committed = std::fs::read_to_string(here(&format!("tests/generated/{name}.rs"))).unwrap();
    assert!(
        fresh == committed,
        "tests/generated/{name}.rs is not what the tool writes now: copy {} there",
        made.source.display()
    );
    done.insert(name.to_string(), made.weights.clone());
    made.weights
}

/// The fixture: tensors by name (as f32), the classes, the layers.
pub struct Fixture {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    pub classes: Vec<Vec<usize>>,
    pub layers: Vec<String>,
}

pub fn fixture(dir: &Path, name: &str) -> Fixture {
    let bytes = std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let layers = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("layers"))
        .map_or_else(Vec::new, |layers| {
            layers.split(',').map(String::from).collect()
        });
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = BTreeMap::new();
    let mut classes = Vec::new();
    for (key, view) in file.tensors() {
        let shape = view.shape().to_vec();
        if key == "classes" {
            let ids: Vec<usize> = view
                .data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as usize)
                .collect();
            // `[n, m]`, or `[n]` for one class per image.
            let per_image = shape.get(1).copied().unwrap_or(1);
            classes = ids.chunks(per_image).map(<[_]>::to_vec).collect();
        } else {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            tensors.insert(key, (shape, values));
        }
    }
    Fixture {
        tensors,
        classes,
        layers,
    }
}

/// The largest `|a - b|` of two maps.
pub fn apart(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() as f64))
}

/// The largest `|v|` of a map.
pub fn largest(values: &[f32]) -> f64 {
    values.iter().fold(0.0f64, |a, v| a.max(v.abs() as f64))
}

pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// The input tensor of a fixture.
pub fn input(fx: &Fixture, device: &Device) -> Tensor<4> {
    let (shape, values) = &fx.tensors["input"];
    Tensor::<4>::from_data(TensorData::new(values.clone(), shape.clone()), device)
}

/// The two checks of `pgc.rs`'s doc, for every layer of the fixture, its classes as targets.
/// Returns the largest raw error and heatmap difference over their bounds (both at most 1).
pub fn check<M: GradCam>(model: &M, fx: &Fixture, device: &Device) -> (f64, f64) {
    let targets = Targets::rows_per_image(
        fx.classes
            .iter()
            .map(|row| row.iter().map(|&c| Target::Class(c)).collect())
            .collect(),
    );
    let mut worst = (0.0f64, 0.0f64);
    for layer in &fx.layers {
        let value = |key: &str| &fx.tensors[&format!("{layer}/{key}")];
        let (shape, reference) = value("raw64");
        let (_, spread) = value("raw_spread");
        let (_, pgc) = value("pgc");
        let oracle = Oracle {
            raw64: reference,
            raw_shape: shape.as_slice().try_into().unwrap(),
            spread,
            pgc,
        };
        let (raw, heat) = compare(model, input(fx, device), layer, &targets, &oracle);
        worst = (worst.0.max(raw), worst.1.max(heat));
    }
    worst
}

/// What pytorch-grad-cam and the float64 reference give for one layer.
pub struct Oracle<'a> {
    /// The float64 raw maps, `[n, m, h, w]`.
    pub raw64: &'a [f32],
    pub raw_shape: [usize; 4],
    /// Their kink envelope, `[n, m, h, w]` (zeros where none).
    pub spread: &'a [f32],
    /// pgc's heatmaps, `[n, m, H, W]`.
    pub pgc: &'a [f32],
}

/// The bound on a heatmap's difference from pytorch-grad-cam's (see `pgc.rs`) for a raw map
/// `raw` (`h` rows, upsampled to `height`) known within `e`.
pub fn heatmap_bound(raw: &[f32], e: f64, h: usize, height: usize) -> f64 {
    let relu: Vec<f64> = raw.iter().map(|v| v.max(0.0) as f64).collect();
    let range = relu.iter().cloned().fold(f64::MIN, f64::max)
        - relu.iter().cloned().fold(f64::MAX, f64::min);
    2.0 * 4.0 / (1.0 - h as f64 / height as f64) * 4.0 * e / range
}

/// Explain `input` for `targets` at `layer` and check every map against `oracle`: each raw value
/// within `DELTA` of its map's scale plus its kink envelope (where a ReLU after the layer has a
/// unit within rounding of its kink, the float32 and float64 networks may take different
/// derivatives there, and the envelope bounds what that moves); the heatmaps with that total as
/// `e`. Returns the largest raw error and heatmap difference over their bounds.
pub fn compare<M: GradCam>(
    model: &M,
    input: Tensor<4>,
    layer: &str,
    targets: &Targets,
    oracle: &Oracle<'_>,
) -> (f64, f64) {
    compare_with(
        &ExplainerConfig::new().with_layer(layer),
        model,
        input,
        targets,
        oracle,
    )
}

/// [`compare`] with an explainer of `config` (its layer, method and options).
pub fn compare_with<M: GradCam>(
    config: &ExplainerConfig,
    model: &M,
    input: Tensor<4>,
    targets: &Targets,
    oracle: &Oracle<'_>,
) -> (f64, f64) {
    let layer = config.layers.join(",");
    let [_, _, height, width] = input.dims();
    let explanation = config.init(model).unwrap().explain(input, targets).unwrap();
    let raw = host(explanation.layers[0].raw.clone());
    let heat = host(explanation.heatmap.clone());
    let [n, m, h, w] = oracle.raw_shape;
    let big = height * width;
    let (mut raw_worst, mut heat_worst) = (0.0f64, 0.0f64);
    for map in 0..n * m {
        let at = map * h * w..(map + 1) * h * w;
        let (ours, theirs, spread) = (
            &raw[at.clone()],
            &oracle.raw64[at.clone()],
            &oracle.spread[at],
        );
        let scale = largest(theirs);
        let e = DELTA * scale;
        // Each value's error over its bound: DELTA of the scale, plus the kink envelope.
        let raw_ratio = ours
            .iter()
            .zip(theirs)
            .zip(spread)
            .fold(0.0f64, |a, ((x, y), s)| {
                a.max((x - y).abs() as f64 / (e + *s as f64))
            });
        raw_worst = raw_worst.max(raw_ratio);
        let e = e + spread.iter().fold(0.0f64, |a, s| a.max(*s as f64));
        let bound = heatmap_bound(theirs, e, h, height);
        let ours = &heat[map * big..(map + 1) * big];
        let theirs = &oracle.pgc[map * big..(map + 1) * big];
        let heat_err = ours
            .iter()
            .zip(theirs)
            .fold(0.0f64, |a, (x, y)| a.max((x - y).abs() as f64));
        heat_worst = heat_worst.max(heat_err / bound);
        assert!(
            raw_ratio <= 1.0 && heat_err <= bound,
            "{layer} map {map}: raw error {raw_ratio:.3} of its bound, heatmap {heat_err:.3e} \
             (bound {bound:.3e})"
        );
    }
    (raw_worst, heat_worst)
}
