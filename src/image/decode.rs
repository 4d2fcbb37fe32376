//! Decoding photos (with limits: files from outside are untrusted) and writing PNGs.

use std::io::Cursor;
use std::path::Path;

use ::image::error::{DecodingError, ImageError, ImageFormatHint, LimitErrorKind};
use ::image::{ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::{EnvironmentError, GradCamError, InputError, Result};

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

/// Decode an image file of any common format (PNG, JPEG; RGB, RGBA, grayscale, CMYK, 16-bit)
/// into 8-bit RGB, within [`default_limits`]. Alpha is dropped; 16-bit channels are scaled to 8
/// bits.
///
/// JPEG files decode exactly as Pillow decodes them (`Image.open(..).convert("RGB")`, libjpeg-
/// turbo inside: integer IDCT, "fancy" chroma upsampling, its CMYK conversion), value for value,
/// so a map made from a JPEG equals pytorch-grad-cam's from the same file; the decoder is
/// `libjpeg-turbo-rs`, a pure-Rust libjpeg-turbo (tested against Pillow's decodes of every
/// subsampling, progressive and arithmetic files, odd sizes, CMYK, trailing data). A JPEG without
/// its end-of-image marker is refused as truncated; data after that marker (a motion photo's
/// video) is ignored. No EXIF orientation is applied, as in Pillow.
///
/// # Errors
/// [`EnvironmentError::Io`](crate::EnvironmentError::Io) if the file cannot be read,
/// [`InputError::Image`](crate::InputError::Image) if it cannot be decoded (with the decoder's
/// reason: not an image, truncated, unsupported),
/// [`InputError::ImageTooLarge`](crate::InputError::ImageTooLarge) beyond the limits.
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    load_image_with_limits(path, default_limits())
}

/// [`load_image`] with other limits (for example `Limits::no_limits()` for a trusted file).
///
/// For a JPEG, `max_alloc` also bounds the decoder's whole working set at four times its value
/// (the output and component planes, the coefficients of a progressive file: 8 to 14 bytes a
/// pixel, so 150 to 270 megapixels within the default limits).
///
/// # Errors
/// As [`load_image`].
pub fn load_image_with_limits(path: impl AsRef<Path>, limits: Limits) -> Result<RgbImage> {
    let path = path.as_ref();
    let io = |source| GradCamError::io("read", path, source);
    let too_large = |limit: &str| -> GradCamError {
        InputError::ImageTooLarge {
            path: path.to_path_buf(),
            limit: limit.to_string(),
        }
        .into()
    };
    let max_alloc = limits.max_alloc;
    // The file is read whole (photos are small next to their pixels), within the same limit.
    let size = std::fs::metadata(path).map_err(io)?.len();
    if max_alloc.is_some_and(|max| size > max) {
        return Err(too_large("file size"));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let reader = ImageReader::new(Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(io)?;
    if reader.format() == Some(ImageFormat::Jpeg) {
        return decode_jpeg(&bytes, &limits).map_err(|error| match error {
            JpegFailure::TooLarge(limit) => too_large(limit),
            JpegFailure::Decoding(why) => InputError::Image {
                path: path.to_path_buf(),
                source: ImageError::Decoding(DecodingError::new(
                    ImageFormatHint::Exact(ImageFormat::Jpeg),
                    why,
                )),
            }
            .into(),
        });
    }
    let mut reader = reader;
    reader.limits(limits);
    let image = reader.decode().map_err(|source| match source {
        ImageError::Limits(limit) => too_large(match limit.kind() {
            LimitErrorKind::DimensionError => "width or height",
            LimitErrorKind::InsufficientMemory => "memory",
            _ => "a decoder limit",
        }),
        // A file that ends early is a decoding problem, not the environment's.
        ImageError::IoError(source) if source.kind() != std::io::ErrorKind::UnexpectedEof => {
            GradCamError::io("read", path, source)
        }
        source => InputError::Image {
            path: path.to_path_buf(),
            source,
        }
        .into(),
    })?;
    // The RGB copy (none when the file is 8-bit RGB) is one more allocation of 3 bytes a pixel:
    // hold it to the same limit.
    let rgb_bytes = u64::from(image.width()) * u64::from(image.height()) * 3;
    if max_alloc.is_some_and(|max| rgb_bytes > max) {
        return Err(too_large("memory"));
    }
    Ok(image.into_rgb8())
}

/// Why a JPEG was not decoded.
enum JpegFailure {
    /// Beyond a limit, found from the header before any pixel buffer exists.
    TooLarge(&'static str),
    /// Not decodable: truncated, corrupt, or a kind of JPEG Pillow refuses too.
    Decoding(Box<dyn std::error::Error + Send + Sync>),
}

/// A JPEG decoded as Pillow does (see [`load_image`]), within `limits`.
fn decode_jpeg(bytes: &[u8], limits: &Limits) -> std::result::Result<RgbImage, JpegFailure> {
    use libjpeg_turbo_rs::{DecodeLimits, Decoder, PixelFormat};
    let length = jpeg_length(bytes).ok_or_else(|| {
        JpegFailure::Decoding("the file ends before its end-of-image marker (truncated)".into())
    })?;
    let max_w = limits.max_image_width.unwrap_or(u32::MAX);
    let max_h = limits.max_image_height.unwrap_or(u32::MAX);
    let decoder_limits = DecodeLimits {
        max_width: max_w as usize,
        max_height: max_h as usize,
        max_pixels: u64::from(max_w) * u64::from(max_h),
        max_memory: limits.max_alloc.map(|max| max.saturating_mul(4)),
        ..DecodeLimits::default()
    };
    let failure = |error: libjpeg_turbo_rs::JpegError| match error {
        libjpeg_turbo_rs::JpegError::LimitExceeded { what, .. } => JpegFailure::TooLarge(what),
        error => JpegFailure::Decoding(error.into()),
    };
    // Reads the markers only: nothing the size of the image is allocated here.
    let mut decoder =
        Decoder::new_with_limits(&bytes[..length], decoder_limits).map_err(failure)?;
    let frame = decoder.header();
    let (w, h) = (u32::from(frame.width), u32::from(frame.height));
    if w > max_w || h > max_h {
        return Err(JpegFailure::TooLarge("width or height"));
    }
    if limits
        .max_alloc
        .is_some_and(|max| u64::from(w) * u64::from(h) * 3 > max)
    {
        return Err(JpegFailure::TooLarge("memory"));
    }
    // What Pillow refuses too: 12- or 16-bit samples, 2 components.
    if frame.precision != 8 {
        let why = format!(
            "{}-bit samples are not supported; convert to 8 bits",
            frame.precision
        );
        return Err(JpegFailure::Decoding(why.into()));
    }
    if ![1, 3, 4].contains(&frame.components.len()) {
        let why = format!(
            "{} colour components are not supported",
            frame.components.len()
        );
        return Err(JpegFailure::Decoding(why.into()));
    }
    decoder.set_output_format(PixelFormat::Rgb);
    // libjpeg's default (the crate's is off): Pillow's progressive decodes smooth the blocks
    // whose low AC coefficients are not refined yet.
    decoder.set_block_smoothing(true);
    // A scan cut short or corrupt before the end marker: libjpeg warns, fills and goes on, and so
    // does Pillow.
    decoder.set_lenient(true);
    let image = decoder.decode_image().map_err(failure)?;
    RgbImage::from_raw(w, h, image.data).ok_or_else(|| {
        JpegFailure::Decoding("the decoder returned a buffer of the wrong size".into())
    })
}

/// The length of the JPEG stream at the start of `bytes`: up to and including its end-of-image
/// marker, found by walking its segments from the start (each marker's length; a scan's
/// entropy-coded data up to the first marker that is neither a stuffed `FF 00` nor a restart).
/// `None` when the file ends before that marker: a truncated file, which decoders fill with grey
/// without a word. Whatever follows the marker (a motion photo's video, padding) is not JPEG and
/// is left out; an EXIF thumbnail lives inside a segment and is skipped with it.
fn jpeg_length(bytes: &[u8]) -> Option<usize> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    loop {
        // A marker: 0xFF (fill bytes may repeat it), then its code.
        while *bytes.get(at)? != 0xFF {
            at += 1; // not a marker where one belongs: skip, as libjpeg does
        }
        while *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        let code = *bytes.get(at + 1)?;
        at += 2;
        match code {
            0xD9 => return Some(at),
            0xD0..=0xD7 | 0x01 => continue, // restart markers and TEM have no length
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        if length < 2 {
            return None; // a segment's length counts its own two bytes
        }
        at += length;
        if code == 0xDA {
            // The scan's entropy-coded data: FF 00 is a data byte, FF D0..D7 a restart.
            loop {
                if *bytes.get(at)? == 0xFF {
                    match *bytes.get(at + 1)? {
                        0x00 | 0xD0..=0xD7 => at += 2,
                        0xFF => at += 1,
                        _ => break,
                    }
                } else {
                    at += 1;
                }
            }
        }
    }
}

/// Write an RGB image as PNG, creating the parent folder.
///
/// # Errors
/// [`EnvironmentError::Io`](crate::EnvironmentError::Io) if the folder or file cannot be written, [`EnvironmentError::Encode`](crate::EnvironmentError::Encode) if the
/// image cannot be encoded.
pub fn save_png(image: &RgbImage, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|source| GradCamError::io("create the folder of", path, source))?;
    }
    image
        .save_with_format(path, ::image::ImageFormat::Png)
        .map_err(|source| match source {
            ImageError::IoError(source) => GradCamError::io("write", path, source),
            source => EnvironmentError::Encode {
                path: path.to_path_buf(),
                source,
            }
            .into(),
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
        assert!(
            matches!(
                missing,
                GradCamError::Environment(EnvironmentError::Io { .. })
            ),
            "{missing}"
        );
        let garbage = temp("garbage.png");
        std::fs::write(&garbage, b"not an image at all").unwrap();
        let err = load_image(&garbage).unwrap_err();
        assert!(
            matches!(err, GradCamError::Input(InputError::Image { .. })),
            "{err}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "the decoder's error is kept"
        );
        let blocked = temp("file-not-dir");
        std::fs::write(&blocked, b"x").unwrap();
        let err = save_png(&RgbImage::new(1, 1), blocked.join("out.png")).unwrap_err();
        assert!(
            matches!(err, GradCamError::Environment(EnvironmentError::Io { .. })),
            "{err}"
        );
        assert!(matches!(err, GradCamError::Environment(_)));
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
                    matches!(err, GradCamError::Input(InputError::Image { .. })),
                    "{name} at {cut}: {err}"
                );
            }
        }
    }

    #[test]
    fn the_end_of_image_is_found_by_walking_segments_not_by_searching_bytes() {
        // SOI, an APP1 segment holding a thumbnail's own SOS/EOI, SOS with stuffed and restart
        // bytes, EOI, then trailing data with FF DA in it (a motion photo's video).
        let app1 = [0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xDA, 0xFF, 0xD9, 0xAB, 0xCD];
        let scan = [
            0xFF, 0xDA, 0x00, 0x02, 1, 0xFF, 0x00, 2, 0xFF, 0xD3, 3, 0xFF, 0xD9,
        ];
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(app1);
        jpeg.extend(scan);
        let end = jpeg.len();
        jpeg.extend([0x00, 0xFF, 0xDA, 0x12, 0x34]);
        assert_eq!(jpeg_length(&jpeg), Some(end));
        // Cut anywhere before the end-of-image marker: truncated.
        for cut in 2..end {
            assert_eq!(jpeg_length(&jpeg[..cut]), None, "cut at {cut}");
        }
        assert_eq!(jpeg_length(b"not a jpeg"), None);
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
        assert!(
            matches!(err, GradCamError::Input(InputError::ImageTooLarge { .. })),
            "{err}"
        );
        assert!(matches!(err, GradCamError::Input(_)));
    }
}
