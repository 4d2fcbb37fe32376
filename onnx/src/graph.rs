//! The ONNX graph as read: its input and output checked, a final softmax taken off, the values
//! that carry data (computed from the input, not sizes), and the ops that would mix the rows of a
//! batch after an explained layer.

use std::collections::HashSet;
use std::path::Path;

use onnx_ir::{Message, ModelProto, NodeProto, TensorProto, ValueInfoProto};

use crate::error::{OnnxError, Result};

/// A model read from a file, with the names of its image input and its scores output.
pub(crate) struct Graph {
    pub model: ModelProto,
    /// The graph input holding the images, `[n, c, h, w]`.
    pub input: String,
    /// The `[c, h, w]` of the input, `None` where the export left a size symbolic.
    pub input_shape: [Option<usize>; 3],
    /// Whether a final `Softmax`/`LogSoftmax` was taken off (the scores explained are the
    /// logits before it).
    pub dropped_softmax: bool,
}

impl Graph {
    /// Read and check `path`.
    ///
    /// # Errors
    /// [`OnnxError::Io`], [`OnnxError::Invalid`], [`OnnxError::Shape`] for an input that is not
    /// one `[n, c, h, w]` float tensor or an output that is not one `[n, classes]` tensor,
    /// [`OnnxError::Batch`] for a batch size fixed at the input.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| OnnxError::io("read", path, e))?;
        let invalid = |reason: String| OnnxError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let mut model = ModelProto::parse_from_bytes(&bytes).map_err(|e| invalid(e.to_string()))?;
        if model.graph.node.is_empty() {
            return Err(invalid("it holds no graph (no nodes)".into()));
        }
        let initializers: HashSet<&str> = model
            .graph
            .initializer
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let inputs: Vec<&ValueInfoProto> = model
            .graph
            .input
            .iter()
            .filter(|i| !initializers.contains(i.name.as_str()))
            .collect();
        let [input] = inputs[..] else {
            return Err(OnnxError::Shape {
                what: format!(
                    "the graph has {} inputs; gradcam explains models of one image input \
                     [n, c, h, w]",
                    inputs.len()
                ),
            });
        };
        let input_dims = dims(input);
        if input_dims.len() != 4 || !is_float(input) {
            return Err(OnnxError::Shape {
                what: format!(
                    "the graph's input `{}` is {}; gradcam explains models of one float image \
                     input [n, c, h, w]",
                    input.name,
                    describe(&input_dims)
                ),
            });
        }
        if let Some(Some(batch)) = input_dims.first() {
            return Err(OnnxError::Batch {
                what: format!(
                    "the input `{}` has a fixed batch size of {batch}",
                    input.name
                ),
            });
        }
        let input_shape = [input_dims[1], input_dims[2], input_dims[3]];
        let input_name = input.name.clone();
        let [output] = &model.graph.output[..] else {
            return Err(OnnxError::Shape {
                what: format!(
                    "the graph has {} outputs; gradcam explains one [n, classes] output: export \
                     the one to explain",
                    model.graph.output.len()
                ),
            });
        };
        let out_dims = dims(output);
        if out_dims.len() != 2 {
            return Err(OnnxError::Shape {
                what: format!(
                    "the graph's output `{}` is {}; gradcam explains [n, classes] scores (a \
                     segmentation model's [n, classes, h, w] output: flatten it to \
                     [n, classes * h * w] in the exported forward, then explain a class over a \
                     mask with `gradcam::Target::segmentation`)",
                    output.name,
                    describe(&out_dims)
                ),
            });
        }
        let dropped_softmax = drop_final_softmax(&mut model);
        Ok(Self {
            model,
            input: input_name,
            input_shape,
            dropped_softmax,
        })
    }

    /// The values computed from the input through data ops, in node order: the activations (a
    /// `Shape` or `Size` output, and what is computed from sizes only, are not).
    pub fn data_values(&self) -> HashSet<String> {
        let mut data: HashSet<String> = [self.input.clone()].into();
        for node in &self.model.graph.node {
            if matches!(node.op_type.as_str(), "Shape" | "Size") {
                continue;
            }
            if node.input.iter().any(|i| data.contains(i)) {
                data.extend(node.output.iter().filter(|o| !o.is_empty()).cloned());
            }
        }
        data
    }

    /// The first op at or after node `from` (in node order) that mixes the rows of the batch:
    /// an explanation repeats each image's rows once per target after its first layer, so
    /// everything after it must treat rows independently.
    ///
    /// # Errors
    /// [`OnnxError::Batch`] naming the node.
    pub fn check_rows_independent(&self, from: usize) -> Result<()> {
        let graph = &self.model.graph;
        // An initializer, or a `Constant` node's value.
        let tensor_named = |name: &str| -> Option<&TensorProto> {
            graph
                .initializer
                .iter()
                .find(|t| t.name == name)
                .or_else(|| {
                    let node = graph
                        .node
                        .iter()
                        .find(|n| n.op_type == "Constant" && n.output.iter().any(|o| o == name))?;
                    node.attribute
                        .iter()
                        .find(|a| a.name == "value")
                        .map(|a| &*a.t)
                })
        };
        let constant = |name: &str| -> Option<Vec<i64>> {
            let tensor = tensor_named(name)?;
            if !tensor.int64_data.is_empty() {
                return Some(tensor.int64_data.clone());
            }
            let raw = &tensor.raw_data;
            (raw.len() % 8 == 0).then(|| {
                raw.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                    .collect()
            })
        };
        let data = self.data_values();
        for node in self.model.graph.node.iter().skip(from) {
            if !node.input.iter().any(|i| data.contains(i)) {
                continue;
            }
            let mixes = match node.op_type.as_str() {
                // A shape given as a constant: its first entry fixes the rows (0 copies them,
                // -1 infers them from the rest, which is also fixed then only if all else is).
                "Reshape" => node
                    .input
                    .get(1)
                    .and_then(|s| constant(s))
                    .is_some_and(|shape| shape.first().is_some_and(|&d| d != 0)),
                "Transpose" => attribute_ints(node, "perm")
                    .first()
                    .is_some_and(|&p| p != 0),
                "Flatten" => attribute_int(node, "axis") == Some(0),
                "Concat" | "Split" | "Gather" | "Softmax" | "LogSoftmax" | "CumSum" => {
                    attribute_int(node, "axis") == Some(0)
                }
                op if op.starts_with("Reduce") => attribute_ints(node, "axes").contains(&0),
                _ => false,
            };
            if mixes {
                return Err(OnnxError::Batch {
                    what: format!(
                        "node `{}` ({}) mixes the rows of the batch after an explainable layer",
                        node.name, node.op_type
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Take a final `Softmax` or `LogSoftmax` off the graph: the scores explained are the logits
/// before it (pytorch-grad-cam's targets are logits too). Returns whether one was taken off.
fn drop_final_softmax(model: &mut ModelProto) -> bool {
    let graph = model.graph.mut_or_insert_default();
    let output = graph.output[0].name.clone();
    let Some(at) = graph.node.iter().position(|n| n.output.contains(&output)) else {
        return false;
    };
    if !matches!(graph.node[at].op_type.as_str(), "Softmax" | "LogSoftmax") {
        return false;
    }
    let logits = graph.node[at].input[0].clone();
    graph.node.remove(at);
    graph.output[0].name = logits;
    true
}

/// The dimensions of a value, `None` where symbolic or unknown.
fn dims(value: &ValueInfoProto) -> Vec<Option<usize>> {
    if !value.type_.has_tensor_type() {
        return Vec::new();
    }
    value
        .type_
        .tensor_type()
        .shape
        .dim
        .iter()
        .map(|d| (d.has_dim_value() && d.dim_value() > 0).then(|| d.dim_value() as usize))
        .collect()
}

/// Whether a value is a float tensor (ONNX FLOAT, FLOAT16, DOUBLE, BFLOAT16).
fn is_float(value: &ValueInfoProto) -> bool {
    value.type_.has_tensor_type() && matches!(value.type_.tensor_type().elem_type, 1 | 10 | 11 | 16)
}

/// `[?, 3, 224, 224]`-style, for messages.
fn describe(dims: &[Option<usize>]) -> String {
    let dims: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".into(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

fn attribute_int(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn attribute_ints(node: &NodeProto, name: &str) -> Vec<i64> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
        .unwrap_or_default()
}
