//! The Grad-CAM explainer: forward to the layer without autodiff, backward only through the rest,
//! then the map reduction.

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorData};

use crate::config::GradCamConfig;
use crate::error::{GradCamError, Result};
use crate::kernel;
use crate::model::{Captured, GradCam, LayerInfo, Probe};
use crate::reduce;
use crate::target::{ScoreFn, Target, Targets};

/// Explains a model with Grad-CAM. Built by [`GradCamConfig::init`].
#[derive(Debug)]
pub struct GradCamExplainer<M> {
    model: M,
    config: GradCamConfig,
}

/// The maps of one explained layer, for every image and target.
#[derive(Debug, Clone)]
pub struct LayerMap {
    /// The layer's name.
    pub name: String,
    /// The channel weights `alpha_k`, `[n, m, k]`.
    pub weights: Tensor<3>,
    /// The signed map `sum_k alpha_k A^k` at the layer's resolution, before ReLU and
    /// normalisation, `[n, m, h, w]`.
    pub raw: Tensor<4>,
    /// The map after ReLU (if on) and normalisation, at the layer's resolution, `[n, m, h, w]`.
    pub cam: Tensor<4>,
    /// `cam` upsampled to the input's size, `[n, m, H, W]` (not normalised again).
    pub heatmap: Tensor<4>,
}

/// What was explained for one image and target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExplainedTarget {
    /// The class, for class and top-prediction targets; `None` for a custom score.
    pub class: Option<usize>,
    /// The score whose gradient was followed (a logit, or the custom score).
    pub score: f32,
}

/// The result of [`GradCamExplainer::explain`]; tensors stay on the input's device.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// One entry per explained layer, in forward order.
    pub layers: Vec<LayerMap>,
    /// The heatmap, `[n, m, H, W]`: the layers' upsampled maps clipped at 0 (with the ReLU on),
    /// averaged and normalised again (see [`reduce::combine_layers`]); with min-max
    /// normalisation it spans exactly `[0, 1]`. Equal to pytorch-grad-cam's output.
    pub heatmap: Tensor<4>,
    /// `[n][m]`: what each map explains.
    pub targets: Vec<Vec<ExplainedTarget>>,
}

impl Explanation {
    /// The heatmap of image `image` and target `target`, row-major `[H, W]`, read to the host.
    ///
    /// # Panics
    /// If `image` or `target` is out of range of this explanation, or the device cannot be
    /// read.
    pub fn heatmap_values(&self, image: usize, target: usize) -> Vec<f32> {
        let [n, m, _, _] = self.heatmap.dims();
        assert!(
            image < n && target < m,
            "map ({image}, {target}) of an [{n}, {m}] explanation"
        );
        read(
            self.heatmap
                .clone()
                .slice([image..image + 1, target..target + 1]),
        )
    }
}

impl<M: GradCam> GradCamExplainer<M> {
    pub(crate) fn new(model: M, config: GradCamConfig) -> Self {
        Self { model, config }
    }

    /// The configuration, with the default layer resolved.
    pub fn config(&self) -> &GradCamConfig {
        &self.config
    }

    /// The model in validation mode, as the explainer runs it.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The layers the model announces, with their activation shapes for this input.
    ///
    /// # Shapes
    /// - `input`: `[n, c, h, w]`
    pub fn layer_shapes(&self, input: Tensor<4>) -> Result<Vec<LayerInfo>> {
        let input = self.check_input(input)?;
        let mut probe = Probe::recorder();
        let _ = self.model.forward_probed(input, &mut probe);
        Ok(probe.into_recorded())
    }

    /// Explain `targets` for a batch of images.
    ///
    /// One forward runs up to the first explained layer without autodiff; the activation
    /// becomes a gradient leaf there (repeated once per target when there are several per
    /// image) and one backward runs through the rest of the network only. No parameter gets a
    /// gradient.
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`
    /// - the explanation's maps are `[n, m, ..]` for `m` targets per image.
    ///
    /// # Errors
    /// Empty batch, input shape the model rejects, target count or class out of range, a
    /// model that breaks its contract, NaN or infinity in scores or gradients: see
    /// [`GradCamError`].
    pub fn explain(&self, input: Tensor<4>, targets: &Targets) -> Result<Explanation> {
        let input = self.check_input(input)?; // [n, c, H, W]
        let [n, _, height, width] = input.dims();
        let (m, targets) = targets.resolve(n)?;

        let mut probe = Probe::capture(self.config.layers.clone(), m);
        let logits = self.model.forward_probed(input, &mut probe); // [n * m, classes]
        let (captured, duplicate) = probe.into_capture().expect("a capture probe").finish();
        if let Some(name) = duplicate {
            return Err(GradCamError::DuplicateLayer { name });
        }
        if let Some(name) = self
            .config
            .layers
            .iter()
            .find(|name| !captured.iter().any(|c| &c.name == *name))
        {
            return Err(GradCamError::LayerNotReached { name: name.clone() });
        }
        let [rows, classes] = logits.dims();
        if rows != n * m {
            return Err(GradCamError::OutputShape {
                got: [rows, classes],
                expected_rows: n * m,
            });
        }

        let (objective, explained) = objective(logits, &targets)?;
        if !objective.is_tracked() {
            // The scores do not depend on any explained layer: nothing to differentiate.
            return Err(GradCamError::NoGradient {
                name: self.config.layers[0].clone(),
            });
        }
        let grads = objective.backward();

        let mut layers = Vec::with_capacity(captured.len());
        for captured in captured {
            let Captured {
                name,
                activation,
                per_target,
                leaf,
            } = captured;
            let grad = leaf
                .grad(&grads)
                .ok_or_else(|| GradCamError::NoGradient { name: name.clone() })?; // [n * m, k, h, w]
            let weights = reduce::channel_weights(grad); // [n * m, k]
            let [_, k] = weights.dims();
            check_finite(weights.clone().sum(), || {
                format!("gradients of layer `{name}`")
            })?;
            let raw = if per_target {
                let [_, _, h, w] = activation.dims();
                kernel::weighted_sum(activation, weights.clone().reshape([n * m, 1, k]))
                    .reshape([n, m, h, w])
            } else {
                kernel::weighted_sum(activation, weights.clone().reshape([n, m, k]))
            }; // [n, m, h, w]
            let cam = reduce::finish(raw.clone(), self.config.relu, self.config.normalization);
            let heatmap = reduce::upsample(cam.clone(), [height, width]); // [n, m, H, W]
            layers.push(LayerMap {
                name,
                weights: weights.reshape([n, m, k]),
                raw,
                cam,
                heatmap,
            });
        }
        let heatmap = reduce::combine_layers(
            layers.iter().map(|l| l.heatmap.clone()).collect(),
            self.config.relu,
            self.config.normalization,
        );
        Ok(Explanation {
            layers,
            heatmap,
            targets: explained.chunks(m).map(<[_]>::to_vec).collect(),
        })
    }

    /// The input without autodiff, after the checks the model's declared shape allows.
    fn check_input(&self, input: Tensor<4>) -> Result<Tensor<4>> {
        let shape = input.dims();
        if shape.contains(&0) {
            return Err(GradCamError::EmptyBatch { shape });
        }
        let expected = self.model.input_shape();
        if expected
            .iter()
            .zip(&shape[1..])
            .any(|(want, got)| want.is_some_and(|want| want != *got))
        {
            let expected = expected
                .iter()
                .map(|d| d.map_or("_".to_string(), |d| d.to_string()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(GradCamError::InputShape {
                expected,
                got: shape,
            });
        }
        Ok(input.without_autodiff())
    }
}

/// The sum of every row's target score, and what each row explains.
///
/// # Shapes
/// - `logits`: `[r, classes]`, one row per image and target
/// - returns a one-element tensor on the autodiff graph
fn objective(logits: Tensor<2>, targets: &[Target]) -> Result<(Tensor<1>, Vec<ExplainedTarget>)> {
    let [rows, classes] = logits.dims();
    let host = read(logits.clone()); // [r * classes]
    let mut explained = vec![
        ExplainedTarget {
            class: None,
            score: 0.0
        };
        rows
    ];
    let mut mask = vec![0.0f32; rows * classes];
    let mut any_class = false;
    let mut scored: Vec<(ScoreFn, Vec<usize>)> = Vec::new();
    for (row, target) in targets.iter().enumerate() {
        let logits_row = &host[row * classes..(row + 1) * classes];
        let class = match target {
            Target::TopPrediction => argmax(logits_row),
            Target::Class(class) if *class < classes => *class,
            Target::Class(class) => {
                return Err(GradCamError::ClassOutOfRange {
                    class: *class,
                    num_classes: classes,
                });
            }
            Target::Score(f) => {
                match scored.iter_mut().find(|(g, _)| Arc::ptr_eq(f, g)) {
                    Some((_, rows)) => rows.push(row),
                    None => scored.push((f.clone(), vec![row])),
                }
                continue;
            }
        };
        let score = logits_row[class];
        if !score.is_finite() {
            return Err(GradCamError::NonFinite {
                what: "scores".to_string(),
            });
        }
        mask[row * classes + class] = 1.0;
        any_class = true;
        explained[row] = ExplainedTarget {
            class: Some(class),
            score,
        };
    }

    let device = logits.device().without_autodiff();
    let mut objective: Option<Tensor<1>> = None;
    let mut add = |part: Tensor<1>| {
        objective = Some(match objective.take() {
            Some(sum) => sum + part,
            None => part,
        });
    };
    if any_class {
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows, classes]), &device);
        add((logits.clone() * mask).sum());
    }
    for (f, rows_of_f) in scored {
        let index = rows_of_f.iter().map(|&r| r as i64).collect::<Vec<_>>();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [rows_of_f.len()]), &device);
        let scores = f(logits.clone().select(0, index)); // [r_f]
        if scores.dims() != [rows_of_f.len()] {
            return Err(GradCamError::ScoreShape {
                got: scores.dims().to_vec(),
                expected: rows_of_f.len(),
            });
        }
        let values = read(scores.clone());
        if values.iter().any(|v| !v.is_finite()) {
            return Err(GradCamError::NonFinite {
                what: "scores".to_string(),
            });
        }
        for (&row, score) in rows_of_f.iter().zip(values) {
            explained[row] = ExplainedTarget { class: None, score };
        }
        add(scores.sum());
    }
    Ok((objective.expect("at least one target"), explained))
}

/// The index of the largest value (the first one on ties).
fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold(0, |best, (i, v)| if *v > values[best] { i } else { best })
}

/// Fail with [`GradCamError::NonFinite`] unless the one-element `value` is finite.
fn check_finite(value: Tensor<1>, what: impl FnOnce() -> String) -> Result<()> {
    if read(value).iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(GradCamError::NonFinite { what: what() })
    }
}

/// Read a tensor back to the host as `f32`s, without its autodiff graph.
///
/// # Panics
/// If the backend cannot read the tensor back (a lost device): not something input can cause.
pub(crate) fn read<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .without_autodiff()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data converts to a Vec<f32>")
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY, -5.0]), 1);
    }
}
