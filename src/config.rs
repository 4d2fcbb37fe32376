//! The configuration of an explainer, in burn's `XConfig::new().with_..()` style, and the
//! layers it resolves to for a model.

use std::fmt;
use std::sync::Arc;

use crate::error::{InputError, Result};
use crate::methods::{CamMethod, GradCam as GradCamMethod};
use crate::postprocess::{Fusion, Normalization};
use crate::sess::config::SessConfig;

/// Configuration of an explainer: build one with [`ExplainerConfig::init`].
///
/// ```
/// use gradcam::methods::{Method, ScoreCam};
/// use gradcam::{ExplainerConfig, Normalization};
///
/// let config = ExplainerConfig::new()
///     .with_layer("layer4")
///     .with_method(Method::HiResCam)
///     .with_relu(false)
///     .with_normalization(Normalization::Off);
/// assert_eq!(config.layers, vec!["layer4".to_string()]);
/// assert_eq!(config.method.name(), "hires-cam");
///
/// // Methods with settings are configured themselves.
/// let score_cam = ExplainerConfig::new().with_method(ScoreCam::new().with_batch_size(64));
/// ```
#[derive(Clone)]
pub struct ExplainerConfig {
    /// The layers to explain, by the names the model announces. Empty: the model's
    /// [`default_layer`](crate::GradCam::default_layer) (its last layer unless it says
    /// otherwise).
    pub layers: Vec<String>,
    /// Apply the ReLU to the method's map (every method's default, and pytorch-grad-cam's only
    /// choice: keep only evidence *for* the target). With `false` the map keeps its negative
    /// evidence.
    pub relu: bool,
    /// How each map is scaled before upsampling.
    pub normalization: Normalization,
    /// How the heatmaps of several layers are fused: their mean unless set.
    pub fusion: Fusion,
    /// The CAM method: Grad-CAM unless set.
    pub method: Arc<dyn CamMethod>,
    /// Eigen smoothing: each map is the first principal component of the method's per-channel
    /// contributions instead of their sum (see [`ExplainerConfig::with_eigen_smooth`]).
    pub eigen_smooth: bool,
    /// Augmentation smoothing: the heatmap averaged over six augmented inputs (see
    /// [`ExplainerConfig::with_aug_smooth`]).
    pub aug_smooth: bool,
    /// SESS: the heatmap fused from the method's maps of patches of the input at several scales
    /// (see [`ExplainerConfig::with_sess`]).
    pub sess: Option<SessConfig>,
}

impl fmt::Debug for ExplainerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExplainerConfig")
            .field("layers", &self.layers)
            .field("relu", &self.relu)
            .field("normalization", &self.normalization)
            .field("fusion", &self.fusion)
            .field("method", &self.method)
            .field("eigen_smooth", &self.eigen_smooth)
            .field("aug_smooth", &self.aug_smooth)
            .field("sess", &self.sess)
            .finish()
    }
}

impl Default for ExplainerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ExplainerConfig {
    /// The default: Grad-CAM at the model's default layer, ReLU on, min-max normalisation.
    pub fn new() -> Self {
        Self {
            layers: Vec::new(),
            relu: true,
            normalization: Normalization::MinMax,
            fusion: Fusion::Mean,
            method: Arc::new(GradCamMethod),
            eigen_smooth: false,
            aug_smooth: false,
            sess: None,
        }
    }

    /// Explain this one layer.
    pub fn with_layer(mut self, layer: impl Into<String>) -> Self {
        self.layers = vec![layer.into()];
        self
    }

    /// Explain several layers in one pass; the fused heatmap averages them as pytorch-grad-cam
    /// does, or takes their maximum ([`with_fusion`](Self::with_fusion)).
    pub fn with_layers<S: Into<String>>(mut self, layers: impl IntoIterator<Item = S>) -> Self {
        self.layers = layers.into_iter().map(Into::into).collect();
        self
    }

    /// How several layers' heatmaps are fused: [`Fusion::Mean`] (pytorch-grad-cam's, the
    /// default), [`Fusion::Max`] (torchcam's) or [`Fusion::Product`] (pytorch-grad-cam's
    /// RefineCAM).
    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }

    /// Turn the ReLU on the method's map on or off.
    pub fn with_relu(mut self, relu: bool) -> Self {
        self.relu = relu;
        self
    }

    /// Choose the normalisation.
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// Choose the method: a [`Method`](crate::methods::Method) by name, a configured built-in
    /// such as [`ScoreCam`](crate::methods::ScoreCam), or your own [`CamMethod`].
    pub fn with_method(mut self, method: impl CamMethod + 'static) -> Self {
        self.method = Arc::new(method);
        self
    }

    /// Eigen smoothing, pytorch-grad-cam's `eigen_smooth`: the map of a method that weights
    /// channels (`sum_k w_k A^k`) or pixels of channels (HiResCAM, Element-wise Grad-CAM,
    /// LayerCAM) becomes the first principal component of the same per-channel contributions,
    /// `X v_1` for `X` the contributions as `(h w) x k` with centred columns (as
    /// [`first_component_projection`](crate::methods::first_component_projection)), signed to
    /// correlate positively with the unsmoothed map. Less noisy, and no longer a decomposition of
    /// the score. The Eigen methods are principal components already and do not change. The
    /// contributions are read back to the host for the projection (in `f64`), as for Eigen-CAM.
    pub fn with_eigen_smooth(mut self, eigen_smooth: bool) -> Self {
        self.eigen_smooth = eigen_smooth;
        self
    }

    /// Augmentation smoothing, pytorch-grad-cam's `aug_smooth`: the input explained six times,
    /// as is and mirrored left to right, each at brightness 0.9, 1 and 1.1 (its values
    /// multiplied), and the six final heatmaps (mirrored back) averaged. Six times the work of
    /// one call; each augmented input resolves its own targets (`Target::Top` may pick another
    /// class on a mirrored input, as in pytorch-grad-cam). Applies to
    /// [`Explainer::explain`](crate::Explainer::explain) and
    /// [`Explainer::stream`](crate::Explainer::stream); a [`Capture`](crate::Capture) holds one
    /// input, so [`Explainer::explain_capture`](crate::Explainer::explain_capture) refuses it.
    pub fn with_aug_smooth(mut self, aug_smooth: bool) -> Self {
        self.aug_smooth = aug_smooth;
        self
    }

    /// SESS, pytorch-grad-cam's meta-method (Tyagi et al., ECCV 2022): the input resized to
    /// several scales, a window slid over each, every patch explained by the configured method
    /// for the class the whole image resolved to, weighted by its softmax score, pasted back,
    /// fused per pixel, blurred and normalised (see [`SessConfig`]). With the defaults a 224 x 224
    /// input makes 122 patches: an explanation of each (which scores it too; with a pre-filter,
    /// a forward of each first), plus one of the whole input, whose layers' maps and targets the
    /// explanation keeps. Applies to
    /// [`Explainer::explain`](crate::Explainer::explain) and
    /// [`Explainer::stream`](crate::Explainer::stream) (with augmentation smoothing, each of the
    /// six inputs is explained with SESS); [`Explainer::explain_capture`](crate::Explainer::explain_capture)
    /// refuses it.
    ///
    /// ```
    /// use gradcam::{ExplainerConfig, SessConfig, SessPool};
    ///
    /// let config = ExplainerConfig::new().with_sess(SessConfig::new().with_pool(SessPool::Max));
    /// assert_eq!(config.sess.unwrap().pool, SessPool::Max);
    /// ```
    pub fn with_sess(mut self, sess: SessConfig) -> Self {
        self.sess = Some(sess);
        self
    }

    /// Whether a call explains other inputs than the one given (augmentation smoothing, SESS),
    /// which a [`Capture`](crate::Capture) cannot hold.
    pub(crate) fn explains_other_inputs(&self) -> bool {
        self.aug_smooth || self.sess.is_some()
    }

    /// The layers to explain among `available` (what the model announces, in forward order):
    /// the configured ones, or `default` when none is; each available, none twice.
    ///
    /// # Errors
    /// [`InputError::UnknownLayer`], [`InputError::RepeatedLayer`], [`InputError::NoLayer`].
    pub(crate) fn resolve_layers(
        &self,
        available: Vec<String>,
        default: Option<String>,
    ) -> Result<Vec<String>> {
        let layers = if self.layers.is_empty() {
            vec![default.ok_or(InputError::NoLayer)?]
        } else {
            self.layers.clone()
        };
        if let Some(name) = layers.iter().find(|name| !available.contains(name)) {
            return Err(InputError::UnknownLayer {
                name: name.clone(),
                available,
            }
            .into());
        }
        if let Some((_, name)) = layers
            .iter()
            .enumerate()
            .find(|(i, name)| layers[..*i].contains(name))
        {
            return Err(InputError::RepeatedLayer { name: name.clone() }.into());
        }
        Ok(layers)
    }
}
