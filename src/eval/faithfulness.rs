//! Model-based faithfulness metrics: deletion and insertion curves, Average Drop and Increase in
//! Confidence.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use crate::error::{GradCamError, Result};
use crate::host::read;
use crate::model::GradCam;
use crate::probe::Probe;

/// Softmax probability of `classes[i]` for image `i`, in chunks of `chunk` images.
///
/// # Shapes
/// - `images`: `[b, c, h, w]`
pub(super) fn probabilities<M: GradCam>(
    model: &M,
    images: Tensor<4>,
    classes: &[usize],
    chunk: usize,
) -> Result<Vec<f32>> {
    let [b, ..] = images.dims();
    let mut out = Vec::with_capacity(b);
    for start in (0..b).step_by(chunk.max(1)) {
        let end = (start + chunk.max(1)).min(b);
        let logits = model.forward_probed(
            images.clone().narrow(0, start, end - start),
            &mut Probe::passthrough(),
        );
        let [_, k] = logits.dims();
        crate::ModelError::check_rows(logits.dims(), end - start)?;
        if let Some(&class) = classes[start..end].iter().find(|&&c| c >= k) {
            return Err(crate::InputError::ClassOutOfRange {
                class,
                num_classes: k,
            }
            .into());
        }
        let probs = read(softmax(logits, 1)); // [(end - start) * k]
        out.extend((start..end).map(|i| probs[(i - start) * k + classes[i]]));
    }
    Ok(out)
}

/// One curve per image: the class probability at each step.
pub type Curves = Vec<Vec<f32>>;

/// One class per image, or an error.
pub(super) fn check_classes(images: usize, classes: usize) -> Result<()> {
    if images != classes {
        return Err(GradCamError::argument(format!(
            "{classes} classes for {images} images; give one class per image"
        )));
    }
    Ok(())
}

/// One map per image, of the images' size, or an error.
///
/// # Shapes
/// - `images`: `[b, c, h, w]`; `maps`: `[b, h, w]`
pub(super) fn check_maps(images: &Tensor<4>, maps: &Tensor<3>) -> Result<()> {
    let [b, _, h, w] = images.dims();
    if maps.dims() != [b, h, w] {
        return Err(GradCamError::argument(format!(
            "maps {:?} for images {:?}; expected [{b}, {h}, {w}]",
            maps.dims(),
            images.dims()
        )));
    }
    Ok(())
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
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) for `steps = 0`, maps that do not match the images, or a
/// class count other than one per image; [`InputError::ClassOutOfRange`](crate::InputError::ClassOutOfRange).
pub fn deletion_insertion<M: GradCam>(
    model: &M,
    images: Tensor<4>,
    maps: Tensor<3>,
    classes: &[usize],
    steps: usize,
) -> Result<(Curves, Curves)> {
    let [b, _, h, w] = images.dims();
    check_classes(b, classes.len())?;
    if steps == 0 {
        return Err(GradCamError::argument(
            "deletion/insertion with 0 steps; use at least 1",
        ));
    }
    check_maps(&images, &maps)?;
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
        let p = probabilities(model, both, &twice, 2 * b)?;
        for i in 0..b {
            curves.0[i].push(p[i]);
            curves.1[i].push(p[b + i]);
        }
    }
    Ok(curves)
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
/// `CamMultImageConfidenceChange` reports `o - y` instead (with softmax targets, equal to ours:
/// gradcam-onnx's `tests/smoothing.rs`), and torchcam normalises differently.
///
/// # Shapes
/// - `images`: `[b, c, h, w]`
/// - `maps`: `[b, h, w]` in `[0, 1]`
///
/// # Errors
/// As [`deletion_insertion`].
pub fn confidence_change<M: GradCam>(
    model: &M,
    images: Tensor<4>,
    maps: Tensor<3>,
    classes: &[usize],
) -> Result<Vec<(f32, f32)>> {
    let [b, ..] = images.dims();
    check_classes(b, classes.len())?;
    check_maps(&images, &maps)?;
    let masked = images.clone() * maps.unsqueeze_dim::<4>(1);
    let both = Tensor::cat(vec![images, masked], 0); // [2b, c, h, w]
    let twice: Vec<usize> = classes.iter().chain(classes).copied().collect();
    let p = probabilities(model, both, &twice, 2 * b)?;
    Ok((0..b).map(|i| (p[i], p[b + i])).collect())
}

/// Average Drop in percent from [`confidence_change`] pairs.
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) for no pairs, or a probability `y` that is not positive
/// and finite (the drop divides by it).
pub fn average_drop(pairs: &[(f32, f32)]) -> Result<f32> {
    if pairs.is_empty() {
        return Err(GradCamError::argument("Average Drop of no pairs"));
    }
    if let Some((y, _)) = pairs
        .iter()
        .find(|(y, o)| !(*y > 0.0 && y.is_finite() && o.is_finite()))
    {
        return Err(GradCamError::argument(format!(
            "Average Drop with a score of {y}: scores must be positive and finite"
        )));
    }
    Ok(100.0 * pairs.iter().map(|(y, o)| (y - o).max(0.0) / y).sum::<f32>() / pairs.len() as f32)
}

/// Increase in Confidence in percent from [`confidence_change`] pairs.
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) for no pairs.
pub fn increase_in_confidence(pairs: &[(f32, f32)]) -> Result<f32> {
    if pairs.is_empty() {
        return Err(GradCamError::argument("Increase in Confidence of no pairs"));
    }
    Ok(100.0 * pairs.iter().filter(|(y, o)| o > y).count() as f32 / pairs.len() as f32)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn maps(values: Vec<f32>, shape: [usize; 3]) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
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
        let (deletion, insertion) = deletion_insertion(&model, image, map, &[0], 4).unwrap();
        let expected_deletion = [10.0, 6.0, 3.0, 1.0, 0.0].map(sigmoid);
        let expected_insertion = [0.0, 4.0, 7.0, 9.0, 10.0].map(sigmoid);
        // Each probability is one sigmoid of a sum of at most four small integers: exact in
        // float32 up to the rounding of exp and one division, far below 1e-6.
        for (got, want) in deletion[0].iter().zip(expected_deletion) {
            assert!((got - want).abs() < 1e-6, "{deletion:?}");
        }
        for (got, want) in insertion[0].iter().zip(expected_insertion) {
            assert!((got - want).abs() < 1e-6, "{insertion:?}");
        }
    }

    #[test]
    fn confidence_change_multiplies_the_input_by_the_map() {
        let model = weighted();
        let image = Tensor::<4>::ones([1, 1, 2, 2], &Device::flex());
        let map = maps(vec![0.1, 0.2, 0.3, 0.4], [1, 2, 2]);
        let pairs = confidence_change(&model, image, map, &[0]).unwrap();
        // y: all pixels, z = 10; o: z = 0.1 + 0.4 + 0.9 + 1.6 = 3.
        assert!(
            (pairs[0].0 - sigmoid(10.0)).abs() < 1e-6 && (pairs[0].1 - sigmoid(3.0)).abs() < 1e-6,
            "{pairs:?}"
        );
        let drop = average_drop(&pairs).unwrap();
        assert!((drop - 100.0 * (sigmoid(10.0) - sigmoid(3.0)) / sigmoid(10.0)).abs() < 1e-4);
        assert_eq!(increase_in_confidence(&pairs).unwrap(), 0.0);
    }

    #[test]
    fn auc_and_confidence_summaries() {
        assert!((auc(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-6);
        assert!((auc(&[1.0, 0.0]) - 0.5).abs() < 1e-6);
        let pairs = [(0.5, 0.25), (0.4, 0.6)];
        assert!((average_drop(&pairs).unwrap() - 25.0).abs() < 1e-4);
        assert!((increase_in_confidence(&pairs).unwrap() - 50.0).abs() < 1e-4);
    }

    #[test]
    fn bad_classes_steps_and_scores_are_errors() {
        let model = weighted();
        let device = Device::flex();
        let images = Tensor::<4>::ones([2, 1, 2, 2], &device);
        let two_maps = maps(vec![0.5; 8], [2, 2, 2]);
        // Class 2 of a 2-class model: an error, not the next image's probability.
        let err = confidence_change(&model, images.clone(), two_maps.clone(), &[0, 2]).unwrap_err();
        assert!(
            matches!(
                err,
                GradCamError::Input(crate::InputError::ClassOutOfRange {
                    class: 2,
                    num_classes: 2
                })
            ),
            "{err}"
        );
        assert!(confidence_change(&model, images.clone(), two_maps.clone(), &[0]).is_err());
        assert!(deletion_insertion(&model, images.clone(), two_maps.clone(), &[0, 1], 0).is_err());
        assert!(
            deletion_insertion(&model, images, maps(vec![0.5; 4], [1, 2, 2]), &[0, 1], 2).is_err()
        );
        assert!(average_drop(&[(0.0, 0.1)]).is_err());
        assert!(average_drop(&[]).is_err());
        assert!(increase_in_confidence(&[]).is_err());
    }
}
