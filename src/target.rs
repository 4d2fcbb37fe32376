//! What to explain: a class, the top prediction, or any score computed from the logits.

use std::fmt;
use std::sync::Arc;

use burn::tensor::{DType, FloatDType, IndexingUpdateOp, Int, Tensor, TensorData};

use crate::error::{GradCamError, Result};

/// A score computed from logits: takes `[r, classes]` and returns one score per row, `[r]`.
pub type ScoreFn = Arc<dyn Fn(Tensor<2>) -> Tensor<1> + Send + Sync>;

/// The score y whose gradient Grad-CAM follows, for one image.
#[derive(Clone)]
pub enum Target {
    /// The highest logit (the top-1 prediction).
    TopPrediction,
    /// The pre-softmax logit of this class.
    Class(usize),
    /// A custom score over the logits, e.g. a softmax probability.
    Score(ScoreFn),
}

impl Target {
    /// A custom score from a closure over the logits.
    ///
    /// # Shapes
    /// - the closure takes logits `[r, classes]` and returns `[r]`, one score per row.
    ///
    /// ```
    /// use burn::tensor::activation::softmax;
    /// use gradcam::Target;
    ///
    /// // Explain the softmax probability of class 3 instead of its logit.
    /// let target = Target::score(|logits| softmax(logits, 1).narrow(1, 3, 1).flatten(0, 1));
    /// ```
    pub fn score<F>(f: F) -> Self
    where
        F: Fn(Tensor<2>) -> Tensor<1> + Send + Sync + 'static,
    {
        Self::Score(Arc::new(f))
    }
}

impl From<usize> for Target {
    fn from(class: usize) -> Self {
        Self::Class(class)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TopPrediction => write!(f, "TopPrediction"),
            Self::Class(class) => write!(f, "Class({class})"),
            Self::Score(_) => write!(f, "Score(..)"),
        }
    }
}

/// The targets of a batch: rows of targets, one row for every image or one row per image.
///
/// Every row holds the same number `m` of targets; an explanation holds `m` maps per image, all
/// from one forward pass up to the layer.
///
/// ```
/// use gradcam::{Target, Targets};
///
/// let top = Targets::top1(); // the default: each image's top prediction
/// let cat = Targets::class(281); // class 281 for every image
/// let per_image = Targets::per_image([281, 967]); // image 0: 281, image 1: 967
/// let several = Targets::classes([281, 285, 287]); // three maps per image, one forward
/// ```
#[derive(Debug, Clone)]
pub struct Targets {
    rows: Vec<Vec<Target>>,
}

impl Default for Targets {
    fn default() -> Self {
        Self::top1()
    }
}

impl Targets {
    /// Each image's top-1 prediction.
    pub fn top1() -> Self {
        Self::all(Target::TopPrediction)
    }

    /// The same target for every image.
    pub fn all(target: impl Into<Target>) -> Self {
        Self {
            rows: vec![vec![target.into()]],
        }
    }

    /// The same class for every image.
    pub fn class(class: usize) -> Self {
        Self::all(class)
    }

    /// Several targets for every image, explained together.
    pub fn classes<T: Into<Target>>(targets: impl IntoIterator<Item = T>) -> Self {
        Self {
            rows: vec![targets.into_iter().map(Into::into).collect()],
        }
    }

    /// Exactly one target per image, in batch order.
    pub fn per_image<T: Into<Target>>(targets: impl IntoIterator<Item = T>) -> Self {
        Self {
            rows: targets.into_iter().map(|t| vec![t.into()]).collect(),
        }
    }

    /// Rows of targets: one row for all images, or exactly one row per image; all rows the same
    /// length.
    pub fn rows(rows: Vec<Vec<Target>>) -> Self {
        Self { rows }
    }

    /// The targets for a batch of `batch` images: `m`, and the `batch * m` targets with the
    /// targets of one image together.
    pub(crate) fn resolve(&self, batch: usize) -> Result<(usize, Vec<Target>)> {
        let rows = self.rows.len();
        if rows == 0 || (rows != 1 && rows != batch) {
            return Err(GradCamError::TargetCount { got: rows, batch });
        }
        let per_image = self.rows[0].len();
        if per_image == 0 {
            return Err(GradCamError::TargetCount { got: 0, batch });
        }
        if let Some((image, row)) = self
            .rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != per_image)
        {
            return Err(GradCamError::RaggedTargets {
                image,
                got: row.len(),
                expected: per_image,
            });
        }
        let flat = (0..batch)
            .flat_map(|i| self.rows[if rows == 1 { 0 } else { i }].iter().cloned())
            .collect();
        Ok((per_image, flat))
    }
}

/// A target resolved against the model's output: a class, the top prediction (found on the
/// device, so that no value is read back in the middle of a call), or a score function.
#[derive(Clone)]
pub(crate) enum Resolved {
    Class(usize),
    Top,
    Score(ScoreFn),
}

/// Resolve every target against the number of classes: classes are checked, the top prediction
/// is left to [`row_scores`], which finds it on the device.
pub(crate) fn resolve_classes(targets: &[Target], classes: usize) -> Result<Vec<Resolved>> {
    targets
        .iter()
        .map(|target| {
            Ok(match target {
                Target::TopPrediction => Resolved::Top,
                Target::Class(class) if *class < classes => Resolved::Class(*class),
                Target::Class(class) => {
                    return Err(GradCamError::ClassOutOfRange {
                        class: *class,
                        num_classes: classes,
                    });
                }
                Target::Score(f) => Resolved::Score(f.clone()),
            })
        })
        .collect()
}

/// Every row of `logits` scored by one target.
///
/// # Shapes
/// - `logits`: `[r, classes]`
/// - returns `[r]`
pub(crate) fn score_rows(logits: Tensor<2>, target: &Resolved) -> Result<Tensor<1>> {
    let [rows, _] = logits.dims();
    match target {
        Resolved::Class(class) => Ok(logits.narrow(1, *class, 1).reshape([rows])),
        // Each row's own top prediction (the explainer's reruns pass the resolved class).
        Resolved::Top => Ok(logits.max_dim(1).reshape([rows])),
        Resolved::Score(f) => {
            let scores = f(logits);
            if scores.dims() != [rows] {
                return Err(GradCamError::ScoreShape {
                    got: scores.dims().to_vec(),
                    expected: rows,
                });
            }
            Ok(scores)
        }
    }
}

/// Each row's score under its own target, and the class each row explains: one-hot masks for
/// classes and for the top prediction (the first largest logit, found on the device), the
/// score functions on the rows that use them. Differentiable where the logits are; nothing is
/// read back to the host.
///
/// # Shapes
/// - `logits`: `[r, classes]`, one row per target, `f32`
/// - returns the scores `[r]` and the classes `[r]` as `f32` (`-1` for a custom score)
pub(crate) fn row_scores(
    logits: Tensor<2>,
    targets: &[Resolved],
) -> Result<(Tensor<1>, Tensor<1>)> {
    let [rows, classes] = logits.dims();
    let device = logits.device().without_autodiff();
    let f32s = (&device, DType::F32);
    let mut mask = vec![0.0f32; rows * classes];
    let mut top = vec![0.0f32; rows];
    let mut class_of = vec![-1.0f32; rows];
    let mut scored: Vec<(ScoreFn, Vec<usize>)> = Vec::new();
    for (row, target) in targets.iter().enumerate() {
        match target {
            Resolved::Class(class) => {
                mask[row * classes + class] = 1.0;
                class_of[row] = *class as f32;
            }
            Resolved::Top => top[row] = 1.0,
            Resolved::Score(f) => match scored.iter_mut().find(|(g, _)| Arc::ptr_eq(f, g)) {
                Some((_, rows)) => rows.push(row),
                None => scored.push((f.clone(), vec![row])),
            },
        }
    }
    let mut mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, classes]), f32s); // [r, classes]
    let mut class_of = Tensor::<1>::from_data(TensorData::new(class_of, [rows]), f32s); // [r]
    if top.contains(&1.0) {
        let top = Tensor::<1>::from_data(TensorData::new(top, [rows]), f32s); // [r]
        let argmax = logits.clone().without_autodiff().argmax(1); // [r, 1]
        let one_hot = Tensor::<1, Int>::arange(0..classes as i64, &device)
            .reshape([1, classes])
            .expand([rows, classes])
            .equal(argmax.clone().expand([rows, classes]))
            .float()
            .cast(FloatDType::F32); // [r, classes]
        mask = mask + one_hot * top.clone().reshape([rows, 1]);
        let argmax = argmax.float().cast(FloatDType::F32).reshape([rows]); // [r]
        class_of = class_of + (argmax + 1.0) * top;
    }
    let mut scores = (logits.clone() * mask).sum_dim(1).reshape([rows]); // [r]
    for (f, rows_of_f) in scored {
        let index = rows_of_f.iter().map(|&r| r as i64).collect::<Vec<_>>();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows_of_f.len()]), &device);
        let values = score_rows(logits.clone().select(0, index.clone()), &Resolved::Score(f))?; // [r_f]
        scores = scores.select_assign(0, index, values, IndexingUpdateOp::Add);
    }
    Ok((scores, class_of))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_row_repeats_per_image() {
        let (m, flat) = Targets::classes([1, 2]).resolve(3).unwrap();
        assert_eq!(m, 2);
        let classes: Vec<_> = flat
            .iter()
            .map(|t| match t {
                Target::Class(c) => *c,
                _ => usize::MAX,
            })
            .collect();
        assert_eq!(classes, vec![1, 2, 1, 2, 1, 2]);
    }

    #[test]
    fn counts_that_fit_neither_rule_are_errors() {
        assert!(matches!(
            Targets::per_image([1, 2, 3]).resolve(2),
            Err(GradCamError::TargetCount { got: 3, batch: 2 })
        ));
        assert!(matches!(
            Targets::per_image([1]).resolve(4),
            Ok((1, ref flat)) if flat.len() == 4
        ));
        assert!(matches!(
            Targets::rows(vec![vec![1.into()], vec![2.into(), 3.into()]]).resolve(2),
            Err(GradCamError::RaggedTargets {
                image: 1,
                got: 2,
                expected: 1
            })
        ));
        assert!(matches!(
            Targets::classes(Vec::<usize>::new()).resolve(2),
            Err(GradCamError::TargetCount { got: 0, .. })
        ));
        assert!(matches!(
            Targets::rows(Vec::new()).resolve(2),
            Err(GradCamError::TargetCount { got: 0, batch: 2 })
        ));
    }
}
