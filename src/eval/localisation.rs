//! Ground-truth localisation metrics: pointing game, energy in the box, threshold-box IoU.

use burn::tensor::activation::relu;
use burn::tensor::{Int, Tensor};

use super::bbox::{BBox, box_masks};
use super::check_boxes;
use crate::error::Result;
use crate::host::read;

/// Pointing game: whether each map's maximum (the first, on ties) lies inside its box.
///
/// # Shapes
/// - `maps`: `[b, h, w]`, one box per map
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) unless there is one
/// box per map.
pub fn pointing_game(maps: Tensor<3>, boxes: &[BBox]) -> Result<Vec<bool>> {
    let [b, h, w] = maps.dims();
    check_boxes(b, boxes.len())?;
    let index: Tensor<2, Int> = maps.reshape([b, h * w]).argmax(1); // [b, 1]
    let index = index
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("i64 indices");
    Ok(index
        .iter()
        .zip(boxes)
        .map(|(&i, bx)| bx.contains(i as usize % w, i as usize / w))
        .collect())
}

/// Energy-based pointing game: the share of each map's positive mass inside its box,
/// `sum(relu(map) * box) / sum(relu(map))`; 0 for a map without positive mass. With another
/// object's box it is the off-class energy.
///
/// # Shapes
/// - `maps`: `[b, h, w]`, one box per map
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) unless there is one
/// box per map.
pub fn energy_in_box(maps: Tensor<3>, boxes: &[BBox]) -> Result<Vec<f32>> {
    let [b, h, w] = maps.dims();
    check_boxes(b, boxes.len())?;
    let positive = relu(maps).reshape([b, h * w]); // [b, h * w]
    let masks = box_masks(boxes, [h, w], &positive.device()).reshape([b, h * w]);
    let inside = (positive.clone() * masks).sum_dim(1); // [b, 1]
    let total = positive.sum_dim(1); // [b, 1]
    let inside = read(inside);
    Ok(read(total)
        .iter()
        .zip(inside)
        .map(|(t, i)| if *t > 0.0 { i / t } else { 0.0 })
        .collect())
}

/// The Grad-CAM paper's localisation protocol: keep the pixels at or above `threshold` (0.15 in
/// the paper) times the map's maximum, take the bounding box of the largest 4-connected
/// component, and return its IoU with the ground-truth box. A map whose maximum is not positive
/// localises nothing (IoU 0). The threshold runs on the device; the components on the host.
///
/// # Shapes
/// - `maps`: `[b, h, w]`, one box per map
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) unless there is one
/// box per map and `threshold` is finite.
pub fn localisation_iou(maps: Tensor<3>, boxes: &[BBox], threshold: f32) -> Result<Vec<f32>> {
    let [b, h, w] = maps.dims();
    check_boxes(b, boxes.len())?;
    if !threshold.is_finite() {
        return Err(crate::GradCamError::argument(format!(
            "threshold {threshold}"
        )));
    }
    let flat = maps.reshape([b, h * w]);
    let max = flat.clone().max_dim(1); // [b, 1]
    let keep = flat.greater_equal(max.clone() * threshold).float(); // [b, h * w]
    let keep = read(keep);
    let max = read(max);
    Ok((0..b)
        .map(|i| {
            if max[i] <= 0.0 {
                return 0.0;
            }
            let mask: Vec<bool> = keep[i * h * w..(i + 1) * h * w]
                .iter()
                .map(|v| *v > 0.5)
                .collect();
            largest_component_box(&mask, [h, w]).map_or(0.0, |found| found.iou(&boxes[i]))
        })
        .collect())
}

/// The bounding box of the largest 4-connected set of `true` pixels.
pub(crate) fn largest_component_box(mask: &[bool], [h, w]: [usize; 2]) -> Option<BBox> {
    let mut seen = vec![false; mask.len()];
    let mut best: Option<(usize, BBox)> = None;
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut size, mut bx) = (
            0,
            BBox {
                x0: w,
                y0: h,
                x1: 0,
                y1: 0,
            },
        );
        while let Some(p) = stack.pop() {
            let (x, y) = (p % w, p / w);
            size += 1;
            bx = BBox {
                x0: bx.x0.min(x),
                y0: bx.y0.min(y),
                x1: bx.x1.max(x + 1),
                y1: bx.y1.max(y + 1),
            };
            let neighbours = [
                (x > 0).then(|| p - 1),
                (x + 1 < w).then(|| p + 1),
                (y > 0).then(|| p - w),
                (y + 1 < h).then(|| p + w),
            ];
            for q in neighbours.into_iter().flatten() {
                if mask[q] && !seen[q] {
                    seen[q] = true;
                    stack.push(q);
                }
            }
        }
        if best.is_none_or(|(s, _)| size > s) {
            best = Some((size, bx));
        }
    }
    best.map(|(_, bx)| bx)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn maps(values: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    const LEFT: BBox = BBox {
        x0: 0,
        y0: 0,
        x1: 2,
        y1: 4,
    };
    const RIGHT: BBox = BBox {
        x0: 2,
        y0: 0,
        x1: 4,
        y1: 4,
    };

    /// Two 4x4 maps: the first peaks at (3, 1) (right half), the second is flat negative.
    fn two() -> Tensor<3> {
        let mut a = vec![0.0f32; 16];
        a[4 + 3] = 4.0; // (x 3, y 1)
        a[2 * 4] = 1.0; // (x 0, y 2)
        a[0] = -3.0;
        maps([a, vec![-1.0; 16]].concat(), [2, 4, 4])
    }

    #[test]
    fn pointing_game_checks_the_maximum() {
        assert_eq!(
            pointing_game(two(), &[RIGHT, LEFT]).unwrap(),
            vec![true, true]
        ); // flat: first pixel
        assert_eq!(
            pointing_game(two(), &[LEFT, RIGHT]).unwrap(),
            vec![false, false]
        );
    }

    #[test]
    fn energy_counts_positive_mass_only() {
        let e = energy_in_box(two(), &[RIGHT, LEFT]).unwrap();
        assert!((e[0] - 0.8).abs() < 1e-6, "{e:?}"); // 4 of 5 positive units on the right
        assert_eq!(e[1], 0.0); // no positive mass at all
        let off = energy_in_box(two(), &[LEFT, RIGHT]).unwrap();
        assert!((off[0] - 0.2).abs() < 1e-6);
    }

    #[test]
    fn localisation_boxes_the_largest_component_above_the_threshold() {
        // A 3-pixel blob at the top left and a single brighter pixel far away.
        let mut a = vec![0.0f32; 25];
        for p in [0, 1, 5] {
            a[p] = 0.5;
        }
        a[24] = 1.0;
        let target = BBox {
            x0: 0,
            y0: 0,
            x1: 2,
            y1: 2,
        };
        let ious = localisation_iou(maps(a, [1, 5, 5]), &[target], 0.15).unwrap();
        assert!((ious[0] - 1.0).abs() < 1e-6, "{ious:?}");
        let none = localisation_iou(maps(vec![-1.0; 4], [1, 2, 2]), &[LEFT], 0.15).unwrap();
        assert_eq!(none, vec![0.0]);
        assert_eq!(largest_component_box(&[false; 4], [2, 2]), None);
    }

    #[test]
    fn a_box_count_that_differs_from_the_maps_is_an_error() {
        assert!(pointing_game(two(), &[LEFT]).is_err());
        assert!(energy_in_box(two(), &[LEFT, LEFT, LEFT]).is_err());
        assert!(localisation_iou(two(), &[], 0.15).is_err());
        assert!(localisation_iou(two(), &[LEFT, LEFT], f32::NAN).is_err());
    }
}
