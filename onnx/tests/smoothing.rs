//! Eigen smoothing and augmentation smoothing against pytorch-grad-cam 1.5.7's `eigen_smooth`
//! and `aug_smooth`, and FEM against its `FEM` (newer than the oracle fixtures of `tests/`), on the residual network generated from `tiny_residual.onnx`, at
//! `block.relu_a` (`[n, 8, 32, 32]`), a batch of 2 photos with 2 classes each
//! (`scripts/make_onnx_fixtures.py`, `make_smoothing`).
//!
//! pgc's eigen smoothing takes the sign LAPACK returns; the fixture applies ours (the component
//! correlates positively with the unsmoothed map) to pgc's own SVD, so the maps compare.
//!
//! Bounds. Eigen smoothing: every per-channel contribution of the float32 network lies within
//! `DELTA` of the largest one of the float64 network (`pgc.rs`'s bound, per contribution), so
//! the centred `(h w) x k` matrix moves by `eps <= 2 sqrt(h w k) DELTA max|C|` in norm, and by
//! Wedin's theorem the projection `X v_1` by at most `eps (1 + sqrt(2) s_1 / (s_1 - s_2 - eps))`
//! (`s_1, s_2` the float64 singular values). Heatmaps: `pgc.rs`'s propagation of a raw
//! difference through pgc's normalisations and resize, from our raw map's difference to pgc's
//! own float32 one (at least `DELTA` of the scale).
//! Augmentation smoothing: each of the six heatmaps within `pgc.rs`'s bound of its augmented
//! input's float64 map, so their mean within the mean of the six bounds.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{DELTA, Fixture, fixture, generated, heatmap_bound, here, host, input};
use gradcam::kernels::weighted_sum;
use gradcam::{ExplainerConfig, GradCamError, InputError, Method, Target, Targets};

mod tiny_residual {
    include!("generated/tiny_residual.rs");
}

const LAYER: &str = "block.relu_a";

fn model(device: &Device) -> tiny_residual::Model {
    let weights = generated(&here("tests/fixtures"), "tiny_residual");
    tiny_residual::Model::from_file(weights, device)
}

fn oracle() -> Fixture {
    fixture(&here("tests/fixtures"), "smoothing")
}

/// Each image's two classes.
fn targets(fx: &Fixture) -> Targets {
    Targets::rows_per_image(
        fx.classes
            .iter()
            .map(|row| row.iter().map(|&c| Target::Class(c)).collect())
            .collect(),
    )
}

/// The methods of the fixture, by name.
fn methods(fx: &Fixture) -> Vec<String> {
    fx.tensors
        .keys()
        .filter_map(|key| key.strip_prefix("eigen/")?.strip_suffix("/pgc"))
        .map(String::from)
        .collect()
}

/// The Wedin bound of each map (see the file's doc), from `svd` (`[n, m, 3]`: `s_1`, `s_2`,
/// `max|C|`) for `k` channels of `p` pixels.
fn wedin_bounds(svd: &[f32], k: usize, p: usize) -> Vec<f64> {
    svd.chunks_exact(3)
        .map(|v| {
            let (s1, s2, c) = (v[0] as f64, v[1] as f64, v[2] as f64);
            let eps = 2.0 * ((p * k) as f64).sqrt() * DELTA * c;
            assert!(
                s1 - s2 > eps,
                "no gap between the singular values: no bound"
            );
            eps * (1.0 + 2f64.sqrt() * s1 / (s1 - s2 - eps))
        })
        .collect()
}

/// `method` with eigen smoothing (or, `smooth = false`, without) against the fixture's
/// eigen-smoothed oracle, each image's first class: panics past a bound; returns the worst raw
/// error and heatmap difference over their bounds.
fn eigen_case(fx: &Fixture, name: &str, smooth: bool) -> (f64, f64) {
    let device = Device::flex();
    let method: Method = name.parse().unwrap();
    let value = |key: &str| &fx.tensors[&format!("eigen/{name}/{key}")];
    let ((shape, raw64), (_, raw32)) = (value("raw64"), value("raw32"));
    let ((_, pgc), (_, svd)) = (value("pgc"), value("svd"));
    let [n, m, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let bounds = wedin_bounds(svd, 8, h * w);
    let x = input(fx, &device);
    let [_, _, height, width] = x.dims();
    let first = fx.classes.iter().map(|row| row[0]);
    let explanation = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(method)
        .with_eigen_smooth(smooth)
        .init(&model(&device))
        .unwrap()
        .explain(x, &Targets::one_per_image(first))
        .unwrap();
    let raw = host(explanation.layers[0].raw.clone());
    let heat = host(explanation.heatmap);
    let largest = |values: &[f32]| values.iter().fold(0.0f64, |a, v| a.max(v.abs() as f64));
    let apart = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() as f64))
    };
    let mut worst = (0.0f64, 0.0f64);
    for (map, raw_bound) in bounds.iter().enumerate().take(n * m) {
        let (small, big) = (
            map * h * w..(map + 1) * h * w,
            map * height * width..(map + 1) * height * width,
        );
        let error = apart(&raw[small.clone()], &raw64[small.clone()]);
        assert!(
            error <= *raw_bound,
            "{name} map {map}: raw error {error:.3e} over the bound {raw_bound:.3e}"
        );
        // The heatmaps: pgc.rs's propagation of the raw difference to pgc's own float32 map
        // (at least DELTA of the scale, for the post-processing's rounding); halved, as
        // `heatmap_bound` doubles it for pgc's own error, which this difference includes.
        let e = apart(&raw[small.clone()], &raw32[small.clone()])
            .max(DELTA * largest(&raw64[small.clone()]));
        let bound = heatmap_bound(&raw32[small], e / 2.0, h, height);
        let difference = apart(&heat[big.clone()], &pgc[big]);
        assert!(
            difference <= bound,
            "{name} map {map}: heatmap difference {difference:.3e} over the bound {bound:.3e}"
        );
        worst = (
            worst.0.max(error / raw_bound),
            worst.1.max(difference / bound),
        );
    }
    worst
}

#[test]
fn eigen_smoothing_matches_pytorch_grad_cam_for_every_method_it_applies_to() {
    let fx = oracle();
    let names = methods(&fx);
    assert_eq!(names.len(), 8, "{names:?}");
    for name in names {
        let (raw, heat) = eigen_case(&fx, &name, true);
        eprintln!("eigen {name}: worst raw / bound {raw:.1e}, heatmap / bound {heat:.1e}");
    }
}

#[test]
fn the_unsmoothed_map_fails_the_eigen_smoothed_oracle() {
    let fx = oracle();
    for name in ["grad-cam", "layer-cam"] {
        let wrong = std::panic::catch_unwind(|| eigen_case(&fx, name, false));
        assert!(wrong.is_err(), "{name}: the unsmoothed map passed");
    }
}

#[test]
fn the_eigen_methods_are_unchanged_by_eigen_smoothing() {
    let device = Device::flex();
    let (model, fx) = (model(&device), oracle());
    for method in [Method::EigenCam, Method::EigenGradCam] {
        let heat = |smooth| {
            let config = ExplainerConfig::new()
                .with_layer(LAYER)
                .with_method(method)
                .with_eigen_smooth(smooth);
            let explainer = config.init(&model).unwrap();
            host(
                explainer
                    .explain(input(&fx, &device), &targets(&fx))
                    .unwrap()
                    .heatmap,
            )
        };
        assert_eq!(heat(true), heat(false), "{method:?}");
    }
}

/// Our augmentation-smoothed Grad-CAM heatmap (the fixture's first class per image), or the
/// plain one, against pgc's `aug_smooth`. Returns the worst difference over its bound.
fn aug_case(fx: &Fixture, smooth: bool) -> f64 {
    let device = Device::flex();
    let first: Vec<usize> = fx.classes.iter().map(|row| row[0]).collect();
    let explainer = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_aug_smooth(smooth)
        .init(&model(&device))
        .unwrap();
    let x: Tensor<4> = input(fx, &device);
    let [n, _, height, width] = x.dims();
    let explanation = explainer
        .explain(x, &Targets::one_per_image(first))
        .unwrap();
    let ours = host(explanation.heatmap);
    let (_, pgc) = &fx.tensors["aug/pgc"];
    let (shape, raws) = &fx.tensors["aug/raw64"]; // [6, n, h, w]
    let [augmentations, _, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let mut worst = 0.0f64;
    for image in 0..n {
        // The mean of the six heatmaps' bounds, each from its augmented input's float64 map.
        let bound = (0..augmentations)
            .map(|a| {
                let raw = &raws[(a * n + image) * h * w..(a * n + image + 1) * h * w];
                let scale = raw.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
                heatmap_bound(raw, DELTA * scale, h, height)
            })
            .sum::<f64>()
            / augmentations as f64;
        let at = image * height * width..(image + 1) * height * width;
        let error = ours[at.clone()]
            .iter()
            .zip(&pgc[at])
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs() as f64));
        assert!(
            error <= bound,
            "image {image}: heatmap error {error:.3e} over the bound {bound:.3e}"
        );
        worst = worst.max(error / bound);
    }
    worst
}

#[test]
fn aug_smoothing_matches_pytorch_grad_cam() {
    let worst = aug_case(&oracle(), true);
    eprintln!("aug smoothing: worst heatmap / bound {worst:.1e}");
}

#[test]
fn the_unsmoothed_heatmap_fails_the_aug_smoothed_oracle() {
    let fx = oracle();
    let wrong = std::panic::catch_unwind(|| aug_case(&fx, false));
    assert!(wrong.is_err(), "the plain heatmap passed");
}

#[test]
fn a_capture_cannot_be_aug_smoothed() {
    let device = Device::flex();
    let (model, fx) = (model(&device), oracle());
    let explainer = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_aug_smooth(true)
        .init(&model)
        .unwrap();
    let capture = explainer
        .capture(input(&fx, &device), &targets(&fx))
        .unwrap();
    let error = explainer.explain_capture(&capture).unwrap_err();
    assert!(
        matches!(error, GradCamError::Input(InputError::Argument { .. })),
        "{error}"
    );
}

#[test]
fn a_stream_aug_smooths_as_explain_does() {
    let device = Device::flex();
    let (model, fx) = (model(&device), oracle());
    let explainer = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_aug_smooth(true)
        .init(&model)
        .unwrap();
    let targets = targets(&fx);
    let explained = host(
        explainer
            .explain(input(&fx, &device), &targets)
            .unwrap()
            .heatmap,
    );
    let streamed: Vec<_> = explainer
        .stream([input(&fx, &device)], &targets)
        .map(|batch| batch.unwrap().heatmaps)
        .collect();
    // The same calls on the same input: the same numbers.
    assert_eq!(streamed, vec![explained]);
}

/// FEM against pytorch-grad-cam's on the same network and layer; `w` replaces our weights when
/// given (a deliberately wrong answer). Panics past the bound; returns the worst raw error and
/// heatmap difference over their bounds.
///
/// Bound: the float32 activations lie within `d = DELTA max|A|` of float64's, so a threshold
/// moves by at most `(1 + 2) d` and only the fixture's `ambiguous` pixels (within `(2 + 2) d` of
/// it) may count differently: `|w'_k - w_k| <= F_k / p`, and the raw map moves by at most
/// `sum_k (F_k / p) (max|A| + d) + w_k d`; heatmaps as in `pgc.rs`.
/// The worst raw error over its bound, heatmap difference over its bound, and heatmap difference
/// (the heatmap is in [0, 1]: a difference relative to its largest value).
fn fem_case(fx: &Fixture, wrong: Option<Vec<f32>>) -> (f64, f64, f64) {
    let device = Device::flex();
    let x = input(fx, &device);
    let [n, _, height, width] = x.dims();
    let explanation = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(Method::Fem)
        .init(&model(&device))
        .unwrap()
        .explain(x.clone(), &Targets::top(1))
        .unwrap();
    let layer = &explanation.layers[0];
    let (mut raw, heat) = (host(layer.raw.clone()), host(explanation.heatmap.clone()));
    let ours_w = host(layer.weights.clone().unwrap()); // [n, 1, k]
    let (shape, raw64) = &fx.tensors["fem/raw64"];
    let [_, _, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let (p, k) = (h * w, ours_w.len() / n);
    if let Some(weights) = wrong {
        // The map of the given weights, from the network's own activations.
        let weights = Tensor::<3>::from_data(TensorData::new(weights, [n, 1, k]), &device);
        let capture = ExplainerConfig::new()
            .with_layer(LAYER)
            .with_method(Method::Fem)
            .init(&model(&device))
            .unwrap()
            .capture(x, &Targets::top(1))
            .unwrap();
        let activations = capture.layers[0].activations.clone(); // [n, k, h, w]
        raw = host(weighted_sum(activations, weights).unwrap());
    }
    let (_, pgc) = &fx.tensors["fem/pgc"];
    let (_, w64) = &fx.tensors["fem/w64"];
    let (_, ambiguous) = &fx.tensors["fem/ambiguous"];
    let (_, max_a) = &fx.tensors["fem/max_a"];
    let mut worst = (0.0f64, 0.0f64, 0.0f64);
    for (image, &largest) in max_a.iter().enumerate().take(n) {
        let largest = largest as f64;
        let d = DELTA * largest;
        let e: f64 = (0..k)
            .map(|c| {
                let at = image * k + c;
                ambiguous[at] as f64 / p as f64 * (largest + d) + w64[at] as f64 * d
            })
            .sum();
        for c in 0..k {
            let at = image * k + c;
            let allowed = ambiguous[at] as f64 / p as f64;
            assert!(
                (ours_w[at] - w64[at]).abs() as f64 <= allowed + 1e-7,
                "image {image} channel {c}: weight {} against {} (allowed {allowed})",
                ours_w[at],
                w64[at]
            );
        }
        let small = image * p..(image + 1) * p;
        let error = raw[small.clone()]
            .iter()
            .zip(&raw64[small.clone()])
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs() as f64));
        assert!(
            error <= e,
            "image {image}: raw error {error:.3e} over the bound {e:.3e}"
        );
        let bound = heatmap_bound(&raw64[small], e, h, height);
        let big = image * height * width..(image + 1) * height * width;
        let difference = heat[big.clone()]
            .iter()
            .zip(&pgc[big])
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs() as f64));
        assert!(
            difference <= bound,
            "image {image}: heatmap difference {difference:.3e} over the bound {bound:.3e}"
        );
        worst = (
            worst.0.max(error / e),
            worst.1.max(difference / bound),
            worst.2.max(difference),
        );
    }
    worst
}

#[test]
fn fem_matches_pytorch_grad_cam() {
    let (raw, heat, difference) = fem_case(&oracle(), None);
    eprintln!(
        "fem: worst raw / bound {raw:.1e}, heatmap / bound {heat:.1e}, heatmap difference {difference:.1e}"
    );
}

#[test]
fn fem_with_uniform_weights_fails() {
    // Every channel weighted equally (a channel sum, not FEM's selection) must miss the bound.
    let fx = oracle();
    let (_, w64) = &fx.tensors["fem/w64"];
    let uniform = vec![1.0 / 8.0; w64.len()];
    let wrong = std::panic::catch_unwind(|| fem_case(&fx, Some(uniform)));
    assert!(wrong.is_err(), "a uniform weighting passed FEM's bound");
}
