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
    /// Memory and time go with the output (and the input rows it reads), not with the resized
    /// photo before a crop: only the cropped window of [`Resize::ShorterSideThenCenterCrop`] is
    /// computed, which gives the same values as resizing the whole photo and cropping (each output
    /// pixel depends on its filter taps only).
    ///
    /// # Errors
    /// [`InputError::Argument`](crate::InputError::Argument) for an empty image or output, or a
    /// `shorter` side smaller than the crop.
    pub fn apply(self, image: &RgbImage, [height, width]: [usize; 2]) -> Result<RgbImage> {
        let (w, h) = nonempty(image.dimensions())?;
        let out = output_size([height, width])?;
        match self {
            Self::Bilinear => pil(image, full(out), Filter::Bilinear),
            Self::Bicubic => pil(image, full(out), Filter::Bicubic),
            Self::ShorterSideThenCenterCrop { shorter } => {
                let crop = Crop::new(shorter, (w, h), out)?;
                pil(image, crop.window(out), Filter::Bilinear)
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
        let out = output_size([height, width])?;
        let Self::ShorterSideThenCenterCrop { shorter } = self else {
            return Ok((0, 0, w, h));
        };
        let crop = Crop::new(shorter, (w, h), out)?;
        let (rw, rh) = crop.resized;
        let (sx, sy) = (f64::from(w) / rw as f64, f64::from(h) / rh as f64);
        let back = |v: u64, s: f64| ((v as f64 * s).round() as u32).min(w.max(h));
        let (x, y) = (
            back(crop.left, sx).min(w - 1),
            back(crop.top, sy).min(h - 1),
        );
        Ok((
            x,
            y,
            back(u64::from(out.0), sx).clamp(1, w - x),
            back(u64::from(out.1), sy).clamp(1, h - y),
        ))
    }
}

/// `(width, height)`, or an error for an image of zero pixels.
fn nonempty((w, h): (u32, u32)) -> Result<(u32, u32)> {
    if w == 0 || h == 0 {
        return Err(GradCamError::argument("an image of zero pixels"));
    }
    Ok((w, h))
}

/// The output's `(width, height)`, or an error for an empty one or one beyond `u32`.
fn output_size([height, width]: [usize; 2]) -> Result<(u32, u32)> {
    match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(GradCamError::argument(format!(
            "a resize to {height} x {width}: each side must be 1 to {}",
            u32::MAX
        ))),
    }
}

/// The resampled size and the window of it to compute: `(resized width, resized height)` and
/// `(left, top, width, height)` of the window.
type Window = ((u64, u64), (u64, u64, u32, u32));

/// The whole of an `(width, height)` output.
fn full((w, h): (u32, u32)) -> Window {
    ((u64::from(w), u64::from(h)), (0, 0, w, h))
}

/// torchvision's `Resize(shorter) + CenterCrop`: the size after the resize and the crop's
/// offset in it.
struct Crop {
    /// `(width, height)` after `Resize(shorter)`: the shorter side to `shorter`, the longer one
    /// to `floor(shorter * long / short)` (in `u64`: a thin photo's longer side can exceed any
    /// image, and is never materialised).
    resized: (u64, u64),
    left: u64,
    top: u64,
}

impl Crop {
    fn new(shorter: u32, (w, h): (u32, u32), (out_w, out_h): (u32, u32)) -> Result<Self> {
        if shorter < out_w.max(out_h) {
            return Err(GradCamError::argument(format!(
                "a shorter side of {shorter} cannot be cropped to {out_h} x {out_w}"
            )));
        }
        let (short, long) = (u64::from(w.min(h)), u64::from(w.max(h)));
        let shorter = u64::from(shorter);
        let scaled = shorter * long / short;
        let (rw, rh) = if w <= h {
            (shorter, scaled)
        } else {
            (scaled, shorter)
        };
        Ok(Self {
            resized: (rw, rh),
            left: centre(rw, u64::from(out_w)),
            top: centre(rh, u64::from(out_h)),
        })
    }

    /// The resize, and the crop of `(width, height)` as the window to compute.
    fn window(&self, (out_w, out_h): (u32, u32)) -> Window {
        (self.resized, (self.left, self.top, out_w, out_h))
    }
}

/// torchvision's crop offset: `int(round((size - crop) / 2))`, ties to even.
fn centre(size: u64, crop: u64) -> u64 {
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

/// For each output pixel `i` in `window` of `out` output pixels along an axis of `size` input
/// pixels: the first input pixel and the fixed-point weights of the pixels from there (Pillow's
/// `precompute_coeffs` and `normalize_coeffs_8bpc`, for the pixels asked for only).
fn coefficients(
    size: u32,
    out: u64,
    window: std::ops::Range<u64>,
    filter: Filter,
) -> Vec<(usize, Vec<i32>)> {
    let scale = f64::from(size) / out as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale; // multiplied, not divided: Pillow's rounding
    window
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
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

/// A window of PIL's `Image.resize((width, height), filter)` of an RGB image: the horizontal
/// pass over the input rows the window's vertical taps read, then the vertical one, each
/// skipped where that side keeps its size.
fn pil(
    image: &RgbImage,
    ((width, height), (x0, y0, ww, wh)): Window,
    filter: Filter,
) -> Result<RgbImage> {
    let (w, h) = image.dimensions();
    let (ww_, wh_) = (ww as usize, wh as usize);
    let src = image.as_raw(); // [h, w, 3]
    let half = 1i64 << (PRECISION_BITS - 1);
    let vertical =
        (height != u64::from(h)).then(|| coefficients(h, height, y0..y0 + u64::from(wh), filter));
    let rows = match &vertical {
        Some(taps) => {
            let first = taps.iter().map(|(f, _)| *f).min().unwrap_or(0);
            let last = taps.iter().map(|(f, k)| f + k.len()).max().unwrap_or(0);
            first..last
        }
        None => y0 as usize..y0 as usize + wh_,
    };
    let horizontal =
        (width != u64::from(w)).then(|| coefficients(w, width, x0..x0 + u64::from(ww), filter));
    let stride = ww_ * 3;
    let mut pass = vec![0u8; rows.len() * stride]; // [rows, ww, 3]
    for (r, y) in rows.clone().enumerate() {
        let line = &src[y * w as usize * 3..(y + 1) * w as usize * 3];
        let out = &mut pass[r * stride..(r + 1) * stride];
        match &horizontal {
            Some(taps) => {
                for (x, (first, weights)) in taps.iter().enumerate() {
                    for c in 0..3 {
                        let sum = weights.iter().enumerate().fold(half, |s, (j, k)| {
                            s + i64::from(line[(first + j) * 3 + c]) * i64::from(*k)
                        });
                        out[x * 3 + c] = clip8(sum);
                    }
                }
            }
            None => out.copy_from_slice(&line[x0 as usize * 3..x0 as usize * 3 + stride]),
        }
    }
    let pixels = match &vertical {
        Some(taps) => {
            let mut out = vec![0u8; wh_ * stride];
            for (y, (first, weights)) in taps.iter().enumerate() {
                let first = first - rows.start;
                for v in 0..stride {
                    let sum = weights.iter().enumerate().fold(half, |s, (j, k)| {
                        s + i64::from(pass[(first + j) * stride + v]) * i64::from(*k)
                    });
                    out[y * stride + v] = clip8(sum);
                }
            }
            out
        }
        None => pass,
    };
    RgbImage::from_raw(ww, wh, pixels)
        .ok_or_else(|| GradCamError::argument("resizing: a buffer of the wrong length"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::image::imageops;

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
        assert!(matches!(
            err,
            GradCamError::Input(crate::InputError::Argument { .. })
        ));
    }

    #[test]
    fn the_crop_window_equals_the_crop_of_the_whole_resize() {
        // A photo with detail everywhere; the window is computed alone, the reference resizes the
        // whole photo to 45 x 40 and crops it as torchvision does.
        let photo = RgbImage::from_fn(37, 33, |x, y| {
            ::image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (200 - x - y) as u8])
        });
        let resize = Resize::ShorterSideThenCenterCrop { shorter: 40 };
        let window = resize.apply(&photo, [32, 32]).unwrap();
        let whole = pil(&photo, full((44, 40)), Filter::Bilinear).unwrap();
        let crop = imageops::crop_imm(&whole, 6, 4, 32, 32).to_image();
        assert_eq!(window, crop);
    }

    #[test]
    fn a_thin_photo_resized_past_any_image_size_costs_its_crop_only() {
        // 1 x 65536 with the shorter side to 65536: the resized photo would be 65536 x 2^32
        // pixels (once a subtraction overflow, or 13 GB); only the 224 x 224 crop is computed.
        let photo = RgbImage::from_fn(1, 65_536, |_, y| ::image::Rgb([(y % 251) as u8, 7, 9]));
        let resize = Resize::ShorterSideThenCenterCrop { shorter: 65_536 };
        let out = resize.apply(&photo, [224, 224]).unwrap();
        assert_eq!(out.dimensions(), (224, 224));
        assert!(out.pixels().all(|p| p.0[1] == 7 && p.0[2] == 9));
        let (x, y, w, h) = resize.source_region((1, 65_536), [224, 224]).unwrap();
        assert!(
            x == 0 && w == 1 && h >= 1 && y + h <= 65_536,
            "{:?}",
            (x, y, w, h)
        );
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
