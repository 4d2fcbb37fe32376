//! Guided backpropagation as a picture: pytorch-grad-cam's `deprocess_image` (after Keras'
//! grad-cam example), the values standardised over the whole image around mid-grey.

use ::image::{Rgb, RgbImage};

use crate::error::{GradCamError, Result};

/// One image's guided gradient or Guided Grad-CAM ([`crate::guided_grad_cam`]) as an RGB
/// picture, as pytorch-grad-cam's `deprocess_image`: `x' = (x - mean) / (std + 1e-5) * 0.1 + 0.5`
/// over all the values (population standard deviation), clipped to `[0, 1]`, times 255 truncated
/// to a byte. Mean and deviation are taken in f64: rounding can move a byte by one only where
/// `255 x'` lies within about `1e-5` of an integer.
///
/// # Shapes
/// - `values`: `[3, height, width]`, channel-major (a row of `GuidedBackprop::gradients`)
///
/// # Errors
/// `values` not `3 * height * width` long, or a non-finite value.
pub fn guided_to_rgb(values: &[f32], [height, width]: [usize; 2]) -> Result<RgbImage> {
    let plane = height.checked_mul(width);
    let (Some(plane), Ok(w), Ok(h)) = (plane, u32::try_from(width), u32::try_from(height)) else {
        return Err(GradCamError::argument(format!(
            "a [3, {height}, {width}] guided map does not fit an image"
        )));
    };
    if plane == 0 || plane.checked_mul(3) != Some(values.len()) {
        return Err(GradCamError::argument(format!(
            "{} values for a [3, {height}, {width}] guided map",
            values.len()
        )));
    }
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(GradCamError::argument(format!(
            "the guided map has a non-finite value at {at}: explain again, or check the model"
        )));
    }
    let count = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
    let variance = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / count;
    let scale = 0.1 / (variance.sqrt() + 1e-5);
    let byte = |v: f32| ((((f64::from(v) - mean) * scale + 0.5).clamp(0.0, 1.0)) * 255.0) as u8;
    Ok(RgbImage::from_fn(w, h, |x, y| {
        let at = y as usize * width + x as usize;
        Rgb([
            byte(values[at]),
            byte(values[plane + at]),
            byte(values[2 * plane + at]),
        ])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_are_pytorch_grad_cams() {
        // [3, 2, 2]; the expected bytes are `deprocess_image` of pytorch-grad-cam 1.5.7 on the
        // same values laid out [2, 2, 3] (the same in float32 and float64).
        let values = [
            -3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 10.0, -40.0, 0.125, 7.0, 1.0, -2.0,
        ];
        let picture = guided_to_rgb(&values, [2, 2]).unwrap();
        let expected = [
            [[125, 133, 132], [129, 136, 146]],
            [[131, 153, 134], [132, 46, 127]],
        ];
        for (y, row) in expected.iter().enumerate() {
            for (x, pixel) in row.iter().enumerate() {
                assert_eq!(
                    picture.get_pixel(x as u32, y as u32).0,
                    *pixel,
                    "({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn a_wrong_length_or_a_nan_is_an_error() {
        assert!(guided_to_rgb(&[0.0; 11], [2, 2]).is_err());
        assert!(guided_to_rgb(&[], [0, 0]).is_err());
        let mut values = [1.0; 12];
        values[5] = f32::NAN;
        assert!(guided_to_rgb(&values, [2, 2]).is_err());
    }
}
