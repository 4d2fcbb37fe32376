//! Decoding photos (with limits: files from outside are untrusted) and writing PNGs.

use std::io::Cursor;
use std::path::Path;

use ::image::error::{DecodingError, ImageError, ImageFormatHint, LimitErrorKind};
use ::image::{ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::{GradCamError, Result};

/// The decoding limits [`load_image`] applies: at most 16,384 pixels per side and 512 MiB per
/// allocation (the `image` crate's own default), which admits about 178 megapixels of 8-bit RGB
/// and refuses a small file that claims gigapixels before anything is allocated.
pub fn default_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(512 * 1024 * 1024);
    limits
}

/// Decode an image file of any common format (PNG, JPEG; RGB, RGBA, grayscale, 16-bit) into
/// 8-bit RGB, within [`default_limits`]. Alpha is dropped; 16-bit channels are scaled to 8 bits.
///
/// # Errors
/// [`GradCamError::Io`] if the file cannot be read, [`GradCamError::Image`] if it cannot be
/// decoded (not an image, truncated), [`GradCamError::ImageTooLarge`] beyond the limits.
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    load_image_with_limits(path, default_limits())
}

/// [`load_image`] with other limits (for example `Limits::no_limits()` for a trusted file).
///
/// # Errors
/// As [`load_image`].
pub fn load_image_with_limits(path: impl AsRef<Path>, limits: Limits) -> Result<RgbImage> {
    let path = path.as_ref();
    let io = |source| GradCamError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let max_alloc = limits.max_alloc;
    // The file is read whole (photos are small next to their pixels), within the same limit.
    let size = std::fs::metadata(path).map_err(io)?.len();
    if max_alloc.is_some_and(|max| size > max) {
        return Err(GradCamError::ImageTooLarge {
            path: path.to_path_buf(),
            limit: "file size".to_string(),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let mut reader = ImageReader::new(Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(io)?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(&bytes) {
        return Err(GradCamError::Image {
            path: path.to_path_buf(),
            source: ImageError::Decoding(DecodingError::new(
                ImageFormatHint::Exact(ImageFormat::Jpeg),
                "the file ends inside its last scan (truncated)",
            )),
        });
    }
    reader.limits(limits);
    let image = reader.decode().map_err(|source| match source {
        ImageError::Limits(limit) => GradCamError::ImageTooLarge {
            path: path.to_path_buf(),
            limit: match limit.kind() {
                LimitErrorKind::DimensionError => "width or height".to_string(),
                LimitErrorKind::InsufficientMemory => "memory".to_string(),
                _ => limit.to_string(),
            },
        },
        // A file that ends early is a decoding problem, not the environment's.
        ImageError::IoError(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => {
            GradCamError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            }
        }
        source => GradCamError::Image {
            path: path.to_path_buf(),
            source,
        },
    })?;
    // The RGB copy is one more allocation of 3 bytes a pixel: hold it to the same limit.
    let rgb_bytes = u64::from(image.width()) * u64::from(image.height()) * 3;
    if max_alloc.is_some_and(|max| rgb_bytes > max) {
        return Err(GradCamError::ImageTooLarge {
            path: path.to_path_buf(),
            limit: "memory".to_string(),
        });
    }
    Ok(image.to_rgb8())
}

/// Whether a JPEG stream is whole: an end-of-image marker (`FF D9`) follows its last
/// start-of-scan (`FF DA`). The decoder fills a scan cut short with grey and reports no error;
/// entropy-coded data never holds a marker (a data byte `FF` is written `FF 00`), and an EXIF
/// thumbnail's markers come before the image's own scans.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let marker = |code: u8| move |w: &[u8]| w == [0xFF, code];
    bytes
        .windows(2)
        .rposition(marker(0xDA))
        .is_some_and(|sos| bytes[sos..].windows(2).any(marker(0xD9)))
}

/// Write an RGB image as PNG, creating the parent folder.
///
/// # Errors
/// [`GradCamError::Io`] if the folder or file cannot be written, [`GradCamError::Encode`] if the
/// image cannot be encoded.
pub fn save_png(image: &RgbImage, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| GradCamError::Io {
            action: "create the folder of",
            path: path.to_path_buf(),
            source,
        })?;
    }
    image
        .save_with_format(path, ::image::ImageFormat::Png)
        .map_err(|source| match source {
            ImageError::IoError(source) => GradCamError::Io {
                action: "write",
                path: path.to_path_buf(),
                source,
            },
            source => GradCamError::Encode {
                path: path.to_path_buf(),
                source,
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::image::{DynamicImage, ImageBuffer, Luma, Rgba};

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
    fn unreadable_and_undecodable_files_are_typed_errors() {
        let missing = load_image(temp("does-not-exist.png")).unwrap_err();
        assert!(matches!(missing, GradCamError::Io { .. }), "{missing}");
        let garbage = temp("garbage.png");
        std::fs::write(&garbage, b"not an image at all").unwrap();
        let err = load_image(&garbage).unwrap_err();
        assert!(matches!(err, GradCamError::Image { .. }), "{err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the decoder's error is kept"
        );
        let blocked = temp("file-not-dir");
        std::fs::write(&blocked, b"x").unwrap();
        let err = save_png(&RgbImage::new(1, 1), blocked.join("out.png")).unwrap_err();
        assert!(matches!(err, GradCamError::Io { .. }), "{err}");
        assert_eq!(err.fault(), crate::Fault::Environment);
    }

    #[test]
    fn truncated_png_and_jpeg_are_decode_errors() {
        // 640 x 480 with detail everywhere: a JPEG cut anywhere in its scan still decodes,
        // grey-filled, unless the end-of-image check catches it.
        let image = DynamicImage::ImageRgb8(ImageBuffer::from_fn(640, 480, |x, y| {
            ::image::Rgb([(x * 7 + y) as u8, ((y * 5) ^ x) as u8, (x * y) as u8])
        }));
        for (name, format) in [
            ("cut.png", ::image::ImageFormat::Png),
            ("cut.jpg", ::image::ImageFormat::Jpeg),
        ] {
            let mut bytes = std::io::Cursor::new(Vec::new());
            image.write_to(&mut bytes, format).unwrap();
            let bytes = bytes.into_inner();
            let whole = temp(&format!("whole-{name}"));
            std::fs::write(&whole, &bytes).unwrap();
            assert_eq!(load_image(&whole).unwrap().dimensions(), (640, 480));
            // For the JPEG also just its end-of-image marker missing.
            let ends = format == ::image::ImageFormat::Jpeg;
            let cuts = [bytes.len() / 3, bytes.len() / 2, bytes.len() - 2];
            for &cut in &cuts[..if ends { 3 } else { 2 }] {
                let path = temp(name);
                std::fs::write(&path, &bytes[..cut]).unwrap();
                let err = load_image(&path).unwrap_err();
                assert!(
                    matches!(err, GradCamError::Image { .. }),
                    "{name} at {cut}: {err}"
                );
            }
        }
    }

    #[test]
    fn the_end_of_image_check_reads_markers_not_data() {
        let sos_then_eoi = [0xFF, 0xD8, 0xFF, 0xDA, 1, 0xFF, 0x00, 2, 0xFF, 0xD9];
        assert!(jpeg_is_complete(&sos_then_eoi));
        // A thumbnail's end-of-image before the image's own scan does not count.
        assert!(!jpeg_is_complete(&[
            0xFF, 0xD9, 0xFF, 0xDA, 1, 0xFF, 0x00, 2
        ]));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xD9]));
    }

    #[test]
    fn a_small_file_that_claims_half_a_gigapixel_is_refused_before_allocating() {
        // A valid PNG header for 23,170 x 23,170 (536 megapixels) followed by a tiny stream: the
        // limits refuse it from the header, so nothing of that size is ever allocated.
        let (w, h) = (23_170u32, 23_170u32);
        let path = temp("huge.png");
        let file = std::fs::File::create(&path).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header().unwrap();
        let row = vec![0u8; (w as usize).div_ceil(8)];
        let mut stream = writer.stream_writer().unwrap();
        for _ in 0..h {
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 1 << 20, "the file is small: {size} bytes");
        let err = load_image(&path).unwrap_err();
        assert!(matches!(err, GradCamError::ImageTooLarge { .. }), "{err}");
        assert_eq!(err.fault(), crate::Fault::Input);
    }
}
