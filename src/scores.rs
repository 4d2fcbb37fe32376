//! Ready-made target scores beyond one logit, as pytorch-grad-cam 1.5.7's
//! `utils/model_targets.py` has them: a softmax probability, a binary classifier's one logit, a
//! class over a segmentation mask, similarity to a concept embedding, and Finer-CAM's contrast
//! with the most similar classes. Each is a [`Target::Score`]: a closure over the rows of the
//! model's output.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{DType, IndexingUpdateOp, Int, Tensor, TensorData};

use crate::target::Target;

impl Target {
    /// The softmax probability of `class` (pytorch-grad-cam's `ClassifierOutputSoftmaxTarget`):
    /// it rises with the class's logit and falls with every other.
    pub fn softmax(class: usize) -> Self {
        Self::score(move |logits: Tensor<2>| {
            let [rows, classes] = logits.dims();
            assert!(
                class < classes,
                "class {class} of a model with {classes} classes"
            );
            softmax(logits, 1).narrow(1, class, 1).reshape([rows])
        })
    }

    /// The Residual Softmax Target-class score of ShapleyCAM's paper (pytorch-grad-cam's
    /// `ClassifierOutputReST`): the logit of `class` minus its cross-entropy,
    /// `z_c + log softmax(z)_c = 2 z_c - log sum_j exp z_j`. Its Hessian in the logits,
    /// `-(diag(p) - p p^T)`, is what [`ShapleyCam`](crate::methods::ShapleyCam)'s second-order term
    /// weighs.
    pub fn rest(class: usize) -> Self {
        Self::score(move |logits: Tensor<2>| {
            let [rows, classes] = logits.dims();
            assert!(
                class < classes,
                "class {class} of a model with {classes} classes"
            );
            let logit = logits.clone().narrow(1, class, 1).reshape([rows]);
            logit + log_softmax(logits, 1).narrow(1, class, 1).reshape([rows])
        })
    }

    /// A binary classifier's evidence for `class` (0 or 1), from its one logit `z` per image
    /// (the input of its sigmoid): `z` for class 1, `-z` for class 0, since `-z` is the logit of
    /// class 0 (`sigmoid(-z) = 1 - sigmoid(z)`).
    ///
    /// pytorch-grad-cam's `BinaryClassifierOutputTarget` computes the same, and its issue #428
    /// reports maps that look wrong when the classifier predicts the other class: that is the map
    /// of the class asked for, whose evidence is then negative. To explain what the model
    /// predicts, ask for the predicted class (`z > 0`: class 1); the ReLU keeps the evidence for
    /// the class asked for, and `with_relu(false)` shows both signs.
    ///
    /// A model with more than one output column is an error (a score function that panics).
    pub fn binary(class: usize) -> Self {
        assert!(
            class <= 1,
            "a binary classifier's class is 0 or 1, not {class}"
        );
        let sign = if class == 1 { 1.0 } else { -1.0 };
        Self::score(move |logits: Tensor<2>| {
            let [rows, columns] = logits.dims();
            assert!(
                columns == 1,
                "a binary target needs one logit per image; this model gives {columns}"
            );
            logits.reshape([rows]) * sign
        })
    }

    /// A segmentation model's `class` summed over a pixel mask (pytorch-grad-cam's
    /// `SemanticSegmentationTarget`: `sum(output[class] * mask)`). The model's
    /// [`forward_probed`](crate::GradCam::forward_probed) returns its `[n, classes, h, w]` output
    /// flattened to `[n, classes * h * w]`; `mask` is row-major `[h, w]` (1 where the class is
    /// explained, 0 elsewhere, or any weights).
    ///
    /// # Panics
    /// If `mask` does not hold `h * w` values (a programming error of the caller).
    pub fn segmentation(class: usize, mask: Vec<f32>, [h, w]: [usize; 2]) -> Self {
        assert_eq!(
            mask.len(),
            h * w,
            "a mask of {} values for [{h}, {w}]",
            mask.len()
        );
        Self::score(move |output: Tensor<2>| {
            let [rows, columns] = output.dims();
            assert!(
                columns % (h * w) == 0 && class < columns / (h * w),
                "class {class} of an output of {columns} values per image is not one of \
                 [classes, {h}, {w}]"
            );
            let mask = Tensor::<2>::from_data(
                TensorData::new(mask.clone(), [1, h * w]),
                (&output.device(), DType::F32),
            );
            (output.narrow(1, class * h * w, h * w) * mask)
                .sum_dim(1)
                .reshape([rows])
        })
    }

    /// Finer-CAM's target (Zhang et al., "Finer-CAM: Spotting the Difference Reveals Finer
    /// Details for Visual Explanation", CVPR 2025, [arXiv:2501.11309](https://arxiv.org/abs/2501.11309);
    /// pytorch-grad-cam's `FinerCAM` with its `FinerWeightedTarget`): the top class's logit
    /// `y_t` against the three classes whose logits are nearest to it, weighted by their softmax
    /// probabilities `p_j`,
    ///
    /// ```text
    /// score = sum_j p_j (y_t - alpha y_j) / (sum_j p_j + 1e-9)
    /// ```
    ///
    /// so the map shows what sets the class apart from the ones it is most easily confused with
    /// (`alpha = 0`: the top logit alone, plain Grad-CAM; pytorch-grad-cam's default is 1). Works
    /// with every method, as pytorch-grad-cam's `base_method`. The classes are chosen from the
    /// image's own logits on the device (no read-back); fewer than four classes compare with
    /// all the others. [`finer_class`](Self::finer_class) explains a given class instead of the
    /// top one.
    pub fn finer(alpha: f32) -> Self {
        Self::finer_of(None, alpha)
    }

    /// [`finer`](Self::finer) for `class` instead of the top class (pytorch-grad-cam's
    /// `target_idx`).
    pub fn finer_class(class: usize, alpha: f32) -> Self {
        Self::finer_of(Some(class), alpha)
    }

    fn finer_of(class: Option<usize>, alpha: f32) -> Self {
        Self::score(move |logits: Tensor<2>| {
            let [rows, classes] = logits.dims();
            assert!(
                classes >= 2,
                "Finer-CAM contrasts classes; this model gives one output per image"
            );
            let device = logits.device();
            let values = logits.clone().detach(); // [r, classes]
            let main: Tensor<2, Int> = match class {
                Some(class) => {
                    assert!(
                        class < classes,
                        "class {class} of a model with {classes} classes"
                    );
                    Tensor::<2, Int>::full([rows, 1], class as i64, &device)
                }
                None => values.clone().argmax(1),
            }; // [r, 1]
            let reference = values.clone().gather(1, main.clone()); // [r, 1]
            // Distances to the main logit, the main class itself moved first (-1) so that a
            // class tied with it is still compared.
            let first = Tensor::<2>::zeros([rows, classes], (&device, DType::F32)).scatter(
                1,
                main.clone(),
                Tensor::<2>::ones([rows, 1], (&device, DType::F32)),
                IndexingUpdateOp::Add,
            ); // [r, classes]
            let distance = (values - reference).abs() - first; // [r, classes]
            let compared = classes.saturating_sub(1).min(3);
            let nearest = distance.argsort(1).narrow(1, 1, compared); // [r, q]
            let y_main = logits.clone().gather(1, main); // [r, 1]
            let y = logits.clone().gather(1, nearest.clone()); // [r, q]
            let p = softmax(logits, 1).gather(1, nearest); // [r, q]
            let numerator = (p.clone() * (y_main - y.mul_scalar(alpha))).sum_dim(1); // [r, 1]
            let denominator = p.sum_dim(1).add_scalar(1e-9); // [r, 1]
            (numerator / denominator).reshape([rows])
        })
    }

    /// The cosine similarity of each image's embedding (the model's output row) to `concept`
    /// (pytorch-grad-cam's `SimilarityToConceptTarget`, with torch's `CosineSimilarity`:
    /// `x . c / max(|x| |c|, 1e-8)`).
    ///
    /// # Panics
    /// If `concept` is empty (a programming error of the caller).
    pub fn similarity(concept: Vec<f32>) -> Self {
        assert!(!concept.is_empty(), "an empty concept embedding");
        Self::score(move |embeddings: Tensor<2>| {
            let [rows, d] = embeddings.dims();
            assert!(
                d == concept.len(),
                "an embedding of {d} values against a concept of {}",
                concept.len()
            );
            let concept = Tensor::<2>::from_data(
                TensorData::new(concept.clone(), [1, d]),
                (&embeddings.device(), DType::F32),
            );
            let dot = (embeddings.clone() * concept.clone()).sum_dim(1); // [r, 1]
            let norms = embeddings.powi_scalar(2).sum_dim(1).sqrt()
                * concept.powi_scalar(2).sum_dim(1).sqrt(); // [r, 1]
            (dot / norms.clamp_min(1e-8)).reshape([rows])
        })
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::target::{Resolved, resolve_classes, row_scores};
    use burn::tensor::Device;

    fn score(target: Target, values: Vec<f32>, shape: [usize; 2]) -> crate::Result<Vec<f32>> {
        let logits = Tensor::<2>::from_data(TensorData::new(values, shape), &Device::flex());
        let resolved: Vec<Resolved> = resolve_classes(&vec![target; shape[0]], shape[1])?;
        Ok(crate::host::read(row_scores(logits, &resolved)?.0))
    }

    #[test]
    fn each_score_computes_its_formula() {
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        // softmax([0, ln 3]) = [1/4, 3/4]
        let p = score(Target::softmax(1), vec![0.0, 3f32.ln()], [1, 2]).unwrap();
        assert!(close(&p, &[0.75]), "{p:?}");
        let z = score(Target::binary(0), vec![2.5, -1.0], [2, 1]).unwrap();
        assert_eq!(z, vec![-2.5, 1.0]);
        // Two classes of 2 x 2 pixels: class 1 is 4, 5, 6, 7; over the left column, 4 + 6.
        let seg = Target::segmentation(1, vec![1.0, 0.0, 1.0, 0.0], [2, 2]);
        let s = score(seg, (0..8).map(|v| v as f32).collect(), [1, 8]).unwrap();
        assert_eq!(s, vec![4.0 + 6.0]);
        let cos = score(Target::similarity(vec![1.0, 0.0]), vec![3.0, 4.0], [1, 2]).unwrap();
        assert!(close(&cos, &[0.6]), "{cos:?}");
    }

    #[test]
    fn finer_contrasts_the_top_class_with_its_three_nearest() {
        // Top class 2 (3.0); nearest 4 (0.1 away), 3 (0.5), 1 (2.0); class 0 (3.0 away) is not.
        let logits = [0.0f64, 1.0, 3.0, 2.5, 2.9];
        let total: f64 = logits.iter().map(|v| v.exp()).sum();
        let expected = |alpha: f64| {
            let (mut num, mut den) = (0.0, 0.0);
            for j in [4, 3, 1] {
                let p = logits[j].exp() / total;
                num += p * (logits[2] - alpha * logits[j]);
                den += p;
            }
            num / (den + 1e-9)
        };
        let values: Vec<f32> = logits.iter().map(|v| *v as f32).collect();
        for alpha in [1.0f32, 0.5, 0.0] {
            let got = score(Target::finer(alpha), values.clone(), [1, 5]).unwrap()[0] as f64;
            let want = expected(alpha as f64);
            // float32 softmax and sums of 3 terms: a few units in the last place of 3.
            assert!((got - want).abs() < 1e-5, "alpha {alpha}: {got} vs {want}");
        }
        // Comparing with class 0 (the farthest) instead gives another score.
        let wrong = {
            let (mut num, mut den) = (0.0, 0.0);
            for j in [4, 3, 0] {
                let p = logits[j].exp() / total;
                num += p * (logits[2] - logits[j]);
                den += p;
            }
            num / den
        };
        let got = score(Target::finer(1.0), values.clone(), [1, 5]).unwrap()[0] as f64;
        assert!((got - wrong).abs() > 1e-3);
        // A given class: class 3 (2.5) against 4 (0.4 away), 2 (0.5), 1 (1.5).
        let got = score(Target::finer_class(3, 1.0), values, [1, 5]).unwrap()[0] as f64;
        let (mut num, mut den) = (0.0, 0.0);
        for j in [4, 2, 1] {
            let p = logits[j].exp() / total;
            num += p * (logits[3] - logits[j]);
            den += p;
        }
        assert!((got - num / (den + 1e-9)).abs() < 1e-5, "{got}");
    }

    #[test]
    fn a_score_that_does_not_fit_the_model_is_an_error() {
        let err = score(Target::binary(1), vec![1.0, 2.0], [1, 2]).unwrap_err();
        assert!(err.to_string().contains("one logit per image"), "{err}");
    }
}
