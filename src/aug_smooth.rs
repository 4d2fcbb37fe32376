//! Augmentation smoothing (pytorch-grad-cam's `aug_smooth`, its test-time augmentation with
//! `ttach`: `Compose([HorizontalFlip(), Multiply(factors=[0.9, 1, 1.1])])`): the input explained
//! six times, the heatmaps brought back to the input's frame and averaged.

use burn::tensor::Tensor;

use crate::error::Result;
use crate::explainer::Explainer;
use crate::explanation::Explanation;
use crate::model::GradCam;
use crate::target::Targets;

/// One augmentation: mirrored left to right or not, the values multiplied by a factor.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Augmentation {
    mirrored: bool,
    factor: f32,
}

/// The six augmentations in `ttach`'s order (each flip, then each factor); the unaugmented
/// input is the second.
const AUGMENTATIONS: [Augmentation; 6] = [
    Augmentation::new(false, 0.9),
    Augmentation::new(false, 1.0),
    Augmentation::new(false, 1.1),
    Augmentation::new(true, 0.9),
    Augmentation::new(true, 1.0),
    Augmentation::new(true, 1.1),
];

/// The index of the unaugmented input in [`AUGMENTATIONS`].
const AS_IS: usize = 1;

impl Augmentation {
    const fn new(mirrored: bool, factor: f32) -> Self {
        Self { mirrored, factor }
    }

    /// The augmented input (`ttach`'s `augment_image`).
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`; returns the same
    fn apply(self, input: Tensor<4>) -> Tensor<4> {
        let input = if self.factor == 1.0 {
            input
        } else {
            input.mul_scalar(self.factor)
        };
        if self.mirrored {
            input.flip([3])
        } else {
            input
        }
    }

    /// A heatmap of the augmented input in the input's frame (`ttach`'s `deaugment_mask`: the
    /// mirror undone; a brightness factor moves no pixel).
    ///
    /// # Shapes
    /// - `heatmap`: `[n, m, H, W]`; returns the same
    fn undo(self, heatmap: Tensor<4>) -> Tensor<4> {
        if self.mirrored {
            heatmap.flip([3])
        } else {
            heatmap
        }
    }
}

impl<M: GradCam> Explainer<M> {
    /// [`Explainer::explain`] with augmentation smoothing: the heatmap is the mean of the six
    /// augmented inputs' heatmaps (summed in `ttach`'s order, as pytorch-grad-cam's `np.mean`);
    /// the layers' maps and the targets are those of the input as it is.
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`; the heatmap `[n, m, H, W]`
    ///
    /// # Errors
    /// As [`Explainer::explain`], for any of the six inputs.
    pub(crate) fn explain_aug_smoothed(
        &self,
        input: Tensor<4>,
        targets: &Targets,
    ) -> Result<Explanation> {
        let mut explanations = AUGMENTATIONS
            .iter()
            .map(|augmentation| {
                self.explain_unaugmented(augmentation.apply(input.clone()), targets)
            })
            .collect::<Result<Vec<_>>>()?;
        // From zeros (`0 + x` is exact): the six summed in order.
        let zeros = explanations[AS_IS].heatmap.zeros_like(); // [n, m, H, W]
        let sum = explanations
            .iter()
            .zip(AUGMENTATIONS)
            .fold(zeros, |sum, (explanation, augmentation)| {
                sum + augmentation.undo(explanation.heatmap.clone())
            });
        let mut as_is = explanations.swap_remove(AS_IS);
        as_is.heatmap = sum.div_scalar(AUGMENTATIONS.len() as f32); // [n, m, H, W]
        Ok(as_is)
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn each_augmentation_is_undone_on_the_heatmap() {
        let device = Device::flex();
        // [1, 1, 1, 3]: a row 1, 2, 3.
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0], [1, 1, 1, 3]),
            &device,
        );
        let host = |t: Tensor<4>| crate::host::read(t);
        assert_eq!(
            AUGMENTATIONS[AS_IS],
            Augmentation {
                mirrored: false,
                factor: 1.0
            }
        );
        let mirrored = Augmentation {
            mirrored: true,
            factor: 1.1,
        };
        assert_eq!(
            host(mirrored.apply(x.clone())),
            vec![3.0 * 1.1, 2.0 * 1.1, 1.0 * 1.1]
        );
        // A heatmap computed on the mirrored input comes back mirrored again.
        assert_eq!(
            host(mirrored.undo(mirrored.apply(x.clone()))),
            vec![1.1, 2.2, 3.3000002]
        );
        let darker = Augmentation {
            mirrored: false,
            factor: 0.9,
        };
        assert_eq!(host(darker.undo(x)), vec![1.0, 2.0, 3.0]);
    }
}
