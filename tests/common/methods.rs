//! Every method's formula again, written independently over enclosures ([`Iv`]): what any
//! float32 implementation of it (ours, pytorch-grad-cam's numpy) must produce.
//!
//! `a` and `g` are one image's activations and gradients, channel-major `[k][p]` for `p = h w`
//! pixels. Each function returns the signed map `[p]` (and the channel weights where the method
//! has them).

use super::{Iv, U};

/// Grad-CAM: `w_k = mean_p g_kp`, `map_p = sum_k w_k a_kp`.
pub fn grad_cam(a: &[Iv], g: &[Iv], k: usize) -> (Vec<Iv>, Vec<Iv>) {
    let p = a.len() / k;
    let w: Vec<Iv> = (0..k).map(|c| Iv::mean(&g[c * p..(c + 1) * p])).collect();
    (w.clone(), weighted(a, &w, k))
}

/// `sum_k w_k a_kp`.
pub fn weighted(a: &[Iv], w: &[Iv], k: usize) -> Vec<Iv> {
    let p = a.len() / k;
    (0..p)
        .map(|i| Iv::sum((0..k).map(|c| w[c].mul(a[c * p + i]))))
        .collect()
}

/// Grad-CAM++ (eq. 19 as pytorch-grad-cam computes it): `alpha = g^2 / (2 g^2 + (sum_p a) g^3 +
/// 1e-6)`, 0 where `g <= 0`; `w_k = sum_p alpha relu(g)`.
pub fn grad_cam_plus_plus(a: &[Iv], g: &[Iv], k: usize) -> (Vec<Iv>, Vec<Iv>) {
    let p = a.len() / k;
    let w: Vec<Iv> = (0..k)
        .map(|c| {
            let s = Iv::sum(a[c * p..(c + 1) * p].iter().copied());
            Iv::sum((0..p).map(|i| {
                let gi = g[c * p + i];
                if gi.hi <= 0.0 {
                    return Iv::exact(0.0);
                }
                let g2 = gi.mul(gi);
                let g3 = g2.mul(gi);
                let alpha = g2.div(g2.scale(2.0).add(s.mul(g3)).add_const(1e-6));
                let term = alpha.mul(gi.relu());
                // Where g may be <= 0 the term may be exactly 0 instead.
                if gi.lo <= 0.0 {
                    term.hull_with(term, 0.0)
                } else {
                    term
                }
            }))
        })
        .collect();
    (w.clone(), weighted(a, &w, k))
}

/// XGrad-CAM: `w_k = sum_p g a / (sum_p a + 1e-7)`.
pub fn xgrad_cam(a: &[Iv], g: &[Iv], k: usize) -> (Vec<Iv>, Vec<Iv>) {
    let p = a.len() / k;
    let w: Vec<Iv> = (0..k)
        .map(|c| {
            let s = Iv::sum(a[c * p..(c + 1) * p].iter().copied()).add_const(1e-7);
            Iv::sum((0..p).map(|i| g[c * p + i].mul(a[c * p + i]))).div(s)
        })
        .collect();
    (w.clone(), weighted(a, &w, k))
}

/// `map_p = sum_k f(g_kp, a_kp)`.
fn elementwise(a: &[Iv], g: &[Iv], k: usize, f: impl Fn(Iv, Iv) -> Iv) -> Vec<Iv> {
    let p = a.len() / k;
    (0..p)
        .map(|i| Iv::sum((0..k).map(|c| f(g[c * p + i], a[c * p + i]))))
        .collect()
}

/// HiResCAM: `sum_k g a`.
pub fn hires_cam(a: &[Iv], g: &[Iv], k: usize) -> Vec<Iv> {
    elementwise(a, g, k, |g, a| g.mul(a))
}

/// Element-wise Grad-CAM: `sum_k relu(g a)`.
pub fn element_wise_grad_cam(a: &[Iv], g: &[Iv], k: usize) -> Vec<Iv> {
    elementwise(a, g, k, |g, a| g.mul(a).relu())
}

/// LayerCAM: `sum_k relu(g) a`.
pub fn layer_cam(a: &[Iv], g: &[Iv], k: usize) -> Vec<Iv> {
    elementwise(a, g, k, |g, a| g.relu().mul(a))
}

/// Score-CAM's weights from the masked scores: `softmax_k(s)` as `exp(s - max) / sum exp(s -
/// max)`; pytorch-grad-cam's `torch.nn.Softmax` computes the same.
pub fn score_cam(a: &[Iv], scores: &[Iv], k: usize) -> (Vec<Iv>, Vec<Iv>) {
    let max = Iv::max(scores);
    let e: Vec<Iv> = scores.iter().map(|s| s.sub(max).exp()).collect();
    let total = Iv::sum(e.iter().copied());
    let w: Vec<Iv> = e.iter().map(|e| e.div(total)).collect();
    (w.clone(), weighted(a, &w, k))
}

/// Ablation-CAM's weights: `(y - y_k) / y`.
pub fn ablation_cam(a: &[Iv], original: Iv, scores: &[Iv], k: usize) -> (Vec<Iv>, Vec<Iv>) {
    let w: Vec<Iv> = scores
        .iter()
        .map(|s| original.sub(*s).div(original))
        .collect();
    (w.clone(), weighted(a, &w, k))
}

/// FEM with two standard deviations: `th_k = mean_p a_kp + 2 std_p a_kp` (population),
/// `w_k = mean_p [a_kp > th_k]`. A float32 implementation (any summation order, two passes or
/// Welford) gets the mean within `gamma(p + 1) mean|a_k|`, the variance within
/// `gamma(p + 4) var` plus the square of the mean's error, hence the threshold within
/// `3 gamma(p + 4) (mean|a_k| + 2 std_k) + 2 u |th_k|` (plus the inputs' own widths, three times):
/// a pixel that close to the threshold may count or not, and widens `w_k` by `1/p`.
pub fn fem(a: &[Iv], k: usize) -> (Vec<Iv>, Vec<Iv>) {
    let p = a.len() / k;
    let w: Vec<Iv> = (0..k)
        .map(|c| {
            let channel = &a[c * p..(c + 1) * p];
            let mids: Vec<f64> = channel.iter().map(|v| v.mid()).collect();
            let mean = mids.iter().sum::<f64>() / p as f64;
            let mean_abs = mids.iter().map(|v| v.abs()).sum::<f64>() / p as f64;
            let std = (mids.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / p as f64).sqrt();
            let threshold = mean + 2.0 * std;
            let width = channel.iter().fold(0.0f64, |m, v| m.max(v.width()));
            let tolerance = 3.0 * super::gamma(p + 4) * (mean_abs + 2.0 * std)
                + 2.0 * super::gamma(1) * threshold.abs()
                + 3.0 * width;
            let sure = mids.iter().filter(|v| **v > threshold + tolerance).count();
            let maybe = mids
                .iter()
                .filter(|v| (**v - threshold).abs() <= tolerance)
                .count();
            Iv::hull(sure as f64 / p as f64, (sure + maybe) as f64 / p as f64)
        })
        .collect();
    (w.clone(), weighted(a, &w, k))
}

/// FEM's weights as an implementation chose them: each of `ours` must be a count over `p` (one
/// float32 rounding) inside [`fem`]'s enclosure, i.e. it may resolve a pixel within rounding of
/// the threshold either way and no other. The weights returned are `ours`, so the map's
/// enclosure is as narrow as the activations allow even where a pixel is that close.
///
/// # Panics
/// When a weight is not such a count.
pub fn fem_resolved(what: &str, a: &[Iv], k: usize, ours: &[f32]) -> Vec<Iv> {
    let p = a.len() / k;
    let (allowed, _) = fem(a, k);
    allowed
        .iter()
        .zip(ours)
        .enumerate()
        .map(|(c, (range, &w))| {
            let w = w as f64;
            let count = (w * p as f64).round();
            let point = Iv::hull(w * (1.0 - U), w * (1.0 + U));
            assert!(
                (count / p as f64 - w).abs() <= U * w && range.lo - U <= w && w <= range.hi + U,
                "{what}: channel {c}: weight {w} is not a count of pixels over the threshold \
                 inside [{}, {}] (of {p})",
                range.lo,
                range.hi
            );
            point
        })
        .collect()
}

impl Iv {
    /// The hull of `self`, `other` and the point `v`.
    pub fn hull_with(self, other: Iv, v: f64) -> Iv {
        Iv {
            lo: self.lo.min(other.lo).min(v),
            hi: self.hi.max(other.hi).max(v),
        }
    }
}

/// FullGrad's map where no bias term contributes (each bias's gradient constant over its
/// channel): the input term `sum_k norm(|a_k g_k|)`, each channel normalised on its own.
pub fn full_grad_input(a: &[Iv], g: &[Iv], k: usize) -> Vec<Iv> {
    let p = a.len() / k;
    let terms: Vec<Vec<Iv>> = (0..k)
        .map(|c| {
            let m: Vec<Iv> = (0..p)
                .map(|q| a[c * p + q].mul(g[c * p + q]).abs())
                .collect();
            super::normalize(&m)
        })
        .collect();
    (0..p)
        .map(|q| Iv::sum(terms.iter().map(|t| t[q])))
        .collect()
}

/// SmoothGrad-CAM++ where every draw's gradient is the same `g` (a linear head): `alpha_kp =
/// g^2 / (2 g^2 + sum_q a_kq g_kq^3 + 1e-8)`, `w_k = sum_p alpha_kp ReLU(g_kp)`, `map = sum_k w_k
/// a_k`.
pub fn smoothgrad_cam_pp(a: &[Iv], g: &[Iv], k: usize) -> (Vec<Iv>, Vec<Iv>) {
    let p = a.len() / k;
    let w: Vec<Iv> = (0..k)
        .map(|c| {
            let at = c * p..(c + 1) * p;
            let g2: Vec<Iv> = g[at.clone()].iter().map(|v| v.mul(*v)).collect();
            let g3: Vec<Iv> = g2
                .iter()
                .zip(&g[at.clone()])
                .map(|(s, v)| s.mul(*v))
                .collect();
            let spread = Iv::sum(a[at.clone()].iter().zip(&g3).map(|(a, t)| a.mul(*t)));
            Iv::sum((0..p).map(|q| {
                let den = g2[q].scale(2.0).add(spread).add_const(1e-8);
                g2[q].div(den).mul(g[c * p + q].relu())
            }))
        })
        .collect();
    (w.clone(), weighted(a, &w, k))
}
