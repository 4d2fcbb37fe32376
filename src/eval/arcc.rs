//! ARCC: the harmonic mean of a map's Coherency, its simplicity (`1 - Complexity`) and its ROAD
//! score (Poppi et al., "Revisiting the Evaluation of Class Activation Mapping for
//! Explainability", 2021, [arXiv:2104.10252](https://arxiv.org/abs/2104.10252), for Coherency and
//! Complexity), as pytorch-grad-cam 1.5.7's `metrics/arcc.py`.

use burn::tensor::Tensor;

use super::faithfulness::{check_classes, check_maps};
use super::road::{RoadConfig, road_combined};
use crate::error::Result;
use crate::explainer::Explainer;
use crate::host::read;
use crate::model::GradCam;
use crate::target::Targets;

/// One image's ARCC and its three parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arcc {
    /// `3 / (1 / (coherency + 1e-8) + 1 / (1 - complexity + 1e-8) + 1 / (road + 1e-8))`.
    pub arcc: f32,
    /// `(rho + 1) / 2`, `rho` the Pearson correlation of the map with the map of the image
    /// multiplied by it (same explainer and class).
    pub coherency: f32,
    /// The map's mean absolute value.
    pub complexity: f32,
    /// [`road_combined`] times 2, clipped to `[0, 1]`.
    pub road: f32,
}

/// ARCC of each image's heatmap `maps` for its class, with `explainer` (the method that made
/// the maps) explaining the masked images for Coherency, and ROAD combined over the percentiles
/// 20, 40, 60, 80 (with `road`'s noise and seed). pytorch-grad-cam's `ARCC` scores ROAD and
/// the re-explanation with the same targets; here the re-explanation explains each class's logit
/// (the explainer's [`Target::Class`](crate::Target::Class)) and ROAD its softmax probability (as
/// every model-based metric of [`eval`](crate::eval)): equal to pytorch-grad-cam's with logit
/// targets for the CAM and softmax targets for ROAD. (Its docstring calls the mean geometric;
/// its code, and this, take the harmonic one.)
///
/// # Shapes
/// - `images`: `[b, c, h, w]`
/// - `maps`: `[b, h, w]` in `[0, 1]`
///
/// # Errors
/// As [`road_combined`] and [`Explainer::explain`].
pub fn arcc<M: GradCam>(
    explainer: &Explainer<M>,
    images: Tensor<4>,
    maps: Tensor<3>,
    classes: &[usize],
    road: &RoadConfig,
) -> Result<Vec<Arcc>> {
    let [b, _, h, w] = images.dims();
    check_classes(b, classes.len())?;
    check_maps(&images, &maps)?;
    let masked = images.clone() * maps.clone().unsqueeze_dim::<4>(1); // [b, c, h, w]
    let again = explainer.explain(masked, &Targets::one_per_image(classes.to_vec()))?;
    let again = read(again.heatmap.reshape([b, h * w])); // [b * h * w]
    let config = road.clone().with_percentiles(vec![20.0, 40.0, 60.0, 80.0]);
    let roads = road_combined(explainer.model(), images, maps.clone(), classes, &config)?;
    let maps = read(maps.reshape([b, h * w]));
    let p = h * w;
    Ok((0..b)
        .map(|i| {
            let map = &maps[i * p..(i + 1) * p];
            let coherency = ((pearson(&again[i * p..(i + 1) * p], map) + 1.0) / 2.0) as f32;
            let complexity =
                (map.iter().map(|v| f64::from(v.abs())).sum::<f64>() / p as f64) as f32;
            let road = (roads[i] * 2.0).clamp(0.0, 1.0);
            let inverse = 1.0 / (f64::from(coherency) + 1e-8)
                + 1.0 / (1.0 - f64::from(complexity) + 1e-8)
                + 1.0 / (f64::from(road) + 1e-8);
            Arcc {
                arcc: (3.0 / inverse) as f32,
                coherency,
                complexity,
                road,
            }
        })
        .collect())
}

/// pytorch-grad-cam's Pearson correlation: the covariance over the product of the standard
/// deviations plus `1e-8` (both with `n - 1`).
fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let mean = |x: &[f32]| x.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(*x) - ma, f64::from(*y) - mb);
        cov += dx * dy;
        va += dx * dx;
        vb += dy * dy;
    }
    let scale = (n - 1.0).max(1.0);
    (cov / scale) / ((va / scale).sqrt() * (vb / scale).sqrt() + 1e-8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_is_one_for_a_positive_affine_copy_and_minus_one_for_a_negative() {
        let a = [0.1f32, 0.7, 0.3, 0.9];
        let up: Vec<f32> = a.iter().map(|v| 2.0 * v + 1.0).collect();
        let down: Vec<f32> = a.iter().map(|v| 1.0 - v).collect();
        assert!((pearson(&a, &up) - 1.0).abs() < 1e-6);
        assert!((pearson(&a, &down) + 1.0).abs() < 1e-6);
        assert!(
            pearson(&a, &[0.5, 0.5, 0.5, 0.5]).abs() < 1e-12,
            "a constant: 0 by the 1e-8"
        );
    }
}
