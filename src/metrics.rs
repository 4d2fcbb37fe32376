//! Faithfulness and localisation metrics for heatmaps: batched tensor ops on the maps' device.
//!
//! Ground-truth metrics (need a box per map): [`pointing_game`], [`energy_in_box`] (also the
//! off-class energy, with another object's box), [`localisation_iou`] (the Grad-CAM paper's
//! protocol). Model-based metrics (need the model): [`deletion_insertion`] with [`auc`], and
//! [`confidence_change`] for Average Drop and Increase in Confidence.
//!
//! What a ReLU on the map cannot change: the position of the maximum at the layer's resolution
//! (ReLU is monotone), and the positive part of a signed map (which *is* its ReLU), so energy
//! metrics on unnormalised maps are ReLU-invariant. After bilinear upsampling the maximum can
//! still move within a cell of the layer's grid, since a peak is interpolated with zeros (ReLU)
//! or with negative neighbours (no ReLU): the pointing game differs in rare cases. The switch
//! shows up in what a user sees: the min-max normalised map, where without the ReLU the negative
//! evidence is shifted up into the low end of the scale and counts as mass.

use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::explainer::read;
use crate::model::{GradCam, Probe};

/// An axis-aligned box in pixels, half-open: `x0 <= x < x1`, `y0 <= y < y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BBox {
    /// Left column (inclusive).
    pub x0: usize,
    /// Top row (inclusive).
    pub y0: usize,
    /// Right column (exclusive).
    pub x1: usize,
    /// Bottom row (exclusive).
    pub y1: usize,
}

impl BBox {
    /// The box's area in pixels.
    pub fn area(&self) -> usize {
        self.x1.saturating_sub(self.x0) * self.y1.saturating_sub(self.y0)
    }

    /// Whether pixel `(x, y)` lies inside.
    pub fn contains(&self, x: usize, y: usize) -> bool {
        (self.x0..self.x1).contains(&x) && (self.y0..self.y1).contains(&y)
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &BBox) -> f32 {
        let w = self.x1.min(other.x1).saturating_sub(self.x0.max(other.x0));
        let h = self.y1.min(other.y1).saturating_sub(self.y0.max(other.y0));
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union == 0 {
            0.0
        } else {
            inter as f32 / union as f32
        }
    }
}

/// One mask per box: 1 inside, 0 outside.
///
/// # Shapes
/// - returns `[boxes.len(), h, w]`
pub fn box_masks(boxes: &[BBox], [h, w]: [usize; 2], device: &Device) -> Tensor<3> {
    let mut data = vec![0.0f32; boxes.len() * h * w];
    for (i, b) in boxes.iter().enumerate() {
        for y in b.y0..b.y1.min(h) {
            for x in b.x0..b.x1.min(w) {
                data[i * h * w + y * w + x] = 1.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [boxes.len(), h, w]), device)
}

/// Pointing game: whether each map's maximum (the first, on ties) lies inside its box.
///
/// # Shapes
/// - `maps`: `[b, h, w]`, one box per map
///
/// # Panics
/// If `boxes.len()` differs from the number of maps.
pub fn pointing_game(maps: Tensor<3>, boxes: &[BBox]) -> Vec<bool> {
    let [b, h, w] = maps.dims();
    assert_eq!(boxes.len(), b, "one box per map");
    let index: Tensor<2, Int> = maps.reshape([b, h * w]).argmax(1); // [b, 1]
    let index = index
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("i64 indices");
    index
        .iter()
        .zip(boxes)
        .map(|(&i, bx)| bx.contains(i as usize % w, i as usize / w))
        .collect()
}

/// Energy-based pointing game: the share of each map's positive mass inside its box,
/// `sum(relu(map) * box) / sum(relu(map))`; 0 for a map without positive mass. With another
/// object's box it is the off-class energy.
///
/// # Shapes
/// - `maps`: `[b, h, w]`, one box per map
///
/// # Panics
/// If `boxes.len()` differs from the number of maps.
pub fn energy_in_box(maps: Tensor<3>, boxes: &[BBox]) -> Vec<f32> {
    let [b, h, w] = maps.dims();
    assert_eq!(boxes.len(), b, "one box per map");
    let positive = relu(maps).reshape([b, h * w]); // [b, h * w]
    let masks = box_masks(boxes, [h, w], &positive.device()).reshape([b, h * w]);
    let inside = (positive.clone() * masks).sum_dim(1); // [b, 1]
    let total = positive.sum_dim(1); // [b, 1]
    let inside = read(inside);
    read(total)
        .iter()
        .zip(inside)
        .map(|(t, i)| if *t > 0.0 { i / t } else { 0.0 })
        .collect()
}

/// The Grad-CAM paper's localisation protocol: keep the pixels at or above `threshold` (0.15 in
/// the paper) times the map's maximum, take the bounding box of the largest 4-connected
/// component, and return its IoU with the ground-truth box. A map whose maximum is not positive
/// localises nothing (IoU 0). The threshold runs on the device; the components on the host.
///
/// # Shapes
/// - `maps`: `[b, h, w]`, one box per map
///
/// # Panics
/// If `boxes.len()` differs from the number of maps.
pub fn localisation_iou(maps: Tensor<3>, boxes: &[BBox], threshold: f32) -> Vec<f32> {
    let [b, h, w] = maps.dims();
    assert_eq!(boxes.len(), b, "one box per map");
    let flat = maps.reshape([b, h * w]);
    let max = flat.clone().max_dim(1); // [b, 1]
    let keep = flat.greater_equal(max.clone() * threshold).float(); // [b, h * w]
    let keep = read(keep);
    let max = read(max);
    (0..b)
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
        .collect()
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

/// Softmax probability of `classes[i]` for image `i`, in chunks of `chunk` images.
///
/// # Shapes
/// - `images`: `[b, c, h, w]`
fn probabilities<M: GradCam>(
    model: &M,
    images: Tensor<4>,
    classes: &[usize],
    chunk: usize,
) -> Vec<f32> {
    let [b, ..] = images.dims();
    let mut out = Vec::with_capacity(b);
    for start in (0..b).step_by(chunk.max(1)) {
        let end = (start + chunk.max(1)).min(b);
        let logits = model.forward_probed(
            images.clone().narrow(0, start, end - start),
            &mut Probe::passthrough(),
        );
        let [_, k] = logits.dims();
        let probs = read(softmax(logits, 1)); // [(end - start) * k]
        out.extend((start..end).map(|i| probs[(i - start) * k + classes[i]]));
    }
    out
}

/// Deletion and insertion curves (Petsiuk et al., RISE, 2018).
///
/// Pixels are ranked by the map, highest first. At step `s` of `steps`, the top `s / steps` of
/// the pixels are *deleted* (set to 0, the input's zero: black for `[0, 1]` inputs, the mean
/// for mean-subtracted ones) for the deletion curve, and *inserted* into an all-zero input for
/// the insertion curve. Each curve holds the softmax probability of the class at
/// `steps + 1` fractions `0, 1/steps, ..., 1`. Lower deletion and higher insertion AUC mean a
/// more faithful map. Ties (a ReLU map is all zeros outside its positive evidence) keep the
/// order of the backend's sort, which is arbitrary with respect to the class.
///
/// # Shapes
/// - `images`: `[b, c, h, w]`
/// - `maps`: `[b, h, w]`
/// - returns `(deletion, insertion)`, each `b` curves of `steps + 1` points
pub fn deletion_insertion<M: GradCam>(
    model: &M,
    images: Tensor<4>,
    maps: Tensor<3>,
    classes: &[usize],
    steps: usize,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let [b, _, h, w] = images.dims();
    let order = maps.reshape([b, h * w]).argsort_descending(1); // [b, h * w]: pixel of rank r
    let rank = order.argsort(1).float(); // [b, h * w]: rank of pixel p
    let mut curves = (vec![Vec::new(); b], vec![Vec::new(); b]);
    for s in 0..=steps {
        let count = ((s * h * w) as f32 / steps as f32).round();
        let chosen = rank.clone().lower_elem(count).float().reshape([b, 1, h, w]); // [b, 1, h, w]
        let deleted = images.clone() * (chosen.clone().neg() + 1.0);
        let inserted = images.clone() * chosen;
        let both = Tensor::cat(vec![deleted, inserted], 0); // [2b, c, h, w]
        let twice: Vec<usize> = classes.iter().chain(classes).copied().collect();
        let p = probabilities(model, both, &twice, 2 * b);
        for i in 0..b {
            curves.0[i].push(p[i]);
            curves.1[i].push(p[b + i]);
        }
    }
    curves
}

/// The area under a curve sampled at evenly spaced points of `[0, 1]` (trapezoid rule).
pub fn auc(curve: &[f32]) -> f32 {
    if curve.len() < 2 {
        return curve.first().copied().unwrap_or(0.0);
    }
    let dx = 1.0 / (curve.len() - 1) as f32;
    curve.windows(2).map(|p| (p[0] + p[1]) * 0.5 * dx).sum()
}

/// The class probability on each image and on the image multiplied by its map
/// (Chattopadhyay et al., Grad-CAM++, 2018, section 6.1), as `(y, o)` pairs.
///
/// Average Drop = `100 * mean(max(0, y - o) / y)`, Increase in Confidence =
/// `100 * mean(o > y)`: see [`average_drop`] and [`increase_in_confidence`]. We follow the
/// paper (softmax probabilities, the map multiplies the input); pytorch-grad-cam's
/// `CamMultImageConfidenceChange` reports `o - y` instead, and torchcam normalises differently.
///
/// # Shapes
/// - `images`: `[b, c, h, w]`
/// - `maps`: `[b, h, w]` in `[0, 1]`
pub fn confidence_change<M: GradCam>(
    model: &M,
    images: Tensor<4>,
    maps: Tensor<3>,
    classes: &[usize],
) -> Vec<(f32, f32)> {
    let [b, ..] = images.dims();
    let masked = images.clone() * maps.unsqueeze_dim::<4>(1);
    let both = Tensor::cat(vec![images, masked], 0); // [2b, c, h, w]
    let twice: Vec<usize> = classes.iter().chain(classes).copied().collect();
    let p = probabilities(model, both, &twice, 2 * b);
    (0..b).map(|i| (p[i], p[b + i])).collect()
}

/// Average Drop in percent from [`confidence_change`] pairs.
pub fn average_drop(pairs: &[(f32, f32)]) -> f32 {
    100.0 * pairs.iter().map(|(y, o)| (y - o).max(0.0) / y).sum::<f32>() / pairs.len().max(1) as f32
}

/// Increase in Confidence in percent from [`confidence_change`] pairs.
pub fn increase_in_confidence(pairs: &[(f32, f32)]) -> f32 {
    100.0 * pairs.iter().filter(|(y, o)| o > y).count() as f32 / pairs.len().max(1) as f32
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

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
    fn boxes_have_area_containment_and_iou() {
        assert_eq!(LEFT.area(), 8);
        assert!(LEFT.contains(1, 3) && !LEFT.contains(2, 0));
        assert_eq!(LEFT.iou(&RIGHT), 0.0);
        assert_eq!(LEFT.iou(&LEFT), 1.0);
        let half = BBox {
            x0: 1,
            y0: 0,
            x1: 3,
            y1: 4,
        };
        assert!((LEFT.iou(&half) - 4.0 / 12.0).abs() < 1e-6);
    }

    #[test]
    fn pointing_game_checks_the_maximum() {
        assert_eq!(pointing_game(two(), &[RIGHT, LEFT]), vec![true, true]); // flat: first pixel
        assert_eq!(pointing_game(two(), &[LEFT, RIGHT]), vec![false, false]);
    }

    #[test]
    fn energy_counts_positive_mass_only() {
        let e = energy_in_box(two(), &[RIGHT, LEFT]);
        assert!((e[0] - 0.8).abs() < 1e-6, "{e:?}"); // 4 of 5 positive units on the right
        assert_eq!(e[1], 0.0); // no positive mass at all
        let off = energy_in_box(two(), &[LEFT, RIGHT]);
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
        let ious = localisation_iou(
            maps(a, [1, 5, 5]),
            &[BBox {
                x0: 0,
                y0: 0,
                x1: 2,
                y1: 2,
            }],
            0.15,
        );
        assert!((ious[0] - 1.0).abs() < 1e-6, "{ious:?}");
        let none = localisation_iou(maps(vec![-1.0; 4], [1, 2, 2]), &[LEFT], 0.15);
        assert_eq!(none, vec![0.0]);
        assert_eq!(largest_component_box(&[false; 4], [2, 2]), None);
    }

    /// A model with a known answer: the logit of class 0 is `x . [1, 2, 3, 4]` over the four
    /// pixels of a 2x2 input, class 1's is 0, so p0 = sigmoid(that).
    #[derive(burn::module::Module, Debug)]
    struct Weighted {
        fc: burn::nn::Linear,
    }

    impl GradCam for Weighted {
        fn layers(&self) -> Vec<String> {
            vec!["input".into()]
        }
        fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
            self.fc.forward(probe.layer("input", x).flatten::<2>(1, 3))
        }
    }

    fn weighted() -> Weighted {
        let device = Device::flex();
        let mut fc = burn::nn::LinearConfig::new(4, 2).init(&device);
        let w = vec![1.0f32, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0];
        fc.weight = burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(w, [4, 2]),
            &device,
        ));
        fc.bias = Some(burn::module::Param::from_tensor(Tensor::zeros(
            [2],
            &device,
        )));
        Weighted { fc }
    }

    fn sigmoid(z: f32) -> f32 {
        1.0 / (1.0 + (-z).exp())
    }

    #[test]
    fn deletion_and_insertion_follow_the_map_order() {
        let model = weighted();
        let image = Tensor::<4>::ones([1, 1, 2, 2], &Device::flex());
        // The map ranks pixel 3 (weight 4) first, then 2, 1, 0.
        let map = maps(vec![0.1, 0.2, 0.3, 0.4], [1, 2, 2]);
        let (deletion, insertion) = deletion_insertion(&model, image, map, &[0], 4);
        let expected_deletion = [10.0, 6.0, 3.0, 1.0, 0.0].map(sigmoid);
        let expected_insertion = [0.0, 4.0, 7.0, 9.0, 10.0].map(sigmoid);
        for (got, want) in deletion[0].iter().zip(expected_deletion) {
            assert!((got - want).abs() < 1e-5, "{deletion:?}");
        }
        for (got, want) in insertion[0].iter().zip(expected_insertion) {
            assert!((got - want).abs() < 1e-5, "{insertion:?}");
        }
    }

    #[test]
    fn confidence_change_multiplies_the_input_by_the_map() {
        let model = weighted();
        let image = Tensor::<4>::ones([1, 1, 2, 2], &Device::flex());
        let map = maps(vec![0.1, 0.2, 0.3, 0.4], [1, 2, 2]);
        let pairs = confidence_change(&model, image, map, &[0]);
        // y: all pixels, z = 10; o: z = 0.1 + 0.4 + 0.9 + 1.6 = 3.
        assert!(
            (pairs[0].0 - sigmoid(10.0)).abs() < 1e-5 && (pairs[0].1 - sigmoid(3.0)).abs() < 1e-5,
            "{pairs:?}"
        );
        let drop = average_drop(&pairs);
        assert!((drop - 100.0 * (sigmoid(10.0) - sigmoid(3.0)) / sigmoid(10.0)).abs() < 1e-3);
        assert_eq!(increase_in_confidence(&pairs), 0.0);
    }

    #[test]
    fn auc_and_confidence_summaries() {
        assert!((auc(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-6);
        assert!((auc(&[1.0, 0.0]) - 0.5).abs() < 1e-6);
        let pairs = [(0.5, 0.25), (0.4, 0.6)];
        assert!((average_drop(&pairs) - 25.0).abs() < 1e-4);
        assert!((increase_in_confidence(&pairs) - 50.0).abs() < 1e-4);
    }
}
