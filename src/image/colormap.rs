//! Colormaps for heatmaps.

use ::image::{ImageBuffer, Rgb, RgbImage};
use colorgrad::Gradient;

use crate::error::{GradCamError, Result};

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

    /// The colours of `values` in `[0, 1]` (clamped; NaN paints as 0), row-major, as an image.
    ///
    /// # Errors
    /// [`InputError::Argument`](crate::InputError::Argument) if `values.len() != height * width` or a side is 0 or
    /// does not fit in `u32`.
    pub fn paint(self, values: &[f32], [height, width]: [usize; 2]) -> Result<RgbImage> {
        check_map(values.len(), [height, width])?;
        let gradient = self.gradient();
        let flip = self == Self::Diverging;
        let lut: Vec<[u8; 3]> = (0..256)
            .map(|i| {
                let t = i as f32 / 255.0;
                let [r, g, b, _] = gradient.at(if flip { 1.0 - t } else { t }).to_rgba8();
                [r, g, b]
            })
            .collect();
        Ok(ImageBuffer::from_fn(width as u32, height as u32, |x, y| {
            let v = values[y as usize * width + x as usize];
            let v = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
            Rgb(lut[(v * 255.0).round() as usize])
        }))
    }
}

/// Check that a `[height, width]` map of `len` values is well formed and fits an image.
pub(crate) fn check_map(len: usize, [height, width]: [usize; 2]) -> Result<()> {
    if height == 0
        || width == 0
        || u32::try_from(height).is_err()
        || u32::try_from(width).is_err()
        || height.checked_mul(width) != Some(len)
    {
        return Err(GradCamError::argument(format!(
            "{len} values for a [{height}, {width}] map"
        )));
    }
    Ok(())
}

/// Map a signed map to `[0, 1]` with zero at 0.5: `0.5 + 0.5 * x / max|x|`, for the diverging
/// colormap (the sign stays readable; a zero map is all 0.5, non-finite values become 0.5).
pub fn signed_to_diverging(values: &[f32]) -> Vec<f32> {
    let peak = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let peak = if peak > 0.0 { peak } else { 1.0 };
    values
        .iter()
        .map(|v| {
            if v.is_finite() {
                0.5 + 0.5 * v / peak
            } else {
                0.5
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_runs_from_dark_blue_to_dark_red() {
        let img = Colormap::Jet.paint(&[0.0, 0.5, 1.0], [1, 3]).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 127]);
        let mid = img.get_pixel(1, 0).0;
        assert!(mid[1] > 200 && mid[0] > 100 && mid[2] < 150, "{mid:?}");
        assert_eq!(img.get_pixel(2, 0).0, [127, 0, 0]);
    }

    #[test]
    fn diverging_is_white_at_zero_and_signs_differ() {
        let unit = signed_to_diverging(&[-2.0, 0.0, 1.0, f32::NAN]);
        assert_eq!(unit, vec![0.0, 0.5, 0.75, 0.5]);
        let img = Colormap::Diverging.paint(&unit[..3], [1, 3]).unwrap();
        let [neg, zero, pos] = [0, 1, 2].map(|x| img.get_pixel(x, 0).0);
        assert!(neg[2] > neg[0], "negative is blue: {neg:?}");
        assert!(pos[0] > pos[2], "positive is red: {pos:?}");
        assert!(
            zero.iter().all(|c| *c > 230),
            "zero is near white: {zero:?}"
        );
    }

    #[test]
    fn wrong_lengths_and_sizes_are_errors() {
        for (len, size) in [(2, [1, 3]), (4, [1, 3]), (0, [0, 0]), (3, [usize::MAX, 3])] {
            let values = vec![0.5; len];
            assert!(
                Colormap::Jet.paint(&values, size).is_err(),
                "{len} {size:?}"
            );
        }
        let huge = [1usize << 33, 1];
        assert!(check_map(1 << 33, huge).is_err(), "a side beyond u32");
    }
}
