//! KPCA-CAM: Karmani et al., "KPCA-CAM: Visual Explainability of Deep Computer Vision Models
//! using Kernel PCA", MMSP 2024 ([arXiv:2410.00267](https://arxiv.org/abs/2410.00267)), as
//! pytorch-grad-cam's `KPCA_CAM` (scikit-learn's `KernelPCA`).

use nalgebra::DMatrix;

use super::projection::{project_each, top_eigenpair};
use super::{CamMap, CamMethod, LayerCapture, ProjectionSign, Rerun};
use crate::error::Result;

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

    /// One image's map, unsigned, from its centred pixels x channels matrix `x` (`[p, k]`).
    fn component(&self, x: &DMatrix<f64>) -> Vec<f64> {
        let [p, k] = [x.nrows(), x.ncols()];
        let gamma = self.gamma.unwrap_or(1.0 / k as f64);
        let dot = x * x.transpose(); // [p, p]
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
        vector.iter().map(|v| v * value.max(0.0).sqrt()).collect()
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
        let maps = project_each(
            layer.activations.clone(),
            "activations of KPCA-CAM",
            ProjectionSign::LargerExtreme,
            |x| self.component(&x),
        )?; // [n, h, w]
        let [n, h, w] = maps.dims();
        let m = layer.targets_per_image;
        Ok(CamMap::Map(maps.unsqueeze_dim::<4>(1).expand([n, m, h, w]))) // [n, m, h, w]
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::host::read;
    use crate::methods::first_component_projection_signed;
    use burn::tensor::{Device, Tensor, TensorData};

    #[test]
    fn the_linear_kernel_is_eigen_cams_projection() {
        // Kernel PCA with <x, y> is PCA: sqrt(lambda_1) u_1 of X X^T is X v_1. Both sides are
        // float64 eigenproblems rounded once to float32; each value is a centred row of cosines
        // (entries at most 2) times a unit vector, at most 2 sqrt(3) < 4, so they agree within
        // 2 u 4 < 5e-7 plus float64 error: far below 1e-5.
        let (k, p) = (3, 6);
        let values: Vec<f32> = (0..k * p).map(|i| ((i * 5 % 13) as f32).cos()).collect();
        let x = || Tensor::<4>::from_data(TensorData::new(values.clone(), [1, k, 2, 3]), &Device::flex());
        let sign = ProjectionSign::LargerExtreme;
        let kpca = |kernel| {
            let cam = KpcaCam::new().with_kernel(kernel);
            read(project_each(x(), "test", sign, |x| cam.component(&x)).unwrap())
        };
        let ours = kpca(KpcaKernel::Linear);
        let pca = read(first_component_projection_signed(x(), sign).unwrap());
        assert_eq!(p, pca.len());
        for (a, b) in ours.iter().zip(&pca) {
            assert!((a - b).abs() < 1e-5, "{ours:?} vs {pca:?}");
        }
        // The sigmoid kernel gives another map (so the check above can fail).
        let sigmoid = kpca(KpcaKernel::Sigmoid);
        assert!(sigmoid.iter().zip(&pca).any(|(a, b)| (a - b).abs() > 1e-2));
    }
}
