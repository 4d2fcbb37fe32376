//! Images in and out: decode any common format, resize and normalise for a model, write PNGs.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::{self, FilterType};
use image::{ImageReader, RgbImage};

use crate::error::{GradCamError, Result};

/// The channel order a model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (Caffe-trained weights).
    Bgr,
}

/// How a model wants its input: size, channel order and normalisation.
///
/// A pixel `p` in `[0, 1]` becomes `(p * scale - mean[c]) / std[c]`, with `mean` and `std` in
/// the model's channel order.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// `[height, width]` of the model's input.
    pub size: [usize; 2],
    /// Channel order.
    pub order: ChannelOrder,
    /// What a full-intensity pixel is worth before the mean is subtracted (1 or 255).
    pub scale: f32,
    /// Per-channel mean, in `order`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, in `order`.
    pub std: [f32; 3],
}

impl Preprocess {
    /// Resize to the model's size (bilinear, antialiased when shrinking).
    pub fn resize(&self, image: &RgbImage) -> RgbImage {
        let [h, w] = self.size;
        if image.dimensions() == (w as u32, h as u32) {
            return image.clone();
        }
        imageops::resize(image, w as u32, h as u32, FilterType::Triangle)
    }

    /// Resize and normalise a batch of images into one tensor.
    ///
    /// # Shapes
    /// - returns `[images.len(), 3, height, width]`
    pub fn to_tensor(&self, images: &[RgbImage], device: &Device) -> Tensor<4> {
        let [h, w] = self.size;
        let plane = h * w;
        let mut data = vec![0.0f32; images.len() * 3 * plane];
        for (i, image) in images.iter().enumerate() {
            let resized = self.resize(image);
            let out = &mut data[i * 3 * plane..(i + 1) * 3 * plane];
            for (p, pixel) in resized.pixels().enumerate() {
                for c in 0..3 {
                    let source = match self.order {
                        ChannelOrder::Rgb => c,
                        ChannelOrder::Bgr => 2 - c,
                    };
                    let value = pixel.0[source] as f32 / 255.0 * self.scale;
                    out[c * plane + p] = (value - self.mean[c]) / self.std[c];
                }
            }
        }
        Tensor::from_data(TensorData::new(data, [images.len(), 3, h, w]), device)
    }
}

/// Decode an image file of any common format (PNG, JPEG; RGB, RGBA, grayscale, 16-bit) into
/// 8-bit RGB. Alpha is dropped; 16-bit channels are scaled to 8 bits.
///
/// # Errors
/// [`GradCamError::Image`] if the file cannot be read or decoded.
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    let fail = |reason: String| GradCamError::Image {
        path: path.to_path_buf(),
        reason,
    };
    let image = ImageReader::open(path)
        .map_err(|e| fail(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?
        .decode()
        .map_err(|e| fail(e.to_string()))?;
    Ok(image.to_rgb8())
}

/// Write an RGB image as PNG, creating the parent directory.
///
/// # Errors
/// [`GradCamError::Write`] if the file cannot be written.
pub fn save_png(image: &RgbImage, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let fail = |reason: String| GradCamError::Write {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    image
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| fail(e.to_string()))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageBuffer, Luma, Rgba};

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gradcam-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn every_pixel_layout_loads_as_rgb() {
        let rgba = ImageBuffer::from_pixel(4, 3, Rgba([10u8, 20, 30, 0]));
        let gray16 = ImageBuffer::from_pixel(4, 3, Luma([0xFFFFu16]));
        for (name, image) in [
            ("rgba.png", DynamicImage::ImageRgba8(rgba)),
            ("gray16.png", DynamicImage::ImageLuma16(gray16)),
        ] {
            let path = temp(name);
            image.save(&path).unwrap();
            let loaded = load_image(&path).unwrap();
            assert_eq!(loaded.dimensions(), (4, 3));
            let expected = if name == "rgba.png" {
                [10, 20, 30]
            } else {
                [255, 255, 255]
            };
            assert_eq!(loaded.get_pixel(1, 1).0, expected, "{name}");
        }
    }

    #[test]
    fn unreadable_files_are_typed_errors() {
        let missing = load_image(temp("does-not-exist.png")).unwrap_err();
        assert!(matches!(missing, GradCamError::Image { .. }), "{missing}");
        let garbage = temp("garbage.png");
        std::fs::write(&garbage, b"not an image at all").unwrap();
        assert!(matches!(
            load_image(&garbage),
            Err(GradCamError::Image { .. })
        ));
        let blocked = temp("file-not-dir");
        std::fs::write(&blocked, b"x").unwrap();
        let err = save_png(&RgbImage::new(1, 1), blocked.join("out.png")).unwrap_err();
        assert!(matches!(err, GradCamError::Write { .. }), "{err}");
    }

    #[test]
    fn preprocessing_orders_channels_and_normalises() {
        let image = RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 51]));
        let prep = Preprocess {
            size: [2, 2],
            order: ChannelOrder::Bgr,
            scale: 255.0,
            mean: [1.0, 2.0, 3.0],
            std: [1.0, 1.0, 2.0],
        };
        let t = prep.to_tensor(&[image], &Device::flex());
        assert_eq!(t.dims(), [1, 3, 2, 2]);
        let v = t.into_data().try_into_vec::<f32>().unwrap();
        // B = 51 - 1, G = 0 - 2, R = (255 - 3) / 2
        assert_eq!(&v[0..1], &[50.0]);
        assert_eq!(&v[4..5], &[-2.0]);
        assert_eq!(&v[8..9], &[126.0]);
    }
}
