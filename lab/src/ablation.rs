//! Does the ReLU matter? The same explanations with the ReLU on and off, scored with every metric
//! of [`gradcam::eval`], for any model, any method and any boxed data.

use burn::tensor::Tensor;
use gradcam::eval::{
    BBox, auc, confidence_change, deletion_insertion, energy_in_box, localisation_iou,
    pointing_game,
};
use gradcam::{ExplainerConfig, GradCam, GradCamError, Method, Result, Target, Targets};

use crate::synthetic::Scene;

/// One explanation to score: a class, its object's box and, where there is one, another
/// object's box (for the off-class energy).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AblationCase {
    /// The class to explain.
    pub class: usize,
    /// The box of the object of that class.
    pub target: BBox,
    /// The box of another object (of another class), if the image has one.
    pub other: Option<BBox>,
}

impl AblationCase {
    /// The two cases of a generated scene: each object's class with its own box, and the other
    /// object's box as the off-class box.
    pub fn for_scene(scene: &Scene) -> Vec<AblationCase> {
        let [a, b] = &scene.objects;
        vec![
            AblationCase {
                class: a.class,
                target: a.bbox,
                other: Some(b.bbox),
            },
            AblationCase {
                class: b.class,
                target: b.bbox,
                other: Some(a.bbox),
            },
        ]
    }
}

/// Per-explanation values of every metric, for one setting of the ReLU.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSamples {
    /// Pointing game hits, 100 or 0 (mean = hit rate in percent).
    pub pointing: Vec<f32>,
    /// Share of positive mass inside the target box.
    pub energy: Vec<f32>,
    /// Share of positive mass inside the other object's box (cases that have one).
    pub off_energy: Vec<f32>,
    /// IoU of the paper's 15 %-threshold box with the target box.
    pub localisation: Vec<f32>,
    /// Deletion AUC (lower is better).
    pub deletion: Vec<f32>,
    /// Insertion AUC (higher is better).
    pub insertion: Vec<f32>,
    /// Per-case drop `max(0, y - o) / y` in percent (mean = Average Drop).
    pub drop: Vec<f32>,
    /// Per-case increase `o > y`, 100 or 0 (mean = Increase in Confidence in percent).
    pub increase: Vec<f32>,
}

impl MetricSamples {
    /// `(name, values, higher is better)` for every metric.
    pub fn named(&self) -> [(&'static str, &[f32], bool); 8] {
        [
            ("pointing game (%)", &self.pointing, true),
            ("energy in box", &self.energy, true),
            ("off-class energy", &self.off_energy, false),
            ("localisation IoU (15 %)", &self.localisation, true),
            ("deletion AUC", &self.deletion, false),
            ("insertion AUC", &self.insertion, true),
            ("average drop (%)", &self.drop, false),
            ("increase in confidence (%)", &self.increase, true),
        ]
    }

    fn extend(&mut self, other: MetricSamples) {
        self.pointing.extend(other.pointing);
        self.energy.extend(other.energy);
        self.off_energy.extend(other.off_energy);
        self.localisation.extend(other.localisation);
        self.deletion.extend(other.deletion);
        self.insertion.extend(other.insertion);
        self.drop.extend(other.drop);
        self.increase.extend(other.increase);
    }
}

/// The mean and the half-width of its 95 % confidence interval (normal approximation,
/// `1.96 * sd / sqrt(n)`).
pub fn mean_ci(values: &[f32]) -> (f32, f32) {
    let n = values.len() as f32;
    if values.is_empty() {
        return (f32::NAN, f32::NAN);
    }
    let mean = values.iter().sum::<f32>() / n;
    if values.len() < 2 {
        return (mean, f32::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1.0);
    (mean, 1.96 * (var / n).sqrt())
}

/// The ablation's result: the same cases scored with the ReLU on and off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ablation {
    /// Grad-CAM as published (ReLU on).
    pub relu_on: MetricSamples,
    /// Without the ReLU (the min-max normalised signed map).
    pub relu_off: MetricSamples,
}

impl Ablation {
    /// Add another batch's results.
    pub fn extend(&mut self, other: Ablation) {
        self.relu_on.extend(other.relu_on);
        self.relu_off.extend(other.relu_off);
    }

    /// A Markdown table: every metric, mean ± 95 % interval, ReLU on vs off.
    pub fn table(&self) -> String {
        let mut out =
            String::from("| metric | better | ReLU on | ReLU off | n |\n|---|---|---|---|---|\n");
        let cell = |values: &[f32]| match mean_ci(values) {
            (m, ci) if ci.is_finite() => format!("{m:.3} ± {ci:.3}"),
            (m, _) if m.is_finite() => format!("{m:.3}"),
            _ => "–".to_string(),
        };
        for ((name, on, higher), (_, off, _)) in
            self.relu_on.named().into_iter().zip(self.relu_off.named())
        {
            if on.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "| {name} | {} | {} | {} | {} |\n",
                if higher { "higher" } else { "lower" },
                cell(on),
                cell(off),
                on.len()
            ));
        }
        out
    }
}

/// Explain every case with the ReLU on and off at `layer`, and score both with every metric.
///
/// Each image has the same number of cases. The maps scored are the explainer's upsampled,
/// min-max normalised heatmaps: what a user sees.
///
/// # Shapes
/// - `images`: `[n, c, h, w]`; `cases`: `n` rows of `m` cases
///
/// # Errors
/// [`gradcam::InputError::Argument`] unless there is one row of cases per image, all of the
/// same length; otherwise as [`Explainer::explain`](gradcam::Explainer::explain) and the
/// metrics.
pub fn relu_ablation<M: GradCam>(
    model: &M,
    method: Method,
    layer: &str,
    images: Tensor<4>,
    cases: &[Vec<AblationCase>],
    steps: usize,
) -> Result<Ablation> {
    let [n, c, h, w] = images.dims();
    let m = cases.first().map_or(0, Vec::len);
    if cases.len() != n || m == 0 || cases.iter().any(|row| row.len() != m) {
        return Err(GradCamError::Input(gradcam::InputError::Argument {
            what: format!(
                "{} rows of cases for {n} images; give one row per image, all of the same \
                 (non-zero) length",
                cases.len()
            ),
        }));
    }
    let targets = Targets::rows_per_image(
        cases
            .iter()
            .map(|row| row.iter().map(|case| Target::Class(case.class)).collect())
            .collect(),
    );
    let flat: Vec<AblationCase> = cases.iter().flatten().copied().collect();
    let classes: Vec<usize> = flat.iter().map(|case| case.class).collect();
    let boxes: Vec<BBox> = flat.iter().map(|case| case.target).collect();
    let repeated = images
        .clone()
        .unsqueeze_dim::<5>(1)
        .repeat_dim(1, m)
        .reshape([n * m, c, h, w]); // [n * m, c, h, w]
    let mut result = Ablation::default();
    for relu in [true, false] {
        let explanation = ExplainerConfig::new()
            .with_method(method)
            .with_layer(layer)
            .with_relu(relu)
            .init(model)?
            .explain(images.clone(), &targets)?;
        let maps = explanation.heatmap.reshape([n * m, h, w]); // [n * m, h, w]
        let mut samples = MetricSamples {
            pointing: pointing_game(maps.clone(), &boxes)?
                .into_iter()
                .map(|hit| if hit { 100.0 } else { 0.0 })
                .collect(),
            energy: energy_in_box(maps.clone(), &boxes)?,
            localisation: localisation_iou(maps.clone(), &boxes, 0.15)?,
            ..MetricSamples::default()
        };
        let with_other: Vec<usize> = (0..flat.len())
            .filter(|i| flat[*i].other.is_some())
            .collect();
        if !with_other.is_empty() {
            let others: Vec<BBox> = with_other
                .iter()
                .map(|i| flat[*i].other.expect("filtered"))
                .collect();
            let index = burn::tensor::Tensor::<1, burn::tensor::Int>::from_data(
                burn::tensor::TensorData::new(
                    with_other.iter().map(|i| *i as i64).collect::<Vec<_>>(),
                    [with_other.len()],
                ),
                &maps.device(),
            );
            samples.off_energy = energy_in_box(maps.clone().select(0, index), &others)?;
        }
        let (deletion, insertion) =
            deletion_insertion(model, repeated.clone(), maps.clone(), &classes, steps)?;
        samples.deletion = deletion.iter().map(|curve| auc(curve)).collect();
        samples.insertion = insertion.iter().map(|curve| auc(curve)).collect();
        let pairs = confidence_change(model, repeated.clone(), maps, &classes)?;
        samples.drop = pairs
            .iter()
            .map(|(y, o)| 100.0 * (y - o).max(0.0) / y)
            .collect();
        samples.increase = pairs
            .iter()
            .map(|(y, o)| if o > y { 100.0 } else { 0.0 })
            .collect();
        if relu {
            result.relu_on = samples;
        } else {
            result.relu_off = samples;
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_interval() {
        let (m, ci) = mean_ci(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-6);
        // sd = 1.29099, / sqrt(4) = 0.645497, * 1.96 = 1.265174
        assert!((ci - 1.265174).abs() < 1e-4, "{ci}");
        assert!(mean_ci(&[]).0.is_nan());
    }
}
