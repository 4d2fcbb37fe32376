//! JPEG files decode exactly as Pillow decodes them: every byte of the RGB image equal
//! (fixtures and Pillow's decodes: `scripts/make_jpeg_fixtures.py`; the comparison is by a 64-bit
//! FNV-1a hash of the bytes, computed the same way on both sides).
//!
//! Bound: **equal**. Pillow's libjpeg-turbo and our decoder (libjpeg-turbo-rs) are integer
//! algorithms (integer IDCT, fixed-point upsampling and colour conversion): any difference is a
//! bug, not rounding. The `image` crate's decoder, a correct JPEG decoder but not libjpeg's, is
//! shown to fail the same check.
#![cfg(feature = "image")]

use std::path::{Path, PathBuf};

use gradcam::image::load_image;
use gradcam::{GradCamError, InputError};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg")
}

/// FNV-1a, 64 bits, as `scripts/make_jpeg_fixtures.py` computes it.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Pillow's decode of a file: `Ok((width, height, hash))`, or `Err(its message)`.
type Outcome = Result<(u32, u32, u64), String>;

/// Pillow's outcome per file.
fn pillow() -> Vec<(String, Outcome)> {
    std::fs::read_to_string(fixtures().join("pillow.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let outcome = match fields[..] {
                [_, "ERROR", message] => Err(message.to_string()),
                [_, w, h, hash] => Ok((
                    w.parse().unwrap(),
                    h.parse().unwrap(),
                    u64::from_str_radix(hash, 16).unwrap(),
                )),
                _ => panic!("a malformed line: {line}"),
            };
            (fields[0].to_string(), outcome)
        })
        .collect()
}

#[test]
fn every_jpeg_decodes_to_pillows_bytes_or_fails_where_pillow_fails() {
    let expected = pillow();
    assert!(expected.len() >= 50, "{} fixtures", expected.len());
    for (name, outcome) in expected {
        let ours = load_image(fixtures().join(&name));
        match (outcome, ours) {
            (Ok((w, h, hash)), Ok(image)) => {
                assert_eq!(image.dimensions(), (w, h), "{name}");
                assert_eq!(fnv1a64(image.as_raw()), hash, "{name}: not Pillow's bytes");
            }
            (Err(_), Err(error)) => assert!(
                matches!(error, GradCamError::Input(InputError::Image { .. })),
                "{name}: {error}"
            ),
            (Ok(_), Err(error)) => panic!("{name}: Pillow decodes it, we fail: {error}"),
            (Err(message), Ok(_)) => panic!("{name}: Pillow fails ({message}), we decode it"),
        }
    }
}

#[test]
fn the_image_crates_decoder_is_not_pillows() {
    // The decoder used before: correct, but its chroma upsampling and colour conversion round
    // differently. On the photo in 4:2:0 it differs from Pillow (so the check above can fail).
    let name = "photo_420_q50.jpg";
    let (_, outcome) = pillow().into_iter().find(|(n, _)| n == name).unwrap();
    let (_, _, hash) = outcome.unwrap();
    let theirs = image::open(fixtures().join(name)).unwrap().into_rgb8();
    assert_ne!(fnv1a64(theirs.as_raw()), hash);
    let ours = load_image(fixtures().join(name)).unwrap();
    let differing = ours
        .as_raw()
        .iter()
        .zip(theirs.as_raw())
        .filter(|(a, b)| a != b)
        .count();
    eprintln!(
        "image's decoder: {differing} of {} bytes differ from Pillow's",
        ours.len()
    );
}

#[test]
fn truncation_names_itself_and_trailing_data_is_ignored() {
    let err = load_image(fixtures().join("truncated_no_eoi.jpg")).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let whole = load_image(fixtures().join("photo_420_q50.jpg")).unwrap();
    for trailing in ["trailing_ffda.jpg", "motion_photo.jpg"] {
        assert_eq!(
            load_image(fixtures().join(trailing)).unwrap(),
            whole,
            "{trailing}"
        );
    }
}
