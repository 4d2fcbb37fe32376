//! OpenCV's `GaussianBlur` of `f32` maps (its default border, `BORDER_REFLECT_101`), on the
//! device: SESS smooths its fused map with it.
//!
//! Written here because Burn has no blur, and OpenCV's choices are what the oracle compares:
//! the kernel as `getGaussianKernel` rounds it to `f32`, and the border mirrored without
//! repeating the edge (`gfedcb|abcdefgh|gfedcba`), folded again for maps shorter than the
//! kernel's reach.

use burn::tensor::{DType, Int, Tensor, TensorData};

/// OpenCV's `getGaussianKernel(size, sigma, CV_32F)` (OpenCV 5, as opencv-python 5.0 computes
/// it): `exp(-x^2 / (2 sigma^2))` at `x = i - (size - 1) / 2` in `f64`, times the reciprocal of
/// their sum, rounded to `f32` once. (Rounding each term to `f32` before summing, as OpenCV 4's
/// source reads, moves one of the eleven weights by an ulp.)
fn gaussian_kernel(size: usize, sigma: f64) -> Vec<f32> {
    let scale = -0.5 / (sigma * sigma);
    let raw: Vec<f64> = (0..size)
        .map(|i| {
            let x = i as f64 - (size as f64 - 1.0) * 0.5;
            (scale * x * x).exp()
        })
        .collect();
    let sum = 1.0 / raw.iter().sum::<f64>();
    raw.iter().map(|&v| (v * sum) as f32).collect()
}

/// OpenCV's `borderInterpolate(p, len, BORDER_REFLECT_101)`: the sample that position `p`
/// reads, mirrored about the first and last samples (again and again for short axes).
fn reflect_101(mut p: isize, len: usize) -> usize {
    let len = len as isize;
    if len == 1 {
        return 0;
    }
    while p < 0 || p >= len {
        p = if p < 0 { -p } else { 2 * len - 2 - p };
    }
    p as usize
}

/// `maps` blurred along `axis` (2: rows, 3: columns) by `kernel`: the axis extended by
/// `reflect_101` and each output the kernel's weighted sum of its window.
///
/// # Shapes
/// - `maps`: `[b, m, h, w]`; returns the same
fn blur_axis(maps: Tensor<4>, axis: usize, kernel: &[f32]) -> Tensor<4> {
    let len = maps.dims()[axis];
    let reach = kernel.len() / 2;
    let indices: Vec<i64> = (0..len + 2 * reach)
        .map(|p| reflect_101(p as isize - reach as isize, len) as i64)
        .collect();
    let device = maps.device();
    let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [len + 2 * reach]), &device);
    let padded = maps.select(axis, indices); // [b, m, h + 2 reach, w] or [b, m, h, w + 2 reach]
    kernel
        .iter()
        .enumerate()
        .map(|(k, &weight)| padded.clone().narrow(axis, k, len).mul_scalar(weight))
        .reduce(|sum, term| sum + term)
        .unwrap_or_else(|| padded.narrow(axis, reach, len))
}

/// `cv2.GaussianBlur(map, (size, size), sigma)` of every `[h, w]` map: the rows filtered, then
/// the columns, `BORDER_REFLECT_101` at the edges.
///
/// # Shapes
/// - `maps`: `[b, m, h, w]`, `f32`; returns the same
pub(crate) fn gaussian_blur(maps: Tensor<4>, size: usize, sigma: f64) -> Tensor<4> {
    debug_assert_eq!(maps.dtype(), DType::F32);
    let kernel = gaussian_kernel(size, sigma);
    let rows = blur_axis(maps, 3, &kernel); // [b, m, h, w]
    blur_axis(rows, 2, &kernel) // [b, m, h, w]
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn the_kernel_is_opencvs() {
        // cv2.getGaussianKernel(11, 5.0, ktype=cv2.CV_32F) of opencv-python 5.0.0.93, as f64.
        let opencv: Vec<f32> = [
            0.06634166836738586f64,
            0.0794253945350647f64,
            0.09136094897985458f64,
            0.10096946358680725f64,
            0.10721306502819061f64,
            0.10937891900539398f64,
            0.10721306502819061f64,
            0.10096946358680725f64,
            0.09136094897985458f64,
            0.0794253945350647f64,
            0.06634166836738586f64,
        ]
        .iter()
        .map(|&v| v as f32)
        .collect();
        let ours = gaussian_kernel(11, 5.0);
        assert_eq!(ours, opencv);
        assert!((ours.iter().sum::<f32>() - 1.0).abs() <= 4.0 * f32::EPSILON);
    }

    #[test]
    fn the_border_mirrors_without_repeating_the_edge() {
        let read = |len: usize| -> Vec<usize> {
            (-5..len as isize + 5)
                .map(|p| reflect_101(p, len))
                .collect()
        };
        // gfedcb|abcdefgh|gfedcba on 8 samples.
        assert_eq!(&read(8)[..5], &[5, 4, 3, 2, 1]);
        assert_eq!(&read(8)[13..], &[6, 5, 4, 3, 2]);
        // Shorter than the reach: folded again (OpenCV's loop).
        assert_eq!(read(3), vec![1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]);
        assert_eq!(read(1), vec![0; 11]);
    }

    #[test]
    fn a_blurred_impulse_is_the_kernel_s_outer_product_and_a_flat_map_stays_flat() {
        let device = Device::flex();
        let kernel = gaussian_kernel(11, 5.0);
        let mut impulse = vec![0.0f32; 21 * 21];
        impulse[10 * 21 + 10] = 1.0;
        let x = Tensor::<4>::from_data(TensorData::new(impulse, [1, 1, 21, 21]), &device);
        let blurred = crate::host::read(gaussian_blur(x, 11, 5.0));
        for i in 0..21usize {
            for j in 0..21usize {
                let want = match (i.abs_diff(10), j.abs_diff(10)) {
                    (di, dj) if di <= 5 && dj <= 5 => kernel[5 + di] * kernel[5 + dj],
                    _ => 0.0,
                };
                assert_eq!(blurred[i * 21 + j], want, "({i}, {j})");
            }
        }
        let flat = Tensor::<4>::full([1, 2, 4, 7], 0.25, &device);
        let blurred = crate::host::read(gaussian_blur(flat, 11, 5.0));
        assert!(
            blurred
                .iter()
                .all(|v| (v - 0.25).abs() <= 4.0 * f32::EPSILON)
        );
    }
}
