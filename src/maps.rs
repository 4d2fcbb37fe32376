//! From captured layers to maps: per layer the method's map (channel weights become `sum_k w_k
//! A^k`, channel contributions their sum; both their first principal component with eigen
//! smoothing), then the shared post-processing (ReLU, normalisation, upsampling) and the fusion of
//! the layers.

use burn::tensor::Tensor;

use crate::config::ExplainerConfig;
use crate::eigen_smooth::eigen_smooth;
use crate::error::{GradCamError, InputError, MethodError, Result};
use crate::explanation::{ExplainedTarget, Explanation, LayerMap};
use crate::kernels::weighted_sum::weighted_sum_unchecked;
use crate::methods::{CamMap, LayerCapture, Rerun};
use crate::postprocess;

/// The maps of one call, before its targets are known on the host.
pub(crate) struct Maps {
    /// One entry per explained layer, in forward order.
    pub layers: Vec<LayerMap>,
    /// The fused heatmap, `[n, m, H, W]`.
    pub heatmap: Tensor<4>,
}

impl Maps {
    /// The explanation of `targets`.
    pub fn explain(self, targets: Vec<Vec<ExplainedTarget>>) -> Explanation {
        Explanation {
            layers: self.layers,
            heatmap: self.heatmap,
            targets,
        }
    }
}

/// The configured method and the shared post-processing on captured layers.
///
/// # Shapes
/// - `input_size`: the input's `[H, W]`
/// - every layer's activations `[n, k, h, w]`; the maps come back `[n, m, ..]`
///
/// # Errors
/// [`InputError::CaptureWithoutGradients`] if the method needs gradients the layers lack; the
/// method's own errors; [`GradCamError::Method`] if it returns maps of the wrong shape.
pub(crate) fn layer_maps(
    config: &ExplainerConfig,
    layers: &[LayerCapture],
    input_size: [usize; 2],
    rerun: &dyn Rerun,
) -> Result<Maps> {
    let method = &config.method;
    let mut maps = Vec::with_capacity(layers.len());
    for layer in layers {
        if method.needs_gradients() && layer.gradients.is_none() {
            return Err(InputError::CaptureWithoutGradients {
                method: method.name(),
            }
            .into());
        }
        let [n, k, h, w] = layer.activations.dims();
        let m = layer.targets_per_image;
        let (weights, raw) = match method.compute(layer, rerun)? {
            CamMap::Weights(weights) if weights.dims() == [n, m, k] => {
                let raw = if config.eigen_smooth {
                    let w5 = weights.clone().reshape([n, m, k, 1, 1]);
                    eigen_smooth(w5 * layer.activations5())? // of [n, m, k, h, w]
                } else {
                    weighted_sum_unchecked(layer.activations.clone(), weights.clone())
                };
                (Some(weights), raw)
            }
            CamMap::Channels(channels) if channels.dims() == [n, m, k, h, w] => {
                let raw = if config.eigen_smooth {
                    eigen_smooth(channels)?
                } else {
                    channels.sum_dim(2).squeeze_dim::<4>(2)
                };
                (None, raw)
            }
            CamMap::Map(raw)
                if raw.dims() == [n, m, h, w]
                    || raw.dims() == [n, m, input_size[0], input_size[1]] =>
            {
                (None, raw)
            }
            other => {
                let got = match other {
                    CamMap::Weights(weights) => format!("weights {:?}", weights.dims()),
                    CamMap::Channels(channels) => format!("channels {:?}", channels.dims()),
                    CamMap::Map(map) => format!("a map {:?}", map.dims()),
                };
                return Err(GradCamError::Method {
                    method: method.name(),
                    error: MethodError::OutputShape {
                        got,
                        activations: [n, k, h, w],
                        targets: m,
                    },
                });
            }
        }; // raw: [n, m, h, w]
        let cam = postprocess::finish(raw.clone(), config.relu, config.normalization);
        let heatmap = postprocess::upsample(cam.clone(), input_size); // [n, m, H, W]
        maps.push(LayerMap {
            name: layer.name.clone(),
            weights,
            raw,
            cam,
            heatmap,
        });
    }
    let heatmap = postprocess::combine_layers(
        maps.iter().map(|l| l.heatmap.clone()).collect(),
        config.relu,
        config.normalization,
        config.fusion,
    );
    Ok(Maps {
        layers: maps,
        heatmap,
    })
}
