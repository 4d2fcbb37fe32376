//! Heatmaps as pictures: colormaps, alpha blending on the photo, side-by-side strips.

use colorgrad::Gradient;
use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma, Rgb, RgbImage};

/// A colormap for heatmaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    /// Jet (dark blue, blue, cyan, yellow, red, dark red), OpenCV's `COLORMAP_JET` stops: what
    /// pytorch-grad-cam users are used to.
    #[default]
    Jet,
    /// Turbo: a perceptually smoother rainbow.
    Turbo,
    /// Viridis: perceptually uniform, colour-blind safe.
    Viridis,
    /// Red-blue diverging (blue negative, white zero, red positive): for signed maps.
    Diverging,
}

impl Colormap {
    /// The gradient behind the colormap.
    fn gradient(self) -> Box<dyn Gradient> {
        match self {
            Self::Jet => Box::new(
                colorgrad::GradientBuilder::new()
                    .html_colors(&[
                        "#00007f", "#0000ff", "#00ffff", "#ffff00", "#ff0000", "#7f0000",
                    ])
                    .domain(&[0.0, 0.125, 0.375, 0.625, 0.875, 1.0])
                    .build::<colorgrad::LinearGradient>()
                    .expect("valid jet stops"),
            ),
            Self::Turbo => Box::new(colorgrad::preset::turbo()),
            Self::Viridis => Box::new(colorgrad::preset::viridis()),
            // Red-blue runs red to blue; `paint` reads it backwards so that positive is red.
            Self::Diverging => Box::new(colorgrad::preset::rd_bu()),
        }
    }

    /// The colours of `values` in `[0, 1]` (clamped), row-major, as an image.
    ///
    /// # Panics
    /// If `values.len() != width * height`.
    pub fn paint(self, values: &[f32], [height, width]: [usize; 2]) -> RgbImage {
        assert_eq!(values.len(), width * height, "a [{height}, {width}] map");
        let gradient = self.gradient();
        let flip = self == Self::Diverging;
        let lut: Vec<[u8; 3]> = (0..256)
            .map(|i| {
                let t = i as f32 / 255.0;
                let [r, g, b, _] = gradient.at(if flip { 1.0 - t } else { t }).to_rgba8();
                [r, g, b]
            })
            .collect();
        ImageBuffer::from_fn(width as u32, height as u32, |x, y| {
            let v = values[y as usize * width + x as usize];
            let v = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
            Rgb(lut[(v * 255.0).round() as usize])
        })
    }
}

/// Map a signed map to `[0, 1]` with zero at 0.5: `0.5 + 0.5 * x / max|x|`, for the diverging
/// colormap (the sign stays readable; a zero map is all 0.5).
pub fn signed_to_unit(values: &[f32]) -> Vec<f32> {
    let peak = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let peak = if peak > 0.0 { peak } else { 1.0 };
    values.iter().map(|v| 0.5 + 0.5 * v / peak).collect()
}

/// Resize a map to `[height, width]` with bilinear interpolation.
pub fn resize_map(values: &[f32], [h, w]: [usize; 2], [height, width]: [usize; 2]) -> Vec<f32> {
    if [h, w] == [height, width] {
        return values.to_vec();
    }
    let map: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w as u32, h as u32, values.to_vec()).expect("a [h, w] map");
    imageops::resize(&map, width as u32, height as u32, FilterType::Triangle).into_raw()
}

/// Blend a coloured map onto a photo: `alpha * heat + (1 - alpha) * photo`, with the map resized
/// to the photo.
pub fn overlay(photo: &RgbImage, heat: &RgbImage, alpha: f32) -> RgbImage {
    let (w, h) = photo.dimensions();
    let heat = if heat.dimensions() == (w, h) {
        heat.clone()
    } else {
        imageops::resize(heat, w, h, FilterType::Triangle)
    };
    ImageBuffer::from_fn(w, h, |x, y| {
        let p = photo.get_pixel(x, y).0;
        let q = heat.get_pixel(x, y).0;
        Rgb(std::array::from_fn(|c| {
            (alpha * q[c] as f32 + (1.0 - alpha) * p[c] as f32).round() as u8
        }))
    })
}

/// Images side by side, top-aligned, with a small white gap.
pub fn strip(images: &[RgbImage]) -> RgbImage {
    let gap = 4;
    let width =
        images.iter().map(|i| i.width()).sum::<u32>() + gap * images.len().saturating_sub(1) as u32;
    let height = images.iter().map(|i| i.height()).max().unwrap_or(0);
    let mut out = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let mut x = 0;
    for image in images {
        imageops::replace(&mut out, image, x as i64, 0);
        x += image.width() + gap;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_runs_from_dark_blue_to_dark_red() {
        let img = Colormap::Jet.paint(&[0.0, 0.5, 1.0], [1, 3]);
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 127]);
        let mid = img.get_pixel(1, 0).0;
        assert!(mid[1] > 200 && mid[0] > 100 && mid[2] < 150, "{mid:?}");
        assert_eq!(img.get_pixel(2, 0).0, [127, 0, 0]);
    }

    #[test]
    fn diverging_is_white_at_zero_and_signs_differ() {
        let unit = signed_to_unit(&[-2.0, 0.0, 1.0]);
        assert_eq!(unit, vec![0.0, 0.5, 0.75]);
        let img = Colormap::Diverging.paint(&unit, [1, 3]);
        let [neg, zero, pos] = [0, 1, 2].map(|x| img.get_pixel(x, 0).0);
        assert!(neg[2] > neg[0], "negative is blue: {neg:?}");
        assert!(pos[0] > pos[2], "positive is red: {pos:?}");
        assert!(
            zero.iter().all(|c| *c > 230),
            "zero is near white: {zero:?}"
        );
    }

    #[test]
    fn overlay_blends_and_strip_lays_out() {
        let photo = RgbImage::from_pixel(4, 2, Rgb([100, 100, 100]));
        let heat = RgbImage::from_pixel(2, 1, Rgb([200, 0, 100]));
        let out = overlay(&photo, &heat, 0.5);
        assert_eq!(out.dimensions(), (4, 2));
        assert_eq!(out.get_pixel(3, 1).0, [150, 50, 100]);
        let s = strip(&[photo.clone(), out]);
        assert_eq!(s.dimensions(), (12, 2));
        assert_eq!(resize_map(&[0.0, 1.0], [1, 2], [1, 2]), vec![0.0, 1.0]);
        assert_eq!(resize_map(&[0.5; 4], [2, 2], [3, 5]).len(), 15);
    }
}
