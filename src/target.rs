//! What to explain: a class, a rank of the prediction, or any score computed from the logits;
//! and how the targets of a batch are resolved and scored on the device.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use burn::tensor::{DType, FloatDType, IndexingUpdateOp, Int, Tensor, TensorData};

use crate::error::{InputError, Result};
use crate::forward::panic_message;

/// A score computed from logits: takes `[r, classes]` and returns one score per row, `[r]`.
pub type ScoreFn = Arc<dyn Fn(Tensor<2>) -> Tensor<1> + Send + Sync>;

/// The score y whose gradient a method follows, for one image.
#[derive(Clone)]
pub enum Target {
    /// The logit of the class ranked `rank` by the image's own logits: `Top(1)` is the top
    /// prediction (the first largest logit), `Top(2)` the runner-up. Found on the device.
    Top(usize),
    /// The pre-softmax logit of this class.
    Class(usize),
    /// A custom score over the logits, e.g. a softmax probability.
    Score(ScoreFn),
}

impl Target {
    /// A custom score from a closure over the logits. The score must be computed from the
    /// logits it is given (it is differentiated through them).
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
            Self::Top(rank) => write!(f, "Top({rank})"),
            Self::Class(class) => write!(f, "Class({class})"),
            Self::Score(_) => write!(f, "Score(..)"),
        }
    }
}

/// The targets of a batch: the same targets for every image, or each image its own.
///
/// Every image gets the same number `m` of targets; an explanation holds `m` maps per image,
/// all from one forward pass up to the layer.
///
/// ```
/// use gradcam::{Target, Targets};
///
/// let top = Targets::top(1); // the default: each image's top prediction
/// let top3 = Targets::top(3); // each image's three highest classes, three maps per image
/// let cat = Targets::class(281); // class 281 for every image
/// let several = Targets::every_image([281, 285, 287]); // three maps per image, one forward
/// let own = Targets::one_per_image([281, 967]); // image 0: 281, image 1: 967
/// let rows = Targets::rows_per_image(vec![
///     vec![Target::Class(281), Target::Top(1)],
///     vec![Target::Class(967), Target::Top(1)],
/// ]);
/// ```
#[derive(Debug, Clone)]
pub struct Targets {
    rows: Rows,
}

/// How the targets map to the images of a batch.
#[derive(Debug, Clone)]
enum Rows {
    /// The same targets for every image.
    Every(Vec<Target>),
    /// One target per image, in batch order.
    OnePerImage(Vec<Target>),
    /// Each image's targets, in batch order.
    PerImage(Vec<Vec<Target>>),
}

impl Default for Targets {
    fn default() -> Self {
        Self::top(1)
    }
}

impl Targets {
    /// Each image's `k` highest-scoring classes (`Target::Top(1)` to `Target::Top(k)`): `k`
    /// maps per image from one forward. `Targets::top(1)` is each image's top prediction.
    pub fn top(k: usize) -> Self {
        Self::every_image((1..=k).map(Target::Top))
    }

    /// The same class for every image.
    pub fn class(class: usize) -> Self {
        Self::every_image([class])
    }

    /// The same targets for every image, explained together.
    pub fn every_image<T: Into<Target>>(targets: impl IntoIterator<Item = T>) -> Self {
        Self {
            rows: Rows::Every(targets.into_iter().map(Into::into).collect()),
        }
    }

    /// Exactly one target per image, in batch order: as many targets as images.
    pub fn one_per_image<T: Into<Target>>(targets: impl IntoIterator<Item = T>) -> Self {
        Self {
            rows: Rows::OnePerImage(targets.into_iter().map(Into::into).collect()),
        }
    }

    /// Each image's own targets, in batch order: one row per image, all rows the same length.
    pub fn rows_per_image(rows: Vec<Vec<Target>>) -> Self {
        Self {
            rows: Rows::PerImage(rows),
        }
    }

    /// The targets for a batch of `batch` images: `m`, and the `batch * m` targets with the
    /// targets of one image together.
    pub(crate) fn resolve(&self, batch: usize) -> Result<(usize, Vec<Target>)> {
        let count = |got: usize| -> Result<()> {
            if got == batch {
                Ok(())
            } else {
                Err(InputError::TargetCount { got, batch }.into())
            }
        };
        match &self.rows {
            Rows::Every(row) => {
                if row.is_empty() {
                    return Err(InputError::NoTargets.into());
                }
                let flat = (0..batch).flat_map(|_| row.iter().cloned()).collect();
                Ok((row.len(), flat))
            }
            Rows::OnePerImage(targets) => {
                count(targets.len())?;
                Ok((1, targets.clone()))
            }
            Rows::PerImage(rows) => {
                count(rows.len())?;
                let m = rows[0].len();
                if m == 0 {
                    return Err(InputError::NoTargets.into());
                }
                if let Some((image, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != m) {
                    return Err(InputError::RaggedTargets {
                        image,
                        got: row.len(),
                        expected: m,
                    }
                    .into());
                }
                Ok((m, rows.concat()))
            }
        }
    }
}

/// A target resolved against the model's output: a class, a rank (found on the device, so
/// that no value is read back in the middle of a call), or a score function.
#[derive(Clone)]
pub(crate) enum Resolved {
    Class(usize),
    Top(usize),
    Score(ScoreFn),
}

impl Resolved {
    /// The class this target explains, given the class its row's rank was found to be (`ranked`,
    /// read back from the device); `None` for a custom score.
    pub fn class(&self, ranked: usize) -> Option<usize> {
        match self {
            Self::Class(class) => Some(*class),
            Self::Top(_) => Some(ranked),
            Self::Score(_) => None,
        }
    }
}

/// Resolve every target against the number of classes.
pub(crate) fn resolve_classes(targets: &[Target], classes: usize) -> Result<Vec<Resolved>> {
    targets
        .iter()
        .map(|target| match target {
            Target::Top(rank) if (1..=classes).contains(rank) => Ok(Resolved::Top(*rank)),
            Target::Top(rank) => Err(InputError::RankOutOfRange {
                rank: *rank,
                num_classes: classes,
            }
            .into()),
            Target::Class(class) if *class < classes => Ok(Resolved::Class(*class)),
            Target::Class(class) => Err(InputError::ClassOutOfRange {
                class: *class,
                num_classes: classes,
            }
            .into()),
            Target::Score(f) => Ok(Resolved::Score(f.clone())),
        })
        .collect()
}

/// Every row of `logits` scored by one target (a rank: each row's own).
///
/// # Shapes
/// - `logits`: `[r, classes]`
/// - returns `[r]`
pub(crate) fn score_rows(logits: Tensor<2>, target: &Resolved) -> Result<Tensor<1>> {
    let [rows, _] = logits.dims();
    match target {
        Resolved::Class(class) => Ok(logits.narrow(1, *class, 1).reshape([rows])),
        Resolved::Top(1) => Ok(logits.max_dim(1).reshape([rows])),
        Resolved::Top(rank) => Ok(logits.topk(*rank, 1).narrow(1, rank - 1, 1).reshape([rows])),
        Resolved::Score(f) => score_with(f, logits),
    }
}

/// A custom score of every row: its panics and a wrong shape are errors, and so is a score
/// cut from differentiable logits.
///
/// # Shapes
/// - `logits`: `[r, classes]`
/// - returns `[r]`
fn score_with(f: &ScoreFn, logits: Tensor<2>) -> Result<Tensor<1>> {
    let [rows, _] = logits.dims();
    let tracked = logits.is_tracked();
    let scores = catch_unwind(AssertUnwindSafe(|| f(logits))).map_err(|payload| {
        InputError::ScorePanicked {
            message: panic_message(payload),
        }
    })?;
    if scores.dims() != [rows] {
        return Err(InputError::ScoreShape {
            got: scores.dims().to_vec(),
            expected: rows,
        }
        .into());
    }
    if tracked && !scores.is_tracked() {
        return Err(InputError::ScoreDetached.into());
    }
    Ok(scores)
}

/// Each row's score under its own target, and the class each row's rank was found to be: one-hot
/// masks for classes and ranks (found on the device), the score functions on the rows that use
/// them. Differentiable where the logits are; nothing is read back to the host.
///
/// # Shapes
/// - `logits`: `[r, classes]`, one row per target, `f32`
/// - returns the scores `[r]` and the classes `[r]` as `f32` (exact below 2^24 classes): the
///   target's class for a class, the class found for a rank, 0 for a custom score (read with
///   [`Resolved::class`]).
pub(crate) fn row_scores(
    logits: Tensor<2>,
    targets: &[Resolved],
) -> Result<(Tensor<1>, Tensor<1>)> {
    let [rows, classes] = logits.dims();
    let device = logits.device().without_autodiff();
    let f32s = (&device, DType::F32);
    let host = |values: Vec<f32>| Tensor::<1>::from_data(TensorData::new(values, [rows]), f32s);
    let mut known = vec![0.0f32; rows]; // classes given by the caller
    let mut masked = vec![0.0f32; rows]; // rows scored by their class's logit
    let mut ranks = vec![0usize; rows]; // rows scored by a rank (0: none)
    let mut scored: Vec<(ScoreFn, Vec<usize>)> = Vec::new();
    for (row, target) in targets.iter().enumerate() {
        match target {
            Resolved::Class(class) => {
                known[row] = *class as f32;
                masked[row] = 1.0;
            }
            Resolved::Top(rank) => {
                ranks[row] = *rank;
                masked[row] = 1.0;
            }
            Resolved::Score(f) => match scored.iter_mut().find(|(g, _)| Arc::ptr_eq(f, g)) {
                Some((_, rows)) => rows.push(row),
                None => scored.push((f.clone(), vec![row])),
            },
        }
    }
    let mut class_of = host(known); // [r]
    if let Some(ranked) = ranked_classes(logits.clone().without_autodiff(), &ranks) {
        let is_ranked = ranks.iter().map(|&r| f32::from(u8::from(r > 0))).collect();
        class_of = class_of + ranked * host(is_ranked);
    }
    let one_hot = Tensor::<1, Int>::arange(0..classes as i64, &device)
        .reshape([1, classes])
        .float()
        .cast(FloatDType::F32)
        .expand([rows, classes])
        .equal(class_of.clone().reshape([rows, 1]).expand([rows, classes]))
        .float()
        .cast(FloatDType::F32); // [r, classes]
    let mask = one_hot * host(masked).reshape([rows, 1]); // [r, classes]
    let mut scores = (logits.clone() * mask).sum_dim(1).reshape([rows]); // [r]
    for (f, rows_of_f) in scored {
        let index = rows_of_f.iter().map(|&r| r as i64).collect::<Vec<_>>();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows_of_f.len()]), &device);
        let values = score_with(&f, logits.clone().select(0, index.clone()))?; // [r_f]
        scores = scores.select_assign(0, index, values, IndexingUpdateOp::Add);
    }
    Ok((scores, class_of))
}

/// The class each row's rank picks, `[r]` as `f32`, or `None` when no row has a rank (`ranks[row]
/// = 0`): the first largest logit for rank 1, the `rank`-th of the sorted logits otherwise.
///
/// # Shapes
/// - `logits`: `[r, classes]`
/// - returns `[r]`
fn ranked_classes(logits: Tensor<2>, ranks: &[usize]) -> Option<Tensor<1>> {
    let deepest = *ranks.iter().max()?;
    if deepest == 0 {
        return None;
    }
    let [rows, _] = logits.dims();
    let device = logits.device();
    let as_f32 = |t: Tensor<2, Int>| t.float().cast(FloatDType::F32);
    let first = as_f32(logits.clone().argmax(1)).reshape([rows]); // [r]
    if deepest == 1 {
        return Some(first);
    }
    // Rows of rank 1 keep the argmax (its ties go to the lower class); the others pick their
    // column of the top `deepest` indices.
    let (_, indices) = logits.topk_with_indices(deepest, 1); // [r, deepest]
    let mut pick = vec![0.0f32; rows * deepest];
    let mut is_first = vec![0.0f32; rows];
    for (row, &rank) in ranks.iter().enumerate() {
        match rank {
            0 => {}
            1 => is_first[row] = 1.0,
            rank => pick[row * deepest + rank - 1] = 1.0,
        }
    }
    let pick = Tensor::<2>::from_data(
        TensorData::new(pick, [rows, deepest]),
        (&device, DType::F32),
    );
    let is_first = Tensor::<1>::from_data(TensorData::new(is_first, [rows]), (&device, DType::F32));
    let deeper = (as_f32(indices) * pick).sum_dim(1).reshape([rows]); // [r]
    Some(first * is_first + deeper)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::GradCamError;

    fn classes(targets: &[Target]) -> Vec<usize> {
        targets
            .iter()
            .map(|t| match t {
                Target::Class(c) => *c,
                _ => usize::MAX,
            })
            .collect()
    }

    #[test]
    fn targets_for_every_image_repeat_per_image() {
        let (m, flat) = Targets::every_image([1, 2]).resolve(3).unwrap();
        assert_eq!(m, 2);
        assert_eq!(classes(&flat), vec![1, 2, 1, 2, 1, 2]);
        let (m, flat) = Targets::top(2).resolve(1).unwrap();
        assert_eq!(m, 2);
        assert!(matches!(flat[..], [Target::Top(1), Target::Top(2)]));
    }

    #[test]
    fn counts_that_fit_neither_rule_are_errors() {
        let count = |r: Result<(usize, Vec<Target>)>| match r {
            Err(GradCamError::Input(InputError::TargetCount { got, batch })) => Some((got, batch)),
            _ => None,
        };
        assert_eq!(
            count(Targets::one_per_image([1, 2, 3]).resolve(2)),
            Some((3, 2))
        );
        // One target "per image" for a batch of four is not a target for all four.
        assert_eq!(count(Targets::one_per_image([1]).resolve(4)), Some((1, 4)));
        assert_eq!(
            classes(&Targets::one_per_image([1, 2]).resolve(2).unwrap().1),
            [1, 2]
        );
        assert!(matches!(
            Targets::rows_per_image(vec![vec![1.into()], vec![2.into(), 3.into()]]).resolve(2),
            Err(GradCamError::Input(InputError::RaggedTargets {
                image: 1,
                got: 2,
                expected: 1
            }))
        ));
        assert!(matches!(
            Targets::every_image(Vec::<usize>::new()).resolve(2),
            Err(GradCamError::Input(InputError::NoTargets))
        ));
        assert_eq!(
            count(Targets::rows_per_image(Vec::new()).resolve(2)),
            Some((0, 2))
        );
    }

    #[test]
    fn ranks_are_checked_against_the_classes() {
        assert!(resolve_classes(&[Target::Top(3)], 3).is_ok());
        for rank in [0, 4] {
            assert!(matches!(
                resolve_classes(&[Target::Top(rank)], 3),
                Err(GradCamError::Input(InputError::RankOutOfRange { .. }))
            ));
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn ranks_classes_and_scores_are_scored_on_the_device() {
        use burn::tensor::Device;
        // Row 0: classes by logit 2 > 0 > 1; row 1: 1 > 2 > 0; row 2: a custom score.
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![5.0f32, 1.0, 9.0, 0.0, 7.0, 3.0, 1.0, 2.0, 3.0], [3, 3]),
            &Device::flex(),
        );
        let double = Target::score(|l: Tensor<2>| l.narrow(1, 1, 1).flatten(0, 1) * 2.0);
        let targets = [Target::Top(2), Target::Top(1), double];
        let resolved = resolve_classes(&targets, 3).unwrap();
        let (scores, classes) = row_scores(logits, &resolved).unwrap();
        assert_eq!(crate::host::read(scores), vec![5.0, 7.0, 4.0]);
        let classes = crate::host::read(classes);
        let explained: Vec<_> = resolved
            .iter()
            .zip(classes)
            .map(|(r, c)| r.class(c as usize))
            .collect();
        assert_eq!(explained, vec![Some(0), Some(1), None]);
    }
}
