//! SESS against its closed form on `GapLinear` (the input is the explained layer, then a global
//! average pool and a linear layer), on flex, ndarray and wgpu; the oracle against
//! pytorch-grad-cam is `onnx/tests/sess.rs`.
//!
//! Two 8 x 8 images of 3 channels at scales 8 and 16 (an exact 2x enlargement), a 4-pixel window
//! at a stride of 3: windows at 0, 3, 4 and at 0, 3, 6, 9, 12, so 9 + 25 patches per image. A
//! patch's Grad-CAM map is `sum_k W_ck / 16 A_k` (the gradient of the pooled logit is `W_ck` over
//! the patch's 16 pixels), its score the softmax probability (or logit) of the class the whole
//! image ranks first; the rest is SESS as pytorch-grad-cam writes it, computed here in `f64`.
//!
//! Bound (`U = 2^-24`, the rules of `tests/common`): the enlarged input within `4 U max|x|`; a
//! raw map value within `e_raw = (K + 4) U S + s e_x` (`S = sum_k |W_ck / 16| max|A_k|`, `s` the
//! same without the activations, `e_x` the input's error); a normalised map value within
//! `4 e_raw / R_p + 8 U` (`R_p` the patch map's range); a logit within
//! `e_z = (K + 4) U (sum_k |W_ck| max|A_k| + |b_c|) + sum_k |W_ck| e_x`, so a softmax weight
//! within a factor `exp(+-4 (e_z + 8 U))` and a logit weight within `2 e_z / (best - e_z)`; a
//! fused value within `E = max_p (dw_p + dh_p) + 64 U` (pasting, the mean over the same counted
//! patches, the maximum and the blur are convex or 1-Lipschitz; 64 U covers their roundings);
//! the final min-max within `4 E / R`. The counted patches are the same when no raw value lies
//! within `2 e_raw` of 0 and every patch map has a zero (both asserted), and the filter keeps
//! the same patches when the scores at its cut are apart by more than twice their bound
//! (asserted).

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::models::{GapLinear, linear};
use common::{U, host};
use gradcam::{ExplainerConfig, SessConfig, SessPool, SessScales, Targets};

const N: usize = 2;
const K: usize = 3;
const SIDE: usize = 8;
const CLASSES: usize = 4;
const WINDOW: usize = 4;

/// The windows' corners along a side of 8 and of 16 (stride 3).
const STARTS: [&[usize]; 2] = [&[0, 3, 4], &[0, 3, 6, 9, 12]];

/// The settings compared: mean fusion with the blur (pytorch-grad-cam's defaults: each patch
/// scored by the forward that explains it), the same with a filter (every patch scored first),
/// and max fusion of logit scores without the blur.
fn settings() -> [SessConfig; 3] {
    let common = SessConfig::new()
        .with_scales(SessScales::Sizes(vec![SIDE, 2 * SIDE]))
        .with_window(WINDOW)
        .with_step(3)
        .with_batch_size(7);
    [
        common.clone(),
        common.clone().with_pre_filter_ratio(0.25),
        common
            .with_pool(SessPool::Max)
            .with_smooth(false)
            .with_softmax_scores(false),
    ]
}

/// The input `[N, K, 8, 8]` and the model's `W` (`[K, CLASSES]`) and `b`, as
/// `common::models::linear(72, ..)` draws them.
struct Case {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Case {
    fn new() -> Self {
        Self {
            x: common::values(71, N * K * SIDE * SIDE, 2.0),
            w: common::values(72, K * CLASSES, 1.0),
            b: common::values(73, CLASSES, 0.5),
        }
    }

    fn model(&self, device: &Device) -> GapLinear {
        let model = GapLinear {
            fc: linear(72, [K, CLASSES], device),
        };
        assert_eq!(host(model.fc.weight.val()), self.w);
        model
    }

    fn weight(&self, k: usize, c: usize) -> f64 {
        self.w[k * CLASSES + c] as f64
    }

    /// The logits of channel means `means`, and their bound for activations up to `largest` in
    /// magnitude known within `e_x`.
    fn logits(&self, means: &[f64], largest: f64, e_x: f64) -> (Vec<f64>, Vec<f64>) {
        (0..CLASSES)
            .map(|c| {
                let z =
                    (0..K).map(|k| self.weight(k, c) * means[k]).sum::<f64>() + self.b[c] as f64;
                let s: f64 = (0..K).map(|k| self.weight(k, c).abs()).sum();
                let e = (K + 4) as f64 * U * (s * largest + (self.b[c] as f64).abs()) + s * e_x;
                (z, e)
            })
            .unzip()
    }
}

/// SESS's map of every image in `f64` under `sess`, and its bound per image.
fn closed_form(case: &Case, sess: &SessConfig) -> (Vec<f64>, Vec<f64>) {
    let (mut maps, mut bounds) = (Vec::new(), Vec::new());
    for image in 0..N {
        let x: Vec<f64> = case.x[image * K * SIDE * SIDE..(image + 1) * K * SIDE * SIDE]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let largest = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let e_x = 4.0 * U * largest;
        // The class the whole image ranks first, not within the logits' bound of the second.
        let means: Vec<f64> = (0..K)
            .map(|k| x[k * 64..(k + 1) * 64].iter().sum::<f64>() / 64.0)
            .collect();
        let (z, e) = case.logits(&means, largest, 0.0);
        let mut order: Vec<usize> = (0..CLASSES).collect();
        order.sort_by(|&a, &b| z[b].total_cmp(&z[a]));
        let class = order[0];
        assert!(z[order[0]] - z[order[1]] > 2.0 * (e[order[0]] + e[order[1]]));

        // Every patch: its normalised map [4, 4], its score and their bounds, its scale and
        // corner.
        let mut patches = Vec::new();
        for (scale, starts) in STARTS.iter().enumerate() {
            let side = SIDE << scale;
            let scaled = enlarge(&x, scale);
            for &top in *starts {
                for &left in *starts {
                    let a = |k: usize, i: usize, j: usize| {
                        scaled[(k * side + top + i) * side + left + j]
                    };
                    let raw: Vec<f64> = (0..WINDOW * WINDOW)
                        .map(|p| {
                            (0..K)
                                .map(|k| case.weight(k, class) / 16.0 * a(k, p / 4, p % 4))
                                .sum()
                        })
                        .collect();
                    let s: f64 = (0..K).map(|k| (case.weight(k, class) / 16.0).abs()).sum();
                    let e_raw = (K + 4) as f64 * U * s * largest + s * e_x;
                    // The same pixels are 0 on both sides: no raw value within rounding of
                    // 0, and a patch without a negative one has a unique smallest value (the
                    // one its normalisation makes 0).
                    let mut sorted = raw.clone();
                    sorted.sort_by(f64::total_cmp);
                    assert!(
                        raw.iter().all(|v| v.abs() > 2.0 * e_raw)
                            && (sorted[0] < 0.0 || sorted[1] - sorted[0] > 4.0 * e_raw),
                        "a patch whose zero pixels are not decided: {raw:?}"
                    );
                    let relu: Vec<f64> = raw.iter().map(|v| v.max(0.0)).collect();
                    let range = relu.iter().fold(0.0f64, |m, v| m.max(*v));
                    let map = normalise(&normalise(&relu));
                    let patch_means: Vec<f64> = (0..K)
                        .map(|k| (0..16).map(|p| a(k, p / 4, p % 4)).sum::<f64>() / 16.0)
                        .collect();
                    let (z, e) = case.logits(&patch_means, largest, e_x);
                    let (score, e_score) = if sess.softmax_scores {
                        let top = z.iter().fold(f64::MIN, |m, v| m.max(*v));
                        let sum: f64 = z.iter().map(|v| (v - top).exp()).sum();
                        let e_z = e.iter().fold(0.0f64, |m, v| m.max(*v)) + 8.0 * U;
                        ((z[class] - top).exp() / sum, e_z)
                    } else {
                        (z[class].max(0.0), e[class])
                    };
                    let e_map = 4.0 * e_raw / range + 8.0 * U;
                    patches.push((map, score, e_score, e_map, scale, top, left));
                }
            }
        }
        // The filter and the weights.
        let mut sorted: Vec<f64> = patches.iter().map(|p| p.1).collect();
        sorted.sort_by(f64::total_cmp);
        let cut = (patches.len() as f64 * sess.pre_filter_ratio) as usize;
        let best = sorted[patches.len() - 1];
        let e_best = patches.iter().fold(0.0f64, |m, p| m.max(p.2));
        if cut > 0 {
            let margin = if sess.softmax_scores {
                best * ((4.0 * e_best).exp() - 1.0)
            } else {
                2.0 * e_best
            };
            assert!(
                sorted[cut] - sorted[cut - 1] > 2.0 * margin,
                "a tie at the cut"
            );
        }
        let (mut total, mut counts) = (vec![0.0f64; 64], vec![0.0f64; 64]);
        let mut fused_error = 0.0f64;
        for (map, score, e_score, e_map, scale, top, left) in &patches {
            if *score < sorted[cut] {
                continue;
            }
            let weight = score / best;
            let e_weight = if sess.softmax_scores {
                (4.0 * e_score).exp() - 1.0
            } else {
                2.0 * e_score / (best - e_score)
            };
            fused_error = fused_error.max(e_weight + e_map);
            // Pasted into the scale's canvas and shrunk back: at scale 16 each pixel the mean of
            // a 2 x 2 block.
            let side = SIDE << scale;
            let mut canvas = vec![0.0f64; side * side];
            for p in 0..16 {
                canvas[(top + p / 4) * side + left + p % 4] = weight * map[p];
            }
            for (pixel, (t, c)) in total.iter_mut().zip(counts.iter_mut()).enumerate() {
                let (i, j) = (pixel / 8, pixel % 8);
                let v = match scale {
                    0 => canvas[i * 8 + j],
                    _ => {
                        let at = |r: usize, s: usize| canvas[r * 16 + s];
                        0.25 * (at(2 * i, 2 * j)
                            + at(2 * i, 2 * j + 1)
                            + at(2 * i + 1, 2 * j)
                            + at(2 * i + 1, 2 * j + 1))
                    }
                };
                match sess.pool {
                    SessPool::Mean if v > sess.theta as f64 => {
                        *t += v;
                        *c += 1.0;
                    }
                    SessPool::Max => *t = t.max(v),
                    _ => {}
                }
            }
        }
        let fused: Vec<f64> = match sess.pool {
            SessPool::Mean => total
                .iter()
                .zip(&counts)
                .map(|(t, c)| if *c > 0.0 { t / c } else { 0.0 })
                .collect(),
            _ => total,
        };
        let fused = if sess.smooth { blur(&fused) } else { fused };
        let range = fused.iter().fold(f64::MIN, |m, v| m.max(*v))
            - fused.iter().fold(f64::MAX, |m, v| m.min(*v));
        bounds.push(4.0 * (fused_error + 64.0 * U) / range);
        maps.extend(normalise(&fused));
    }
    (maps, bounds)
}

/// The image enlarged `2^scale` times by bilinear interpolation with half-pixel centres.
fn enlarge(x: &[f64], scale: usize) -> Vec<f64> {
    if scale == 0 {
        return x.to_vec();
    }
    let side = 2 * SIDE;
    // Output `o` reads `o / 2 - 1/4`: three quarters of the nearer sample, a quarter of the
    // other, clamped at the borders.
    let taps = |o: usize| -> [(usize, f64); 2] {
        let near = o / 2;
        let far = if o.is_multiple_of(2) {
            near.saturating_sub(1)
        } else {
            (near + 1).min(SIDE - 1)
        };
        [(near, 0.75), (far, 0.25)]
    };
    let mut out = vec![0.0f64; K * side * side];
    for k in 0..K {
        for i in 0..side {
            for j in 0..side {
                out[(k * side + i) * side + j] = taps(i)
                    .iter()
                    .flat_map(|&(r, wr)| taps(j).map(move |(c, wc)| (r, c, wr * wc)))
                    .map(|(r, c, w)| w * x[(k * SIDE + r) * SIDE + c])
                    .sum();
            }
        }
    }
    out
}

/// pytorch-grad-cam's `scale_cam_image`: `(x - min) / (max - min + 1e-7)`.
fn normalise(x: &[f64]) -> Vec<f64> {
    let min = x.iter().fold(f64::MAX, |m, v| m.min(*v));
    let max = x.iter().fold(f64::MIN, |m, v| m.max(*v));
    x.iter().map(|v| (v - min) / (max - min + 1e-7)).collect()
}

/// OpenCV's `GaussianBlur(.., (11, 11), 5)` of an 8 x 8 map, mirrored at the borders without
/// repeating the edge, in `f64`.
fn blur(x: &[f64]) -> Vec<f64> {
    let kernel: Vec<f64> = (0..11)
        .map(|i| (-((i as f64 - 5.0).powi(2)) / 50.0).exp())
        .collect();
    let sum: f64 = kernel.iter().sum();
    let mirror = |p: isize| -> usize {
        let p = p.unsigned_abs();
        if p < 8 { p } else { 14 - p }
    };
    let pass = |x: &[f64], rows: bool| -> Vec<f64> {
        (0..64)
            .map(|pixel| {
                let (i, j) = ((pixel / 8) as isize, (pixel % 8) as isize);
                (0..11)
                    .map(|t| {
                        let o = t as isize - 5;
                        let at = if rows {
                            mirror(i + o) * 8 + j as usize
                        } else {
                            i as usize * 8 + mirror(j + o)
                        };
                        kernel[t] / sum * x[at]
                    })
                    .sum()
            })
            .collect()
    };
    pass(&pass(x, false), true)
}

/// Ours on `device` against the closed form for both settings: the worst difference over its
/// bound, or the first difference past it. `wrong` changes the closed form's setting (a
/// deliberately wrong reference).
fn check(device: &Device, wrong: impl Fn(SessConfig) -> SessConfig) -> Result<f64, String> {
    let case = Case::new();
    let model = case.model(device);
    let x = Tensor::<4>::from_data(TensorData::new(case.x.clone(), [N, K, SIDE, SIDE]), device);
    let mut worst = 0.0f64;
    for sess in settings() {
        let explanation = ExplainerConfig::new()
            .with_sess(sess.clone())
            .init(&model)
            .unwrap()
            .explain(x.clone(), &Targets::top(1))
            .unwrap();
        let ours = host(explanation.heatmap);
        let (expected, bounds) = closed_form(&case, &wrong(sess.clone()));
        for (image, bound) in bounds.into_iter().enumerate() {
            let at = image * 64..(image + 1) * 64;
            let difference = ours[at.clone()]
                .iter()
                .zip(&expected[at])
                .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
            if difference > bound {
                return Err(format!(
                    "{sess:?}, image {image}: {difference:.3e} over the bound {bound:.3e}"
                ));
            }
            worst = worst.max(difference / bound);
        }
    }
    Ok(worst)
}

#[test]
fn sess_matches_its_closed_form_on_flex_and_ndarray() {
    let worst = check(&Device::flex(), |s| s).unwrap();
    eprintln!("flex: worst difference / bound {worst:.1e}");
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
    {
        let worst = check(&Device::ndarray(), |s| s).unwrap();
        eprintln!("ndarray: worst difference / bound {worst:.1e}");
    }
}

#[test]
fn a_wrong_closed_form_fails() {
    let device = Device::flex();
    let wrong: [fn(SessConfig) -> SessConfig; 3] = [
        |s| {
            let smooth = !s.smooth;
            s.with_smooth(smooth)
        },
        |s| s.with_theta(0.2),
        |s| {
            let ratio = if s.pre_filter_ratio > 0.0 { 0.0 } else { 0.25 };
            s.with_pre_filter_ratio(ratio)
        },
    ];
    for alter in wrong {
        let error = check(&device, alter).unwrap_err();
        eprintln!("as it should: {error}");
    }
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
fn wgpu_sess_matches_its_closed_form() {
    let device = common::wgpu_device();
    let worst = check(&device, |s| s).unwrap();
    eprintln!("wgpu: worst difference / bound {worst:.1e}");
}
