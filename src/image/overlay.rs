//! Heatmaps on photos: resizing maps, alpha blending, side-by-side strips.

use ::image::imageops::{self, FilterType};
use ::image::{ImageBuffer, Luma, Rgb, RgbImage};

use super::colormap::check_map;
use super::preprocess::MAX_SIDE;
use crate::error::{GradCamError, Result};

/// Resize a row-major `[h, w]` map to `[height, width]` with bilinear interpolation.
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) if `values.len() != h * w`, a side is 0, or the target side
/// exceeds [`MAX_SIDE`].
pub fn resize_map(
    values: &[f32],
    [h, w]: [usize; 2],
    [height, width]: [usize; 2],
) -> Result<Vec<f32>> {
    check_map(values.len(), [h, w])?;
    if height == 0 || width == 0 || height > MAX_SIDE || width > MAX_SIDE {
        return Err(GradCamError::argument(format!(
            "resize to [{height}, {width}]: each side must be 1 to {MAX_SIDE}"
        )));
    }
    if [h, w] == [height, width] {
        return Ok(values.to_vec());
    }
    let map: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w as u32, h as u32, values.to_vec()).expect("checked length");
    Ok(imageops::resize(&map, width as u32, height as u32, FilterType::Triangle).into_raw())
}

/// Blend a coloured map onto a photo: `alpha * heat + (1 - alpha) * photo`, with the map resized
/// to the photo (so the overlay keeps the photo's own resolution and aspect ratio).
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) if `alpha` is not in `[0, 1]` or an image is empty.
pub fn overlay(photo: &RgbImage, heat: &RgbImage, alpha: f32) -> Result<RgbImage> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(GradCamError::argument(format!(
            "overlay alpha {alpha}: must be in [0, 1]"
        )));
    }
    let (w, h) = photo.dimensions();
    if w == 0 || h == 0 || heat.width() == 0 || heat.height() == 0 {
        return Err(GradCamError::argument("overlay of an empty image"));
    }
    let heat = if heat.dimensions() == (w, h) {
        heat.clone()
    } else {
        imageops::resize(heat, w, h, FilterType::Triangle)
    };
    Ok(ImageBuffer::from_fn(w, h, |x, y| {
        let p = photo.get_pixel(x, y).0;
        let q = heat.get_pixel(x, y).0;
        Rgb(std::array::from_fn(|c| {
            (alpha * q[c] as f32 + (1.0 - alpha) * p[c] as f32).round() as u8
        }))
    }))
}

/// Images side by side, top-aligned, with a small white gap.
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) for no images, or a strip wider than [`MAX_SIDE`] times
/// the number of images.
pub fn side_by_side(images: &[RgbImage]) -> Result<RgbImage> {
    const GAP: u64 = 4;
    if images.is_empty() {
        return Err(GradCamError::argument("a strip of no images"));
    }
    let width =
        images.iter().map(|i| u64::from(i.width())).sum::<u64>() + GAP * (images.len() as u64 - 1);
    let height = images.iter().map(|i| i.height()).max().unwrap_or(0);
    if width > (MAX_SIDE * images.len()) as u64 || height as usize > MAX_SIDE {
        return Err(GradCamError::argument(format!(
            "a strip of {width} x {height} pixels is too large"
        )));
    }
    let mut out = RgbImage::from_pixel(width as u32, height, Rgb([255, 255, 255]));
    let mut x = 0u64;
    for image in images {
        imageops::replace(&mut out, image, x as i64, 0);
        x += u64::from(image.width()) + GAP;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_blends_at_the_photos_resolution_and_strip_lays_out() {
        let photo = RgbImage::from_pixel(4, 2, Rgb([100, 100, 100]));
        let heat = RgbImage::from_pixel(2, 1, Rgb([200, 0, 100]));
        let out = overlay(&photo, &heat, 0.5).unwrap();
        assert_eq!(out.dimensions(), (4, 2));
        assert_eq!(out.get_pixel(3, 1).0, [150, 50, 100]);
        let s = side_by_side(&[photo.clone(), out]).unwrap();
        assert_eq!(s.dimensions(), (12, 2));
        assert_eq!(
            resize_map(&[0.0, 1.0], [1, 2], [1, 2]).unwrap(),
            vec![0.0, 1.0]
        );
        assert_eq!(resize_map(&[0.5; 4], [2, 2], [3, 5]).unwrap().len(), 15);
    }

    #[test]
    fn bad_buffers_sizes_and_weights_are_errors() {
        assert!(
            resize_map(&[0.5; 3], [2, 2], [3, 3]).is_err(),
            "short buffer"
        );
        assert!(
            resize_map(&[0.5; 5], [2, 2], [3, 3]).is_err(),
            "long buffer"
        );
        assert!(
            resize_map(&[0.5; 4], [2, 2], [MAX_SIDE + 1, 3]).is_err(),
            "huge target"
        );
        assert!(
            resize_map(&[0.5; 4], [2, 2], [0, 3]).is_err(),
            "empty target"
        );
        let photo = RgbImage::new(2, 2);
        assert!(overlay(&photo, &photo, 1.5).is_err());
        assert!(overlay(&photo, &photo, f32::NAN).is_err());
        assert!(overlay(&RgbImage::new(0, 0), &photo, 0.5).is_err());
        assert!(side_by_side(&[]).is_err());
    }
}
