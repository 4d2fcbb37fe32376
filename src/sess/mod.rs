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

pub(crate) mod config;
mod fusion;

use burn::tensor::activation::softmax;
use burn::tensor::{DType, Device, Tensor, TensorData};

use config::{Layout, Patch};
pub use config::{SessConfig, SessPool, SessScales};
use fusion::{Fused, Weights};

use crate::capture::to_f32;
use crate::error::{ModelError, Result};
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

/// Scores clipped at 0: a negative score cannot weight a map.
fn clipped(mut scores: Vec<f32>) -> Vec<f32> {
    scores.iter_mut().for_each(|s| *s = s.max(0.0));
    scores
}

/// The targets whose scores weight the patches: each target on the softmax of the logits
/// (pytorch-grad-cam's `target(softmax(outputs))`: a class's probability), or the target itself
/// on the logits.
fn weight_targets(rows: &[Target], softmax_scores: bool) -> Vec<Target> {
    if softmax_scores {
        rows.iter().map(probability).collect()
    } else {
        rows.to_vec()
    }
}

/// `target` on the softmax of the logits.
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
            // On the logits the weight targets are the targets: their scores come with them.
            targets.extend(weight_targets(rows, true));
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

    /// The score of every patch under each target's [`weight_targets`], patch-major `[b * m]`.
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
        let [_, classes] = logits.dims();
        ModelError::check_rows(logits.dims(), b)?;
        let logits = to_f32(logits); // [b, classes]
        let columns = resolve_classes(&weight_targets(rows, softmax_scores), classes)?
            .iter()
            .map(|target| score_rows(logits.clone(), target))
            .collect::<Result<Vec<_>>>()?; // m x [b]
        read_finite(Tensor::stack::<2>(columns, 1), "SESS patch scores") // [b, m]
    }
}
