//! SESS's settings and where its patches come from: the scales, the sliding windows.

use crate::error::{GradCamError, Result};

/// The sizes SESS resizes the input's shorter side to.
#[derive(Debug, Clone, PartialEq)]
pub enum SessScales {
    /// `count` sizes from the window up, `round(ratio x window)` apart (pytorch-grad-cam's
    /// `num_scales` and `scale_step_ratio`; the paper's 224, 288, ... for a 224 window).
    Steps {
        /// How many (at least 1).
        count: usize,
        /// The step over the window (finite, at least 0).
        ratio: f64,
    },
    /// These sizes (pytorch-grad-cam's `scales`).
    Sizes(Vec<usize>),
}

/// How SESS fuses the patches' maps at a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessPool {
    /// The mean of the patches' values above `theta` at the pixel (0 where none is): the
    /// paper's spatial weighted average.
    #[default]
    Mean,
    /// The maximum of the patches' values and 0.
    Max,
}

/// The settings of SESS ([`ExplainerConfig::with_sess`](crate::ExplainerConfig::with_sess)):
/// pytorch-grad-cam 1.5.7's defaults unless set.
#[derive(Debug, Clone, PartialEq)]
pub struct SessConfig {
    /// The sizes the input's shorter side is resized to (the longer side keeps the aspect ratio,
    /// `floor(size x long / short)`, as torchvision's `resize`). Each at least the input's
    /// shorter side: SESS enlarges the image (shrinking it would need torchvision's
    /// antialiasing, which is not written here).
    pub scales: SessScales,
    /// The side of the square window; `None`: the input's shorter side, so that the smallest
    /// scale's patch is the image itself.
    pub window: Option<usize>,
    /// The window's stride; `None`: the window's side (the windows at the right and bottom
    /// borders are moved back inside, so they may overlap).
    pub step: Option<usize>,
    /// The share of the lowest-scoring patches left out of each map, in `[0, 1)`.
    pub pre_filter_ratio: f64,
    /// [`SessPool::Mean`] counts a patch at a pixel only where its value is above this.
    pub theta: f32,
    /// How the patches are fused.
    pub pool: SessPool,
    /// Blur the fused map with OpenCV's `GaussianBlur(.., (11, 11), 5)`.
    pub smooth: bool,
    /// Score a patch by its target on the softmax of its logits (the paper's); `false`: on the
    /// logits. Either is clipped at 0 before it weights the patch.
    pub softmax_scores: bool,
    /// Patches per forward (at least 1).
    pub batch_size: usize,
}

impl Default for SessConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SessConfig {
    /// 12 scales 2/7 of the window apart, the window the shorter side, no overlap, nothing
    /// filtered out, mean fusion above 0, blurred, softmax scores, 32 patches per forward.
    pub fn new() -> Self {
        Self {
            scales: SessScales::Steps {
                count: 12,
                ratio: 2.0 / 7.0,
            },
            window: None,
            step: None,
            pre_filter_ratio: 0.0,
            theta: 0.0,
            pool: SessPool::Mean,
            smooth: true,
            softmax_scores: true,
            batch_size: 32,
        }
    }

    /// The sizes of the shorter side.
    pub fn with_scales(mut self, scales: SessScales) -> Self {
        self.scales = scales;
        self
    }

    /// The window's side.
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = Some(window);
        self
    }

    /// The window's stride.
    pub fn with_step(mut self, step: usize) -> Self {
        self.step = Some(step);
        self
    }

    /// The share of the lowest-scoring patches left out.
    pub fn with_pre_filter_ratio(mut self, ratio: f64) -> Self {
        self.pre_filter_ratio = ratio;
        self
    }

    /// The threshold of mean fusion.
    pub fn with_theta(mut self, theta: f32) -> Self {
        self.theta = theta;
        self
    }

    /// How the patches are fused.
    pub fn with_pool(mut self, pool: SessPool) -> Self {
        self.pool = pool;
        self
    }

    /// Blur the fused map or not.
    pub fn with_smooth(mut self, smooth: bool) -> Self {
        self.smooth = smooth;
        self
    }

    /// Score patches on the softmax (or the logits).
    pub fn with_softmax_scores(mut self, softmax_scores: bool) -> Self {
        self.softmax_scores = softmax_scores;
        self
    }

    /// Patches per forward.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The patches of an `[height, width]` input, in pytorch-grad-cam's order (scale by scale,
    /// rows of windows top to bottom).
    ///
    /// # Errors
    /// [`InputError::Argument`](crate::InputError::Argument) for a setting out of its range.
    pub(super) fn layout(&self, [height, width]: [usize; 2]) -> Result<Layout> {
        let shorter = height.min(width);
        let window = self.window.unwrap_or(shorter);
        let step = self.step.unwrap_or(window);
        let argument = |what: String| Err(GradCamError::argument(what));
        if window == 0 || window > shorter {
            return argument(format!(
                "a SESS window of {window} on a {height} x {width} input; use 1 to {shorter}"
            ));
        }
        if step == 0 {
            return argument("a SESS step of 0; use at least 1".into());
        }
        if self.batch_size == 0 {
            return argument("a SESS batch size of 0; use at least 1".into());
        }
        if !(0.0..1.0).contains(&self.pre_filter_ratio) {
            return argument(format!(
                "a SESS pre-filter ratio of {}; use one in [0, 1)",
                self.pre_filter_ratio
            ));
        }
        if !self.theta.is_finite() {
            return argument("a non-finite SESS theta; use a finite threshold".into());
        }
        let sizes: Vec<usize> = match &self.scales {
            SessScales::Steps { count, ratio }
                if *count >= 1 && ratio.is_finite() && *ratio >= 0.0 =>
            {
                // Python's `round`: ties to even.
                let apart = (window as f64 * ratio).round_ties_even() as usize;
                (0..*count).map(|i| window + apart * i).collect()
            }
            SessScales::Sizes(sizes) if !sizes.is_empty() => sizes.clone(),
            scales => {
                return argument(format!(
                    "SESS scales {scales:?}; give at least one size (steps: a finite ratio of at \
                     least 0)"
                ));
            }
        };
        if let Some(size) = sizes.iter().find(|&&size| size < shorter) {
            return argument(format!(
                "a SESS scale of {size} on a {height} x {width} input; every scale must be at \
                 least the shorter side ({shorter}): SESS enlarges the image"
            ));
        }
        let scaled: Vec<[usize; 2]> = sizes
            .iter()
            .map(|&size| resized([height, width], size))
            .collect();
        let patches = scaled
            .iter()
            .enumerate()
            .flat_map(|(scale, &[rows, columns])| {
                let lefts = window_starts(columns, step, window);
                window_starts(rows, step, window)
                    .into_iter()
                    .flat_map(move |top| {
                        lefts
                            .clone()
                            .into_iter()
                            .map(move |left| Patch { scale, top, left })
                    })
            })
            .collect();
        Ok(Layout {
            window,
            scaled,
            patches,
        })
    }
}

/// Where SESS's patches come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    /// The window's side.
    pub(super) window: usize,
    /// The input's size at each scale, `[rows, columns]`.
    pub(super) scaled: Vec<[usize; 2]>,
    /// Every patch.
    pub(super) patches: Vec<Patch>,
}

/// One patch: the scale its image was resized to (an index into [`Layout::scaled`]), and the
/// window's top-left corner there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Patch {
    pub(super) scale: usize,
    pub(super) top: usize,
    pub(super) left: usize,
}

/// torchvision's `resize(x, shorter)`: the shorter side to `shorter`, the longer to
/// `floor(shorter x long / short)`.
fn resized([height, width]: [usize; 2], shorter: usize) -> [usize; 2] {
    if width <= height {
        [shorter * height / width, shorter]
    } else {
        [shorter, shorter * width / height]
    }
}

/// pytorch-grad-cam's `window_starts`: every `step` from 0 while the window fits inside, then
/// one window flush with the end.
fn window_starts(length: usize, step: usize, window: usize) -> Vec<usize> {
    let mut starts = Vec::new();
    for start in (0..length).step_by(step) {
        if start + window >= length {
            starts.push(length.saturating_sub(window));
            break;
        }
        starts.push(start);
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_step_then_one_flush_with_the_end() {
        assert_eq!(window_starts(224, 224, 224), vec![0]);
        assert_eq!(window_starts(288, 224, 224), vec![0, 64]);
        assert_eq!(window_starts(672, 224, 224), vec![0, 224, 448]);
        assert_eq!(window_starts(262, 64, 64), vec![0, 64, 128, 192, 198]);
        assert_eq!(window_starts(100, 30, 64), vec![0, 30, 36]);
    }

    #[test]
    fn the_shorter_side_takes_the_scale_and_the_longer_side_keeps_the_ratio() {
        assert_eq!(resized([224, 224], 288), [288, 288]);
        assert_eq!(resized([100, 150], 120), [120, 180]);
        assert_eq!(resized([150, 100], 121), [181, 121]); // floor(181.5)
    }

    #[test]
    fn the_default_scales_of_a_224_input_make_pytorch_grad_cams_122_patches() {
        let layout = SessConfig::new().layout([224, 224]).unwrap();
        assert_eq!(layout.window, 224);
        let sides: Vec<usize> = layout.scaled.iter().map(|s| s[0]).collect();
        assert_eq!(sides, (0..12).map(|i| 224 + 64 * i).collect::<Vec<_>>());
        assert_eq!(layout.patches.len(), 122);
        // The first is the image itself; the last scale's last patch is flush with its corner.
        assert_eq!(
            layout.patches[0],
            Patch {
                scale: 0,
                top: 0,
                left: 0
            }
        );
        let last = layout.patches[121];
        assert_eq!(
            (last.scale, last.top, last.left),
            (11, 928 - 224, 928 - 224)
        );
        // Within a scale, rows of windows top to bottom, each left to right.
        assert_eq!(
            layout.patches[1..5].to_vec(),
            [(0, 0), (0, 64), (64, 0), (64, 64)].map(|(top, left)| Patch {
                scale: 1,
                top,
                left
            })
        );
    }

    #[test]
    fn settings_out_of_range_are_errors() {
        let size = [64, 80];
        let bad = [
            SessConfig::new().with_window(65),
            SessConfig::new().with_window(0),
            SessConfig::new().with_step(0),
            SessConfig::new().with_batch_size(0),
            SessConfig::new().with_pre_filter_ratio(1.0),
            SessConfig::new().with_pre_filter_ratio(-0.1),
            SessConfig::new().with_theta(f32::NAN),
            SessConfig::new().with_scales(SessScales::Sizes(vec![])),
            SessConfig::new().with_scales(SessScales::Sizes(vec![64, 63])),
            SessConfig::new().with_scales(SessScales::Steps {
                count: 0,
                ratio: 0.5,
            }),
            SessConfig::new().with_scales(SessScales::Steps {
                count: 2,
                ratio: -1.0,
            }),
        ];
        for config in bad {
            let error = config.layout(size).unwrap_err();
            assert!(
                matches!(
                    error,
                    GradCamError::Input(crate::InputError::Argument { .. })
                ),
                "{config:?}: {error}"
            );
        }
        // A smaller window on a larger first scale is fine.
        let layout = SessConfig::new()
            .with_window(32)
            .with_scales(SessScales::Sizes(vec![64]))
            .layout(size)
            .unwrap();
        assert_eq!(layout.scaled, vec![[64, 80]]);
        assert_eq!(layout.patches.len(), 2 * 3);
    }
}
