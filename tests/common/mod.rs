//! Shared by the integration tests: deterministic data, host reads, and the error bounds every
//! tolerance comes from.
//!
//! # Where the tolerances come from
//!
//! Every comparison of floating-point results in these tests is a containment check against an
//! *enclosure* computed here in `f64`: an interval `[lo, hi]` that holds every value any
//! float32 evaluation of the formula can produce, from inputs within their own intervals, in any
//! summation order, on any CPU. The rules (Higham, *Accuracy and Stability of Numerical
//! Algorithms*, ch. 3) are one sentence each:
//!
//! - one float32 operation rounds its exact result by at most `u |x|`, `u = 2^-24`;
//! - a sum of `n` terms, in any order or blocking (SIMD lanes, threads, FMA), is within
//!   `gamma_(n+4) * sum |x_i|` of the exact sum, `gamma_n = n u / (1 - n u)` (the `+ 4` lets
//!   another implementation group up to four more operations into each term);
//! - an elementary function of the backend (`exp`) is within 8 float32 ulps, `8 u |x|`;
//! - a division by an interval that contains 0 is unbounded (the test must then fail, not pass).
//!
//! The `f64` arithmetic of the enclosure itself rounds by about `1e-16`, which [`Iv`] covers by
//! widening every result by `4 f64::EPSILON` relative.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

/// How closely two float32 evaluations of one network agree, relative to the largest magnitude
/// of the tensor they compute (activations, gradients, logits): the one assumption the
/// network-level checks rest on, checked directly against float64 references in
/// `tests/oracle.rs`. It is 30 times what we measure (PyTorch float32 vs float64: at most
/// 3.4e-6; ours on AVX-512, on AVX2 under valgrind and on ndarray alike), and a hundredth of
/// what a modelling error does (a wrong BatchNorm epsilon, padding or pooling mode moves
/// activations by 1e-2 or more).
pub const DELTA: f64 = 1e-4;

/// The unit roundoff of float32.
pub const U: f64 = 1.0 / (1u64 << 24) as f64;

/// `gamma_n = n u / (1 - n u)`: the relative bound of a float32 sum of `n` terms.
pub fn gamma(n: usize) -> f64 {
    let nu = n as f64 * U;
    assert!(nu < 0.5, "gamma_{n} is not small");
    nu / (1.0 - nu)
}

/// `len` values in `[-scale, scale)` from a fixed-seed LCG: the same numbers on every machine.
pub fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
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

/// A tensor of [`values`].
pub fn tensor<const D: usize>(
    seed: u64,
    shape: [usize; D],
    scale: f32,
    device: &Device,
) -> Tensor<D> {
    let len = shape.iter().product();
    Tensor::from_data(TensorData::new(values(seed, len, scale), shape), device)
}

/// The wgpu device, after checking that an adapter really exists (no silent skip); its name on
/// stderr (CI's is lavapipe, software Vulkan).
///
/// # Panics
/// Without a wgpu adapter: the `--ignored wgpu` tests need a Vulkan driver.
#[cfg(feature = "wgpu")]
pub fn wgpu_device() -> Device {
    let device = Device::wgpu(Default::default());
    let identity = device
        .identity()
        .expect("a wgpu adapter: install a Vulkan driver (lavapipe: mesa-vulkan-drivers)");
    eprintln!("wgpu adapter: {}", identity.name);
    device
}

/// A tensor's values on the host, as `f32`.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.without_autodiff()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// The largest absolute difference.
/// A fixture file's tensors by key: shape and values.
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

/// A fixture file's tensors and its metadata. Float32, float64 and int64 tensors; every value is
/// exact as a float64.
pub fn read_fixture(path: &Path) -> (Tensors, BTreeMap<String, String>) {
    use safetensors::{Dtype, SafeTensors};
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(key, view)| {
            let data = view.data();
            let values = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("{}: {key}: {other:?}", path.display()),
            };
            (key, (view.shape().to_vec(), values))
        })
        .collect();
    (tensors, metadata)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// An enclosure `[lo, hi]` of every float32 evaluation of a formula.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iv {
    pub lo: f64,
    pub hi: f64,
}

impl Iv {
    /// An exact value (a float32 input is exact).
    pub fn exact(v: f64) -> Self {
        Self { lo: v, hi: v }
    }

    /// A value known within `± e`.
    pub fn around(v: f64, e: f64) -> Self {
        assert!(e >= 0.0 && e.is_finite(), "uncertainty {e}");
        Self {
            lo: v - e,
            hi: v + e,
        }
    }

    /// The smallest enclosure of two values (for an input seen two ways).
    pub fn hull(a: f64, b: f64) -> Self {
        Self {
            lo: a.min(b),
            hi: a.max(b),
        }
    }

    /// The largest magnitude.
    pub fn mag(self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }

    pub fn width(self) -> f64 {
        self.hi - self.lo
    }

    pub fn mid(self) -> f64 {
        (self.lo + self.hi) / 2.0
    }

    pub fn contains(self, v: f64) -> bool {
        self.lo <= v && v <= self.hi
    }

    /// Widened by `rel` of its magnitude (one rounding: `rel = u`) plus the `f64` slack.
    pub fn round(self, rel: f64) -> Self {
        let e = (rel + 4.0 * f64::EPSILON) * self.mag();
        Self {
            lo: self.lo - e,
            hi: self.hi + e,
        }
    }

    pub fn add(self, o: Self) -> Self {
        Self {
            lo: self.lo + o.lo,
            hi: self.hi + o.hi,
        }
        .round(U)
    }

    pub fn sub(self, o: Self) -> Self {
        Self {
            lo: self.lo - o.hi,
            hi: self.hi - o.lo,
        }
        .round(U)
    }

    pub fn mul(self, o: Self) -> Self {
        let p = [
            self.lo * o.lo,
            self.lo * o.hi,
            self.hi * o.lo,
            self.hi * o.hi,
        ];
        Self {
            lo: p.iter().copied().fold(f64::INFINITY, f64::min),
            hi: p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
        .round(U)
    }

    /// Unbounded when `o` contains 0.
    pub fn div(self, o: Self) -> Self {
        if o.lo <= 0.0 && o.hi >= 0.0 {
            return Self {
                lo: f64::NEG_INFINITY,
                hi: f64::INFINITY,
            };
        }
        // The same four products and outward rounding as before: a product with the inverse.
        self.mul(Self {
            lo: 1.0 / o.hi,
            hi: 1.0 / o.lo,
        })
    }

    pub fn scale(self, c: f64) -> Self {
        self.mul(Self::exact(c))
    }

    pub fn add_const(self, c: f64) -> Self {
        self.add(Self::exact(c))
    }

    /// `|x|`, exact.
    pub fn abs(self) -> Self {
        if self.lo >= 0.0 {
            self
        } else if self.hi <= 0.0 {
            Self {
                lo: -self.hi,
                hi: -self.lo,
            }
        } else {
            Self {
                lo: 0.0,
                hi: self.mag(),
            }
        }
    }

    pub fn relu(self) -> Self {
        Self {
            lo: self.lo.max(0.0),
            hi: self.hi.max(0.0),
        }
    }

    /// The backend's `exp`, within 8 ulps.
    pub fn exp(self) -> Self {
        Self {
            lo: self.lo.exp(),
            hi: self.hi.exp(),
        }
        .round(8.0 * U)
    }

    /// A float32 sum of the terms in any order: the exact interval sum widened by
    /// `gamma_n * sum |x_i|`.
    pub fn sum(terms: impl IntoIterator<Item = Iv>) -> Self {
        let (mut lo, mut hi, mut abs, mut n) = (0.0, 0.0, 0.0, 0usize);
        for t in terms {
            lo += t.lo;
            hi += t.hi;
            abs += t.mag();
            n += 1;
        }
        let e = gamma(n + 4) * abs + 4.0 * f64::EPSILON * abs;
        Self {
            lo: lo - e,
            hi: hi + e,
        }
    }

    /// A float32 mean of the terms: their sum times `1 / n` (two more roundings).
    pub fn mean(terms: &[Iv]) -> Self {
        Self::sum(terms.iter().copied())
            .scale(1.0 / terms.len() as f64)
            .round(U)
    }

    pub fn min(terms: &[Iv]) -> Self {
        Self {
            lo: terms.iter().map(|t| t.lo).fold(f64::INFINITY, f64::min),
            hi: terms.iter().map(|t| t.hi).fold(f64::INFINITY, f64::min),
        }
    }

    pub fn max(terms: &[Iv]) -> Self {
        Self {
            lo: terms.iter().map(|t| t.lo).fold(f64::NEG_INFINITY, f64::max),
            hi: terms.iter().map(|t| t.hi).fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// pytorch-grad-cam's `scale_cam_image` normalisation (ours too): `(x - min) / (max - min +
/// 1e-7)` as `x -= min; x /= (max + 1e-7)`, over one map.
pub fn normalize(map: &[Iv]) -> Vec<Iv> {
    let min = Iv::min(map);
    let shifted: Vec<Iv> = map.iter().map(|v| v.sub(min)).collect();
    let range = Iv::max(&shifted).add_const(1e-7);
    shifted.iter().map(|v| v.div(range)).collect()
}

/// Bilinear resize with half-pixel centres (`align_corners = false`, OpenCV's INTER_LINEAR) of
/// a row-major `[h, w]` map to `[height, width]`: each output is a convex combination of four
/// inputs with exactly known weights, computed in float32 as a 4-term sum of products.
pub fn upsample(map: &[Iv], [h, w]: [usize; 2], [height, width]: [usize; 2]) -> Vec<Iv> {
    let axis = |out: usize, size: usize, len: usize| {
        let src = ((out as f64 + 0.5) * size as f64 / len as f64 - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(size - 1);
        let i1 = (i0 + 1).min(size - 1);
        let t = (src - i0 as f64).min(1.0);
        (i0, i1, t)
    };
    let mut out = Vec::with_capacity(height * width);
    for y in 0..height {
        let (y0, y1, ty) = axis(y, h, height);
        for x in 0..width {
            let (x0, x1, tx) = axis(x, w, width);
            let corners = [
                (y0, x0, (1.0 - ty) * (1.0 - tx)),
                (y0, x1, (1.0 - ty) * tx),
                (y1, x0, ty * (1.0 - tx)),
                (y1, x1, ty * tx),
            ];
            // The weights themselves are float32 results of a few operations: 4 u each.
            out.push(Iv::sum(corners.iter().map(|&(yy, xx, c)| {
                map[yy * w + xx].mul(Iv::around(c, 4.0 * U * c.abs()))
            })));
        }
    }
    out
}

/// pytorch-grad-cam's pipeline from a signed map to its heatmap, for one layer: ReLU (if on),
/// normalise, upsample, clip at 0 (if on), normalise again.
pub fn pipeline(
    raw: &[Iv],
    layer: [usize; 2],
    input: [usize; 2],
    relu: bool,
) -> (Vec<Iv>, Vec<Iv>) {
    let r: Vec<Iv> = raw
        .iter()
        .map(|v| if relu { v.relu() } else { *v })
        .collect();
    let cam = normalize(&r);
    let up = upsample(&cam, layer, input);
    let up: Vec<Iv> = up
        .iter()
        .map(|v| if relu { v.relu() } else { *v })
        .collect();
    (cam, normalize(&up))
}

/// pytorch-grad-cam's fusion of several layers' upsampled maps: clip at 0 (if the ReLU is on),
/// average, normalise.
pub fn fuse(layers: &[Vec<Iv>], relu: bool) -> Vec<Iv> {
    fuse_by(layers, relu, Iv::mean)
}

/// torchcam's fusion rule in our pipeline ([`gradcam::Fusion::Max`]): clip at 0 (if the ReLU
/// is on), the pixel-wise maximum, normalise.
#[allow(dead_code)] // used by some test binaries only
pub fn fuse_max(layers: &[Vec<Iv>], relu: bool) -> Vec<Iv> {
    fuse_by(layers, relu, Iv::max)
}

/// Clip each layer's value at 0 (if the ReLU is on), `combine` them pixel by pixel, normalise.
fn fuse_by(layers: &[Vec<Iv>], relu: bool, combine: fn(&[Iv]) -> Iv) -> Vec<Iv> {
    let n = layers[0].len();
    let fused: Vec<Iv> = (0..n)
        .map(|i| {
            let terms: Vec<Iv> = layers
                .iter()
                .map(|l| if relu { l[i].relu() } else { l[i] })
                .collect();
            combine(&terms)
        })
        .collect();
    normalize(&fused)
}

/// Where a computed map leaves its enclosure: `(index, value, enclosure)` of the worst excess,
/// or `None` when every value lies inside.
pub fn outside(values: &[f32], enclosure: &[Iv]) -> Option<(usize, f32, Iv)> {
    assert_eq!(values.len(), enclosure.len());
    values
        .iter()
        .zip(enclosure)
        .enumerate()
        .filter(|(_, (v, e))| !e.contains(**v as f64))
        .map(|(i, (v, e))| {
            let excess = (e.lo - *v as f64).max(*v as f64 - e.hi);
            (i, *v, *e, excess)
        })
        .max_by(|a, b| a.3.total_cmp(&b.3))
        .map(|(i, v, e, _)| (i, v, e))
}

/// Assert that every value lies in its enclosure, and that the enclosure is informative: no
/// wider than `max_width` (so that the check can fail).
#[track_caller]
pub fn assert_inside(what: &str, values: &[f32], enclosure: &[Iv], max_width: f64) {
    if let Some((i, v, e)) = outside(values, enclosure) {
        panic!(
            "{what}: value {i} = {v} lies outside its enclosure [{}, {}]",
            e.lo, e.hi
        );
    }
    let widest = enclosure.iter().map(|e| e.width()).fold(0.0, f64::max);
    assert!(
        widest <= max_width,
        "{what}: the enclosure is {widest} wide, more than {max_width}: it could not catch a bug"
    );
}

pub mod methods;
pub mod models;

/// [`assert_inside`] where a few values may be genuinely uncertain (a ReLU unit at its kink
/// widens the enclosure around the pixels it reaches): the enclosure must be informative for
/// nine values in ten, no wider than `max_width` there.
#[track_caller]
pub fn assert_inside_mostly_narrow(what: &str, values: &[f32], enclosure: &[Iv], max_width: f64) {
    if let Some((i, v, e)) = outside(values, enclosure) {
        panic!(
            "{what}: value {i} = {v} lies outside its enclosure [{}, {}]",
            e.lo, e.hi
        );
    }
    let mut widths: Vec<f64> = enclosure.iter().map(|e| e.width()).collect();
    widths.sort_by(f64::total_cmp);
    let typical = widths[widths.len() * 9 / 10];
    assert!(
        typical <= max_width,
        "{what}: nine values in ten have enclosures up to {typical} wide, more than {max_width}"
    );
}
