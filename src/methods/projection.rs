//! The first-principal-component projection shared by Eigen-CAM, EigenGrad-CAM, Seg-Eigen-CAM
//! and eigen smoothing, and the rules that fix its sign.

use burn::tensor::{DType, Tensor, TensorData};
use nalgebra::{DMatrix, SymmetricEigen};

use crate::error::Result;
use crate::host::read_finite;

/// Each map `[k, h, w]` as the matrix `X` (`h w` rows, `k` columns) with centred columns,
/// projected on its first right singular vector: `X v_1`, as pytorch-grad-cam's
/// `get_2d_projection` (which takes `np.linalg.svd`) computes it.
///
/// Computed on the host in `f64` from the Gram matrix of the smaller side: `X X^T = U S^2 U^T`
/// gives `X v_1 = s_1 u_1` when `h w <= k`, `X^T X = V S^2 V^T` gives `v_1` otherwise. The sign,
/// arbitrary in any SVD, is fixed so that the projection has a non-negative inner product with
/// the uncentred channel sum `sum_k x_k` (the map is high where the input is large); when that
/// product is zero, the entry of largest magnitude is made positive.
///
/// # Shapes
/// - `x`: `[b, k, h, w]`
/// - returns `[b, h, w]`
///
/// # Errors
/// [`NumericalError::NonFinite`](crate::NumericalError::NonFinite) if `x` holds NaN or infinity.
pub fn first_component_projection(x: Tensor<4>) -> Result<Tensor<3>> {
    first_component_projection_signed(x, ProjectionSign::ChannelSum)
}

/// Which sign of a principal-component projection a method reports (any SVD or eigensolver may
/// return either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProjectionSign {
    /// A non-negative inner product with the uncentred channel sum `sum_k x_k`; when that is
    /// zero, the entry of largest magnitude positive (Eigen-CAM's and EigenGrad-CAM's rule here).
    #[default]
    ChannelSum,
    /// `|max| >= |min|`: the larger extreme is positive (Seg-Eigen-CAM's Eq. 13).
    LargerExtreme,
}

impl ProjectionSign {
    /// Flips `projection` (one map's values) in place to this sign; `channel_sum` is the
    /// uncentred channel sum at each of its pixels.
    pub(crate) fn orient(self, projection: &mut [f64], channel_sum: &[f64]) {
        let flip = match self {
            ProjectionSign::ChannelSum => {
                let agreement: f64 = projection.iter().zip(channel_sum).map(|(a, b)| a * b).sum();
                let peak = projection
                    .iter()
                    .fold(0.0f64, |m, v| if v.abs() > m.abs() { *v } else { m });
                agreement < 0.0 || (agreement == 0.0 && peak < 0.0)
            }
            ProjectionSign::LargerExtreme => {
                let (min, max) = projection
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        (lo.min(*v), hi.max(*v))
                    });
                min.abs() > max.abs()
            }
        };
        if flip {
            projection.iter_mut().for_each(|v| *v = -*v);
        }
    }
}

/// [`first_component_projection`] with the sign given by `sign`.
///
/// # Shapes
/// - `x`: `[b, k, h, w]`
/// - returns `[b, h, w]`
///
/// # Errors
/// [`NumericalError::NonFinite`](crate::NumericalError::NonFinite) if `x` holds NaN or infinity.
pub fn first_component_projection_signed(x: Tensor<4>, sign: ProjectionSign) -> Result<Tensor<3>> {
    project_each(x, "activations of the projection", sign, |x| {
        let [p, k] = [x.nrows(), x.ncols()];
        let projection = if p <= k {
            let (vector, value) = top_eigenpair(&x * x.transpose());
            vector * value.max(0.0).sqrt()
        } else {
            let (vector, _) = top_eigenpair(x.transpose() * &x);
            &x * vector
        };
        projection.iter().copied().collect()
    })
}

/// Each map `[k, h, w]` of `x` read back as the matrix `X` (`h w` rows, `k` columns) with
/// centred columns, `project`ed to one value per pixel in `f64` on the host, then signed by
/// `sign` (the projections of principal-component methods: Eigen-CAM's, KPCA-CAM's).
///
/// # Shapes
/// - `x`: `[b, k, h, w]`
/// - returns `[b, h, w]`, `f32` whatever the device's default float type
///
/// # Errors
/// [`NumericalError::NonFinite`](crate::NumericalError::NonFinite) (naming `what`) if `x` holds
/// NaN or infinity.
pub(crate) fn project_each(
    x: Tensor<4>,
    what: &str,
    sign: ProjectionSign,
    project: impl Fn(DMatrix<f64>) -> Vec<f64>,
) -> Result<Tensor<3>> {
    let [b, k, h, w] = x.dims();
    let device = x.device().without_autodiff();
    let values = read_finite(x, what)?;
    let p = h * w;
    let mut out = Vec::with_capacity(b * p);
    for map in values.chunks_exact(k * p) {
        // X[pixel, channel] = map[channel * p + pixel], columns centred over pixels.
        let mut x = DMatrix::<f64>::from_fn(p, k, |i, c| map[c * p + i] as f64);
        let channel_sum: Vec<f64> = (0..p).map(|i| x.row(i).sum()).collect();
        for mut column in x.column_iter_mut() {
            let mean = column.mean();
            column.add_scalar_mut(-mean);
        }
        let mut projection = project(x);
        sign.orient(&mut projection, &channel_sum);
        out.extend(projection.iter().map(|v| *v as f32));
    }
    // f32 whatever the device's default float type (an f16 device would convert host f32s).
    Ok(Tensor::from_data(
        TensorData::new(out, [b, h, w]),
        (&device, DType::F32),
    ))
}

/// The eigenvector of the largest eigenvalue of a symmetric positive semi-definite matrix.
pub(crate) fn top_eigenpair(gram: DMatrix<f64>) -> (nalgebra::DVector<f64>, f64) {
    let eigen = SymmetricEigen::new(gram);
    let (index, value) =
        eigen
            .eigenvalues
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, v)| {
                if *v > best.1 { (i, *v) } else { best }
            });
    (eigen.eigenvectors.column(index).into_owned(), value)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::error::GradCamError;
    use crate::host::read;
    use burn::tensor::Device;

    #[test]
    fn a_rank_one_map_projects_to_its_centred_pattern_with_the_sign_of_its_energy() {
        // Two channels that are multiples of one pattern: X = pattern * [1, 2] (plus offsets that
        // centring removes), so X v_1 is the centred pattern times |(1, 2)| = sqrt(5).
        let pattern = [0.0f32, 1.0, 4.0, 1.0];
        let mut data = Vec::new();
        for scale in [1.0f32, 2.0] {
            data.extend(pattern.iter().map(|v| v * scale + 3.0));
        }
        let x = Tensor::<4>::from_data(TensorData::new(data, [1, 2, 2, 2]), &Device::flex());
        let got = read(first_component_projection(x).unwrap());
        let mean = pattern.iter().sum::<f32>() / 4.0;
        for (g, p) in got.iter().zip(pattern) {
            let expected = (p - mean) * 5.0f32.sqrt();
            assert!((g - expected).abs() < 1e-5, "{got:?}");
        }
    }

    #[test]
    fn both_sides_of_the_gram_matrix_equal_an_svd() {
        // 3 pixels x 5 channels (the pixel side is smaller) and 5 pixels x 3 channels.
        let values: Vec<f32> = (0..15).map(|i| ((i * 7 % 11) as f32).sin()).collect();
        for [k, p] in [[5, 3], [3, 5]] {
            let x = Tensor::<4>::from_data(
                TensorData::new(values.clone(), [1, k, 1, p]),
                &Device::flex(),
            );
            let got = read(first_component_projection(x).unwrap());
            let mut centred = DMatrix::<f64>::from_fn(p, k, |i, c| values[c * p + i] as f64);
            for mut column in centred.column_iter_mut() {
                let mean = column.mean();
                column.add_scalar_mut(-mean);
            }
            let v_t = centred.clone().svd(false, true).v_t.unwrap();
            let expected = &centred * v_t.row(0).transpose();
            let dot: f64 = expected.iter().zip(&got).map(|(a, b)| a * *b as f64).sum();
            for (g, e) in got.iter().zip(expected.iter()) {
                assert!(
                    (*g as f64 - dot.signum() * e).abs() < 1e-5,
                    "{got:?} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn non_finite_input_is_an_error() {
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, f32::NAN, 0.0, 2.0], [1, 1, 2, 2]),
            &Device::flex(),
        );
        assert!(matches!(
            first_component_projection(x),
            Err(GradCamError::Numerical(
                crate::NumericalError::NonFinite { .. }
            ))
        ));
    }
}
