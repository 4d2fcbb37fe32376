//! Eigen smoothing and augmentation smoothing against pytorch-grad-cam 1.5.7's `eigen_smooth`
//! and `aug_smooth`, and the methods newer than the oracle fixtures of `tests/` (FEM,
//! Seg-Eigen-CAM, KPCA-CAM, Finer-CAM, fusion by product) against its `FEM`, `SegEigenCAM`,
//! `KPCA_CAM`, `FinerCAM` and `RefineCAM`, IS-CAM, SS-CAM and CAM against torchcam 0.5's
//! `ISCAM`, `SSCAM` (given our noise) and `CAM`, and the confidence change against pgc's `CamMultImageConfidenceChange`, on the
//! residual
//! network generated from `tiny_residual.onnx`, at
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
use common::{
    DELTA, Fixture, Oracle, apart, compare_with, fixture, generated, heatmap_bound, here, host,
    input, largest,
};
use gradcam::kernels::weighted_sum;
use gradcam::methods::{CamMap, CamMethod, KpcaCam, KpcaKernel, LayerCapture, Rerun};
use gradcam::{
    ExplainerConfig, FactorizationConfig, Fusion, GradCam, GradCamError, InputError, Method,
    Target, Targets,
};

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
    let key = format!("eigen/{name}");
    let (shape, _) = &fx.tensors[&format!("{key}/raw64")];
    let (_, svd) = &fx.tensors[&format!("{key}/svd")];
    let bounds = wedin_bounds(svd, 8, shape[2] * shape[3]);
    projection_case(fx, &key, name.parse().unwrap(), smooth, &bounds)
}

/// Our `method` (eigen-smoothed or not) against the fixture's `key/raw64` within `bounds` (one
/// per map) and pgc's `key/pgc` heatmap, each image's first class. Returns the worst raw error
/// and heatmap difference over their bounds.
fn projection_case(
    fx: &Fixture,
    key: &str,
    method: Method,
    smooth: bool,
    bounds: &[f64],
) -> (f64, f64) {
    let device = Device::flex();
    let name = method.name();
    let value = |tensor: &str| &fx.tensors[&format!("{key}/{tensor}")];
    let ((shape, raw64), (_, raw32)) = (value("raw64"), value("raw32"));
    let (_, pgc) = value("pgc");
    let [n, m, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
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
        let to_pgc = apart(&raw[small.clone()], &raw32[small.clone()]);
        eprintln!(
            "{name} map {map}: ours {:.1e} of the scale from pytorch-grad-cam's raw map",
            to_pgc / largest(&raw32[small.clone()])
        );
        let e = to_pgc.max(DELTA * largest(&raw64[small.clone()]));
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
                let scale = largest(raw);
                heatmap_bound(raw, DELTA * scale, h, height)
            })
            .sum::<f64>()
            / augmentations as f64;
        let at = image * height * width..(image + 1) * height * width;
        let error = apart(&ours[at.clone()], &pgc[at]);
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
        let error = apart(&raw[small.clone()], &raw64[small.clone()]);
        assert!(
            error <= e,
            "image {image}: raw error {error:.3e} over the bound {e:.3e}"
        );
        let bound = heatmap_bound(&raw64[small], e, h, height);
        let big = image * height * width..(image + 1) * height * width;
        let difference = apart(&heat[big.clone()], &pgc[big]);
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

/// Seg-Eigen-CAM's Wedin bounds from the fixture's log (`s_1, s_2, max|C|, | |max| - |min| |`
/// per image): `|G| A` moves by no more than `G A` does (`||a| - |b|| <= |a - b|`), so the bound
/// of eigen smoothing holds; and the sign (Eq. 13) must not be decided within it.
fn seg_eigen_bounds(fx: &Fixture) -> Vec<f64> {
    let (shape, _) = &fx.tensors["seg-eigen-cam/raw64"];
    let (_, log) = &fx.tensors["seg-eigen-cam/log"];
    let svd: Vec<f32> = log.chunks_exact(4).flat_map(|r| r[..3].to_vec()).collect();
    let bounds = wedin_bounds(&svd, 8, shape[2] * shape[3]);
    for (row, bound) in log.chunks_exact(4).zip(&bounds) {
        assert!(
            row[3] as f64 > 2.0 * bound,
            "|max| and |min| within the bound: the sign is not decided"
        );
    }
    bounds
}

#[test]
fn seg_eigen_cam_matches_pytorch_grad_cam() {
    let fx = oracle();
    let bounds = seg_eigen_bounds(&fx);
    let (raw, heat) = projection_case(&fx, "seg-eigen-cam", Method::SegEigenCam, false, &bounds);
    // And how far pytorch-grad-cam's own float32 map is from the float64 one, for the README.
    let (_, raw32) = &fx.tensors["seg-eigen-cam/raw32"];
    let (_, raw64) = &fx.tensors["seg-eigen-cam/raw64"];
    let scale = largest(raw64);
    let theirs = apart(raw32, raw64);
    eprintln!(
        "seg-eigen-cam: worst raw / bound {raw:.1e}, heatmap / bound {heat:.1e}; \
         pytorch-grad-cam's float32 map is {:.1e} of the scale from float64",
        theirs / scale
    );
}

#[test]
fn eigen_grad_cam_fails_the_seg_eigen_cam_oracle() {
    // G (.) A instead of |G| (.) A, and the channel-sum sign rule: another map.
    let fx = oracle();
    let bounds = seg_eigen_bounds(&fx);
    let wrong = std::panic::catch_unwind(|| {
        projection_case(&fx, "seg-eigen-cam", Method::EigenGradCam, false, &bounds)
    });
    assert!(
        wrong.is_err(),
        "EigenGrad-CAM passed Seg-Eigen-CAM's oracle"
    );
}

/// KPCA-CAM runs no forward: a [`Rerun`] that is never called.
struct NoRerun;

impl Rerun for NoRerun {
    fn input(&self) -> Tensor<4> {
        unreachable!("KPCA-CAM reads only the activations")
    }
    fn scores(&self, _: Tensor<4>, _: usize) -> gradcam::Result<Tensor<2>> {
        unreachable!("KPCA-CAM reads only the activations")
    }
    fn scores_with_layer(&self, _: &str, _: Tensor<4>, _: usize) -> gradcam::Result<Tensor<2>> {
        unreachable!("KPCA-CAM reads only the activations")
    }
    fn original_scores(&self) -> Tensor<2> {
        unreachable!("KPCA-CAM reads only the activations")
    }
    fn gradients(&self, _: &str, _: Tensor<4>, _: usize) -> gradcam::Result<Tensor<5>> {
        unreachable!("KPCA-CAM reads only the activations")
    }
    fn bias_gradients(&self) -> gradcam::Result<gradcam::methods::BiasGradients> {
        unreachable!("KPCA-CAM reads only the activations")
    }
    fn attention_gradients(&self) -> gradcam::Result<Vec<gradcam::methods::AttentionGradient>> {
        unreachable!("KPCA-CAM reads only the activations")
    }
    fn hessian_products(&self, _: &str, _: Tensor<4>, _: usize) -> gradcam::Result<Tensor<5>> {
        unreachable!("KPCA-CAM reads only the activations")
    }
}

/// KPCA-CAM with `kernel` on the float32 activations pytorch-grad-cam's run saw, against their
/// float64 kernel PCA (`kpca-cam/ref64`). Both are float64 computations of the same inputs, so
/// they differ by the float32 rounding of each result (`2 u |y|`) and by the float64 error of
/// forming, centring and decomposing the `p x p` kernel: an error `eps <= 64 p 2^-53 (|K~|_F
/// + 4 p)` (entries of `|K|` at most 1 for the sigmoid kernel) moves the eigenvector by at most
/// `sqrt(2) eps / (lambda_1 - lambda_2 - eps)` and `sqrt(lambda_1)` by `eps / (2 sqrt(lambda_1
/// - eps))` (Davis-Kahan, Weyl). Panics past the bound; returns the worst error over it.
fn kpca_case(fx: &Fixture, kernel: KpcaKernel) -> f64 {
    let device = Device::flex();
    let (shape, a32) = &fx.tensors["kpca-cam/a32"];
    let [n, k, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let p = h * w;
    let capture = LayerCapture {
        name: LAYER.into(),
        activations: Tensor::from_data(TensorData::new(a32.clone(), [n, k, h, w]), &device),
        gradients: None,
        targets_per_image: 1,
    };
    let CamMap::Map(map) = KpcaCam::new()
        .with_kernel(kernel)
        .compute(&capture, &NoRerun)
        .unwrap()
    else {
        panic!("KPCA-CAM returns a map");
    };
    let ours = host(map);
    let (_, reference) = &fx.tensors["kpca-cam/ref64"];
    let (_, log) = &fx.tensors["kpca-cam/log"];
    let u = 2f64.powi(-24);
    let mut worst = 0.0f64;
    for image in 0..n {
        let (l1, l2, frobenius) = (
            log[3 * image] as f64,
            log[3 * image + 1] as f64,
            log[3 * image + 2] as f64,
        );
        let eps = 64.0 * p as f64 * 2f64.powi(-53) * (frobenius + 4.0 * p as f64);
        assert!(l1 - l2 > eps, "no eigenvalue gap: no bound");
        let vector = 2f64.sqrt() * eps / (l1 - l2 - eps);
        let value = eps / (2.0 * (l1 - eps).sqrt());
        for i in image * p..(image + 1) * p {
            let (a, b) = (ours[i] as f64, reference[i] as f64);
            let bound = l1.sqrt() * vector + value + 2.0 * u * b.abs().max(a.abs());
            assert!(
                (a - b).abs() <= bound,
                "image {image} pixel {}: {a} against {b} (bound {bound:.2e})",
                i - image * p
            );
            worst = worst.max((a - b).abs() / bound);
        }
    }
    worst
}

#[test]
fn kpca_cam_matches_the_float64_kernel_pca_pytorch_grad_cam_ran() {
    let fx = oracle();
    let worst = kpca_case(&fx, KpcaKernel::Sigmoid);
    // pgc's own float32 map against the same float64 reference (its kernel and ARPACK in float32).
    let (_, pgc) = &fx.tensors["kpca-cam/raw32"];
    let (_, reference) = &fx.tensors["kpca-cam/ref64"];
    let scale = largest(reference);
    let theirs = apart(pgc, reference);
    eprintln!(
        "kpca-cam: ours worst / bound {worst:.1e}; pytorch-grad-cam's float32 map differs from \
         float64 by {:.1e} of the scale",
        theirs / scale
    );
}

#[test]
fn plain_pca_fails_the_kpca_cam_oracle() {
    // The linear kernel (Eigen-CAM's projection) is another map.
    let fx = oracle();
    let wrong = std::panic::catch_unwind(|| kpca_case(&fx, KpcaKernel::Linear));
    assert!(wrong.is_err(), "the linear kernel passed");
}

#[test]
fn kpca_cam_on_the_network_matches_pytorch_grad_cams_heatmap() {
    // End to end from the photos: our network's activations differ from PyTorch's by DELTA, so
    // the raw maps are compared by their measured difference (which the arithmetic check above
    // has shown is not ours), and the heatmaps within pgc.rs's propagation of it.
    let device = Device::flex();
    let fx = oracle();
    let explanation = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(Method::KpcaCam)
        .init(&model(&device))
        .unwrap()
        .explain(input(&fx, &device), &Targets::top(1))
        .unwrap();
    let (raw, heat) = (
        host(explanation.layers[0].raw.clone()),
        host(explanation.heatmap),
    );
    let (shape, raw32) = &fx.tensors["kpca-cam/raw32"];
    let (_, pgc) = &fx.tensors["kpca-cam/pgc"];
    let [n, _, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let size = pgc.len() / n;
    let height = (size as f64).sqrt() as usize;
    for image in 0..n {
        let small = image * h * w..(image + 1) * h * w;
        let scale = largest(&raw32[small.clone()]);
        let e = apart(&raw[small.clone()], &raw32[small.clone()]).max(DELTA * scale);
        assert!(e <= 1e-2 * scale, "image {image}: raw maps {e:.2e} apart");
        let bound = heatmap_bound(&raw32[small], e / 2.0, h, height);
        let big = image * size..(image + 1) * size;
        let difference = apart(&heat[big.clone()], &pgc[big]);
        assert!(
            difference <= bound,
            "image {image}: heatmap difference {difference:.3e} over the bound {bound:.3e}"
        );
    }
}

/// Our Grad-CAM of `targets` against pytorch-grad-cam's `FinerCAM` (Grad-CAM, alpha 1, each
/// image's top class against its three nearest): `pgc.rs`'s bounds. The compared classes must
/// be the same on both sides: the fixture's margin (the 4th nearest distance over the 3rd) is
/// checked to exceed twice the float32 logits' error (`DELTA` of their scale).
fn finer_case(fx: &Fixture, targets: &Targets) -> (f64, f64) {
    let device = Device::flex();
    let model = model(&device);
    let logits = host(model.forward(input(fx, &device)));
    let scale = largest(&logits);
    let (_, margin) = &fx.tensors["finer/margin"];
    for m in margin {
        assert!(
            *m as f64 > 2.0 * DELTA * scale,
            "the compared classes are decided within rounding"
        );
    }
    let (shape, raw64) = &fx.tensors["finer/raw64"];
    let (_, pgc) = &fx.tensors["finer/pgc"];
    let spread = vec![0.0f32; raw64.len()];
    let oracle = Oracle {
        raw64,
        raw_shape: shape.as_slice().try_into().unwrap(),
        spread: &spread,
        pgc,
    };
    let config = ExplainerConfig::new().with_layer(LAYER);
    compare_with(&config, &model, input(fx, &device), targets, &oracle)
}

#[test]
fn finer_cam_matches_pytorch_grad_cam() {
    let (raw, heat) = finer_case(&oracle(), &Targets::every_image([Target::finer(1.0)]));
    eprintln!("finer-cam: worst raw / bound {raw:.1e}, heatmap / bound {heat:.1e}");
}

#[test]
fn plain_grad_cam_fails_the_finer_cam_oracle() {
    // The top class's logit alone (alpha = 0 is the same): another map.
    let fx = oracle();
    for targets in [Targets::top(1), Targets::every_image([Target::finer(0.0)])] {
        let wrong =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| finer_case(&fx, &targets)));
        assert!(wrong.is_err(), "{targets:?} passed Finer-CAM's oracle");
    }
}

/// Our Grad-CAM at `block.relu_a` and `head` fused by `fusion` against pytorch-grad-cam's
/// `RefineCAM` (GradCAM as its base method, each image's top class). Bound: each layer's
/// heatmap (normalised on its own, as RefineCAM's base method returns it) is within
/// `e_l = heatmap_bound(raw64_l, DELTA scale_l)` of pytorch-grad-cam's (`pgc.rs`); two factors in
/// `[0, 1]` make the product move by at most `E = e_1 + e_2`; the last normalisation turns that
/// into `4 E / (range - 2 E)`, `range` that of our product. Returns the worst difference over it.
fn refine_case(fx: &Fixture, fusion: Fusion) -> f64 {
    let device = Device::flex();
    let layers = ["block.relu_a", "head"];
    let x = input(fx, &device);
    let [n, _, height, width] = x.dims();
    let explanation = ExplainerConfig::new()
        .with_layers(layers)
        .with_fusion(fusion)
        .init(&model(&device))
        .unwrap()
        .explain(x, &Targets::top(1))
        .unwrap();
    let ours = host(explanation.heatmap);
    let each: Vec<Vec<f32>> = explanation
        .layers
        .iter()
        .map(|l| host(l.heatmap.clone()))
        .collect();
    let (_, pgc) = &fx.tensors["refine/pgc"];
    let size = height * width;
    let mut worst = 0.0f64;
    for image in 0..n {
        let big = image * size..(image + 1) * size;
        let mut e = 0.0;
        let mut product = vec![1.0f64; size];
        for (l, layer) in layers.iter().enumerate() {
            let (shape, raw64) = &fx.tensors[&format!("refine/raw64/{layer}")];
            let h = shape[2];
            let raw = &raw64[image * h * shape[3]..(image + 1) * h * shape[3]];
            let scale = largest(raw);
            e += heatmap_bound(raw, DELTA * scale, h, height);
            // Our layer's heatmap as RefineCAM's base method returns it: clipped, normalised.
            let heat: Vec<f64> = each[l][big.clone()]
                .iter()
                .map(|v| v.max(0.0) as f64)
                .collect();
            let (lo, hi) = heat
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
            for (p, v) in product.iter_mut().zip(&heat) {
                *p *= (v - lo) / (hi - lo + 1e-7);
            }
        }
        let (lo, hi) = product
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        assert!(
            hi - lo > 2.0 * e,
            "image {image}: the product is flat within its bound"
        );
        let bound = 4.0 * e / (hi - lo - 2.0 * e);
        let difference = apart(&ours[big.clone()], &pgc[big]);
        assert!(
            difference <= bound,
            "image {image}: heatmap difference {difference:.3e} over the bound {bound:.3e}"
        );
        worst = worst.max(difference / bound);
    }
    worst
}

#[test]
fn fusion_by_product_matches_pytorch_grad_cams_refine_cam() {
    let worst = refine_case(&oracle(), Fusion::Product);
    eprintln!("refine-cam: worst heatmap / bound {worst:.1e}");
}

#[test]
fn fusion_by_mean_or_maximum_fails_the_refine_cam_oracle() {
    let fx = oracle();
    for fusion in [Fusion::Mean, Fusion::Max] {
        let wrong = std::panic::catch_unwind(|| refine_case(&fx, fusion));
        assert!(wrong.is_err(), "{fusion:?} passed RefineCAM's oracle");
    }
}

/// `method` at `block.relu_a` for each image's first class against torchcam's `ISCAM`
/// (`key` "iscam") or `SSCAM` (`key` "sscam", run with our noise). Bound:
/// every score of the float32 network lies within `d = DELTA max|score|` of float64's, so the
/// softmax weights move by a factor within `exp(+-2d)` and the raw map by at most
/// `((exp(2d) - 1) + exp(2d) DELTA) max|A|` (the weights sum to 1; the activations within
/// `DELTA max|A|`); the CAM (ReLU, normalised at the layer's resolution, no upsampling) by
/// `2 * 4 e / range` (both normalisations; the 2 for torchcam's own error) plus the difference of
/// the normalisations' epsilons (`1e-7` against torchcam's `1e-8`, over the range). Returns the
/// worst raw error and CAM difference over their bounds.
fn torchcam_case(fx: &Fixture, key: &str, method: impl gradcam::CamMethod + 'static) -> (f64, f64) {
    let device = Device::flex();
    let first: Vec<usize> = fx.classes.iter().map(|row| row[0]).collect();
    let explanation = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(method)
        .init(&model(&device))
        .unwrap()
        .explain(input(fx, &device), &Targets::one_per_image(first))
        .unwrap();
    let raw = host(explanation.layers[0].raw.clone());
    let cam = host(explanation.layers[0].cam.clone());
    let (shape, raw64) = &fx.tensors[&format!("{key}/raw64")];
    let (_, theirs) = &fx.tensors[&format!("{key}/cam")];
    let (_, inputs) = &fx.tensors[&format!("{key}/bound_inputs")];
    let (score_max, a_max) = (inputs[0] as f64, inputs[1] as f64);
    let d = DELTA * score_max;
    let e = ((2.0 * d).exp() - 1.0 + (2.0 * d).exp() * DELTA) * a_max;
    let [n, _, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let mut worst = (0.0f64, 0.0f64);
    for image in 0..n {
        let at = image * h * w..(image + 1) * h * w;
        let error = apart(&raw[at.clone()], &raw64[at.clone()]);
        assert!(
            error <= e,
            "image {image}: raw error {error:.3e} over the bound {e:.3e}"
        );
        let relu: Vec<f64> = raw64[at.clone()]
            .iter()
            .map(|v| v.max(0.0) as f64)
            .collect();
        let range = relu.iter().cloned().fold(f64::MIN, f64::max)
            - relu.iter().cloned().fold(f64::MAX, f64::min);
        let bound = 2.0 * 4.0 * e / range + 1e-7 / range;
        let difference = apart(&cam[at.clone()], &theirs[at]);
        assert!(
            difference <= bound,
            "image {image}: CAM difference {difference:.3e} over the bound {bound:.3e}"
        );
        worst = (worst.0.max(error / e), worst.1.max(difference / bound));
    }
    worst
}

#[test]
fn is_cam_matches_torchcam() {
    let (raw, cam) = torchcam_case(&oracle(), "iscam", gradcam::methods::IsCam::new());
    eprintln!("is-cam: worst raw / bound {raw:.1e}, CAM / bound {cam:.1e}");
}

#[test]
fn score_cam_and_a_short_path_fail_the_is_cam_oracle() {
    let fx = oracle();
    let wrong =
        std::panic::catch_unwind(|| torchcam_case(&fx, "iscam", gradcam::methods::ScoreCam::new()));
    assert!(wrong.is_err(), "Score-CAM passed IS-CAM's oracle");
    let wrong = std::panic::catch_unwind(|| {
        torchcam_case(&fx, "iscam", gradcam::methods::IsCam::new().with_samples(9))
    });
    assert!(
        wrong.is_err(),
        "IS-CAM with 9 samples passed the oracle of 10"
    );
}

/// Our Grad-CAM at `head` (ReLU off), for each image's class `pick` of the fixture's two,
/// against torchcam's `CAM` for the first (the classifier's weights, no gradient): with a global
/// average pool and one linear layer after `head`, `dy_c / dA_kij = W_ck / (h w)`, so Grad-CAM's
/// map is CAM's divided by `h w`, the same once normalised. Bound: our raw map within
/// `DELTA` of the float64 CAM's scale (over `h w`, `pgc.rs`), so the normalised maps within
/// `2 * 4 e / range` (the 2 for torchcam's own error) plus the epsilons (`1e-7` over our range,
/// `1e-8` over torchcam's). Returns the worst difference over it.
fn classifier_cam_case(fx: &Fixture, pick: usize) -> f64 {
    let device = Device::flex();
    let classes: Vec<usize> = fx.classes.iter().map(|row| row[pick]).collect();
    let explanation = ExplainerConfig::new()
        .with_layer("head")
        .with_relu(false)
        .init(&model(&device))
        .unwrap()
        .explain(input(fx, &device), &Targets::one_per_image(classes))
        .unwrap();
    let cam = host(explanation.layers[0].cam.clone());
    let (shape, raw64) = &fx.tensors["cam/raw64"];
    let (_, theirs) = &fx.tensors["cam/torchcam"];
    let [n, _, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let p = (h * w) as f64;
    let mut worst = 0.0f64;
    for image in 0..n {
        let at = image * h * w..(image + 1) * h * w;
        let ours64: Vec<f64> = raw64[at.clone()].iter().map(|v| *v as f64 / p).collect();
        let scale = ours64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let range = ours64.iter().cloned().fold(f64::MIN, f64::max)
            - ours64.iter().cloned().fold(f64::MAX, f64::min);
        let e = DELTA * scale;
        let bound = 2.0 * 4.0 * e / range + 1e-7 / range + 1e-8 / (range * p);
        let difference = apart(&cam[at.clone()], &theirs[at]);
        assert!(
            difference <= bound,
            "image {image}: CAM difference {difference:.3e} over the bound {bound:.3e}"
        );
        worst = worst.max(difference / bound);
    }
    worst
}

#[test]
fn grad_cam_before_a_pool_and_linear_head_is_torchcams_cam() {
    let worst = classifier_cam_case(&oracle(), 0);
    eprintln!("cam: worst difference / bound {worst:.1e}");
}

#[test]
fn another_class_fails_the_cam_oracle() {
    let fx = oracle();
    let wrong = std::panic::catch_unwind(|| classifier_cam_case(&fx, 1));
    assert!(wrong.is_err(), "the second class's map passed the first's");
}

/// `gradcam::eval::confidence_change` on pytorch-grad-cam's own Grad-CAM heatmaps (`maps`
/// replaces them when given: a deliberately wrong input) against its
/// `CamMultImageConfidenceChange` with softmax targets (`o - y` per image). Bound: every logit
/// of either float32 network within `d = DELTA max|logit|` of float64's, so each probability
/// within `exp(2d) - 1` of float64's and `o - y` within `4 (exp(2d) - 1)` of pgc's. Returns the
/// worst difference over it.
fn confidence_case(fx: &Fixture, maps: Option<Vec<f32>>) -> f64 {
    let device = Device::flex();
    let model = model(&device);
    let x = input(fx, &device);
    let [n, _, height, width] = x.dims();
    let (_, theirs) = &fx.tensors["metrics/maps"];
    let maps = Tensor::<3>::from_data(
        TensorData::new(maps.unwrap_or_else(|| theirs.clone()), [n, height, width]),
        &device,
    );
    let masked = x.clone() * maps.clone().unsqueeze_dim::<4>(1);
    let logits = host(model.forward(Tensor::cat(vec![x.clone(), masked], 0)));
    let scale = largest(&logits);
    let first: Vec<usize> = fx.classes.iter().map(|row| row[0]).collect();
    let pairs = gradcam::eval::confidence_change(&model, x, maps, &first).unwrap();
    let (_, change) = &fx.tensors["metrics/confidence_change"];
    let bound = 4.0 * ((2.0 * DELTA * scale).exp() - 1.0);
    let mut worst = 0.0f64;
    for (image, ((y, o), pgc)) in pairs.iter().zip(change).enumerate() {
        let difference = ((o - y) - pgc).abs() as f64;
        assert!(
            difference <= bound,
            "image {image}: o - y = {} against pytorch-grad-cam's {pgc} (bound {bound:.2e})",
            o - y
        );
        worst = worst.max(difference / bound);
    }
    worst
}

#[test]
fn confidence_change_matches_pytorch_grad_cams_metric() {
    let worst = confidence_case(&oracle(), None);
    eprintln!("confidence change: worst difference / bound {worst:.1e}");
}

#[test]
fn a_map_of_ones_fails_the_confidence_change_oracle() {
    let fx = oracle();
    let ones = vec![1.0f32; fx.tensors["metrics/maps"].1.len()];
    let wrong = std::panic::catch_unwind(|| confidence_case(&fx, Some(ones)));
    assert!(wrong.is_err(), "an unmasked input passed");
}

#[test]
fn ss_cam_matches_torchcam_with_the_same_noise() {
    let ss = gradcam::methods::SsCam::new().with_samples(2);
    let (raw, cam) = torchcam_case(&oracle(), "sscam", ss);
    eprintln!("ss-cam: worst raw / bound {raw:.1e}, CAM / bound {cam:.1e}");
}

#[test]
fn other_noise_fails_the_ss_cam_oracle() {
    let fx = oracle();
    for ss in [
        gradcam::methods::SsCam::new().with_samples(2).with_seed(1),
        gradcam::methods::SsCam::new().with_samples(2).with_std(0.0),
    ] {
        let wrong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            torchcam_case(&fx, "sscam", ss.clone())
        }));
        assert!(wrong.is_err(), "{ss:?} passed SS-CAM's oracle");
    }
}

/// Our SmoothGrad-CAM++ channel weights for each image's first class against `key`'s float64
/// ones (`sgcampp1`: torchcam's, one draw; `sgcampp3`: the formula with the mean gradient, three
/// draws), both over the unperturbed activations. Bound, per channel, from the float64 run's
/// mean powers `g1, g2, g3` and activations `A`: every gradient of the float32 network within
/// `e = DELTA max|G|` of float64's and every activation within `a = DELTA max|A|` (the networks'
/// agreement of `pgc.rs`), so `g2` moves by `dg2 = (2 max|G| + e) e`, `g3` by
/// `dg3 = (3 max|G|^2 + 3 max|G| e + e^2) e`, the denominator `d = 2 g2 + sum A g3 + 1e-8` by
/// `dd = 2 dg2 + sum(|A| dg3 + a (|g3| + dg3))`, `alpha = g2 / d` by
/// `(dg2 + |alpha| dd) / (|d| - dd)` and the weight by `sum(dalpha |g1| + (|alpha| + dalpha) e)`,
/// plus float32 rounding of the sums (`2 n u` of the sum of magnitudes over `n` terms, Higham).
/// A pixel whose gradient is below `-e` on both sides adds 0. Where `sum A g3 < 0` the
/// denominator can vanish at a pixel with a positive gradient: there `alpha` is a singular ratio
/// that no float32 computation determines (torchcam's formula, ours too), and that channel is not
/// compared (`|d| <= dd` at a contributing pixel). Panics past the bound or with fewer than 5 of 8
/// channels compared; returns the worst error over the bound.
fn smoothgrad_case(
    fx: &Fixture,
    key: &str,
    method: gradcam::methods::SmoothGradCamPlusPlus,
) -> f64 {
    let device = Device::flex();
    let first: Vec<usize> = fx.classes.iter().map(|row| row[0]).collect();
    let explanation = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(method)
        .init(&model(&device))
        .unwrap()
        .explain(input(fx, &device), &Targets::one_per_image(first))
        .unwrap();
    let ours = host(explanation.layers[0].weights.clone().unwrap()); // [n, 1, k]
    let (_, w64) = &fx.tensors[&format!("{key}/w64")];
    let (_, powers) = &fx.tensors[&format!("{key}/powers")];
    let (shape, a64) = &fx.tensors["sgcampp/a64"];
    let (_, inputs) = &fx.tensors[&format!("{key}/bound_inputs")];
    let (g_max, a_max) = (inputs[0] as f64, inputs[1] as f64);
    let (e, a) = (DELTA * g_max, DELTA * a_max);
    let u = f32::EPSILON as f64 / 2.0;
    let [n, k, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let p = h * w;
    let dg2 = (2.0 * g_max + e) * e;
    let dg3 = (3.0 * g_max * g_max + 3.0 * g_max * e + e * e) * e;
    let mut worst = 0.0f64;
    for image in 0..n {
        let pw =
            |power: usize, c: usize, i: usize| powers[((image * 3 + power) * k + c) * p + i] as f64;
        let act = |c: usize, i: usize| a64[(image * k + c) * p + i] as f64;
        let mut compared = 0;
        'channel: for c in 0..k {
            let spread: f64 = (0..p).map(|i| act(c, i) * pw(2, c, i)).sum();
            let d_spread: f64 = (0..p)
                .map(|i| act(c, i).abs() * dg3 + a * (pw(2, c, i).abs() + dg3))
                .sum::<f64>()
                + 2.0 * p as f64 * u * (0..p).map(|i| (act(c, i) * pw(2, c, i)).abs()).sum::<f64>();
            let (mut bound, mut magnitude) = (0.0, 0.0);
            for i in 0..p {
                let (g1, g2) = (pw(0, c, i), pw(1, c, i));
                if g1 + e <= 0.0 {
                    continue; // ReLU(g1) is 0 on both sides
                }
                let d = 2.0 * g2 + spread + 1e-8;
                let dd = 2.0 * dg2 + d_spread;
                if d.abs() <= dd {
                    continue 'channel;
                }
                let alpha = g2 / d;
                let d_alpha = (dg2 + alpha.abs() * dd) / (d.abs() - dd);
                bound += d_alpha * g1.abs() + (alpha.abs() + d_alpha) * e;
                magnitude += (alpha * g1.max(0.0)).abs();
            }
            bound += 2.0 * p as f64 * u * magnitude;
            let (o, t) = (ours[image * k + c] as f64, w64[image * k + c] as f64);
            let error = (o - t).abs();
            assert!(
                error <= bound,
                "{key}: image {image}, channel {c}: weight {o} vs {t}, error {error:.3e} over the bound {bound:.3e}"
            );
            worst = worst.max(error / bound);
            compared += 1;
        }
        assert!(
            compared >= 5,
            "{key}: image {image}: only {compared} channels compared"
        );
    }
    worst
}

#[test]
fn smoothgrad_cam_plus_plus_matches_torchcam_with_the_same_noise() {
    let one = gradcam::methods::SmoothGradCamPlusPlus::new().with_samples(1);
    let worst = smoothgrad_case(&oracle(), "sgcampp1", one);
    eprintln!("smoothgrad-cam++, 1 draw: worst weight error / bound {worst:.1e}");
}

#[test]
fn smoothgrad_cam_plus_plus_averages_the_gradient_over_the_draws() {
    let three = gradcam::methods::SmoothGradCamPlusPlus::new()
        .with_samples(3)
        .with_batch_size(2);
    let worst = smoothgrad_case(&oracle(), "sgcampp3", three);
    eprintln!("smoothgrad-cam++, 3 draws: worst weight error / bound {worst:.1e}");
}

#[test]
fn other_noise_or_draws_fail_the_smoothgrad_cam_plus_plus_oracles() {
    use gradcam::methods::SmoothGradCamPlusPlus as Sg;
    let fx = oracle();
    for (key, wrong) in [
        ("sgcampp1", Sg::new().with_samples(1).with_seed(1)),
        ("sgcampp1", Sg::new().with_samples(1).with_std(0.0)),
        ("sgcampp3", Sg::new().with_samples(2)),
        ("sgcampp3", Sg::new().with_samples(3).with_std(0.6)),
    ] {
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            smoothgrad_case(&fx, key, wrong.clone())
        }));
        assert!(failed.is_err(), "{wrong:?} passed the {key} oracle");
    }
}

#[test]
fn torchcams_last_draw_gradient_is_not_our_mean_gradient() {
    // torchcam's weights of the same three draws (ReLU of the last draw's gradient) in place of
    // the reference: our map must fail them, so the documented choice is what the test checks.
    let mut fx = oracle();
    let theirs = fx.tensors["sgcampp3/torchcam_w64"].clone();
    fx.tensors.insert("sgcampp3/w64".into(), theirs);
    let three = gradcam::methods::SmoothGradCamPlusPlus::new().with_samples(3);
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        smoothgrad_case(&fx, "sgcampp3", three)
    }));
    assert!(
        failed.is_err(),
        "our mean-gradient map passed torchcam's last-draw map"
    );
}

/// Our FullGrad heatmap for each image's first class against `key` (pytorch-grad-cam's
/// `FullGrad` on the float64 copy of the network with its BatchNorms folded into their
/// convolutions, as the ONNX graph has them). Bound: each normalised channel term `|b_k G_k|`
/// (`|x_c g_c|` for the input) is within `e = DELTA |b_k| max|G|` of float64's (`max|x_c| max|g|`
/// for the input; the networks' agreement of `pgc.rs`, as a share of the layer's largest
/// gradient), so its normalised map moves by at most `4 e / (R + 1e-7 - 2 e)` (`R` its range),
/// and by at most `(R + 2 e) / (1e-7 + R + 2 e)`, the top of both normalised maps; the sum by the sum of those (upsampling averages)
/// plus the float32 rounding of summing `T` terms of at most 1 on either side (`2 T^2 u`); the
/// heatmap (min-max scalings of the sum) by `min(1, 4 e_S / (R_S - 2 e_S))`. Panics past it;
/// returns the worst difference over the bound.
fn fullgrad_case(fx: &Fixture, key: &str, method: impl CamMethod + 'static) -> f64 {
    let device = Device::flex();
    let first: Vec<usize> = fx.classes.iter().map(|row| row[0]).collect();
    let explanation = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(method)
        .init(&model(&device))
        .unwrap()
        .explain(input(fx, &device), &Targets::one_per_image(first))
        .unwrap();
    let heat = host(explanation.heatmap.clone());
    let (shape, theirs) = &fx.tensors[key];
    let (terms_shape, terms) = &fx.tensors["fullgrad/terms"];
    let (_, sum_range) = &fx.tensors["fullgrad/sum_range"];
    let [n, height, width]: [usize; 3] = shape.as_slice().try_into().unwrap();
    let count = terms_shape[1];
    let u = f32::EPSILON as f64 / 2.0;
    let mut worst = 0.0f64;
    for (image, range) in sum_range.iter().enumerate().take(n) {
        let e_sum: f64 = (0..count)
            .map(|t| {
                let at = (image * count + t) * 2;
                let (e, range) = (DELTA * terms[at] as f64, terms[at + 1] as f64);
                let room = range + 1e-7 - 2.0 * e;
                // Both normalised maps lie in [0, (R + 2e) / (1e-7 + R + 2e)].
                let span = (range + 2.0 * e) / (1e-7 + range + 2.0 * e);
                if room > 0.0 {
                    (4.0 * e / room).min(span)
                } else {
                    span
                }
            })
            .sum::<f64>()
            + 2.0 * (count * count) as f64 * u;
        let range = *range as f64;
        let bound = if range > 2.0 * e_sum {
            (4.0 * e_sum / (range - 2.0 * e_sum)).min(1.0)
        } else {
            1.0
        };
        let at = image * height * width..(image + 1) * height * width;
        let difference = apart(&heat[at.clone()], &theirs[at]);
        assert!(
            difference <= bound,
            "{key}: image {image}: heatmap difference {difference:.3e} over the bound {bound:.3e}"
        );
        worst = worst.max(difference / bound);
    }
    worst
}

#[test]
fn fullgrad_matches_pytorch_grad_cam_on_the_folded_network() {
    let worst = fullgrad_case(&oracle(), "fullgrad/pgc64", gradcam::methods::FullGrad);
    eprintln!("fullgrad: worst heatmap difference / bound {worst:.1e}");
    // pytorch-grad-cam's own float32 run is within the same bound.
    let fx = oracle();
    let ours = fx.tensors["fullgrad/pgc"].1.clone();
    let reference = &fx.tensors["fullgrad/pgc64"].1;
    eprintln!(
        "fullgrad: pgc float32 against float64 {:.1e}",
        apart(&ours, reference)
    );
}

#[test]
fn grad_cam_fails_the_fullgrad_oracle() {
    let fx = oracle();
    let wrong = std::panic::catch_unwind(|| fullgrad_case(&fx, "fullgrad/pgc64", Method::GradCam));
    assert!(wrong.is_err(), "Grad-CAM passed FullGrad's oracle");
}

#[test]
fn the_unfolded_count_is_another_map() {
    // pgc on the unfolded model counts the stem convolution's bias and its BatchNorm's apart
    // (README): a map far from the folded one, which ours (one biased output) matches.
    let fx = oracle();
    let folded = &fx.tensors["fullgrad/pgc64"].1;
    let unfolded = &fx.tensors["fullgrad/unfolded"].1;
    let gap = apart(folded, unfolded);
    assert!(gap > 0.05, "the unfolded count moved the map by only {gap}");
}

/// The fixture's maps (pytorch-grad-cam's Grad-CAM heatmaps), on the device.
fn metric_maps(fx: &Fixture, device: &Device) -> Tensor<3> {
    let (shape, maps) = &fx.tensors["metrics/maps"];
    Tensor::<3>::from_data(TensorData::new(maps.clone(), shape.clone()), device)
}

/// The bound on an imputed value: both imputations solve the same system in `f64` (ours by
/// conjugate gradients to a residual of `1e-13` of the right-hand side's, pgc's by a sparse LU)
/// and round once to float32, so they differ by two roundings (`2 u max|x|`) plus the solvers'
/// errors, each below `kappa 1e-13 max|x|` with the condition number taken as `kappa < 1e5`:
/// the largest eigenvalue is at most 2, and the smallest, for a removed region of diameter at
/// most 64 sqrt(2) with kept pixels around it, is about `2 (1/3) (pi / 91)^2 = 8e-4` by the
/// continuum Laplacian this stencil approximates (an estimate, 40 times above the `2e-5` used, not
/// a proof): `e_x = (2 u + 2e-8) max|x|`.
fn imputation_bound(x: &[f32]) -> f64 {
    (f32::EPSILON as f64 + 2e-8) * largest(x)
}

/// A ROAD metric of the model on photos, maps and classes: one score per image.
type RoadRun<'a> = dyn Fn(&tiny_residual::Model, Tensor<4>, Tensor<3>, &[usize]) -> Vec<f32> + 'a;

/// `gradcam::eval::road` (and `road_combined`) against pytorch-grad-cam's ROAD (`key`: `morf80`,
/// `lerf20` without noise; `combined` with our noise) on its Grad-CAM heatmaps, softmax targets.
/// Bound: as the confidence change's (`4 (exp(2d) - 1)`, `d = DELTA max|logit|`) plus what the
/// imputed inputs' difference `e_x` moves a probability: at most twice the float64 network's
/// largest input-gradient l1 norm over the imputed inputs times `e_x` (the network is piecewise
/// linear; the 2 for the float32 networks' own gradients). Returns the worst difference over it.
fn road_case(fx: &Fixture, key: &str, run: &RoadRun<'_>) -> f64 {
    let device = Device::flex();
    let model = model(&device);
    let x = input(fx, &device);
    let maps = metric_maps(fx, &device);
    let first: Vec<usize> = fx.classes.iter().map(|row| row[0]).collect();
    let scale = largest(&host(model.forward(x.clone())));
    let ours = run(&model, x.clone(), maps, &first);
    let (_, theirs) = &fx.tensors[&format!("road/{key}")];
    let l1 = fx.tensors["road/gradient_l1"].1[0] as f64;
    let bound = 4.0 * ((2.0 * DELTA * scale).exp() - 1.0) + 2.0 * l1 * imputation_bound(&host(x));
    let mut worst = 0.0f64;
    for (image, (o, t)) in ours.iter().zip(theirs).enumerate() {
        let difference = (o - t).abs() as f64;
        assert!(
            difference <= bound,
            "{key}, image {image}: {o} against pytorch-grad-cam's {t} (bound {bound:.2e})"
        );
        worst = worst.max(difference / bound);
    }
    worst
}

#[test]
fn road_imputes_as_pytorch_grad_cam() {
    use gradcam::eval::{RoadConfig, RoadOrder, road_inputs};
    let fx = oracle();
    let device = Device::flex();
    let x = input(&fx, &device);
    let bound = imputation_bound(&host(x.clone()));
    let imputed = |noise: f32| {
        let config = RoadConfig::new()
            .with_percentiles(vec![80.0])
            .with_noise(noise);
        let inputs = road_inputs(
            x.clone(),
            metric_maps(&fx, &device),
            RoadOrder::MostRelevantFirst,
            &config,
        );
        host(inputs.unwrap().remove(0))
    };
    let theirs = &fx.tensors["road/morf80/imputed"].1;
    let error = apart(&imputed(0.0), theirs);
    assert!(
        error <= bound,
        "imputed inputs {error:.3e} apart (bound {bound:.3e})"
    );
    eprintln!("road: imputed inputs {:.1e} of their bound", error / bound);
    // The noise is added where the pixels were imputed, and the bound sees it.
    assert!(apart(&imputed(0.01), theirs) > bound);
}

#[test]
fn road_scores_match_pytorch_grad_cam() {
    use gradcam::eval::{RoadConfig, RoadOrder, road, road_combined};
    let fx = oracle();
    let single = |order, percentile: f64| {
        move |m: &tiny_residual::Model, x, maps, classes: &[usize]| {
            let config = RoadConfig::new()
                .with_percentiles(vec![percentile])
                .with_noise(0.0);
            road(m, x, maps, classes, order, &config).unwrap()
        }
    };
    let morf = road_case(&fx, "morf80", &single(RoadOrder::MostRelevantFirst, 80.0));
    let lerf = road_case(&fx, "lerf20", &single(RoadOrder::LeastRelevantFirst, 20.0));
    let combined = road_case(&fx, "combined", &|m, x, maps, classes| {
        road_combined(m, x, maps, classes, &RoadConfig::new()).unwrap()
    });
    eprintln!("road: worst / bound morf80 {morf:.1e}, lerf20 {lerf:.1e}, combined {combined:.1e}");
}

#[test]
fn another_percentile_or_order_fails_the_road_oracle() {
    use gradcam::eval::{RoadConfig, RoadOrder, road};
    let fx = oracle();
    for (order, percentile) in [
        (RoadOrder::MostRelevantFirst, 70.0),
        (RoadOrder::LeastRelevantFirst, 80.0),
    ] {
        let wrong = std::panic::catch_unwind(|| {
            road_case(&fx, "morf80", &|m, x, maps, classes| {
                let config = RoadConfig::new()
                    .with_percentiles(vec![percentile])
                    .with_noise(0.0);
                road(m, x, maps, classes, order, &config).unwrap()
            })
        });
        assert!(
            wrong.is_err(),
            "{order:?} at {percentile} passed MoRF at 80"
        );
    }
}

/// ARCC's parts and their harmonic mean against pytorch-grad-cam's (Grad-CAM at `block.relu_a`
/// re-explains the masked photos; ROAD with our noise). Bounds: Complexity, a float32 mean of
/// `p` values in `[0, 1]` on either side, `2 p u`; ROAD (times 2, clipped to `[0, 1]`): twice
/// `road_case`'s bound; Coherency `(rho + 1) / 2`: our re-explained heatmaps are within `e` of
/// pgc's (their own oracle, `common::compare`, checked here), which moves the centred map by at
/// most `e sqrt(p)` in norm and the cosine `rho` by at most `2 e sqrt(p) / (|a~| - e sqrt(p))`,
/// plus both sides' float32 sums (`4 p u`); ARCC: the harmonic mean over the parts' intervals.
/// Returns the worst part's difference over its bound.
fn arcc_case(fx: &Fixture, method: Method) -> f64 {
    use gradcam::eval::{RoadConfig, arcc};
    let device = Device::flex();
    let model = model(&device);
    let x = input(fx, &device);
    let maps = metric_maps(fx, &device);
    let first: Vec<usize> = fx.classes.iter().map(|row| row[0]).collect();
    let config = ExplainerConfig::new().with_layer(LAYER).with_method(method);
    let explainer = config.clone().init(&model).unwrap();
    let ours = arcc(
        &explainer,
        x.clone(),
        maps.clone(),
        &first,
        &RoadConfig::new(),
    )
    .unwrap();
    // The re-explained heatmaps against pgc's, within their own bound.
    let masked = x.clone() * maps.clone().unsqueeze_dim::<4>(1);
    let targets = Targets::one_per_image(first.clone());
    let (shape, raw64) = &fx.tensors["arcc/masked/raw64"];
    let oracle = Oracle {
        raw64,
        raw_shape: shape.as_slice().try_into().unwrap(),
        spread: &fx.tensors["arcc/masked/raw_spread"].1,
        pgc: &fx.tensors["arcc/masked/pgc"].1,
    };
    let again = host(explainer.explain(masked.clone(), &targets).unwrap().heatmap);
    if method == Method::GradCam {
        compare_with(&config, &model, masked, &targets, &oracle);
    }
    let theirs_heat = &fx.tensors["arcc/masked/pgc"].1;
    let scale = largest(&host(model.forward(x.clone())));
    let l1 = fx.tensors["road/gradient_l1"].1[0] as f64;
    let road_bound =
        2.0 * (4.0 * ((2.0 * DELTA * scale).exp() - 1.0) + 2.0 * l1 * imputation_bound(&host(x)));
    let u = f32::EPSILON as f64 / 2.0;
    let p = theirs_heat.len() / first.len();
    let part = |key: &str| fx.tensors[&format!("arcc/{key}")].1.clone();
    let (coherency, complexity, road, score) = (
        part("coherency"),
        part("complexity"),
        part("road"),
        part("arcc"),
    );
    let mut worst = 0.0f64;
    for (i, got) in ours.iter().enumerate() {
        let at = i * p..(i + 1) * p;
        let e = apart(&again[at.clone()], &theirs_heat[at.clone()]);
        let centred = {
            let map = &theirs_heat[at];
            let mean = map.iter().map(|v| *v as f64).sum::<f64>() / p as f64;
            map.iter()
                .map(|v| (*v as f64 - mean).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let room = centred - e * (p as f64).sqrt();
        assert!(
            room > 0.0,
            "image {i}: the heatmaps differ by more than their spread"
        );
        let coherency_bound = e * (p as f64).sqrt() / room + 4.0 * p as f64 * u;
        let bounds = [coherency_bound, 2.0 * p as f64 * u, road_bound];
        let parts = [
            (got.coherency, coherency[i]),
            (got.complexity, complexity[i]),
            (got.road, road[i]),
        ];
        for ((name, (o, t)), bound) in ["coherency", "complexity", "road"]
            .iter()
            .zip(parts)
            .zip(bounds)
        {
            let difference = (o - t).abs() as f64;
            assert!(
                difference <= bound,
                "image {i}: {name} {o} against pytorch-grad-cam's {t} (bound {bound:.2e})"
            );
            worst = worst.max(difference / bound);
        }
        // ARCC over the parts' intervals (each part's reciprocal is monotone), widened by 1e-6
        // relative: the float32 rounding of either side's harmonic mean and of its result (a
        // few roundings of u = 6e-8 each).
        let interval =
            |v: f32, b: f64, lo: f64, hi: f64| ((v as f64 - b).max(lo), (v as f64 + b).min(hi));
        let (c_lo, c_hi) = interval(got.coherency, bounds[0], 0.0, 1.0);
        let (x_lo, x_hi) = interval(got.complexity, bounds[1], 0.0, 1.0);
        let (r_lo, r_hi) = interval(got.road, bounds[2], 0.0, 1.0);
        let harmonic =
            |c: f64, s: f64, r: f64| 3.0 / (1.0 / (c + 1e-8) + 1.0 / (s + 1e-8) + 1.0 / (r + 1e-8));
        let (lo, hi) = (
            harmonic(c_lo, 1.0 - x_hi, r_lo),
            harmonic(c_hi, 1.0 - x_lo, r_hi),
        );
        let t = score[i] as f64;
        assert!(
            (lo * (1.0 - 1e-6)..=hi * (1.0 + 1e-6)).contains(&t),
            "image {i}: ARCC {} against pytorch-grad-cam's {t}, outside [{lo:.3e}, {hi:.3e}]",
            got.arcc
        );
        assert!((lo * (1.0 - 1e-6)..=hi * (1.0 + 1e-6)).contains(&(got.arcc as f64)));
    }
    worst
}

#[test]
fn arcc_matches_pytorch_grad_cam() {
    let worst = arcc_case(&oracle(), Method::GradCam);
    eprintln!("arcc: worst part / bound {worst:.1e}");
}

#[test]
fn another_method_fails_the_arcc_oracle() {
    // LayerCAM re-explains the masked photos differently: its Coherency is not pgc's
    // Grad-CAM one.
    let fx = oracle();
    let wrong = std::panic::catch_unwind(|| arcc_case(&fx, Method::LayerCam));
    assert!(wrong.is_err(), "LayerCAM's coherency passed Grad-CAM's");
}

/// Deep Feature Factorization of the activations pytorch-grad-cam factorised (`dff/a32`)
/// against its `DeepFeatureFactorization` run from our seeded start (the fixture passes it in):
/// the sweeps, and the largest difference of the concepts, of the layer maps and of the heatmaps
/// over their bounds.
///
/// Bound: both sides run the same float64 sweeps on the same `X` from the same start; they differ
/// only in the summation order of the two products each sweep forms (`1e-16` relative), which the
/// 200 sweeps here grow to 1.2e-14 of the factors' scale (a NumPy copy of our loop against
/// scikit-learn, run on the fixture), so `1e-12` of the scale covers it with 100x to spare; plus
/// one float32 rounding of each side's output (`2^-24` of each value). Heatmaps: `pgc.rs`'s
/// propagation of the layer maps' difference.
fn dff_case(fx: &Fixture, config: &FactorizationConfig) -> (usize, f64, f64, f64) {
    let device = Device::flex();
    let (shape, a32) = &fx.tensors["dff/a32"];
    let activations = Tensor::<4>::from_data(TensorData::new(a32.clone(), shape.clone()), &device);
    let ours = config.factorize(activations).unwrap();
    let within = |key: &str, values: &[f32]| {
        let theirs = &fx.tensors[key].1;
        let scale = largest(theirs);
        values
            .iter()
            .zip(theirs)
            .map(|(a, b)| {
                let bound = 1e-12 * scale + 2.0 * f64::from(b.abs()) * 2f64.powi(-24);
                (a - b).abs() as f64 / bound
            })
            .fold(0.0, f64::max)
    };
    let concepts = within("dff/concepts", &host(ours.concepts.clone()));
    let layer_maps = host(ours.layer_maps.clone());
    let maps_ratio = within("dff/layer_maps", &layer_maps);
    let (shape, theirs) = &fx.tensors["dff/layer_maps"];
    let [n, k, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let (_, pgc) = &fx.tensors["dff/maps"];
    let height = ((pgc.len() / (n * k)) as f64).sqrt() as usize;
    let heat = host(ours.maps([height, height]));
    let mut heat_ratio = 0.0f64;
    for map in 0..n * k {
        let small = map * h * w..(map + 1) * h * w;
        let e = apart(&layer_maps[small.clone()], &theirs[small.clone()]);
        let e = e.max(2f64.powi(-24) * largest(&theirs[small.clone()]));
        let bound = heatmap_bound(&theirs[small], e, h, height);
        let big = map * height * height..(map + 1) * height * height;
        heat_ratio = heat_ratio.max(apart(&heat[big.clone()], &pgc[big]) / bound);
    }
    eprintln!(
        "dff: {} sweeps; concepts {concepts:.2e}, layer maps {maps_ratio:.2e}, heatmaps \
         {heat_ratio:.2e} of their bounds",
        ours.iterations
    );
    (ours.iterations, concepts, maps_ratio, heat_ratio)
}

#[test]
fn deep_feature_factorization_matches_pytorch_grad_cam_from_the_same_start() {
    let fx = oracle();
    let (sweeps, concepts, layer_maps, heatmaps) = dff_case(&fx, &FactorizationConfig::new(4));
    assert_eq!(sweeps, fx.tensors["dff/iterations"].1[0] as usize);
    assert!(concepts <= 1.0, "concepts {concepts:.2e} of the bound");
    assert!(
        layer_maps <= 1.0,
        "layer maps {layer_maps:.2e} of the bound"
    );
    assert!(heatmaps <= 1.0, "heatmaps {heatmaps:.2e} of the bound");
    // pgc's own dtype: scikit-learn's float32 solver from the same start ends this far from the
    // float64 factors (not compared: float32 sweeps have no bound we can state).
    let gap = &fx.tensors["dff/float32"].1;
    eprintln!(
        "dff: scikit-learn in float32 ({} sweeps) is {:.1e} (W), {:.1e} (H) away",
        gap[0], gap[1], gap[2]
    );
}

#[test]
fn another_start_or_one_sweep_less_fails_the_dff_oracle() {
    let fx = oracle();
    let sweeps = fx.tensors["dff/iterations"].1[0] as usize;
    for wrong in [
        FactorizationConfig::new(4).with_seed(1),
        FactorizationConfig::new(4).with_max_iterations(sweeps - 1),
    ] {
        let (_, concepts, layer_maps, _) = dff_case(&fx, &wrong);
        assert!(concepts > 1.0 && layer_maps > 1.0, "{wrong:?} passed");
    }
}

#[test]
fn the_explainer_factorizes_its_layer_of_the_network() {
    // End to end from the photos: the explainer factorises what it captures at the layer, which
    // is pgc's float32 activation within DELTA of its scale (pgc.rs's bound on a layer of this
    // network). Non-negative factorisations are not unique and their sweeps not contractive, so
    // the factors of activations that differ by rounding are not compared with pgc's (those of
    // the same activations are, above): here the plumbing is, bit for bit.
    let device = Device::flex();
    let fx = oracle();
    let explainer = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(Method::EigenCam)
        .init(&model(&device))
        .unwrap();
    let x = input(&fx, &device);
    let captured = explainer.capture(x.clone(), &Targets::top(1)).unwrap();
    let activations = captured.layers[0].activations.clone();
    let (_, a32) = &fx.tensors["dff/a32"];
    let ours = host(activations.clone());
    let difference = apart(&ours, a32);
    assert!(
        difference <= DELTA * largest(a32),
        "activations {difference:.2e} apart"
    );
    let config = FactorizationConfig::new(4);
    let factorized = explainer.factorize(x, &config).unwrap();
    let direct = config.factorize(activations).unwrap();
    assert_eq!(host(factorized.concepts), host(direct.concepts.clone()));
    assert_eq!(host(factorized.layer_maps), host(direct.layer_maps));
    let pgc = &fx.tensors["dff/concepts"].1;
    eprintln!(
        "dff on our network's activations ({difference:.1e} from pgc's): concepts {:.1e} of the \
         scale from pgc's",
        apart(&host(direct.concepts), pgc) / largest(pgc)
    );
}

#[test]
fn a_factorization_of_several_layers_or_no_concept_is_refused() {
    let device = Device::flex();
    let fx = oracle();
    let several = ExplainerConfig::new()
        .with_layers([LAYER, "head"])
        .init(&model(&device))
        .unwrap();
    let err = several
        .factorize(input(&fx, &device), &FactorizationConfig::new(4))
        .unwrap_err();
    assert!(err.to_string().contains("with_layer"), "{err}");
    let one = ExplainerConfig::new()
        .with_layer(LAYER)
        .init(&model(&device))
        .unwrap();
    for config in [
        FactorizationConfig::new(0),
        FactorizationConfig::new(4).with_max_iterations(0),
    ] {
        let err = one.factorize(input(&fx, &device), &config).unwrap_err();
        assert!(
            matches!(err, GradCamError::Input(InputError::Argument { .. })),
            "{err}"
        );
    }
    let nan = Tensor::<4>::full([1, 8, 4, 4], f32::NAN, &device);
    let err = FactorizationConfig::new(2).factorize(nan).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
}

/// ShapleyCAM with `method` and each image's first class through `target` against pgc's
/// `ShapleyCAM` with its ReST score (`ClassifierOutputReST`), which takes the Hessian-vector
/// product by a double backward: the channel weights against those of the float64 network, and
/// the heatmaps against pgc's float32 ones. Returns the worst weight difference over its bound
/// and the worst heatmap difference over its own.
///
/// Bound, per weight: our float32 `G` and `H A` each lie within `DELTA` of the float64 ones'
/// largest value (pgc.rs's bound on this network's derivatives), and their pixel means with
/// them, so `DELTA (max|G| + max|H A| / 2)`; the five-point difference adds below `2e-5` of
/// `max|H A|` (rounding, see `Rerun::hessian_products`), inside `DELTA`. Heatmaps: pgc.rs's
/// propagation of the raw maps' difference (at least `DELTA` of their scale).
fn shapley_case(fx: &Fixture, method: Method, target: impl Fn(usize) -> Target) -> (f64, f64) {
    let device = Device::flex();
    let targets = Targets::one_per_image(fx.classes.iter().map(|row| target(row[0])));
    let explanation = ExplainerConfig::new()
        .with_layer(LAYER)
        .with_method(method)
        .init(&model(&device))
        .unwrap()
        .explain(input(fx, &device), &targets)
        .unwrap();
    let weights = host(explanation.layers[0].weights.clone().unwrap()); // [2, 1, 8]
    let raw = host(explanation.layers[0].raw.clone()); // [2, 1, 32, 32]
    let heat = host(explanation.heatmap); // [2, 1, 64, 64]
    let (_, w64) = &fx.tensors["shapley/w64"];
    let (shape, raw64) = &fx.tensors["shapley/raw64"];
    let (_, pgc) = &fx.tensors["shapley/pgc"];
    let (_, scale) = &fx.tensors["shapley/scale"];
    let [n, _, h, w]: [usize; 4] = shape.as_slice().try_into().unwrap();
    let k = w64.len() / n;
    let size = pgc.len() / n;
    let height = (size as f64).sqrt() as usize;
    let (mut weight_ratio, mut heat_ratio) = (0.0f64, 0.0f64);
    for image in 0..n {
        let [g_max, hvp_max, _] = [0, 1, 2].map(|j| f64::from(scale[image * 3 + j]));
        let bound = DELTA * (g_max + hvp_max / 2.0);
        let ours = &weights[image * k..(image + 1) * k];
        weight_ratio = weight_ratio.max(apart(ours, &w64[image * k..(image + 1) * k]) / bound);
        let small = image * h * w..(image + 1) * h * w;
        let e = apart(&raw[small.clone()], &raw64[small.clone()])
            .max(DELTA * largest(&raw64[small.clone()]));
        let bound = heatmap_bound(&raw64[small], e, h, height);
        let big = image * size..(image + 1) * size;
        heat_ratio = heat_ratio.max(apart(&heat[big.clone()], &pgc[big]) / bound);
    }
    eprintln!("{method}: weights {weight_ratio:.2e}, heatmaps {heat_ratio:.2e} of their bounds");
    (weight_ratio, heat_ratio)
}

#[test]
fn shapley_cam_matches_pytorch_grad_cams_double_backward() {
    let fx = oracle();
    let (weights, heatmaps) = shapley_case(&fx, Method::ShapleyCam, Target::rest);
    assert!(weights <= 1.0, "weights {weights:.2e} of the bound");
    assert!(heatmaps <= 1.0, "heatmaps {heatmaps:.2e} of the bound");
    // The second-order term matters here: Grad-CAM's weights for the same score are this far.
    let (_, w64) = &fx.tensors["shapley/w64"];
    let (_, g64) = &fx.tensors["shapley/g64"];
    eprintln!(
        "shapley-cam: |H A| / 2 moves the weights by {:.1e} of their scale",
        apart(w64, g64) / largest(w64)
    );
}

#[test]
fn grad_cam_or_a_logit_target_fails_the_shapley_cam_oracle() {
    // Without the Hessian term (Grad-CAM, the same score), or with a logit (no curvature).
    let fx = oracle();
    let (without, _) = shapley_case(&fx, Method::GradCam, Target::rest);
    assert!(without > 1.0, "Grad-CAM passed ({without:.2e})");
    let (logit, _) = shapley_case(&fx, Method::ShapleyCam, Target::Class);
    assert!(logit > 1.0, "a logit target passed ({logit:.2e})");
}

/// The generated network without its declarations of affine heads.
#[derive(burn::module::Module, Debug)]
struct Undeclared {
    inner: tiny_residual::Model,
}

impl GradCam for Undeclared {
    fn layers(&self) -> Vec<String> {
        self.inner.layers()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut gradcam::Probe<'_>) -> Tensor<2> {
        self.inner.forward_probed(x, probe)
    }
}

#[test]
fn the_generated_model_declares_the_layers_its_logits_are_affine_in() {
    // `head` (a ReLU) is followed by a global average pool and `fc`; `block.relu_a` by
    // convolutions and ReLUs.
    let device = Device::flex();
    let net = model(&device);
    assert!(net.affine_after("head") && net.affine_after("/head/head.1/Relu"));
    assert!(!net.affine_after(LAYER) && !net.affine_after("stem"));
    // ShapleyCAM's J A from two forwards there (the declaration) and from one backward row per
    // class (without it) give the same weights: both exact but for float32 rounding of the
    // pool's and fc's 16-term sums, far below 1e-4 of the weights' scale.
    let fx = oracle();
    let weights = |net: &dyn Fn(ExplainerConfig) -> gradcam::Explanation| -> Vec<f32> {
        let config = ExplainerConfig::new()
            .with_layer("head")
            .with_method(Method::ShapleyCam);
        host(net(config).layers[0].weights.clone().unwrap())
    };
    let targets = Targets::one_per_image(fx.classes.iter().map(|row| Target::rest(row[0])));
    let x = input(&fx, &device);
    let declared = weights(&|c| c.init(&net).unwrap().explain(x.clone(), &targets).unwrap());
    let plain = Undeclared { inner: net.clone() };
    let rows = weights(&|c| {
        c.init(&plain)
            .unwrap()
            .explain(x.clone(), &targets)
            .unwrap()
    });
    let scale = largest(&rows);
    assert!(apart(&declared, &rows) <= 1e-4 * scale);
}
