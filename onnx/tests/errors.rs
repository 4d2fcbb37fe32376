//! Bad ONNX files are errors that say what is wrong, and a failed generation leaves nothing
//! behind.

use std::path::{Path, PathBuf};

use gradcam_onnx::{GeneratorConfig, OnnxError, generate};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh, empty output folder.
fn out(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("onnx-errors-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Generate `onnx` into a fresh folder: the error, after checking the folder holds nothing.
fn fails(onnx: &Path, name: &str) -> OnnxError {
    let dir = out(name);
    let err = generate(onnx, &dir, &GeneratorConfig::new()).unwrap_err();
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{name}: a failed generation left {left:?}");
    err
}

#[test]
fn corrupt_truncated_and_missing_files_are_named_as_such() {
    let bytes = std::fs::read(fixture("tiny_residual.onnx")).unwrap();
    let scratch = out("files");
    std::fs::create_dir_all(&scratch).unwrap();
    let truncated = scratch.join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = scratch.join("garbage.onnx");
    std::fs::write(
        &garbage,
        b"this is not a protobuf message at all, not even close",
    )
    .unwrap();
    for path in [truncated, garbage] {
        let err = fails(&path, "bad");
        assert!(
            matches!(err, OnnxError::Invalid { .. }),
            "{}: {err}",
            path.display()
        );
        assert!(err.to_string().contains("not a valid ONNX model"), "{err}");
    }
    let err = fails(&scratch.join("missing.onnx"), "missing");
    assert!(matches!(err, OnnxError::Io { .. }), "{err}");
}

#[test]
fn a_fixed_batch_size_says_how_to_export() {
    // Exported without dynamic_axes: the batch is 1 in the graph, and a batch of images (or of
    // one image's targets) would not fit its reshapes.
    let err = fails(&fixture("tiny_static_batch.onnx"), "static");
    assert!(matches!(err, OnnxError::Batch { .. }), "{err}");
    assert!(err.to_string().contains("dynamic_axes"), "{err}");
}

#[test]
fn graphs_that_are_not_image_classifiers_are_refused_with_the_reason() {
    let err = fails(&fixture("tiny_segmentation.onnx"), "segmentation");
    assert!(
        matches!(err, OnnxError::Shape { .. }) && err.to_string().contains("segmentation"),
        "{err}"
    );
    let err = fails(&fixture("flat.onnx"), "flat");
    assert!(matches!(err, OnnxError::NoLayers), "{err}");
}

#[test]
fn a_final_softmax_is_taken_off_and_said_so() {
    let dir = out("softmax");
    let made = generate(fixture("tiny_softmax.onnx"), &dir, &GeneratorConfig::new()).unwrap();
    assert!(made.dropped_softmax);
    let source = std::fs::read_to_string(&made.source).unwrap();
    assert!(source.contains("final softmax was taken off"));
    assert!(
        !source.to_lowercase().contains("softmax("),
        "the softmax is still computed"
    );
    assert_eq!(made.default_layer.as_deref(), Some("0.head"));
}

#[test]
fn a_graph_mixing_the_rows_after_a_layer_is_refused_with_the_node() {
    // `reshape(1, -1)` after the pool: every image's row in one, which an explanation (rows
    // repeated per target) cannot take.
    let err = fails(&fixture("tiny_row_mixing.onnx"), "mixing");
    assert!(matches!(err, OnnxError::Batch { .. }), "{err}");
    assert!(err.to_string().contains("Reshape"), "{err}");
}

#[test]
fn an_operator_no_importer_knows_is_named() {
    let err = fails(&fixture("unsupported_op.onnx"), "unsupported");
    assert!(matches!(err, OnnxError::Generation { .. }), "{err}");
    assert!(err.to_string().contains("MadeUpOp"), "{err}");
}
