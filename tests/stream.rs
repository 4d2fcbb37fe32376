//! Streams of batches: [`Explainer::stream`] returns, batch by batch and in order, what
//! [`Explainer::explain`] returns for each batch alone; a bad batch is an error in its place;
//! [`Preprocess::batches`] hands out the tensors `to_tensor` makes from the same photos.
#![cfg(all(feature = "flex", feature = "models"))]

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use common::host;
use common::models::TinyNet;
use gradcam::models::SqueezeNet;
use gradcam::{ExplainerConfig, GradCamError, Targets};

fn root(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn a_stream_equals_one_explain_per_batch_in_order_with_errors_in_place() {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    let targets = Targets::top(1);
    let sizes = [3, 1, 0, 2, 4]; // the third batch is empty: an input error
    let batches: Vec<Tensor<4>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| common::tensor(40 + i as u64, [n, 3, 12, 12], 1.0, &device))
        .collect();
    for depth in [1, 2, 3] {
        let items: Vec<_> = explainer
            .stream(batches.clone(), &targets)
            .with_in_flight(depth)
            .collect();
        same_as_explain(&explainer, &batches, items, &sizes);
    }
}

fn same_as_explain<M: gradcam::GradCam>(
    explainer: &gradcam::Explainer<M>,
    batches: &[Tensor<4>],
    items: Vec<gradcam::Result<gradcam::StreamedBatch>>,
    sizes: &[usize],
) {
    let targets = Targets::top(1);
    assert_eq!(items.len(), sizes.len());
    for ((batch, item), &n) in batches.iter().cloned().zip(items).zip(sizes) {
        if n == 0 {
            assert!(
                matches!(
                    item,
                    Err(GradCamError::Input(gradcam::InputError::EmptyInput { .. }))
                ),
                "{item:?}"
            );
            continue;
        }
        let item = item.unwrap();
        let alone = explainer.explain(batch, &targets).unwrap();
        // The same ops on the same values: equal to the bit.
        assert_eq!(item.heatmaps, host(alone.heatmap.clone()));
        assert_eq!(item.heatmaps, host(item.explanation.heatmap.clone()));
        assert_eq!(item.explanation.targets, alone.targets);
        assert_eq!(item.explanation.targets.len(), n);
    }
}

#[test]
fn photo_batches_are_decoded_on_workers_like_to_tensor_and_failures_are_listed() {
    let device = Device::flex();
    let prep = SqueezeNet::preprocess();
    let bad = std::env::temp_dir().join(format!("gradcam-not-a-photo-{}.png", std::process::id()));
    std::fs::write(&bad, b"not a png").unwrap();
    let photos = [
        root("assets/chelsea.png"),
        root("assets/coffee.png"),
        bad.clone(),
        root("assets/chelsea.png"),
        root("assets/coffee.png"),
    ];
    let batches: Vec<_> = prep.batches(photos.to_vec(), 2, 3, &device).collect();
    std::fs::remove_file(&bad).unwrap();
    assert_eq!(batches.len(), 3);
    let decoded: Vec<_> = photos
        .iter()
        .map(|p| gradcam::image::load_image(p).ok())
        .collect();
    for (i, batch) in batches.iter().enumerate() {
        let chunk = &photos[i * 2..(i * 2 + 2).min(photos.len())];
        let good: Vec<PathBuf> = chunk.iter().filter(|p| **p != bad).cloned().collect();
        assert_eq!(batch.paths, good, "batch {i}");
        let failed: Vec<&PathBuf> = batch.failed.iter().map(|(p, _)| p).collect();
        assert_eq!(failed.len(), chunk.len() - good.len(), "batch {i}");
        let images: Vec<_> = (i * 2..(i * 2 + 2).min(photos.len()))
            .filter_map(|j| decoded[j].clone())
            .collect();
        let expected = prep.to_tensor(&images, &device).unwrap();
        let input = batch.input.clone().expect("a photo decoded");
        assert_eq!(host(input), host(expected), "batch {i}");
    }
    assert!(
        matches!(
            batches[1].failed[0].1,
            GradCamError::Input(gradcam::InputError::Image { .. })
        ),
        "{:?}",
        batches[1].failed
    );
}
