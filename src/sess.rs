//! SESS (Tyagi, Kothari, Kwan and Wang, "SESS: Saliency Enhancing with Scaling and Sliding",
//! ECCV 2022, [arXiv:2207.01769](https://arxiv.org/abs/2207.01769)), as pytorch-grad-cam 1.5.7's
//! `SESS`: a meta-method that makes the configured method's map robust to the object's scale,
//! to several instances and to distractors.
//!
//! The input is resized to several scales; a square window slides over each; every patch is
//! explained by the configured method (its layers, ReLU, normalisation and fusion) for the
//! target the whole image resolved to, weighted by its own score under that target (the
//! softmax probability by default) over the best patch's, pasted back where it came from and
//! resized to the input; the patches are fused per pixel (the mean of the values above `theta`,
//! or the maximum), blurred, and min-max normalised per map.

use burn::tensor::activation::softmax;
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::capture::to_f32;
use crate::error::{GradCamError, ModelError, Result};
use crate::explainer::Explainer;
use crate::explanation::Explanation;
use crate::forward::forward;
use crate::gaussian_blur::gaussian_blur;
use crate::host::read_finite;
use crate::linear_resize::linear_resize_weights;
use crate::model::GradCam;
use crate::postprocess::{Normalization, normalize_min_max, upsample};
use crate::probe::Probe;
use crate::target::{Target, Targets, resolve_classes, score_rows};

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
    fn layout(&self, [height, width]: [usize; 2]) -> Result<Layout> {
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
struct Layout {
    /// The window's side.
    window: usize,
    /// The input's size at each scale, `[rows, columns]`.
    scaled: Vec<[usize; 2]>,
    /// Every patch.
    patches: Vec<Patch>,
}

/// One patch: the scale its image was resized to (an index into [`Layout::scaled`]), and the
/// window's top-left corner there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Patch {
    scale: usize,
    top: usize,
    left: usize,
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

/// Scores clipped at 0: a negative score cannot weight a map.
fn clipped(mut scores: Vec<f32>) -> Vec<f32> {
    scores.iter_mut().for_each(|s| *s = s.max(0.0));
    scores
}

/// `target` on the softmax of the logits: a patch's weight score, pytorch-grad-cam's
/// `target(softmax(outputs))` (a class: its probability).
fn probability(target: &Target) -> Target {
    let target = target.clone();
    Target::score(move |logits| {
        let p = softmax(logits, 1); // [r, classes]
        let rows = p.dims()[0];
        match &target {
            Target::Class(class) => p.narrow(1, *class, 1).reshape([rows]),
            Target::Top(rank) => p.topk(*rank, 1).narrow(1, rank - 1, 1).reshape([rows]),
            Target::Score(f) => f(p),
        }
    })
}

/// Each patch's weight under each target and whether it takes part, from their scores.
struct Weights {
    /// `[p * m]`, patch-major: `score / best score` (1 when the best is not positive).
    weights: Vec<f32>,
    /// `[p * m]`: 1 where the patch survives the pre-filter for the target, else 0.
    kept: Vec<f32>,
}

impl Weights {
    /// pytorch-grad-cam's: the patches sorted by score (stably, here), the lowest
    /// `floor(p x ratio)` left out, each survivor weighted by its score over the best one.
    fn new(scores: &[f32], m: usize, ratio: f64) -> Self {
        let p = scores.len() / m;
        let mut weights = vec![0.0f32; p * m];
        let mut kept = vec![0.0f32; p * m];
        for t in 0..m {
            let score = |patch: usize| scores[patch * m + t];
            let mut order: Vec<usize> = (0..p).collect();
            order.sort_by(|&a, &b| score(a).total_cmp(&score(b)));
            let survivors = &order[(p as f64 * ratio) as usize..];
            let best = survivors.last().map_or(0.0, |&patch| score(patch));
            for &patch in survivors {
                kept[patch * m + t] = 1.0;
                weights[patch * m + t] = if best > 0.0 { score(patch) / best } else { 1.0 };
            }
        }
        Self { weights, kept }
    }
}

/// The fused map of one image so far.
enum Fused {
    /// The sum of the counted values and their count per pixel.
    Mean { theta: f32, sums: Box<Sums> },
    /// The maximum so far (from 0).
    Max(Box<Tensor<4>>),
}

/// Mean fusion's running sums, `[1, m, H, W]` each.
struct Sums {
    total: Tensor<4>,
    counts: Tensor<4>,
}

impl Fused {
    /// Nothing fused yet.
    ///
    /// # Shapes
    /// - `zeros`: `[1, m, H, W]`
    fn new(pool: SessPool, theta: f32, zeros: Tensor<4>) -> Self {
        match pool {
            SessPool::Mean => Self::Mean {
                theta,
                sums: Box::new(Sums {
                    total: zeros.clone(),
                    counts: zeros,
                }),
            },
            SessPool::Max => Self::Max(Box::new(zeros)),
        }
    }

    /// Fuse a batch of pasted patch maps; `kept` says which take part for which target.
    ///
    /// # Shapes
    /// - `pasted`: `[b, m, H, W]`; `kept`: `[b, m, 1, 1]` of 0 and 1
    fn add(self, pasted: Tensor<4>, kept: Tensor<4>) -> Self {
        match self {
            Self::Mean { theta, sums } => {
                let counted = to_f32(pasted.clone().greater_elem(theta).float()) * kept; // [b, m, H, W]
                let Sums { total, counts } = *sums;
                Self::Mean {
                    theta,
                    sums: Box::new(Sums {
                        total: total + (pasted * counted.clone()).sum_dim(0),
                        counts: counts + counted.sum_dim(0),
                    }),
                }
            }
            Self::Max(max) => Self::Max(Box::new(max.max_pair((pasted * kept).max_dim(0)))),
        }
    }

    /// The fused map: the mean over the counted patches (0 where none counted), or the maximum.
    ///
    /// # Shapes
    /// - returns `[1, m, H, W]`
    fn result(self) -> Tensor<4> {
        match self {
            // Where no patch counted the total is 0 too: 0 / 1.
            Self::Mean { sums, .. } => sums.total / sums.counts.clamp_min(1.0),
            Self::Max(max) => *max,
        }
    }
}

/// OpenCV's bilinear weights from each scale back to the input: `cv2.resize` of a zero canvas
/// of a scale's size holding a map at a patch is `rows x map x columns` with the patch's rows
/// and columns of these.
struct Pasting {
    /// Per scale: `rows [H, sh]`, `columns [W, sw]`.
    scales: Vec<(Tensor<2>, Tensor<2>)>,
}

impl Pasting {
    fn new(layout: &Layout, [height, width]: [usize; 2], device: &Device) -> Self {
        let matrix = |from: usize, to: usize| {
            Tensor::<2>::from_data(
                TensorData::new(linear_resize_weights(from, to), [to, from]),
                (device, DType::F32),
            )
        };
        let scales = layout
            .scaled
            .iter()
            .map(|&[rows, columns]| (matrix(rows, height), matrix(columns, width)))
            .collect();
        Self { scales }
    }

    /// The patch's rows and columns of its scale's weights.
    ///
    /// # Shapes
    /// - returns `[H, window]` and `[window, W]`
    fn of(&self, patch: &Patch, window: usize) -> (Tensor<2>, Tensor<2>) {
        let (rows, columns) = &self.scales[patch.scale];
        (
            rows.clone().narrow(1, patch.top, window),
            columns.clone().narrow(1, patch.left, window).transpose(),
        )
    }
}

impl<M: GradCam> Explainer<M> {
    /// [`Explainer::explain`] with SESS: the heatmap is SESS's fused map; the layers' maps and
    /// the targets are those of the input as it is (explained first: its targets fix each
    /// patch's class).
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`; the heatmap `[n, m, H, W]`
    ///
    /// # Errors
    /// As [`Explainer::explain`], for the input and every patch; a setting of `sess` out of its
    /// range; non-finite patch scores.
    pub(crate) fn explain_sess(
        &self,
        sess: &SessConfig,
        input: Tensor<4>,
        targets: &Targets,
    ) -> Result<Explanation> {
        let whole = self.explain_once(input.clone(), targets)?;
        let input = self.check_input(input)?; // [n, c, H, W]
        let [n, _, height, width] = input.dims();
        let layout = sess.layout([height, width])?;
        let (m, flat) = targets.resolve(n)?;
        let pasting = Pasting::new(&layout, [height, width], &input.device());
        let maps = (0..n)
            .map(|image| {
                // Each target as the whole image resolved it: a rank is the class it found.
                let rows: Vec<Target> = whole.targets[image]
                    .iter()
                    .zip(&flat[image * m..(image + 1) * m])
                    .map(|(explained, target)| {
                        explained
                            .class
                            .map_or_else(|| target.clone(), Target::Class)
                    })
                    .collect();
                let image = input.clone().narrow(0, image, 1); // [1, c, H, W]
                self.sess_image(sess, &layout, &pasting, image, &rows)
            })
            .collect::<Result<Vec<_>>>()?;
        let fused = Tensor::cat(maps, 0); // [n, m, H, W]
        let heatmap = match self.config().normalization {
            Normalization::MinMax => normalize_min_max(fused),
            Normalization::Off => fused,
        };
        Ok(Explanation { heatmap, ..whole })
    }

    /// SESS's map of one image for its targets `rows`.
    ///
    /// Without a pre-filter, each patch is scored by the forward that explains it: its weight's
    /// score (the softmax probability of the class) rides along as one more target per target,
    /// a few more rows after the layer instead of pytorch-grad-cam's separate forward of every
    /// patch. With one, every score is needed before the filter picks the patches to explain:
    /// a forward of every patch first, as pytorch-grad-cam. Either way the patches' maps wait,
    /// `[patches, m, window, window]`, until the best score is known.
    ///
    /// # Shapes
    /// - `image`: `[1, c, H, W]`, checked
    /// - returns `[1, m, H, W]`
    fn sess_image(
        &self,
        sess: &SessConfig,
        layout: &Layout,
        pasting: &Pasting,
        image: Tensor<4>,
        rows: &[Target],
    ) -> Result<Tensor<4>> {
        let (m, window) = (rows.len(), layout.window);
        let [_, _, height, width] = image.dims();
        let scaled: Vec<Tensor<4>> = layout
            .scaled
            .iter()
            .map(|&size| upsample(image.clone(), size)) // [1, c, sh, sw]
            .collect();
        let batch = |patches: &[usize]| -> Tensor<4> {
            let cuts = patches
                .iter()
                .map(|&p| {
                    let patch = &layout.patches[p];
                    scaled[patch.scale]
                        .clone()
                        .narrow(2, patch.top, window)
                        .narrow(3, patch.left, window) // [1, c, window, window]
                })
                .collect();
            Tensor::cat(cuts, 0) // [b, c, window, window]
        };

        // The patches' maps, chunk by chunk, and their weights.
        let all: Vec<usize> = (0..layout.patches.len()).collect();
        let mut explained: Vec<(Vec<usize>, Tensor<4>)> = Vec::new();
        let weights = if sess.pre_filter_ratio == 0.0 {
            let mut scores = Vec::with_capacity(all.len() * m);
            for chunk in all.chunks(sess.batch_size) {
                let (heat, chunk_scores) = self.explain_patches(batch(chunk), rows, Some(sess))?;
                scores.extend(chunk_scores);
                explained.push((chunk.to_vec(), heat));
            }
            Weights::new(&clipped(scores), m, 0.0)
        } else {
            let mut scores = Vec::with_capacity(all.len() * m);
            for chunk in all.chunks(sess.batch_size) {
                scores.extend(self.patch_scores(batch(chunk), rows, sess.softmax_scores)?);
            }
            let weights = Weights::new(&clipped(scores), m, sess.pre_filter_ratio);
            let survivors: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&p| weights.kept[p * m..(p + 1) * m].contains(&1.0))
                .collect();
            for chunk in survivors.chunks(sess.batch_size) {
                let (heat, _) = self.explain_patches(batch(chunk), rows, None)?;
                explained.push((chunk.to_vec(), heat));
            }
            weights
        };

        // Weighted, pasted back and fused.
        let device = image.device();
        let per_patch = |values: &[f32], chunk: &[usize]| {
            let picked: Vec<f32> = chunk
                .iter()
                .flat_map(|&p| values[p * m..(p + 1) * m].iter().copied())
                .collect();
            let b = chunk.len();
            Tensor::<4>::from_data(TensorData::new(picked, [b, m, 1, 1]), (&device, DType::F32))
        };
        let zeros = Tensor::<4>::zeros([1, m, height, width], (&device, DType::F32));
        let mut fused = Fused::new(sess.pool, sess.theta, zeros);
        for (chunk, heat) in explained {
            let chunk = chunk.as_slice();
            let weighted = heat * per_patch(&weights.weights, chunk); // [b, m, w, w]
            let (lefts, rights): (Vec<_>, Vec<_>) = chunk
                .iter()
                .map(|&p| pasting.of(&layout.patches[p], window))
                .unzip();
            let lefts = Tensor::stack::<3>(lefts, 0).unsqueeze_dim::<4>(1); // [b, 1, H, w]
            let rights = Tensor::stack::<3>(rights, 0).unsqueeze_dim::<4>(1); // [b, 1, w, W]
            let pasted = lefts
                .repeat_dim(1, m)
                .matmul(weighted)
                .matmul(rights.repeat_dim(1, m)); // [b, m, H, W]
            fused = fused.add(pasted, per_patch(&weights.kept, chunk));
        }
        let map = fused.result(); // [1, m, H, W]
        Ok(if sess.smooth {
            gaussian_blur(map, 11, 5.0)
        } else {
            map
        })
    }

    /// The maps of a batch of patches for the targets `rows`, and, with `scored`'s settings,
    /// their scores (patch-major `[b * m]`): each target's weight score as one more target (on
    /// the softmax), or the target's own score (on the logits).
    ///
    /// # Shapes
    /// - `patches`: `[b, c, window, window]`
    /// - returns `[b, m, window, window]`
    fn explain_patches(
        &self,
        patches: Tensor<4>,
        rows: &[Target],
        scored: Option<&SessConfig>,
    ) -> Result<(Tensor<4>, Vec<f32>)> {
        let (b, m) = (patches.dims()[0], rows.len());
        let softmax_scores = scored.is_some_and(|sess| sess.softmax_scores);
        let mut targets = rows.to_vec();
        if softmax_scores {
            targets.extend(rows.iter().map(probability));
        }
        let explanation = self.explain_once(patches, &Targets::rows_per_image(vec![targets; b]))?;
        let heat = explanation.heatmap.narrow(1, 0, m); // [b, m, window, window]
        let scores = match scored {
            None => Vec::new(),
            Some(_) => {
                let first = if softmax_scores { m } else { 0 };
                explanation
                    .targets
                    .iter()
                    .flat_map(|row| row[first..first + m].iter().map(|t| t.score))
                    .collect()
            }
        };
        Ok((heat, scores))
    }

    /// The score of every patch under each target, on the softmax of its logits (or the
    /// logits), patch-major `[b * m]`.
    ///
    /// # Shapes
    /// - `patches`: `[b, c, window, window]`
    fn patch_scores(
        &self,
        patches: Tensor<4>,
        rows: &[Target],
        softmax_scores: bool,
    ) -> Result<Vec<f32>> {
        let b = patches.dims()[0];
        let logits = forward(self.model(), patches, &mut Probe::passthrough())
            .map_err(|message| ModelError::ForwardPanicked { message })?;
        let [got, classes] = logits.dims();
        if got != b {
            return Err(ModelError::OutputShape {
                got: [got, classes],
                expected_rows: b,
            }
            .into());
        }
        let logits = to_f32(logits); // [b, classes]
        let scored = if softmax_scores {
            softmax(logits, 1)
        } else {
            logits
        };
        let columns = resolve_classes(rows, classes)?
            .iter()
            .map(|target| score_rows(scored.clone(), target))
            .collect::<Result<Vec<_>>>()?; // m x [b]
        read_finite(Tensor::stack::<2>(columns, 1), "SESS patch scores") // [b, m]
    }
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

    #[test]
    fn the_lowest_patches_are_filtered_out_and_the_rest_weighted_by_the_best() {
        // Four patches, two targets: the second target's scores are all 0.
        let scores = [0.2, 0.0, 0.8, 0.0, 0.4, 0.0, 0.1, 0.0];
        let w = Weights::new(&scores, 2, 0.5);
        // Target 0: 0.1 and 0.2 left out, 0.4 / 0.8 and 0.8 / 0.8 kept.
        let column =
            |v: &[f32], t: usize| -> Vec<f32> { v.iter().skip(t).step_by(2).copied().collect() };
        assert_eq!(column(&w.kept, 0), vec![0.0, 1.0, 1.0, 0.0]);
        assert_eq!(column(&w.weights, 0), vec![0.0, 1.0, 0.5, 0.0]);
        // Target 1: ties kept in patch order (the first two left out), weights 1 (no best score).
        assert_eq!(column(&w.kept, 1), vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(column(&w.weights, 1), vec![0.0, 0.0, 1.0, 1.0]);
        let all = Weights::new(&scores, 2, 0.0);
        assert!(all.kept.iter().all(|&k| k == 1.0));
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_mean_counts_values_above_theta_and_the_max_starts_at_zero() {
        let device = burn::tensor::Device::flex();
        let t = |v: Vec<f32>, shape: [usize; 4]| {
            Tensor::<4>::from_data(TensorData::new(v, shape), &device)
        };
        // Three patches of one target over three pixels; the third patch is filtered out.
        let pasted = t(
            vec![0.5, 0.0, -1.0, 0.25, 0.0, -2.0, 9.0, 9.0, 9.0],
            [3, 1, 1, 3],
        );
        let kept = t(vec![1.0, 1.0, 0.0], [3, 1, 1, 1]);
        let zeros = Tensor::<4>::zeros([1, 1, 1, 3], &device);
        let mean = Fused::new(SessPool::Mean, 0.0, zeros.clone()).add(pasted.clone(), kept.clone());
        assert_eq!(crate::host::read(mean.result()), vec![0.375, 0.0, 0.0]);
        let above =
            Fused::new(SessPool::Mean, 0.3, zeros.clone()).add(pasted.clone(), kept.clone());
        assert_eq!(crate::host::read(above.result()), vec![0.5, 0.0, 0.0]);
        let max = Fused::new(SessPool::Max, 0.0, zeros).add(pasted, kept);
        assert_eq!(crate::host::read(max.result()), vec![0.5, 0.0, 0.0]);
    }
}
