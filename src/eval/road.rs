//! ROAD, RemOve And Debias: Rong et al., "A Consistent and Efficient Evaluation Strategy for
//! Attribution Methods", ICML 2022 ([arXiv:2202.00449](https://arxiv.org/abs/2202.00449)), as
//! pytorch-grad-cam 1.5.7's `metrics/road.py`: the pixels a map ranks highest (or lowest) are
//! replaced by a noisy linear imputation from their neighbours, and the class probability's change
//! is the score.

use burn::tensor::{Tensor, TensorData};

use super::faithfulness::{check_classes, check_maps, probabilities};
use crate::error::{GradCamError, Result};
use crate::host::read;
use crate::methods::normal_noise;
use crate::model::GradCam;

/// Which pixels ROAD removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoadOrder {
    /// MoRF: the pixels at or above the map's `p`-th percentile (a faithful map makes the
    /// probability drop).
    MostRelevantFirst,
    /// LeRF: the pixels at or below its `(100 - p)`-th percentile, as pytorch-grad-cam ranks
    /// `1 - map` (a faithful map keeps the probability).
    LeastRelevantFirst,
}

/// ROAD's settings: the percentiles averaged over, and the imputation's noise.
///
/// ```
/// use gradcam::eval::RoadConfig;
///
/// let single = RoadConfig::new().with_percentiles(vec![80.0]); // pgc's ROADMostRelevantFirst()
/// let averaged = RoadConfig::new(); // 10, 20, ..., 90: pgc's ...Average and ROADCombined
/// let exact = RoadConfig::new().with_noise(0.0); // the linear imputation alone
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RoadConfig {
    /// Percentiles of the map, each in `[0, 100]`; the score is the mean over them.
    pub percentiles: Vec<f64>,
    /// The standard deviation of the Gaussian noise added to each imputed value, in the input's
    /// units (pytorch-grad-cam's 0.01).
    pub noise: f32,
    /// The seed the noise is drawn from (pytorch-grad-cam draws from torch's global state).
    pub seed: u64,
}

impl Default for RoadConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RoadConfig {
    /// Percentiles 10, 20, ..., 90, noise 0.01, seed 0.
    pub fn new() -> Self {
        Self {
            percentiles: (1..10).map(|p| f64::from(p) * 10.0).collect(),
            noise: 0.01,
            seed: 0,
        }
    }

    /// The percentiles averaged over.
    pub fn with_percentiles(mut self, percentiles: Vec<f64>) -> Self {
        self.percentiles = percentiles;
        self
    }

    /// The imputation noise's standard deviation (0: none).
    pub fn with_noise(mut self, noise: f32) -> Self {
        self.noise = noise;
        self
    }

    /// The seed of the imputation noise.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// ROAD: for each image, the mean over `config`'s percentiles of its class probability after
/// imputing the pixels `order` removes, minus the probability before (pytorch-grad-cam's
/// `ROADMostRelevantFirst` / `ROADLeastRelevantFirst` and their averages, with
/// `ClassifierOutputSoftmaxTarget`s). A pixel is kept where its rank value (`map`, or `1 - map`
/// for least-relevant-first) is below the percentile (numpy's linear interpolation); every
/// removed pixel of every channel gets the value that makes it the weighted mean of its eight
/// neighbours (axial 1/6, diagonal 1/12, kept neighbours fixed: a sparse linear system, solved
/// here by conjugate gradients in `f64`), plus `noise` times a standard normal value drawn from
/// `seed`, the image, the percentile's index (plus the percentile count for least-relevant-first)
/// and the position.
///
/// # Shapes
/// - `images`: `[b, c, h, w]`
/// - `maps`: `[b, h, w]` (heatmaps in `[0, 1]`)
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) for maps that do not match the images, a
/// class count other than one per image, no percentiles or one outside `[0, 100]`;
/// [`InputError::ClassOutOfRange`](crate::InputError::ClassOutOfRange); the model's errors.
pub fn road<M: GradCam>(
    model: &M,
    images: Tensor<4>,
    maps: Tensor<3>,
    classes: &[usize],
    order: RoadOrder,
    config: &RoadConfig,
) -> Result<Vec<f32>> {
    let [b, ..] = images.dims();
    check_classes(b, classes.len())?;
    let inputs = road_inputs(images.clone(), maps, order, config)?; // checks the maps, percentiles
    let before = probabilities(model, images, classes, b)?;
    let mut sums = vec![0.0f64; b];
    for imputed in inputs {
        let after = probabilities(model, imputed, classes, b)?;
        for (sum, (a, y)) in sums.iter_mut().zip(after.iter().zip(&before)) {
            *sum += f64::from(a - y);
        }
    }
    let count = config.percentiles.len() as f64;
    Ok(sums.into_iter().map(|s| (s / count) as f32).collect())
}

/// The inputs [`road`] scores: for each of `config`'s percentiles, the images with the pixels
/// `order` removes imputed (pytorch-grad-cam's `return_visualization`).
///
/// # Shapes
/// - `images`: `[b, c, h, w]`; `maps`: `[b, h, w]`
/// - returns one `[b, c, h, w]` per percentile
///
/// # Errors
/// As [`road`], but for the classes.
pub fn road_inputs(
    images: Tensor<4>,
    maps: Tensor<3>,
    order: RoadOrder,
    config: &RoadConfig,
) -> Result<Vec<Tensor<4>>> {
    let [b, c, h, w] = images.dims();
    check_maps(&images, &maps)?;
    check_percentiles(&config.percentiles)?;
    let pixels = read(images.clone()); // [b * c * h * w]
    let ranks: Vec<f32> = read(maps)
        .into_iter()
        .map(|v| match order {
            RoadOrder::MostRelevantFirst => v,
            RoadOrder::LeastRelevantFirst => 1.0 - v,
        })
        .collect(); // [b * h * w]
    let first_draw = match order {
        RoadOrder::MostRelevantFirst => 0,
        RoadOrder::LeastRelevantFirst => config.percentiles.len(),
    };
    let chw = c * h * w;
    let mut inputs = Vec::with_capacity(config.percentiles.len());
    for (index, &percentile) in config.percentiles.iter().enumerate() {
        let mut imputed = Vec::with_capacity(b * chw);
        for image in 0..b {
            let rank = &ranks[image * h * w..(image + 1) * h * w];
            let threshold = numpy_percentile(rank, percentile);
            let keep: Vec<bool> = rank.iter().map(|v| *v < threshold).collect();
            let noise =
                normal_noise(config.seed, image, first_draw + index, 0).map(|z| z * config.noise);
            let original = &pixels[image * chw..(image + 1) * chw];
            imputed.extend(noisy_linear_imputation(original, [c, h, w], &keep, noise));
        }
        inputs.push(Tensor::<4>::from_data(
            TensorData::new(imputed, [b, c, h, w]),
            (&images.device(), images.dtype()),
        ));
    }
    Ok(inputs)
}

/// At least one percentile, each in `[0, 100]`.
fn check_percentiles(percentiles: &[f64]) -> Result<()> {
    if percentiles.is_empty() || percentiles.iter().any(|p| !(0.0..=100.0).contains(p)) {
        return Err(GradCamError::argument(format!(
            "ROAD percentiles {percentiles:?}; give at least one, each in [0, 100]"
        )));
    }
    Ok(())
}

/// ROAD combined (pytorch-grad-cam's `ROADCombined`): `(LeRF - MoRF) / 2` of the two [`road`]
/// scores; higher is more faithful.
///
/// # Shapes
/// As [`road`].
///
/// # Errors
/// As [`road`].
pub fn road_combined<M: GradCam>(
    model: &M,
    images: Tensor<4>,
    maps: Tensor<3>,
    classes: &[usize],
    config: &RoadConfig,
) -> Result<Vec<f32>> {
    let least = road(
        model,
        images.clone(),
        maps.clone(),
        classes,
        RoadOrder::LeastRelevantFirst,
        config,
    )?;
    let most = road(
        model,
        images,
        maps,
        classes,
        RoadOrder::MostRelevantFirst,
        config,
    )?;
    Ok(least
        .iter()
        .zip(&most)
        .map(|(l, m)| (l - m) / 2.0)
        .collect())
}

/// numpy's `percentile(values, p)` (linear interpolation) of float32 values, as numpy computes
/// it: the two neighbours' difference in float32, the interpolation in `f64` from the nearer
/// one, rounded to float32.
fn numpy_percentile(values: &[f32], p: f64) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let position = p / 100.0 * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let t = position - below as f64;
    let (a, b) = (sorted[below], sorted[above]);
    let difference = f64::from(b - a);
    let value = if t >= 0.5 {
        f64::from(b) - difference * (1.0 - t)
    } else {
        f64::from(a) + difference * t
    };
    value as f32
}

/// The eight neighbours `(row, column)` offsets and weights of the imputation.
const NEIGHBOURS: [((isize, isize), f64); 8] = [
    ((1, 1), 1.0 / 12.0),
    ((0, 1), 1.0 / 6.0),
    ((-1, 1), 1.0 / 12.0),
    ((1, -1), 1.0 / 12.0),
    ((0, -1), 1.0 / 6.0),
    ((-1, -1), 1.0 / 12.0),
    ((1, 0), 1.0 / 6.0),
    ((-1, 0), 1.0 / 6.0),
];

/// One image with every pixel not in `keep` imputed: for each channel the solution of
/// `S_p x_p - sum_(removed q) w_pq x_q = sum_(kept q) w_pq v_q` (`S_p` the weights of `p`'s
/// neighbours inside the image), plus the next value of `noise` per removed pixel, channel by
/// channel in raster order (pytorch-grad-cam's order of its noise).
///
/// The system is symmetric and positive definite (weakly diagonally dominant, each connected
/// region of removed pixels touching a kept one), so conjugate gradients converge; they run
/// matrix-free on the stencil, to a residual of `1e-13` of the right-hand side's. Written here
/// rather than assembling a matrix for a sparse direct solver (pytorch-grad-cam's `spsolve`): no
/// dependency, and the stencil costs 8 multiply-adds per pixel and iteration.
///
/// # Shapes
/// - `image`: `[c, h, w]` flat; `keep`: `[h, w]` flat; returns `[c, h, w]` flat
fn noisy_linear_imputation(
    image: &[f32],
    [c, h, w]: [usize; 3],
    keep: &[bool],
    mut noise: impl Iterator<Item = f32>,
) -> Vec<f32> {
    let removed: Vec<usize> = (0..h * w).filter(|p| !keep[*p]).collect();
    let neighbours = |p: usize| {
        let (row, column) = ((p / w) as isize, (p % w) as isize);
        NEIGHBOURS.iter().filter_map(move |&((dr, dc), weight)| {
            let (r, col) = (row + dr, column + dc);
            (r >= 0 && col >= 0 && (r as usize) < h && (col as usize) < w)
                .then(|| (r as usize * w + col as usize, weight))
        })
    };
    let diagonal: Vec<f64> = removed
        .iter()
        .map(|&p| neighbours(p).map(|(_, wt)| wt).sum())
        .collect();
    // Each removed pixel's place among the unknowns (`None` for a kept pixel).
    let mut slot = vec![None; h * w];
    for (i, &p) in removed.iter().enumerate() {
        slot[p] = Some(i);
    }
    let mut out = image.to_vec();
    for channel in 0..c {
        let values = &image[channel * h * w..(channel + 1) * h * w];
        let rhs: Vec<f64> = removed
            .iter()
            .map(|&p| {
                neighbours(p)
                    .filter(|(q, _)| keep[*q])
                    .map(|(q, wt)| wt * f64::from(values[q]))
                    .sum()
            })
            .collect();
        let x = conjugate_gradients(&removed, &slot, &diagonal, &rhs, &neighbours);
        for (&p, v) in removed.iter().zip(x) {
            out[channel * h * w + p] = v as f32 + noise.next().unwrap_or(0.0);
        }
    }
    out
}

/// Conjugate gradients for the imputation's system over the `removed` pixels (`slot`: each
/// pixel's place among the unknowns).
fn conjugate_gradients<I: Iterator<Item = (usize, f64)>>(
    removed: &[usize],
    slot: &[Option<usize>],
    diagonal: &[f64],
    rhs: &[f64],
    neighbours: &impl Fn(usize) -> I,
) -> Vec<f64> {
    let n = removed.len();
    let apply = |x: &[f64]| -> Vec<f64> {
        removed
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let off: f64 = neighbours(p)
                    .filter_map(|(q, wt)| slot[q].map(|j| wt * x[j]))
                    .sum();
                diagonal[i] * x[i] - off
            })
            .collect()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut x = vec![0.0; n];
    let mut r = rhs.to_vec();
    let mut d = r.clone();
    let mut rr = dot(&r, &r);
    let stop = 1e-26 * rr; // a residual of 1e-13 of the right-hand side's, squared
    for _ in 0..10 * n.max(1) {
        if rr <= stop || rr == 0.0 {
            break;
        }
        let ad = apply(&d);
        let step = rr / dot(&d, &ad);
        for i in 0..n {
            x[i] += step * d[i];
            r[i] -= step * ad[i];
        }
        let next = dot(&r, &r);
        let beta = next / rr;
        rr = next;
        for i in 0..n {
            d[i] = r[i] + beta * d[i];
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_imputation_makes_each_removed_pixel_its_neighbours_weighted_mean() {
        // A 7 x 6 ramp with a removed block and a removed corner: the solution satisfies every
        // equation (residual of the equations within 1e-9 of the values' scale), and a linear
        // ramp, which is its neighbours' weighted mean away from the border, is reproduced.
        let (h, w) = (7, 6);
        let image: Vec<f32> = (0..h * w)
            .map(|p| (p / w) as f32 * 0.5 + (p % w) as f32)
            .collect();
        let mut keep = vec![true; h * w];
        for p in [14, 15, 20, 21, 26, 27, 0, 1, 6] {
            keep[p] = false;
        }
        let out = noisy_linear_imputation(&image, [1, h, w], &keep, std::iter::empty());
        for p in (0..h * w).filter(|p| !keep[*p]) {
            let (row, column) = ((p / w) as isize, (p % w) as isize);
            let (mut total, mut weights) = (0.0f64, 0.0f64);
            for ((dr, dc), weight) in NEIGHBOURS {
                let (r, c) = (row + dr, column + dc);
                if r >= 0 && c >= 0 && (r as usize) < h && (c as usize) < w {
                    total += weight * f64::from(out[r as usize * w + c as usize]);
                    weights += weight;
                }
            }
            let mean = total / weights;
            assert!(
                (f64::from(out[p]) - mean).abs() < 1e-5,
                "pixel {p}: {} vs {mean}",
                out[p]
            );
        }
        // The inner block (rows 2-4, columns 2-3) is surrounded on every side: the ramp there.
        for p in [14, 15, 20, 21, 26, 27] {
            assert!(
                (out[p] - image[p]).abs() < 1e-5,
                "pixel {p}: {} vs {}",
                out[p],
                image[p]
            );
        }
        // The kept pixels are untouched; a wrong value fails the mean equation.
        assert!(
            keep.iter()
                .zip(&out)
                .zip(&image)
                .all(|((k, o), i)| !k || o == i)
        );
        let mut wrong = out.clone();
        wrong[20] += 0.01;
        let total: f64 = NEIGHBOURS
            .iter()
            .map(|((dr, dc), wt)| wt * f64::from(wrong[((3 + dr) * 6 + (2 + dc)) as usize]))
            .sum();
        assert!((f64::from(wrong[20]) - total).abs() > 1e-3);
    }

    #[test]
    fn the_percentile_is_numpys_linear_interpolation() {
        // numpy.percentile([0, 1, 2, 3, 4], [10, 25, 62.5]) = [0.4, 1.0, 2.5].
        let values = [3.0f32, 0.0, 4.0, 1.0, 2.0];
        for (p, expected) in [
            (10.0, 0.4f32),
            (25.0, 1.0),
            (62.5, 2.5),
            (100.0, 4.0),
            (0.0, 0.0),
        ] {
            assert_eq!(numpy_percentile(&values, p), expected, "{p}");
        }
    }
}
