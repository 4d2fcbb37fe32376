//! From photos to a model's input tensor: resize, channel order, normalisation.

use ::image::RgbImage;
use burn::tensor::{Device, Tensor, TensorData};

use super::Resize;
use crate::error::{GradCamError, Result};

/// The largest side [`Preprocess`] accepts, in pixels.
pub const MAX_SIDE: usize = 16_384;

/// The channel order a model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (Caffe-trained weights).
    Bgr,
}

/// How a model wants its input: size, resize, channel order and normalisation.
///
/// A pixel `p` in `[0, 1]` becomes `(p * scale - mean[c]) / std[c]`, with `mean` and `std` in
/// the model's channel order.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// `[height, width]` of the model's input.
    pub size: [usize; 2],
    /// How a photo is brought to `size` (default: PIL's bilinear resize of the whole photo).
    pub resize: Resize,
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
    /// Bring a photo to the model's size with [`Preprocess::resize`](field@Preprocess::resize).
    ///
    /// # Errors
    /// As [`Preprocess::to_tensor`], for the settings.
    pub fn resize(&self, image: &RgbImage) -> Result<RgbImage> {
        self.check()?;
        self.resize.apply(image, self.size)
    }

    /// The same settings with another resize.
    pub fn with_resize(mut self, resize: Resize) -> Self {
        self.resize = resize;
        self
    }

    /// Resize and normalise a batch of images into one tensor.
    ///
    /// # Shapes
    /// - returns `[images.len(), 3, height, width]`
    ///
    /// # Errors
    /// [`InputError::Argument`](crate::InputError::Argument) for no images, an empty image, a size of 0 or above
    /// [`MAX_SIDE`], or a `scale`, mean or standard deviation that is not finite (or a standard
    /// deviation of 0).
    pub fn to_tensor(&self, images: &[RgbImage], device: &Device) -> Result<Tensor<4>> {
        let [h, w] = self.size;
        let data = self.values(images)?;
        Ok(Tensor::from_data(
            TensorData::new(data, [images.len(), 3, h, w]),
            device,
        ))
    }

    /// [`Preprocess::to_tensor`]'s values on the host, `[images.len(), 3, height, width]`
    /// row-major: for a tensor made later, or from photos prepared one at a time.
    ///
    /// # Errors
    /// As [`Preprocess::to_tensor`].
    pub fn values(&self, images: &[RgbImage]) -> Result<Vec<f32>> {
        self.check()?;
        if images.is_empty() {
            return Err(GradCamError::argument("no images to preprocess"));
        }
        let [h, w] = self.size;
        let plane = 3 * h * w;
        let mut data = vec![0.0f32; images.len() * plane];
        for (image, out) in images.iter().zip(data.chunks_exact_mut(plane)) {
            self.normalise(&self.resize(image)?, out);
        }
        Ok(data)
    }

    /// One photo already at `size`, normalised into `out`, `[3, height, width]`.
    pub(crate) fn normalise(&self, resized: &RgbImage, out: &mut [f32]) {
        let plane = self.size[0] * self.size[1];
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

    fn check(&self) -> Result<()> {
        let [h, w] = self.size;
        if h == 0 || w == 0 || h > MAX_SIDE || w > MAX_SIDE {
            return Err(GradCamError::argument(format!(
                "preprocessing size {:?}: each side must be 1 to {MAX_SIDE}",
                self.size
            )));
        }
        let finite = self.scale.is_finite()
            && self.mean.iter().all(|m| m.is_finite())
            && self.std.iter().all(|s| s.is_finite() && *s != 0.0);
        if !finite {
            return Err(GradCamError::argument(format!(
                "preprocessing scale {}, mean {:?}, std {:?}: all must be finite and std non-zero",
                self.scale, self.mean, self.std
            )));
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    fn prep() -> Preprocess {
        Preprocess {
            size: [2, 2],
            resize: Resize::Bilinear,
            order: ChannelOrder::Bgr,
            scale: 255.0,
            mean: [1.0, 2.0, 3.0],
            std: [1.0, 1.0, 2.0],
        }
    }

    #[test]
    fn preprocessing_orders_channels_and_normalises() {
        let image = RgbImage::from_pixel(2, 2, ::image::Rgb([255, 0, 51]));
        let t = prep().to_tensor(&[image], &Device::flex()).unwrap();
        assert_eq!(t.dims(), [1, 3, 2, 2]);
        let v = t.into_data().try_into_vec::<f32>().unwrap();
        // B = 51 - 1, G = 0 - 2, R = (255 - 3) / 2
        assert_eq!(&v[0..1], &[50.0]);
        assert_eq!(&v[4..5], &[-2.0]);
        assert_eq!(&v[8..9], &[126.0]);
    }

    #[test]
    fn bad_settings_and_inputs_are_errors() {
        let device = Device::flex();
        let image = RgbImage::from_pixel(3, 3, ::image::Rgb([1, 2, 3]));
        let bad = [
            Preprocess {
                std: [1.0, 0.0, 1.0],
                ..prep()
            },
            Preprocess {
                mean: [f32::NAN, 0.0, 0.0],
                ..prep()
            },
            Preprocess {
                size: [0, 4],
                ..prep()
            },
            Preprocess {
                size: [MAX_SIDE + 1, 4],
                ..prep()
            },
        ];
        for p in bad {
            let err = p
                .to_tensor(std::slice::from_ref(&image), &device)
                .unwrap_err();
            assert!(
                matches!(err, GradCamError::Input(crate::InputError::Argument { .. })),
                "{p:?}: {err}"
            );
        }
        assert!(prep().to_tensor(&[], &device).is_err());
        assert!(prep().to_tensor(&[RgbImage::new(0, 5)], &device).is_err());
    }
}
