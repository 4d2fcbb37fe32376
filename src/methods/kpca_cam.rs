//! KPCA-CAM: Karmani et al., "KPCA-CAM: Visual Explainability of Deep Computer Vision Models
//! using Kernel PCA", MMSP 2024 ([arXiv:2410.00267](https://arxiv.org/abs/2410.00267)), as
//! pytorch-grad-cam's `KPCA_CAM` (scikit-learn's `KernelPCA`).

use burn::tensor::{DType, Tensor, TensorData};
use nalgebra::DMatrix;

use super::projection::top_eigenpair;
use super::{CamMap, CamMethod, LayerCapture, ProjectionSign, Rerun};
use crate::error::{GradCamError, Result};
use crate::host::read;

/// The kernel of [`KpcaCam`], scikit-learn's with its defaults (`coef0 = 1`, `degree = 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KpcaKernel {
    /// `<x, y>`: plain PCA, Eigen-CAM's map.
    Linear,
    /// `(gamma <x, y> + 1)^3`.
    Poly,
    /// `exp(-gamma |x - y|^2)`.
    Rbf,
    /// `tanh(gamma <x, y> + 1)`, pytorch-grad-cam's default.
    #[default]
    Sigmoid,
    /// `<x, y> / (|x| |y|)` (0 where a vector is 0).
    Cosine,
}

/// KPCA-CAM: each pixel's channel vector `x_i` (columns centred over the pixels) projected on
/// the first component of kernel PCA,
///
/// ```text
/// K_ij = kernel(x_i, x_j);  K~ = (I - 1/p) K (I - 1/p);  K~ u = lambda_1 u;  map = sqrt(lambda_1) u
/// ```
///
/// with `gamma = 1 / k` unless [`with_gamma`](Self::with_gamma) sets it. No gradients and no
/// target: every target of an image gets the same map. The sign is scikit-learn's (`svd_flip`:
/// the entry of largest magnitude positive), so the map equals pytorch-grad-cam's.
///
/// Computed on the host in `f64`, one dense eigen-decomposition of the `hw x hw` kernel per
/// image: cheap at the usual last layers (7x7 to 14x14), seconds per image from about 32x32.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KpcaCam {
    kernel: KpcaKernel,
    gamma: Option<f64>,
}

impl KpcaCam {
    /// The sigmoid kernel with `gamma = 1 / k`, as pytorch-grad-cam.
    pub fn new() -> Self {
        Self::default()
    }

    /// The kernel.
    pub fn with_kernel(mut self, kernel: KpcaKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// The kernel's `gamma` (Poly, Rbf, Sigmoid); `None`: `1 / k` for `k` channels.
    pub fn with_gamma(mut self, gamma: Option<f64>) -> Self {
        self.gamma = gamma;
        self
    }

    /// One image's map from its activations, `values` `[k, p]` row-major.
    fn project(&self, values: &[f32], k: usize, p: usize) -> Vec<f64> {
        let mut x = DMatrix::<f64>::from_fn(p, k, |i, c| values[c * p + i] as f64);
        let channel_sum: Vec<f64> = (0..p).map(|i| x.row(i).sum()).collect();
        for mut column in x.column_iter_mut() {
            let mean = column.mean();
            column.add_scalar_mut(-mean);
        }
        let gamma = self.gamma.unwrap_or(1.0 / k as f64);
        let dot = &x * x.transpose(); // [p, p]
        let norms: Vec<f64> = (0..p).map(|i| dot[(i, i)]).collect();
        let mut kernel = DMatrix::<f64>::from_fn(p, p, |i, j| {
            let d = dot[(i, j)];
            match self.kernel {
                KpcaKernel::Linear => d,
                KpcaKernel::Poly => (gamma * d + 1.0).powi(3),
                KpcaKernel::Rbf => (-gamma * (norms[i] + norms[j] - 2.0 * d).max(0.0)).exp(),
                KpcaKernel::Sigmoid => (gamma * d + 1.0).tanh(),
                KpcaKernel::Cosine => {
                    let scale = (norms[i] * norms[j]).sqrt();
                    if scale > 0.0 { d / scale } else { 0.0 }
                }
            }
        });
        // Double centring, as scikit-learn's KernelCenterer.
        let row_means: Vec<f64> = (0..p).map(|i| kernel.row(i).mean()).collect();
        let all = row_means.iter().sum::<f64>() / p as f64;
        for i in 0..p {
            for j in 0..p {
                kernel[(i, j)] += all - row_means[i] - row_means[j];
            }
        }
        let (vector, value) = top_eigenpair(kernel);
        let mut projection: Vec<f64> = vector.iter().map(|v| v * value.max(0.0).sqrt()).collect();
        ProjectionSign::LargerExtreme.orient(&mut projection, &channel_sum);
        projection
    }
}

impl CamMethod for KpcaCam {
    fn name(&self) -> &'static str {
        "kpca-cam"
    }

    fn needs_gradients(&self) -> bool {
        false
    }

    fn compute(&self, layer: &LayerCapture, _: &dyn Rerun) -> Result<CamMap> {
        let [n, k, h, w] = layer.activations.dims();
        let device = layer.activations.device();
        let values = read(layer.activations.clone());
        if values.iter().any(|v| !v.is_finite()) {
            return Err(GradCamError::non_finite("activations of KPCA-CAM"));
        }
        let maps: Vec<f32> = values
            .chunks_exact(k * h * w)
            .flat_map(|image| self.project(image, k, h * w))
            .map(|v| v as f32)
            .collect();
        let m = layer.targets_per_image;
        let maps = Tensor::<4>::from_data(TensorData::new(maps, [n, 1, h, w]), (&device, DType::F32));
        Ok(CamMap::Map(maps.expand([n, m, h, w]))) // [n, m, h, w]
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::methods::{ProjectionSign, first_component_projection_signed};
    use burn::tensor::Device;

    #[test]
    fn the_linear_kernel_is_eigen_cams_projection() {
        // KpcaKernel PCA with <x, y> is PCA: sqrt(lambda_1) u_1 of X X^T is X v_1.
        let (k, p) = (3, 6);
        let values: Vec<f32> = (0..k * p).map(|i| ((i * 5 % 13) as f32).cos()).collect();
        let ours = KpcaCam::new().with_kernel(KpcaKernel::Linear).project(&values, k, p);
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [1, k, 2, 3]), &Device::flex());
        let pca = read(first_component_projection_signed(x, ProjectionSign::LargerExtreme).unwrap());
        for (a, b) in ours.iter().zip(&pca) {
            assert!((a - *b as f64).abs() < 1e-5, "{ours:?} vs {pca:?}");
        }
        // The sigmoid kernel gives another map (so the check above can fail).
        let sigmoid = KpcaCam::new().project(&values, k, p);
        assert!(sigmoid.iter().zip(&pca).any(|(a, b)| (a - *b as f64).abs() > 1e-2));
    }
}
