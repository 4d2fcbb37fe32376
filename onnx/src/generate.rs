//! From an ONNX file to an explainable Burn model: read and check the graph, find its layers,
//! tap and carry, let burn-onnx write the model, thread the probe, write the files.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use burn_onnx::{LoadStrategy, ModelGen};
use onnx_ir::Message;

use crate::affine::affine_layers;
use crate::error::{OnnxError, Result};
use crate::graph::Graph;
use crate::layers::{self, Layer};
use crate::ops::{Bias, Carry, ProbeRelu, Tap};
use crate::rewrite::{Tapping, rewrite};
use crate::rust::{Declarations, explainable};

/// How to generate, in burn's `XConfig::new().with_..()` style.
#[derive(Debug, Clone, Default)]
pub struct GeneratorConfig {
    /// The files' stem (`<name>.rs`, `<name>.bpk`): the ONNX file's stem unless set.
    pub name: Option<String>,
}

impl GeneratorConfig {
    /// The defaults: files named after the ONNX file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Name the files `<name>.rs` and `<name>.bpk`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The Rust source: `Model`, its constructors, its forward and its `impl gradcam::GradCam`.
    pub source: PathBuf,
    /// The weights (Burn's burnpack format), read at run time by `Model::from_file`.
    pub weights: PathBuf,
    /// The explainable layers, in forward order.
    pub layers: Vec<Layer>,
    /// The layer explained when none is named.
    pub default_layer: Option<String>,
    /// Whether a final softmax was taken off (the model's scores are the logits before it).
    pub dropped_softmax: bool,
}

/// Generate the explainable Burn model of `onnx` into `out_dir`: `<name>.rs` and `<name>.bpk`.
/// Nothing is written unless every step succeeds.
///
/// burn-onnx reports its progress through `tracing`; when the process has no global
/// subscriber yet, this installs one that drops it (burn-onnx would install a DEBUG-level one).
///
/// # Errors
/// See [`OnnxError`]: the file unreadable or not ONNX, an input or output that is not an image
/// classifier's, a batch fixed or mixed, no `[n, c, h, w]` activation, an operator burn-onnx does
/// not translate, an output folder that cannot be written.
pub fn generate(
    onnx: impl AsRef<Path>,
    out_dir: impl AsRef<Path>,
    config: &GeneratorConfig,
) -> Result<Generated> {
    let onnx = onnx.as_ref();
    let out_dir = out_dir.as_ref();
    let name = match &config.name {
        Some(name) => name.clone(),
        None => onnx
            .file_stem()
            .map(|s| {
                s.to_string_lossy()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            })
            .unwrap_or_else(|| "model".into()),
    };
    let graph = Graph::read(onnx)?;
    let layers = layers::find(&graph)?;
    let first = first_node_of(&graph, &layers);
    graph.check_rows_independent(first)?;
    let rewritten = rewrite(&graph.model, &Tapping::new(layers.clone(), true));

    // burn-onnx reads a file and writes beside it: both in a scratch folder inside `out_dir`,
    // moved into place only when everything succeeded.
    std::fs::create_dir_all(out_dir).map_err(|e| OnnxError::io("create", out_dir, e))?;
    let scratch = out_dir.join(format!(".{name}.gradcam-onnx"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| OnnxError::io("create", &scratch, e))?;
    let result = (|| {
        let tapped = scratch.join(format!("{name}.onnx"));
        let bytes = rewritten
            .write_to_bytes()
            .map_err(|e| OnnxError::Generation {
                message: e.to_string(),
            })?;
        std::fs::write(&tapped, bytes).map_err(|e| OnnxError::io("write", &tapped, e))?;
        run_burn_onnx(&tapped, &scratch)?;
        let code_path = scratch.join(format!("{name}.rs"));
        let code = std::fs::read_to_string(&code_path)
            .map_err(|e| OnnxError::io("read", &code_path, e))?;
        let default_layer = layers::default_layer(&layers);
        let declarations = Declarations {
            layers: &layers,
            affine: affine_layers(&graph, &layers),
            default_layer: default_layer.clone(),
            channels: graph.input_shape[0],
            header: header(onnx, &layers, &graph),
        };
        let code = explainable(&code, &declarations)?;
        // The weights' path in the source is the scratch folder's: it becomes `out_dir`'s.
        let code = code.replace(
            &scratch.to_string_lossy().into_owned(),
            &out_dir.to_string_lossy(),
        );
        let source = out_dir.join(format!("{name}.rs"));
        let weights = out_dir.join(format!("{name}.bpk"));
        let scratch_weights = scratch.join(format!("{name}.bpk"));
        std::fs::rename(&scratch_weights, &weights)
            .map_err(|e| OnnxError::io("write", &weights, e))?;
        std::fs::write(&source, code).map_err(|e| OnnxError::io("write", &source, e))?;
        Ok(Generated {
            source,
            weights,
            layers: layers.clone(),
            default_layer,
            dropped_softmax: graph.dropped_softmax,
        })
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// burn-onnx's model generation of `tapped` into `out_dir`, its panics caught.
fn run_burn_onnx(tapped: &Path, out_dir: &Path) -> Result<()> {
    // A subscriber that drops burn-onnx's DEBUG log, unless the process has one already.
    let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(
        tracing_core::subscriber::NoSubscriber::default(),
    ));
    let (input, out) = (tapped.to_string_lossy(), out_dir.to_string_lossy());
    catch_unwind(AssertUnwindSafe(|| {
        ModelGen::new()
            .input(&input)
            .out_dir(&out)
            .load_strategy(LoadStrategy::File)
            .register_custom_op(Tap)
            .register_custom_op(Carry)
            .register_custom_op(Bias)
            .register_op_override(ProbeRelu)
            .run_from_cli();
    }))
    .map_err(|payload| OnnxError::Generation {
        message: payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into()),
    })
}

/// The index of the node that computes the first layer: the rows are repeated from there on.
fn first_node_of(graph: &Graph, layers: &[Layer]) -> usize {
    let first = &layers[0].value;
    graph
        .model
        .graph
        .node
        .iter()
        .position(|n| n.output.contains(first))
        .unwrap_or(0)
}

/// The generated file's first lines: where it comes from, and its layers.
fn header(onnx: &Path, layers: &[Layer], graph: &Graph) -> String {
    let file = onnx
        .file_name()
        .map_or("?".into(), |f| f.to_string_lossy().into_owned());
    let [c, h, w] = graph
        .input_shape
        .map(|d| d.map_or("?".into(), |d| d.to_string()));
    let mut text = format!(
        "// @generated by gradcam-onnx {} from {file} (burn-onnx 0.22), input [n, {c}, {h}, {w}]: \
         do not edit, generate again.\n",
        env!("CARGO_PKG_VERSION")
    );
    if graph.dropped_softmax {
        text.push_str("// The graph's final softmax was taken off: the scores are its logits.\n");
    }
    text.push_str("//\n// Layers (`probe.layer` names; module names after `=`):\n");
    for layer in layers {
        let shape = layer.shape.map(|d| d.map_or("?".into(), |d| d.to_string()));
        text.push_str(&format!("//   {} [n, {}]", layer.name, shape.join(", ")));
        if !layer.aliases.is_empty() {
            text.push_str(&format!(" = {}", layer.aliases.join(", ")));
        }
        text.push('\n');
    }
    text.push('\n');
    text
}
