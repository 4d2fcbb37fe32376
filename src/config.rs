//! How to explain: which layers, ReLU or not, which normalisation.

use crate::error::{GradCamError, Result};
use crate::explainer::GradCamExplainer;
use crate::model::GradCam;

/// How each map is scaled before it is upsampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Normalization {
    /// Per map, at the layer's resolution: `x = x - min(x); x = x / (max(x) + 1e-7)`, which is
    /// `(x - min) / (max - min + 1e-7)`, exactly pytorch-grad-cam's `scale_cam_image`. A flat map
    /// becomes all zeros, never NaN. Bilinear upsampling is a convex combination, so the
    /// upsampled map stays in `[0, 1]`.
    #[default]
    MinMax,
    /// No scaling: maps keep the units of the score (after the ReLU, if it is on).
    None,
}

/// Configuration of a Grad-CAM explainer, in burn's `XConfig::new().with_..()` style.
///
/// ```
/// use gradcam::{GradCamConfig, Normalization};
///
/// let config = GradCamConfig::new()
///     .with_layer("layer4")
///     .with_relu(false)
///     .with_normalization(Normalization::None);
/// assert_eq!(config.layers, vec!["layer4".to_string()]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradCamConfig {
    /// The layers to explain, by the names the model announces. Empty: the model's
    /// [`default_layer`](crate::GradCam::default_layer) (its last layer unless it says otherwise).
    pub layers: Vec<String>,
    /// Apply the ReLU to the weighted sum (Grad-CAM's default: keep only evidence *for* the
    /// target). With `false` the map keeps its negative evidence.
    pub relu: bool,
    /// How each map is scaled before upsampling.
    pub normalization: Normalization,
}

impl Default for GradCamConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl GradCamConfig {
    /// The default: the model's default layer, ReLU on, min-max normalisation.
    pub fn new() -> Self {
        Self {
            layers: Vec::new(),
            relu: true,
            normalization: Normalization::MinMax,
        }
    }

    /// Explain this one layer.
    pub fn with_layer(mut self, layer: impl Into<String>) -> Self {
        self.layers = vec![layer.into()];
        self
    }

    /// Explain several layers in one pass; the combined map averages them as pytorch-grad-cam
    /// does.
    pub fn with_layers<S: Into<String>>(mut self, layers: impl IntoIterator<Item = S>) -> Self {
        self.layers = layers.into_iter().map(Into::into).collect();
        self
    }

    /// Turn the ReLU on the weighted sum on or off.
    pub fn with_relu(mut self, relu: bool) -> Self {
        self.relu = relu;
        self
    }

    /// Choose the normalisation.
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// Build an explainer for `model`.
    ///
    /// The explainer keeps `model.valid()`: a copy without autodiff and with every training
    /// flag off (BatchNorm uses its running statistics, dropout is off). `model` itself is not
    /// changed.
    ///
    /// # Errors
    /// [`GradCamError::UnknownLayer`] if a configured layer is not among `model.layers()`.
    pub fn init<M: GradCam>(&self, model: &M) -> Result<GradCamExplainer<M>> {
        let available = model.layers();
        let layers = if self.layers.is_empty() {
            match model.default_layer() {
                Some(layer) => vec![layer],
                None => {
                    return Err(GradCamError::UnknownLayer {
                        name: "<the default layer>".to_string(),
                        available,
                    });
                }
            }
        } else {
            self.layers.clone()
        };
        if let Some(name) = layers.iter().find(|name| !available.contains(name)) {
            return Err(GradCamError::UnknownLayer {
                name: name.clone(),
                available,
            });
        }
        Ok(GradCamExplainer::new(
            model.valid(),
            Self {
                layers,
                ..self.clone()
            },
        ))
    }
}
