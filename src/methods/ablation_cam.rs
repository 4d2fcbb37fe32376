//! Ablation-CAM: Desai and Ramaswamy, "Ablation-CAM: Visual Explanations for Deep Convolutional
//! Network via Gradient-free Localization", WACV 2020
//! ([paper](https://openaccess.thecvf.com/content_WACV_2020/papers/Desai_Ablation-CAM_Visual_Explanations_for_Deep_Convolutional_Network_via_Gradient-free_Localization_WACV_2020_paper.pdf)).

use burn::tensor::{DType, Tensor, TensorData};

use super::{CamMap, CamMethod, LayerCapture, Rerun};
use crate::error::{NumericalError, Result};
use crate::host::read;

/// Ablation-CAM: each channel weighted by the relative drop of the score when it is zeroed,
///
/// ```text
/// w_k = (y - y_k) / y      y_k = the score with A^k set to 0      map = sum_k w_k A^k
/// ```
///
/// No gradients; `k` forwards per image of the network *after* the layer only (the probe swaps
/// in the ablated copies, so the layers before it run once per chunk for one image, where
/// pytorch-grad-cam recomputes them for every copy). Chunks of [`AblationCam::with_batch_size`]
/// copies run on the device (128 by default, pytorch-grad-cam's is 32: the layers before the cut
/// run once a chunk, so fewer chunks save more of them, and the memory is that of a forward of
/// the network after the cut at that batch); one set of forwards serves every target of an image.
///
/// Ablation sets the channel to 0, as the paper does. pytorch-grad-cam 1.5.7 does the same when
/// the layer's minimum activation is 0 (every post-ReLU layer), and otherwise writes
/// `min - 1e7` (compounding within a chunk); on layers with signed activations the two differ.
/// A zero target score is an error (the weights divide by it).
#[derive(Clone)]
pub struct AblationCam {
    chunks: super::Chunks,
}

chunked_method!(AblationCam, 128);

impl CamMethod for AblationCam {
    fn name(&self) -> &'static str {
        "ablation-cam"
    }

    fn runs_many_forwards(&self) -> bool {
        true
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, model: &dyn Rerun) -> Result<CamMap> {
        let original = model.original_scores(); // [n, m]
        if read(original.clone()).contains(&0.0) {
            return Err(NumericalError::ZeroScore {
                method: self.name(),
            }
            .into());
        }
        let [n, k, _, _] = layer.activations.dims();
        let device = original.device();
        let mut weights = Vec::with_capacity(n);
        for i in 0..n {
            let a = layer.activations.clone().narrow(0, i, 1); // [1, k, h, w]
            let mut scores = Vec::new();
            for (start, chunk) in self.chunks.of(k)? {
                let mut keep = vec![1.0f32; chunk * k];
                (0..chunk).for_each(|r| keep[r * k + start + r] = 0.0);
                let keep = TensorData::new(keep, [chunk, k, 1, 1]);
                let keep = Tensor::<4>::from_data(keep, (&device, DType::F32)); // as A
                scores.push(model.scores_with_layer(&layer.name, a.clone() * keep, i)?); // [chunk, m]
                self.chunks
                    .report(&layer.name, i * k + start + chunk, n * k);
            }
            let y = original.clone().narrow(0, i, 1); // [1, m]
            let ablated = Tensor::cat(scores, 0); // [k, m]
            weights.push(((y.clone() - ablated) / y).transpose()); // [m, k]
        }
        Ok(CamMap::Weights(Tensor::stack(weights, 0))) // [n, m, k]
    }
}
