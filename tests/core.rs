//! The core's behaviour, proved with numbers: every method against its formula on every backend,
//! finite differences, ReLU, batch invariance, layers, targets, and the networks of two backends
//! against each other.
//!
//! Every tolerance is an enclosure from `common` (float32 rounding bounds, one sentence each,
//! stated there); for whole networks it is the *absolute twin* bound below.
#![cfg(feature = "flex")]

mod common;

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};
use common::methods as formula;
use common::models::{
    GapLinear, TinyNet, abs_conv, abs_linear, assert_no_kink, conv, convolutional, linear,
};
#[cfg(feature = "wgpu")]
use common::wgpu_device;
use common::{Iv, U, assert_inside, gamma, host, max_abs_diff, tensor};
use gradcam::methods::{Method, RandomCam, SsCam};
use gradcam::{
    ExplainerConfig, Explanation, FactorizationConfig, Fusion, GradCam, Normalization, Probe,
    Target, Targets,
};

// ---------------------------------------------------------------------------------------------
// Models.

/// The input is the explained layer; a quadratic head follows (conv, square, conv, GAP,
/// linear), so that a central difference of its score is exact but for rounding.
#[derive(Module, Debug)]
struct QuadHead {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

impl GradCam for QuadHead {
    fn layers(&self) -> Vec<String> {
        vec!["input".into()]
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("input", x); // [n, 4, h, w]
        let x = self.conv1.forward(x).powi_scalar(2); // [n, 6, h, w]
        let x = self.conv2.forward(x); // [n, 5, h, w]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, 3]
    }
}

// ---------------------------------------------------------------------------------------------
// Every method against its formula, on every backend.

/// Explain `model` with `method`, ReLU off and no normalisation: the signed maps and weights.
fn signed<M: GradCam>(model: &M, method: Method, x: Tensor<4>, targets: &Targets) -> Explanation {
    ExplainerConfig::new()
        .with_method(method)
        .with_relu(false)
        .with_normalization(Normalization::Off)
        .init(model)
        .unwrap()
        .explain(x, targets)
        .unwrap()
}

/// On `GapLinear` every quantity has a closed form: `y_c = sum_k W_kc mean_p A_kp + b_c`, so
/// `dy_c/dA_kp = W_kc / (h w)`, the ablated score drops `W_kc mean_p A_kp`, and a masked input
/// scores `sum_j W_jc mean_p(A_jp M_kp) + b_c`. Each method's map must lie in the enclosure of
/// its formula ([`common::methods`]), on each backend.
fn every_method_matches_its_formula(device: &Device) {
    let [n, k, h, w, classes] = [2, 5, 4, 6, 3];
    let p = h * w;
    let model = GapLinear {
        fc: linear(31, [k, classes], device),
    };
    let x = tensor(32, [n, k, h, w], 2.0, device) + 1.5;
    let chosen = [0usize, 2];
    let xs = host(x.clone());
    let wt = host(model.fc.weight.val()); // [k, classes]
    let bias = host(model.fc.bias.as_ref().unwrap().val());
    let ex = |v: f32| Iv::exact(v as f64);
    for method in convolutional() {
        let e = signed(&model, method, x.clone(), &Targets::every_image(chosen));
        let raw = host(e.layers[0].raw.clone()); // [n, m, h, w]
        for i in 0..n {
            let a: Vec<Iv> = xs[i * k * p..(i + 1) * k * p]
                .iter()
                .map(|v| ex(*v))
                .collect();
            // The uncentred scores and the mean activations, for Score- and Ablation-CAM.
            let means: Vec<Iv> = (0..k).map(|c| Iv::mean(&a[c * p..(c + 1) * p])).collect();
            let logit = |c: usize, means: &[Iv]| {
                Iv::sum((0..k).map(|j| ex(wt[j * classes + c]).mul(means[j]))).add(ex(bias[c]))
            };
            for (j, &c) in chosen.iter().enumerate() {
                let g: Vec<Iv> = (0..k * p)
                    .map(|q| ex(wt[(q / p) * classes + c]).scale(1.0 / p as f64).round(U))
                    .collect();
                // The masked input's channel means for Score-CAM's mask `m` (plus SS-CAM's
                // noise, times its std 2, at each pixel).
                let masked = |m: usize, noise: Option<&[f32]>| -> Vec<Iv> {
                    let mk = &a[m * p..(m + 1) * p];
                    let (lo, hi) = (Iv::min(mk), Iv::max(mk));
                    let range = hi.sub(lo).add_const(1e-8);
                    (0..k)
                        .map(|jj| {
                            let terms: Vec<Iv> = (0..p)
                                .map(|q| {
                                    let mask = mk[q].sub(lo).div(range).round(4.0 * U);
                                    let mask = match noise {
                                        Some(d) => mask.add(ex(d[q] * 2.0)).round(U),
                                        None => mask,
                                    };
                                    a[jj * p + q].mul(mask)
                                })
                                .collect();
                            Iv::mean(&terms)
                        })
                        .collect()
                };
                let expected = match method {
                    Method::GradCam => formula::grad_cam(&a, &g, k).1,
                    Method::GradCamPlusPlus => formula::grad_cam_plus_plus(&a, &g, k).1,
                    Method::XGradCam => formula::xgrad_cam(&a, &g, k).1,
                    Method::HiResCam => formula::hires_cam(&a, &g, k),
                    Method::ElementWiseGradCam => formula::element_wise_grad_cam(&a, &g, k),
                    Method::LayerCam => formula::layer_cam(&a, &g, k),
                    Method::ScoreCam => {
                        let scores: Vec<Iv> = (0..k).map(|m| logit(c, &masked(m, None))).collect();
                        formula::score_cam(&a, &scores, k).1
                    }
                    Method::IsCam => {
                        // The layer is the input: the masks need no upsampling, and on this
                        // linear model each scaled mask scores c_s T_k + b (T_k: the logit of
                        // the masked input without its bias); their mean over the path,
                        // c_s = s (s + 1) / 20, s = 1..10, each point rounded in float32.
                        let b = ex(bias[c]);
                        let scores: Vec<Iv> = (0..k)
                            .map(|m| {
                                let t = logit(c, &masked(m, None)).sub(b);
                                let path: Vec<Iv> = (1..=10)
                                    .map(|s| {
                                        let c_s = (s * (s + 1)) as f64 / 20.0;
                                        t.scale(c_s).round(2.0 * U).add(b).round(2.0 * U)
                                    })
                                    .collect();
                                Iv::mean(&path)
                            })
                            .collect();
                        formula::score_cam(&a, &scores, k).1
                    }
                    Method::SsCam => {
                        // Each of the 35 draws adds the method's own noise (seed 0, std 2) to
                        // the masks; the scores' mean over the draws.
                        let ss = SsCam::new();
                        let draws: Vec<Vec<f32>> = (0..35)
                            .map(|s| ss.noise(i, s).take(k * p).collect())
                            .collect();
                        let scores: Vec<Iv> = (0..k)
                            .map(|m| {
                                let path: Vec<Iv> = draws
                                    .iter()
                                    .map(|d| logit(c, &masked(m, Some(&d[m * p..(m + 1) * p]))))
                                    .collect();
                                Iv::mean(&path)
                            })
                            .collect();
                        formula::score_cam(&a, &scores, k).1
                    }
                    Method::AblationCam => {
                        let y = logit(c, &means);
                        let ablated: Vec<Iv> = (0..k)
                            .map(|m| {
                                let mut zeroed = means.clone();
                                zeroed[m] = Iv::exact(0.0);
                                logit(c, &zeroed)
                            })
                            .collect();
                        formula::ablation_cam(&a, y, &ablated, k).1
                    }
                    Method::Fem => formula::fem(&a, k).1,
                    Method::RandomCam => {
                        let w = RandomCam::new().weights(n, chosen.len(), k);
                        let w = &w[(i * chosen.len() + j) * k..][..k];
                        formula::weighted(&a, &w.iter().map(|v| ex(*v)).collect::<Vec<_>>(), k)
                    }
                    Method::EigenCam | Method::EigenGradCam | Method::SegEigenCam => {
                        let input: Vec<f64> = match method {
                            Method::EigenCam => a.iter().map(|v| v.mid()).collect(),
                            Method::EigenGradCam => {
                                a.iter().zip(&g).map(|(a, g)| a.mid() * g.mid()).collect()
                            }
                            _ => a
                                .iter()
                                .zip(&g)
                                .map(|(a, g)| a.mid() * g.mid().abs())
                                .collect(),
                        };
                        eigen_enclosure(&input, k, p, method == Method::SegEigenCam)
                    }
                    Method::KpcaCam => {
                        let input: Vec<f64> = a.iter().map(|v| v.mid()).collect();
                        kpca_enclosure(&input, k, p)
                    }
                    // The zero bias GapLinear routes has a gradient constant over each
                    // channel: its normalised term is 0, and the input term is the map.
                    Method::FullGrad => formula::full_grad_input(&a, &g, k),
                    // Every noisy draw has the same gradient through the linear head.
                    Method::SmoothGradCamPlusPlus => formula::smoothgrad_cam_pp(&a, &g, k).1,
                    // A class target is linear in the logits (its Hessian is 0, and so is every
                    // H A through this linear head): Grad-CAM's weights. The ReST score's
                    // curvature is checked below.
                    Method::ShapleyCam => formula::grad_cam(&a, &g, k).1,
                    _ => unreachable!("a method without a closed form here"),
                };
                let got: Vec<f32> = (0..p).map(|q| raw[(i * 2 + j) * p + q]).collect();
                let scale = expected.iter().map(|e| e.mag()).fold(0.0, f64::max);
                assert_inside(
                    &format!("{method} on {device:?}, image {i} class {c}"),
                    &got,
                    &expected,
                    1e-3 * scale,
                );
            }
        }
    }
}

/// The centred first-principal-component projection of a `[k][p]` map, from an `f64` SVD, with
/// the sign rule of `gradcam::methods::first_component_projection`; our implementation works in
/// `f64` and rounds once to float32, so each value is within `4 u |max|` (rounding of the input
/// product, and of the output). `larger_extreme`: Seg-Eigen-CAM's sign rule instead (the larger
/// of `|max|` and `|min|` positive).
fn eigen_enclosure(input: &[f64], k: usize, p: usize, larger_extreme: bool) -> Vec<Iv> {
    let (x, sums) = centred(input, k, p);
    let v_t = x.clone().svd(false, true).v_t.unwrap();
    let proj = &x * v_t.row(0).transpose();
    let flip = if larger_extreme {
        proj.max().abs() < proj.min().abs()
    } else {
        proj.iter().zip(&sums).map(|(a, b)| a * b).sum::<f64>() < 0.0
    };
    enclose(proj, flip)
}

/// KPCA-CAM's map of a `[k][p]` map with the sigmoid kernel (`gamma = 1 / k`, `coef0 = 1`), the
/// double-centred kernel's first eigenvector times `sqrt(lambda_1)`, largest entry positive;
/// in `f64` as ours, so within `4 u |max|` of it (the rounding of the output, and margin).
fn kpca_enclosure(input: &[f64], k: usize, p: usize) -> Vec<Iv> {
    let (x, _) = centred(input, k, p);
    let kernel = (&x * x.transpose()).map(|d| (d / k as f64 + 1.0).tanh());
    let centring = nalgebra::DMatrix::<f64>::identity(p, p)
        - nalgebra::DMatrix::<f64>::from_element(p, p, 1.0 / p as f64);
    let eigen = nalgebra::SymmetricEigen::new(&centring * kernel * &centring);
    let top = eigen.eigenvalues.imax();
    let proj = eigen.eigenvectors.column(top) * eigen.eigenvalues[top].max(0.0).sqrt();
    let flip = proj.max().abs() < proj.min().abs();
    enclose(proj, flip)
}

/// A `[k][p]` map as the `p x k` matrix with centred columns, and each pixel's uncentred sum.
fn centred(input: &[f64], k: usize, p: usize) -> (nalgebra::DMatrix<f64>, Vec<f64>) {
    let mut x = nalgebra::DMatrix::<f64>::from_fn(p, k, |i, c| input[c * p + i]);
    let sums: Vec<f64> = (0..p).map(|i| x.row(i).sum()).collect();
    for mut column in x.column_iter_mut() {
        let mean = column.mean();
        column.add_scalar_mut(-mean);
    }
    (x, sums)
}

/// A projection computed in `f64` (flipped if `flip`), each value within `4 u |max|`.
fn enclose(mut proj: nalgebra::DVector<f64>, flip: bool) -> Vec<Iv> {
    if flip {
        proj.neg_mut();
    }
    let peak = proj.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    proj.iter()
        .map(|v| Iv::around(*v, 4.0 * U * peak))
        .collect()
}

#[test]
fn every_method_matches_its_formula_on_flex() {
    every_method_matches_its_formula(&Device::flex());
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
fn every_method_matches_its_formula_on_ndarray() {
    every_method_matches_its_formula(&Device::ndarray());
}

/// ShapleyCAM with the ReST score on `GapLinear`, where everything has a closed form: with
/// `P = h w`, `m_j = mean_p A_j`, `z = W^T m + b` and `p = softmax(z)`, the score
/// `2 z_c - log sum exp z` has `G_kp = (2 W_kc - sum_j p_j W_kj) / P`, `J A = z - b`,
/// `S = -(diag p - p p^T)` and `(H A)_kp = sum_j W_kj (S (J A))_j / P`, so
/// `w_k = mean_p (G - H A / 2)`, computed here in f64 from the float32 inputs. Bound: float32
/// rounding of the forward and the gradients, `1e-5` of the weights' scale (as this file's other
/// closed forms), plus the five-point difference's float32 rounding in `S (J A)`: three
/// roundings of gradients at most 2, times `18 / 12h` with `h = 2^-5 / max|J A|`, so
/// `2^-24 * 6 * 48 max|J A| < 2e-5 max|J A|`, through `max_k sum_j |W_kj| / P`. Grad-CAM's weights
/// (the same without `H A`) must fall outside it.
///
/// `GapLinear` declares its head affine (`J A` from two forwards), `Undeclared` is the same
/// network without the declaration (`J A` from one backward row per class): both must match.
fn shapley_cam_with_rest(device: &Device) {
    let [k, classes] = [5, 7];
    let model = GapLinear {
        fc: linear(41, [k, classes], device),
    };
    shapley_cam_with_rest_on(&model, &model, device);
    let undeclared = Undeclared {
        inner: model.clone(),
    };
    shapley_cam_with_rest_on(&undeclared, &model, device);
}

/// ShapleyCAM's weights with the ReST score on `net`, the network `model` computes, against
/// their closed form (see [`shapley_cam_with_rest`]).
fn shapley_cam_with_rest_on<M: GradCam>(net: &M, model: &GapLinear, device: &Device) {
    let [n, h, w, chosen] = [2, 4, 6, 3];
    let [k, classes] = model.fc.weight.dims();
    let p = h * w;
    let x = tensor(42, [n, k, h, w], 2.0, device) + 1.5;
    let xs = host(x.clone());
    let wt: Vec<f64> = host(model.fc.weight.val())
        .iter()
        .map(|v| *v as f64)
        .collect(); // [k, classes]
    let bias: Vec<f64> = host(model.fc.bias.as_ref().unwrap().val())
        .iter()
        .map(|v| *v as f64)
        .collect();
    let explanation = ExplainerConfig::new()
        .with_method(Method::ShapleyCam)
        .with_relu(false)
        .with_normalization(Normalization::Off)
        .init(net)
        .unwrap()
        .explain(x, &Targets::every_image([Target::rest(chosen)]))
        .unwrap();
    let got = host(explanation.layers[0].weights.clone().unwrap()); // [n, 1, k]
    for i in 0..n {
        let means: Vec<f64> = (0..k)
            .map(|j| {
                xs[(i * k + j) * p..][..p]
                    .iter()
                    .map(|v| *v as f64)
                    .sum::<f64>()
                    / p as f64
            })
            .collect();
        let z: Vec<f64> = (0..classes)
            .map(|c| (0..k).map(|j| wt[j * classes + c] * means[j]).sum::<f64>() + bias[c])
            .collect();
        let top = z.iter().cloned().fold(f64::MIN, f64::max);
        let total: f64 = z.iter().map(|z| (z - top).exp()).sum();
        let prob: Vec<f64> = z.iter().map(|z| (z - top).exp() / total).collect();
        let v: Vec<f64> = z.iter().zip(&bias).map(|(z, b)| z - b).collect(); // J A
        let pv: f64 = prob.iter().zip(&v).map(|(p, v)| p * v).sum();
        let u: Vec<f64> = (0..classes).map(|j| -prob[j] * (v[j] - pv)).collect(); // S (J A)
        let row = |kk: usize| &wt[kk * classes..(kk + 1) * classes];
        let grad_cam: Vec<f64> = (0..k)
            .map(|kk| {
                let pw: f64 = prob.iter().zip(row(kk)).map(|(p, w)| p * w).sum();
                (2.0 * row(kk)[chosen] - pw) / p as f64
            })
            .collect();
        let expected: Vec<f64> = (0..k)
            .map(|kk| {
                let ha: f64 = u.iter().zip(row(kk)).map(|(u, w)| u * w).sum::<f64>() / p as f64;
                grad_cam[kk] - ha / 2.0
            })
            .collect();
        let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let w_sum = (0..k)
            .map(|kk| row(kk).iter().map(|w| w.abs()).sum::<f64>())
            .fold(0.0, f64::max);
        let largest_v = v.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let bound = 1e-5 * scale + 2e-5 * largest_v * w_sum / p as f64;
        let ours = &got[i * k..(i + 1) * k];
        let apart = |a: &[f64]| {
            a.iter()
                .zip(ours)
                .fold(0.0f64, |m, (e, g)| m.max((e - *g as f64).abs()))
        };
        let error = apart(&expected);
        assert!(
            error <= bound,
            "ShapleyCAM on {device:?}, image {i}: {error:.2e} over {bound:.2e}"
        );
        let wrong = apart(&grad_cam);
        assert!(
            wrong > bound,
            "Grad-CAM's weights passed ShapleyCAM's bound ({wrong:.2e} <= {bound:.2e})"
        );
    }
}

/// `GapLinear` without its declaration that the head is affine.
#[derive(Module, Debug)]
struct Undeclared {
    inner: GapLinear,
}

impl GradCam for Undeclared {
    fn layers(&self) -> Vec<String> {
        self.inner.layers()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        self.inner.forward_probed(x, probe)
    }
}

/// `QuadHead` (a square after the layer) declared affine, wrongly.
#[derive(Module, Debug)]
struct FalselyAffine {
    inner: QuadHead,
}

impl GradCam for FalselyAffine {
    fn layers(&self) -> Vec<String> {
        self.inner.layers()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        self.inner.forward_probed(x, probe)
    }

    fn affine_after(&self, _: &str) -> bool {
        true
    }
}

/// ShapleyCAM's channel weights for the ReST score of class 1.
fn rest_weights<M: GradCam>(net: &M, x: Tensor<4>) -> Vec<f32> {
    let explanation = ExplainerConfig::new()
        .with_method(Method::ShapleyCam)
        .init(net)
        .unwrap()
        .explain(x, &Targets::every_image([Target::rest(1)]))
        .unwrap();
    host(explanation.layers[0].weights.clone().unwrap())
}

#[test]
fn a_head_wrongly_declared_affine_gets_the_rows_per_class() {
    // The second difference of QuadHead's logits along the layer is far from 0: the declaration
    // is not taken, and ShapleyCAM's weights are the undeclared network's, value for value.
    let device = Device::flex();
    let model = QuadHead {
        conv1: conv(51, [4, 6], 3, 1, &device),
        conv2: conv(52, [6, 5], 3, 1, &device),
        fc: linear(53, [5, 3], &device),
    };
    let x = tensor(54, [2, 4, 7, 7], 1.0, &device);
    let plain = rest_weights(&model, x.clone());
    let declared = rest_weights(
        &FalselyAffine {
            inner: model.clone(),
        },
        x,
    );
    assert_eq!(plain, declared);
}

#[test]
fn shapley_cam_with_rest_matches_its_closed_form_on_flex_and_ndarray() {
    shapley_cam_with_rest(&Device::flex());
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    shapley_cam_with_rest(&Device::ndarray());
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
fn wgpu_shapley_cam_with_rest_matches_its_closed_form() {
    shapley_cam_with_rest(&wgpu_device());
}

/// Deep Feature Factorization on a layer that is exactly `W H` with `W, H >= 0` (`[k, 2]` and
/// `[2, n h w]`, one pixel where every channel is 0, so nothing is shifted): the explainer
/// reads the layer back on `device` and factorises it on the host, so every backend gives the
/// factors of the same values bit for bit (`reference`: flex's), and two concepts rebuild the
/// layer. Bound: the residual of 3000 sweeps on this exactly factorisable matrix is the solver's,
/// below 1e-5 of its largest entry (the f32 outputs add `2^-24` of it), while one concept cannot
/// rebuild a rank-2 layer (checked).
fn factorization_on(
    device: &Device,
    reference: Option<(Vec<f32>, Vec<f32>)>,
) -> (Vec<f32>, Vec<f32>) {
    let [n, k, h, w] = [2, 5, 3, 4];
    let p = n * h * w;
    let wk: Vec<f32> = (0..k * 2).map(|i| ((i * 7) % 5) as f32 * 0.5).collect();
    let hp: Vec<f32> = (0..2 * p)
        .map(|i| {
            if i % p == 0 {
                0.0
            } else {
                ((i * 11) % 7) as f32 * 0.25
            }
        })
        .collect();
    // layer[image, channel, pixel] = sum_t W[channel, t] H[t, image * h w + pixel]
    let layer: Vec<f32> = (0..n * k * h * w)
        .map(|i| {
            let (image, channel, pixel) = (i / (k * h * w), i / (h * w) % k, i % (h * w));
            (0..2)
                .map(|t| wk[channel * 2 + t] * hp[t * p + image * h * w + pixel])
                .sum()
        })
        .collect();
    let model = GapLinear {
        fc: linear(31, [k, 3], device),
    };
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(layer.clone(), [n, k, h, w]), device);
    let config = FactorizationConfig::new(2)
        .with_max_iterations(3000)
        .with_tolerance(0.0);
    let f = explainer.factorize(x.clone(), &config).unwrap();
    let (concepts, maps) = (host(f.concepts.clone()), host(f.layer_maps.clone()));
    assert_eq!(f.iterations, 3000);
    let scale = layer.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    let rebuilt = |concepts: &[f32], maps: &[f32], r: usize| -> f64 {
        (0..n * k * h * w)
            .map(|i| {
                let (image, channel, pixel) = (i / (k * h * w), i / (h * w) % k, i % (h * w));
                let v: f64 = (0..r)
                    .map(|t| {
                        concepts[t * k + channel] as f64
                            * maps[(image * r + t) * h * w + pixel] as f64
                    })
                    .sum();
                (v - layer[i] as f64).abs()
            })
            .fold(0.0, f64::max)
    };
    let residual = rebuilt(&concepts, &maps, 2);
    assert!(
        residual <= 1e-5 * scale,
        "residual {residual:.2e} of {scale}"
    );
    let one = explainer
        .factorize(x, &FactorizationConfig::new(1).with_max_iterations(3000))
        .unwrap();
    let one_residual = rebuilt(&host(one.concepts), &host(one.layer_maps), 1);
    assert!(
        one_residual > 1e-2 * scale,
        "one concept rebuilt a rank-2 layer"
    );
    // The maps at the input's size are each in [0, 1].
    let shown = host(f.maps([6, 8]));
    assert!(shown.iter().all(|v| (0.0..=1.0).contains(v)));
    if let Some((c, m)) = reference {
        assert_eq!(
            (&c, &m),
            (&concepts, &maps),
            "another backend factorised other values"
        );
    }
    (concepts, maps)
}

#[test]
fn deep_feature_factorization_rebuilds_the_layer_on_flex_and_ndarray() {
    let reference = factorization_on(&Device::flex(), None);
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    factorization_on(&Device::ndarray(), Some(reference));
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
fn wgpu_deep_feature_factorization_equals_flexs() {
    let reference = factorization_on(&Device::flex(), None);
    factorization_on(&wgpu_device(), Some(reference));
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
fn wgpu_every_method_matches_its_formula() {
    every_method_matches_its_formula(&wgpu_device());
}

#[test]
fn a_deliberately_wrong_method_leaves_the_enclosure() {
    // Grad-CAM with the channel of largest |w_k| dropped: the check above must catch it.
    #[derive(Debug)]
    struct Dropped;
    impl gradcam::CamMethod for Dropped {
        fn name(&self) -> &'static str {
            "dropped"
        }
        fn compute(
            &self,
            layer: &gradcam::methods::LayerCapture,
            model: &dyn gradcam::methods::Rerun,
        ) -> gradcam::Result<gradcam::methods::CamMap> {
            let gradcam::methods::CamMap::Weights(w) =
                gradcam::methods::GradCam.compute(layer, model)?
            else {
                unreachable!()
            };
            let values = host(w.clone());
            let top = (0..values.len())
                .max_by(|a, b| values[*a].abs().total_cmp(&values[*b].abs()))
                .unwrap();
            let mut values = values;
            values[top] = 0.0;
            Ok(gradcam::methods::CamMap::Weights(Tensor::from_data(
                TensorData::new(values, w.dims()),
                &w.device(),
            )))
        }
    }
    let device = Device::flex();
    let [k, h, w] = [5, 4, 6];
    let model = GapLinear {
        fc: linear(31, [k, 3], &device),
    };
    let x = tensor(32, [1, k, h, w], 2.0, &device) + 0.5;
    let e = ExplainerConfig::new()
        .with_method(Dropped)
        .with_relu(false)
        .with_normalization(Normalization::Off)
        .init(&model)
        .unwrap()
        .explain(x.clone(), &Targets::class(0))
        .unwrap();
    let a: Vec<Iv> = host(x).iter().map(|v| Iv::exact(*v as f64)).collect();
    let wt = host(model.fc.weight.val());
    let g: Vec<Iv> = (0..k * h * w)
        .map(|q| Iv::exact(wt[(q / (h * w)) * 3] as f64).scale(1.0 / (h * w) as f64))
        .collect();
    let expected = formula::grad_cam(&a, &g, k).1;
    assert!(
        common::outside(&host(e.layers[0].raw.clone()), &expected).is_some(),
        "a map without its strongest channel passed the check"
    );
}

// ---------------------------------------------------------------------------------------------
// Gradients: finite differences.

#[test]
fn finite_differences_agree_with_the_captured_gradient() {
    let device = Device::flex();
    let model = QuadHead {
        conv1: conv(21, [4, 6], 3, 1, &device),
        conv2: conv(23, [6, 5], 3, 1, &device),
        fc: linear(25, [5, 3], &device),
    };
    let twin = QuadHead {
        conv1: abs_conv(&model.conv1),
        conv2: abs_conv(&model.conv2),
        fc: abs_linear(&model.fc),
    };
    let shape = [1, 4, 6, 5];
    let x = tensor(27, shape, 1.0, &device);
    let explainer = ExplainerConfig::new()
        .with_relu(false)
        .with_normalization(Normalization::Off)
        .init(&model)
        .unwrap();
    // The score is a quadratic function of x, so the central difference
    // (f(x + t e_k) - f(x - t e_k)) / 2t along a uniform shift e_k of channel k equals the
    // derivative exactly; what remains is float32 rounding: each score is within gamma_N of the
    // twin's score at |x| + t (N: the ops along a path, 37 + 2 + 55 + 30 + 6 + 4), so the
    // difference quotient is within 2 gamma_N f_twin / 2t, and alpha_k = that / 30.
    let n = 37 + 2 + 55 + 30 + 6 + 4;
    let t = 0.25f32;
    let score = |m: &QuadHead, x: Tensor<4>, class: usize| {
        host(m.forward_probed(x, &mut Probe::passthrough()))[class] as f64
    };
    for class in 0..3 {
        let explanation = explainer
            .explain(x.clone(), &Targets::class(class))
            .unwrap();
        let alpha = host(explanation.layers[0].weights.clone().unwrap()); // [k]
        let f_twin = score(&twin, x.clone().abs() + t, class);
        for k in 0..4 {
            let mut shift = vec![0.0f32; 4 * 30];
            shift[k * 30..(k + 1) * 30].fill(t);
            let shift = Tensor::<4>::from_data(TensorData::new(shift, shape), &device);
            let fd = (score(&model, x.clone() + shift.clone(), class)
                - score(&model, x.clone() - shift, class))
                / (2.0 * t as f64)
                / 30.0;
            // alpha itself: a 30-term mean of gradients, each within gamma_N of the twin's.
            let bound =
                (2.0 * gamma(n) * f_twin / (2.0 * t as f64) + gamma(n + 32) * f_twin) / 30.0;
            assert!(
                (fd - alpha[k] as f64).abs() <= bound,
                "class {class} channel {k}: finite difference {fd} vs autodiff {} (bound {bound})",
                alpha[k]
            );
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
    for method in [Method::GradCam, Method::HiResCam, Method::XGradCam] {
        let run = |relu_on| {
            let e = ExplainerConfig::new()
                .with_method(method)
                .with_layer("block2")
                .with_relu(relu_on)
                .with_normalization(Normalization::Off)
                .init(&model)
                .unwrap()
                .explain(x.clone(), &Targets::every_image([0, 1, 2, 3, 4]))
                .unwrap();
            (host(e.layers[0].raw.clone()), host(e.layers[0].cam.clone()))
        };
        let (raw_on, cam_on) = run(true);
        let (raw_off, cam_off) = run(false);
        assert_eq!(
            raw_on, raw_off,
            "{method}: the raw map does not depend on the switch"
        );
        let positives = raw_on.iter().filter(|v| **v > 0.0).count();
        let negatives = raw_on.iter().filter(|v| **v < 0.0).count();
        assert!(
            positives > 20 && negatives > 20,
            "{method}: {positives} +, {negatives} -"
        );
        for i in 0..raw_on.len() {
            if raw_on[i] > 0.0 {
                assert_eq!(cam_on[i], raw_on[i]);
                assert_eq!(cam_off[i], raw_on[i]);
            } else {
                assert_eq!(cam_on[i], 0.0);
                assert_eq!(cam_off[i], raw_on[i]);
            }
        }
    }
}

/// `a` and `b` explain the same images and targets by two float32 evaluations (other batch,
/// other backend, other target grouping): each raw map is within `gamma_N` times the twin's of
/// the exact one, so `b`'s lies within `2 gamma_N twin` of `a`'s.
///
/// A worst-case bound through three convolutions is loose (the twin sums every path's magnitude,
/// about a thousand times the map here), so this check catches gross differences (a BatchNorm in
/// training mode, a wrong row, another image: see the deliberate failure in the batch test), not
/// subtle ones: those are the method tests' job, on exact inputs. The post-processing after the
/// raw map is per map and has its own tests.
fn assert_same_maps(what: &str, a: &Explanation, b: &Explanation, twin: &Explanation, n: usize) {
    for (l, ((la, lb), lt)) in a.layers.iter().zip(&b.layers).zip(&twin.layers).enumerate() {
        let [images, m, h, w] = la.raw.dims();
        let (ra, rb, rt) = (
            host(la.raw.clone()),
            host(lb.raw.clone()),
            host(lt.raw.clone()),
        );
        for map in 0..images * m {
            let span = map * h * w..(map + 1) * h * w;
            let bound = |q: usize| 2.0 * (1.0 + 2.0 * gamma(n)) * gamma(n) * rt[q].abs() as f64;
            let enclosure: Vec<Iv> = span
                .clone()
                .map(|q| Iv::around(ra[q] as f64, bound(q)))
                .collect();
            let scale = enclosure.iter().map(|e| e.mag()).fold(0.0, f64::max);
            assert_inside(
                &format!("{what}: raw of layer {l} map {map}"),
                &rb[span],
                &enclosure,
                0.5 * scale,
            );
        }
    }
}

/// The twin's explanation: Grad-CAM without ReLU or normalisation on `|x|`.
fn twin_explanation(
    model: &TinyNet,
    layers: &[&str],
    x: Tensor<4>,
    targets: &Targets,
) -> Explanation {
    ExplainerConfig::new()
        .with_layers(layers.iter().copied())
        .with_relu(false)
        .with_normalization(Normalization::Off)
        .init(&model.twin())
        .unwrap()
        .explain(x.abs(), targets)
        .unwrap()
}

#[test]
fn a_map_does_not_depend_on_the_rest_of_the_batch() {
    // The model is built as for training: autodiff parameters, BatchNorm in training mode.
    let device = Device::flex().autodiff();
    let plain = device.clone().without_autodiff();
    let model = TinyNet::new(&device);
    let batch = tensor(41, [8, 3, 10, 10], 2.0, &plain) + tensor(42, [8, 1, 1, 1], 1.0, &plain);
    let image = 3;
    let alone = batch.clone().narrow(0, image, 1);

    // The trap is real: in training mode BatchNorm's output depends on the batch.
    let train_batch = host(model.forward(batch.clone().autodiff()).narrow(0, image, 1));
    let train_alone = host(model.forward(alone.clone().autodiff()));
    assert!(max_abs_diff(&train_batch, &train_alone) > 1e-2);

    let explainer = ExplainerConfig::new()
        .with_layer("block3")
        .init(&model)
        .unwrap();
    let valid = explainer.model().clone();
    let n = TinyNet::path_ops("block3", 10, 10);
    assert_no_kink(&valid, alone.clone(), "block3");
    let in_batch = explainer.explain(batch, &Targets::class(2)).unwrap();
    let single = explainer
        .explain(alone.clone(), &Targets::class(2))
        .unwrap();
    let twin = twin_explanation(&valid, &["block3"], alone, &Targets::class(2));
    let picked = pick(&in_batch, image);
    assert_same_maps("batch vs alone", &single, &picked, &twin, n);
    // The check can fail: the next image's map is not this one's.
    let other = pick(&in_batch, image + 1);
    let caught =
        std::panic::catch_unwind(|| assert_same_maps("another image", &single, &other, &twin, n));
    assert!(caught.is_err(), "another image's map passed as this one's");
}

/// Image `i` of an explanation, as an explanation of one image.
fn pick(e: &Explanation, i: usize) -> Explanation {
    slice(e, 0, i)
}

/// Target `j` of an explanation, as an explanation of one target.
fn target(e: &Explanation, j: usize) -> Explanation {
    slice(e, 1, j)
}

/// Index `i` of axis `axis` (0: images, 1: targets) of every tensor of an explanation.
fn slice(e: &Explanation, axis: usize, i: usize) -> Explanation {
    Explanation {
        layers: e
            .layers
            .iter()
            .map(|l| gradcam::LayerMap {
                name: l.name.clone(),
                weights: l.weights.clone().map(|w| w.narrow(axis, i, 1)),
                raw: l.raw.clone().narrow(axis, i, 1),
                cam: l.cam.clone().narrow(axis, i, 1),
                heatmap: l.heatmap.clone().narrow(axis, i, 1),
            })
            .collect(),
        heatmap: e.heatmap.clone().narrow(axis, i, 1),
        targets: match axis {
            0 => vec![e.targets[i].clone()],
            _ => e.targets.iter().map(|t| vec![t[i]]).collect(),
        },
    }
}

#[test]
fn several_layers_in_one_pass_equal_one_layer_at_a_time() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(51, [3, 3, 16, 16], 1.0, &device);
    let targets = Targets::every_image([1, 4]);
    let both = ExplainerConfig::new()
        .with_layers(["block1", "block3"])
        .init(&model)
        .unwrap()
        .explain(x.clone(), &targets)
        .unwrap();
    for (i, layer) in ["block1", "block3"].into_iter().enumerate() {
        let one = ExplainerConfig::new()
            .with_layer(layer)
            .init(&model)
            .unwrap()
            .explain(x.clone(), &targets)
            .unwrap();
        assert_eq!(both.layers[i].name, layer);
        // The same operations on the same shapes (the zero leaf adds exact zeros): bit for bit.
        assert_eq!(
            host(both.layers[i].raw.clone()),
            host(one.layers[0].raw.clone()),
            "{layer}"
        );
        assert_eq!(
            host(both.layers[i].heatmap.clone()),
            host(one.layers[0].heatmap.clone())
        );
    }
    // The fusion: clip at 0, average, normalise, within the enclosure of that formula.
    let layers: Vec<Vec<f32>> = both
        .layers
        .iter()
        .map(|l| host(l.heatmap.clone()))
        .collect();
    let fused = host(both.heatmap.clone());
    let plane = 16 * 16;
    for map in 0..6 {
        let span = map * plane..(map + 1) * plane;
        let inputs: Vec<Vec<Iv>> = layers
            .iter()
            .map(|l| {
                l[span.clone()]
                    .iter()
                    .map(|v| Iv::exact(*v as f64))
                    .collect()
            })
            .collect();
        assert_inside(
            &format!("fused map {map}"),
            &fused[span],
            &common::fuse(&inputs, true),
            1e-5,
        );
    }
}

#[test]
fn fusion_by_max_takes_the_pixelwise_maximum_of_the_layers() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(51, [3, 3, 16, 16], 1.0, &device);
    let targets = Targets::every_image([1, 4]);
    let explain = |fusion| {
        ExplainerConfig::new()
            .with_layers(["block1", "block3"])
            .with_fusion(fusion)
            .init(&model)
            .unwrap()
            .explain(x.clone(), &targets)
            .unwrap()
    };
    let (max, mean) = (explain(Fusion::Max), explain(Fusion::Mean));
    let plane = 16 * 16;
    let fused = host(max.heatmap.clone());
    let averaged = host(mean.heatmap.clone());
    let mut caught = 0;
    for map in 0..6 {
        let span = map * plane..(map + 1) * plane;
        let inputs: Vec<Vec<Iv>> = max
            .layers
            .iter()
            .map(|l| {
                host(l.heatmap.clone())[span.clone()]
                    .iter()
                    .map(|v| Iv::exact(*v as f64))
                    .collect()
            })
            .collect();
        let enclosure = common::fuse_max(&inputs, true);
        assert_inside(
            &format!("max-fused map {map}"),
            &fused[span.clone()],
            &enclosure,
            1e-5,
        );
        // The mean's fusion is another map: it must leave the enclosure of the maximum.
        caught += usize::from(common::outside(&averaged[span], &enclosure).is_some());
    }
    assert_eq!(caught, 6, "the mean-fused maps passed as the maximum");
}

#[test]
fn layers_are_listed_with_their_shapes_and_the_default_is_the_last() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let explainer = ExplainerConfig::new().init(&model).unwrap();
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
    for method in convolutional() {
        let e = ExplainerConfig::new()
            .with_method(method)
            .with_layer("block3")
            .init(&model)
            .unwrap()
            .explain(x.clone(), &Targets::top(1))
            .unwrap();
        assert_eq!(e.heatmap.dims(), [2, 1, 20, 14]);
        // FullGrad's map is at the input's resolution, every other method's at the layer's.
        let size = if method == Method::FullGrad {
            [20, 14]
        } else {
            [10, 7]
        };
        assert_eq!(e.layers[0].cam.dims(), [2, 1, size[0], size[1]]);
        for image in 0..2 {
            let raw = host(e.layers[0].raw.clone().narrow(0, image, 1));
            let cam = host(e.layers[0].cam.clone().narrow(0, image, 1));
            let (lo, hi) = cam
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
            // x - min is exactly 0 at the minimum; at the maximum (R / (R + 1e-7)) is below 1 by
            // 1e-7 / R, plus two roundings.
            let positive = raw.iter().map(|v| v.max(0.0)).fold(0.0f32, f32::max)
                - raw.iter().map(|v| v.max(0.0)).fold(f32::MAX, f32::min);
            assert_eq!(lo, 0.0, "{method}");
            if positive > 0.0 {
                let bound = 1e-7 / positive as f64 + 3.0 * U;
                assert!((hi as f64 - 1.0).abs() <= bound, "{method}: max {hi}");
            }
            let heat = e.heatmap_values(image, 0).unwrap();
            assert!(heat.iter().all(|v| (0.0..=1.0).contains(v)), "{method}");
        }
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
    for method in [
        Method::GradCam,
        Method::HiResCam,
        Method::EigenCam,
        Method::ScoreCam,
    ] {
        for relu_on in [true, false] {
            let e = ExplainerConfig::new()
                .with_method(method)
                .with_relu(relu_on)
                .init(&model)
                .unwrap()
                .explain(x.clone(), &Targets::class(1))
                .unwrap();
            let heat = e.heatmap_values(0, 0).unwrap();
            assert!(heat.iter().all(|v| *v == 0.0), "{method}: {heat:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Targets.

#[test]
fn per_image_targets_equal_one_image_at_a_time() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(71, [3, 3, 12, 12], 1.0, &device);
    let explainer = ExplainerConfig::new()
        .with_layer("block3")
        .init(&model)
        .unwrap();
    let n = TinyNet::path_ops("block3", 12, 12);
    let classes = [4, 0, 2];
    let batch = explainer
        .explain(x.clone(), &Targets::one_per_image(classes))
        .unwrap();
    for (i, class) in classes.into_iter().enumerate() {
        let one = x.clone().narrow(0, i, 1);
        assert_no_kink(&model, one.clone(), "block3");
        let alone = explainer
            .explain(one.clone(), &Targets::class(class))
            .unwrap();
        let twin = twin_explanation(&model, &["block3"], one, &Targets::class(class));
        assert_eq!(batch.targets[i][0].class, Some(class));
        assert_same_maps(&format!("image {i}"), &alone, &pick(&batch, i), &twin, n);
    }
    // One target for all equals the same target given per image: the same computation.
    let broadcast = explainer.explain(x.clone(), &Targets::class(2)).unwrap();
    let repeated = explainer
        .explain(x, &Targets::one_per_image([2, 2, 2]))
        .unwrap();
    assert_eq!(host(broadcast.heatmap), host(repeated.heatmap));
}

#[test]
fn several_classes_per_image_equal_separate_calls() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(81, [2, 3, 12, 12], 1.0, &device);
    let n = TinyNet::path_ops("block3", 12, 12);
    assert_no_kink(&model, x.clone(), "block3");
    let explainer = ExplainerConfig::new()
        .with_layer("block3")
        .init(&model)
        .unwrap();
    let together = explainer
        .explain(x.clone(), &Targets::every_image([3, 1, 0]))
        .unwrap();
    assert_eq!(together.heatmap.dims(), [2, 3, 12, 12]);
    for (j, class) in [3, 1, 0].into_iter().enumerate() {
        let separate = explainer
            .explain(x.clone(), &Targets::class(class))
            .unwrap();
        let twin = twin_explanation(&model, &["block3"], x.clone(), &Targets::class(class));
        assert_same_maps(
            &format!("class {class}"),
            &separate,
            &target(&together, j),
            &twin,
            n,
        );
        for i in 0..2 {
            // The same logit, read from rows of one forward (no arithmetic in between).
            assert_eq!(together.targets[i][j].score, separate.targets[i][0].score);
        }
    }
    // Different classes give different maps (the comparison above is not vacuous).
    assert!(
        max_abs_diff(
            &together.heatmap_values(0, 0).unwrap(),
            &together.heatmap_values(0, 1).unwrap()
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
    for method in [Method::GradCam, Method::ScoreCam] {
        let explainer = ExplainerConfig::new()
            .with_method(method)
            .init(&model)
            .unwrap();
        let top = explainer.explain(x.clone(), &Targets::top(1)).unwrap();
        let argmax: Vec<usize> = logits
            .chunks(classes)
            .map(|row| (0..classes).fold(0, |b, i| if row[i] > row[b] { i } else { b }))
            .collect();
        let explained: Vec<usize> = top.targets.iter().map(|t| t[0].class.unwrap()).collect();
        assert_eq!(explained, argmax, "{method}");
        let distinct = argmax
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert!(
            distinct >= 3,
            "the batch should not all predict one class: {argmax:?}"
        );
        let by_class = explainer
            .explain(x.clone(), &Targets::one_per_image(argmax))
            .unwrap();
        assert_eq!(host(top.heatmap), host(by_class.heatmap), "{method}");
    }
}

#[test]
fn a_custom_score_works_like_the_logit_it_selects_and_softmax_is_reported() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = tensor(95, [2, 3, 12, 12], 1.0, &device);
    for method in [Method::GradCam, Method::ScoreCam, Method::AblationCam] {
        let explainer = ExplainerConfig::new()
            .with_method(method)
            .init(&model)
            .unwrap();
        let logit = Target::score(|l: Tensor<2>| l.narrow(1, 2, 1).flatten(0, 1));
        let by_fn = explainer
            .explain(x.clone(), &Targets::every_image([logit]))
            .unwrap();
        let by_class = explainer.explain(x.clone(), &Targets::class(2)).unwrap();
        // The upstream gradient is the same one-hot either way: bit for bit.
        assert_eq!(
            host(by_fn.heatmap.clone()),
            host(by_class.heatmap),
            "{method}"
        );
        assert_eq!(by_fn.targets[0][0].class, None);
    }
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    let prob = Target::score(|l: Tensor<2>| {
        burn::tensor::activation::softmax(l, 1)
            .narrow(1, 2, 1)
            .flatten(0, 1)
    });
    let by_prob = explainer
        .explain(x.clone(), &Targets::every_image([prob]))
        .unwrap();
    let logits = host(model.forward(x));
    for i in 0..2 {
        let row: Vec<Iv> = logits[i * 5..(i + 1) * 5]
            .iter()
            .map(|v| Iv::exact(*v as f64))
            .collect();
        let max = Iv::max(&row);
        let e: Vec<Iv> = row.iter().map(|s| s.sub(max).exp()).collect();
        let p = e[2].div(Iv::sum(e.iter().copied()));
        let got = by_prob.targets[i][0].score as f64;
        assert!(p.contains(got), "softmax score {got} outside {p:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Backends: the same network, the same numbers within the twin's bound.

/// A capture and a Grad-CAM explanation of `TinyNet` on `device`.
fn tiny_case(device: &Device) -> (Vec<Vec<f32>>, Explanation) {
    let model = TinyNet::new(device);
    let x = tensor(111, [3, 3, 15, 13], 1.0, device);
    let explainer = ExplainerConfig::new()
        .with_layer("block3")
        .init(&model)
        .unwrap();
    let capture = explainer
        .capture(x.clone(), &Targets::every_image([0, 3]))
        .unwrap();
    (
        captured_values(&capture),
        explainer.explain_capture(&capture).unwrap(),
    )
}

/// A capture's activations and gradients on the host, layer by layer.
fn captured_values(capture: &gradcam::Capture) -> Vec<Vec<f32>> {
    capture
        .layers
        .iter()
        .flat_map(|l| {
            [
                host(l.activations.clone()),
                host(l.gradients.clone().unwrap()),
            ]
        })
        .collect()
}

fn backends_agree(other: &Device, name: &str) {
    let device = Device::flex();
    let (flex, flex_e) = tiny_case(&device);
    let (theirs, their_e) = tiny_case(other);
    let model = TinyNet::new(&device);
    let x = tensor(111, [3, 3, 15, 13], 1.0, &device);
    let n = TinyNet::path_ops("block3", 15, 13);
    assert_no_kink(&model, x.clone(), "block3");
    let twin = ExplainerConfig::new()
        .with_layer("block3")
        .with_relu(false)
        .with_normalization(Normalization::Off)
        .init(&model.twin())
        .unwrap();
    let twin_capture = twin
        .capture(x.abs(), &Targets::every_image([0, 3]))
        .unwrap();
    let bounds = captured_values(&twin_capture);
    for (i, ((a, b), t)) in flex.iter().zip(&theirs).zip(&bounds).enumerate() {
        let enclosure: Vec<Iv> = a
            .iter()
            .zip(t)
            .map(|(a, t)| {
                Iv::around(
                    *a as f64,
                    2.0 * (1.0 + 2.0 * gamma(n)) * gamma(n) * *t as f64,
                )
            })
            .collect();
        let scale = enclosure.iter().map(|e| e.mag()).fold(0.0, f64::max);
        let what = ["activations", "gradients"][i % 2];
        assert_inside(
            &format!("flex vs {name}: {what} of layer {}", i / 2),
            b,
            &enclosure,
            0.05 * scale,
        );
    }
    let twin_e = twin.explain_capture(&twin_capture).unwrap();
    assert_same_maps(&format!("flex vs {name}"), &flex_e, &their_e, &twin_e, n);
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
fn flex_and_ndarray_networks_agree() {
    backends_agree(&Device::ndarray(), "ndarray");
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
fn wgpu_network_agrees_with_flex() {
    backends_agree(&wgpu_device(), "wgpu");
}
