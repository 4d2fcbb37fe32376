//! Our resizes against PIL's, value for value (fixture: `scripts/make_pil_resize_fixture.py`,
//! Pillow's `Image.resize` and torchvision's `Resize(256) + CenterCrop(224)` of the PNG photos).
//!
//! Bound: **equal**, not "within a level". The resampler is Pillow's integer algorithm, whose
//! only floating point is the filter weights, computed by the same float64 operations in the same
//! order (no fused multiply-add on either side), so any difference is a bug; the `image` crate's
//! bilinear filter, a correct resize but not Pillow's, is shown to fail the same check.
#![cfg(feature = "image")]

use std::collections::BTreeMap;
use std::path::Path;

use gradcam::image::{Resize, load_image};
use image::RgbImage;
use safetensors::SafeTensors;

fn fixture() -> BTreeMap<String, RgbImage> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pil_resize.safetensors");
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(key, view)| {
            let shape = view.shape(); // [h, w, 3]
            let image = RgbImage::from_raw(shape[1] as u32, shape[0] as u32, view.data().to_vec());
            (key, image.unwrap())
        })
        .collect()
}

fn photo(name: &str) -> RgbImage {
    load_image(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(name),
    )
    .unwrap()
}

/// How many values differ, and by how many levels at most.
fn compare(ours: &RgbImage, theirs: &RgbImage) -> (usize, u8) {
    assert_eq!(ours.dimensions(), theirs.dimensions());
    let pairs = ours.as_raw().iter().zip(theirs.as_raw());
    let diffs: Vec<u8> = pairs.map(|(a, b)| a.abs_diff(*b)).collect();
    (
        diffs.iter().filter(|d| **d > 0).count(),
        diffs.into_iter().max().unwrap_or(0),
    )
}

#[test]
fn our_bilinear_bicubic_and_torchvision_crop_equal_pils() {
    let pil = fixture();
    let mut checked = 0;
    for stem in ["chelsea", "coffee"] {
        let image = photo(&format!("{stem}.png"));
        for [h, w] in [[224, 224], [150, 333]] {
            for (label, resize) in [("bilinear", Resize::Bilinear), ("bicubic", Resize::Bicubic)] {
                let ours = resize.apply(&image, [h, w]).unwrap();
                let key = format!("{stem}/{label}_{h}x{w}");
                assert_eq!(compare(&ours, &pil[&key]), (0, 0), "{key}");
                checked += 1;
            }
        }
        let crop = Resize::ShorterSideThenCenterCrop { shorter: 256 };
        let ours = crop.apply(&image, [224, 224]).unwrap();
        let key = format!("{stem}/torchvision_224");
        assert_eq!(compare(&ours, &pil[&key]), (0, 0), "{key}");
        checked += 1;
    }
    // Enlarging (the filter's support is not widened): a small photo to 227 x 227.
    let small = &pil["chelsea/small"];
    for (label, resize) in [("bilinear", Resize::Bilinear), ("bicubic", Resize::Bicubic)] {
        let ours = resize.apply(small, [227, 227]).unwrap();
        let key = format!("chelsea/small_{label}_227x227");
        assert_eq!(compare(&ours, &pil[&key]), (0, 0), "{key}");
        checked += 1;
    }
    assert_eq!(checked, 12);
}

#[test]
fn another_correct_bilinear_resize_fails_the_same_check() {
    let pil = fixture();
    let image = photo("chelsea.png");
    let theirs = &pil["chelsea/bilinear_224x224"];
    let other = image::imageops::resize(&image, 224, 224, image::imageops::FilterType::Triangle);
    let (differing, worst) = compare(&other, theirs);
    assert!(
        differing > 1000 && worst >= 1,
        "{differing} values, {worst} levels"
    );
}
