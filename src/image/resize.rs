//! Resizing a photo to a model's input the way Python users do: PIL's `Image.resize` with its
//! bilinear and bicubic filters, value for value, and torchvision's `Resize(shorter) +
//! CenterCrop(size)`.
//!
//! The resampler is Pillow's own algorithm (`libImaging/Resample.c`): per output pixel, filter
//! weights over the input pixels the filter's support covers (widened by the scale when
//! shrinking: antialiasing), normalised to sum to 1 and rounded to 22-bit fixed point; a
//! horizontal pass, rounded to 8 bits, then a vertical one. `fast_image_resize` follows the
//! same filters but runs the vertical pass first on 8-bit images and keeps coefficients at
//! another precision: measured on the fixtures' photos, one value in six (and after putting the
//! passes in Pillow's order still one in 700) came out one level off Pillow's, which moves the
//! maps by more than the oracle's float32 bounds. Written here, the inputs are Pillow's exactly.

use ::image::RgbImage;
use ::image::imageops;

use crate::error::{GradCamError, Result};

/// How a photo becomes the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Resize {
    /// PIL's `Image.resize((w, h), BILINEAR)` of the whole photo (aspect ratio not kept;
    /// antialiased when shrinking). The default: the bundled models' oracle fixtures were made
    /// with it.
    #[default]
    Bilinear,
    /// PIL's `Image.resize((w, h), BICUBIC)` (Catmull-Rom, `a = -0.5`).
    Bicubic,
    /// torchvision's `Resize(shorter)` then `CenterCrop((h, w))` on a PIL image: the shorter side
    /// to `shorter` pixels (the longer one to `floor(shorter * long / short)`, PIL bilinear),
    /// then the centre `h x w` (offsets rounded half to even, as Python's `round`). The usual
    /// ImageNet evaluation transform is `shorter = 256` for 224 x 224.
    ShorterSideThenCenterCrop {
        /// The shorter side after the resize; at least the crop's larger side.
        shorter: u32,
    },
}

impl Resize {
    /// `image` resized to `[height, width]` as this variant says.
    ///
    /// # Errors
    /// [`GradCamError::InvalidArgument`] for an empty image, or a `shorter` side smaller than
    /// the crop.
    pub fn apply(self, image: &RgbImage, [height, width]: [usize; 2]) -> Result<RgbImage> {
        let (w, h) = nonempty(image.dimensions())?;
        let (out_w, out_h) = (width as u32, height as u32);
        match self {
            Self::Bilinear => pil(image, out_w, out_h, Filter::Bilinear),
            Self::Bicubic => pil(image, out_w, out_h, Filter::Bicubic),
            Self::ShorterSideThenCenterCrop { shorter } => {
                let crop = Crop::new(shorter, (w, h), (out_w, out_h))?;
                let (rw, rh) = crop.resized;
                let resized = pil(image, rw, rh, Filter::Bilinear)?;
                Ok(imageops::crop_imm(&resized, crop.left, crop.top, out_w, out_h).to_image())
            }
        }
    }

    /// The part of a `photo` (`(width, height)`) that the resized input of `[height, width]`
    /// shows, as `(x, y, width, height)` in photo pixels (rounded): the whole photo, or for
    /// [`Resize::ShorterSideThenCenterCrop`] the crop mapped back. Maps belong there, e.g. in an
    /// overlay.
    ///
    /// # Errors
    /// As [`Resize::apply`].
    pub fn source_region(
        self,
        photo: (u32, u32),
        [height, width]: [usize; 2],
    ) -> Result<(u32, u32, u32, u32)> {
        let (w, h) = nonempty(photo)?;
        let Self::ShorterSideThenCenterCrop { shorter } = self else {
            return Ok((0, 0, w, h));
        };
        let (out_w, out_h) = (width as u32, height as u32);
        let crop = Crop::new(shorter, (w, h), (out_w, out_h))?;
        let (rw, rh) = crop.resized;
        let (sx, sy) = (f64::from(w) / f64::from(rw), f64::from(h) / f64::from(rh));
        let back = |v: u32, s: f64| (f64::from(v) * s).round() as u32;
        let (x, y) = (back(crop.left, sx), back(crop.top, sy));
        Ok((
            x,
            y,
            back(out_w, sx).clamp(1, w - x),
            back(out_h, sy).clamp(1, h - y),
        ))
    }
}

/// `(width, height)`, or an error for an image of zero pixels.
fn nonempty((w, h): (u32, u32)) -> Result<(u32, u32)> {
    if w == 0 || h == 0 {
        return Err(GradCamError::invalid("an image of zero pixels"));
    }
    Ok((w, h))
}

/// torchvision's `Resize(shorter) + CenterCrop`: the size after the resize and the crop's
/// offset in it.
struct Crop {
    /// `(width, height)` after `Resize(shorter)`: the shorter side to `shorter`, the longer one
    /// to `floor(shorter * long / short)`.
    resized: (u32, u32),
    left: u32,
    top: u32,
}

impl Crop {
    fn new(shorter: u32, (w, h): (u32, u32), (out_w, out_h): (u32, u32)) -> Result<Self> {
        if shorter < out_w.max(out_h) {
            return Err(GradCamError::invalid(format!(
                "a shorter side of {shorter} cannot be cropped to {out_h} x {out_w}"
            )));
        }
        let (short, long) = (w.min(h), w.max(h));
        let scaled = (u64::from(shorter) * u64::from(long) / u64::from(short)) as u32;
        let (rw, rh) = if w <= h {
            (shorter, scaled)
        } else {
            (scaled, shorter)
        };
        Ok(Self {
            resized: (rw, rh),
            left: centre(rw, out_w),
            top: centre(rh, out_h),
        })
    }
}

/// torchvision's crop offset: `int(round((size - crop) / 2))`, ties to even.
fn centre(size: u32, crop: u32) -> u32 {
    let d = size - crop;
    let half = d / 2;
    if d % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// Pillow's filters: the kernel and its support (half-width) at scale 1.
#[derive(Debug, Clone, Copy)]
enum Filter {
    Bilinear,
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Self::Bilinear => 1.0,
            Self::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Self::Bilinear if x < 1.0 => 1.0 - x,
            Self::Bicubic if x < 1.0 => ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0,
            Self::Bicubic if x < 2.0 => (((x - 5.0) * x + 8.0) * x - 4.0) * A,
            _ => 0.0,
        }
    }
}

/// Pillow's bicubic parameter.
const A: f64 = -0.5;
/// Pillow's fixed-point precision for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each of `out` output pixels along an axis of `size` input pixels: the first input pixel
/// and the fixed-point weights of the pixels from there (Pillow's `precompute_coeffs` and
/// `normalize_coeffs_8bpc`).
fn coefficients(size: u32, out: u32, filter: Filter) -> Vec<(usize, Vec<i32>)> {
    let scale = f64::from(size) / f64::from(out);
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale; // multiplied, not divided: Pillow's rounding
    (0..out)
        .map(|i| {
            let center = (f64::from(i) + 0.5) * scale;
            // C's (int) casts truncate toward zero.
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(i64::from(size)) as usize;
            let weights: Vec<f64> = (min..max)
                .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let rounded = w * f64::from(1u32 << PRECISION_BITS);
                    (if w < 0.0 {
                        rounded - 0.5
                    } else {
                        rounded + 0.5
                    }) as i32
                })
                .collect();
            (min, fixed)
        })
        .collect()
}

/// One weighted sum in Pillow's fixed point, rounded and clamped to 8 bits.
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// PIL's `Image.resize((width, height), filter)` of an RGB image: the horizontal pass, then the
/// vertical one, each skipped where that side keeps its size.
fn pil(image: &RgbImage, width: u32, height: u32, filter: Filter) -> Result<RgbImage> {
    let (w, h) = image.dimensions();
    let half = 1i64 << (PRECISION_BITS - 1);
    let mut rows = image.as_raw().clone(); // [h, w, 3]
    let mut row_width = w as usize;
    if width != w {
        let coefficients = coefficients(w, width, filter);
        let mut out = vec![0u8; h as usize * width as usize * 3];
        for y in 0..h as usize {
            let src = &rows[y * row_width * 3..(y + 1) * row_width * 3];
            for (x, (first, weights)) in coefficients.iter().enumerate() {
                for c in 0..3 {
                    let sum = weights.iter().enumerate().fold(half, |s, (j, k)| {
                        s + i64::from(src[(first + j) * 3 + c]) * i64::from(*k)
                    });
                    out[(y * width as usize + x) * 3 + c] = clip8(sum);
                }
            }
        }
        rows = out;
        row_width = width as usize;
    }
    if height != h {
        let coefficients = coefficients(h, height, filter);
        let stride = row_width * 3;
        let mut out = vec![0u8; height as usize * stride];
        for (y, (first, weights)) in coefficients.iter().enumerate() {
            for v in 0..stride {
                let sum = weights.iter().enumerate().fold(half, |s, (j, k)| {
                    s + i64::from(rows[(first + j) * stride + v]) * i64::from(*k)
                });
                out[y * stride + v] = clip8(sum);
            }
        }
        rows = out;
    }
    RgbImage::from_raw(width, height, rows)
        .ok_or_else(|| GradCamError::invalid("resizing: a buffer of the wrong length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_crop_offsets_round_half_to_even_like_python() {
        // round(16.0) = 16, round(0.5) = 0, round(1.5) = 2, round(2.5) = 2
        assert_eq!(centre(256, 224), 16);
        assert_eq!(centre(225, 224), 0);
        assert_eq!(centre(227, 224), 2);
        assert_eq!(centre(229, 224), 2);
    }

    #[test]
    fn the_shorter_side_goes_to_its_size_and_the_centre_is_kept() {
        // A 400 x 300 photo whose left and right thirds differ: the crop keeps the middle.
        let photo = RgbImage::from_fn(400, 300, |x, _| {
            ::image::Rgb([if (100..300).contains(&x) { 200 } else { 10 }; 3])
        });
        let resize = Resize::ShorterSideThenCenterCrop { shorter: 256 };
        let out = resize.apply(&photo, [224, 224]).unwrap();
        assert_eq!(out.dimensions(), (224, 224));
        // 400 x 300 -> 341 x 256 (floor(256 * 400 / 300)); the crop spans x in [58, 282) of
        // 341, i.e. [68, 331) of the photo: mostly the bright middle, dark at both edges.
        assert!(out.get_pixel(112, 112).0[0] > 190);
        assert!(out.get_pixel(0, 112).0[0] < 60 && out.get_pixel(223, 112).0[0] < 60);
        // The crop in photo pixels: x from 58 * 400 / 341 = 68, 224 * 400 / 341 = 263 wide.
        let region = resize.source_region((400, 300), [224, 224]).unwrap();
        assert_eq!(region, (68, 19, 263, 263));
        assert_eq!(
            Resize::Bilinear
                .source_region((400, 300), [224, 224])
                .unwrap(),
            (0, 0, 400, 300)
        );
        let err = Resize::ShorterSideThenCenterCrop { shorter: 200 }
            .apply(&photo, [224, 224])
            .unwrap_err();
        assert!(matches!(err, GradCamError::InvalidArgument { .. }));
    }

    #[test]
    fn a_flat_photo_stays_flat_with_every_filter() {
        let photo = RgbImage::from_pixel(37, 23, ::image::Rgb([9, 99, 199]));
        for resize in [
            Resize::Bilinear,
            Resize::Bicubic,
            Resize::ShorterSideThenCenterCrop { shorter: 40 },
        ] {
            let out = resize.apply(&photo, [32, 32]).unwrap();
            assert!(out.pixels().all(|p| p.0 == [9, 99, 199]), "{resize:?}");
        }
        assert!(
            Resize::Bilinear
                .apply(&RgbImage::new(0, 3), [4, 4])
                .is_err()
        );
    }
}
