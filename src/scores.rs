//! Ready-made target scores beyond one logit, as pytorch-grad-cam 1.5.7's
//! `utils/model_targets.py` has them: a softmax probability, a binary classifier's one logit, a
//! class over a segmentation mask, similarity to a concept embedding. Each is a
//! [`Target::Score`]: a closure over the rows of the model's output.

use burn::tensor::activation::softmax;
use burn::tensor::{DType, Tensor, TensorData};

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
    fn a_score_that_does_not_fit_the_model_is_an_error() {
        let err = score(Target::binary(1), vec![1.0, 2.0], [1, 2]).unwrap_err();
        assert!(err.to_string().contains("one logit per image"), "{err}");
    }
}
