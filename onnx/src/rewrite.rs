//! The graph rewritten for the probe: a `Bias` after every convolution with a bias, a `Tap` after
//! every explainable layer (and one more for each module name of it), their consumers reading the
//! last one's output; and a `Carry` on every edge
//! from a value computed before a tap to a node after it (a residual connection), so that the
//! value follows the rows the probe repeats.

use std::collections::{HashMap, HashSet};

use onnx_ir::{AttributeProto, AttributeType, ModelProto, NodeProto};

use crate::layers::Layer;
use crate::ops::{BIAS, CARRY, DOMAIN, TAP};

/// What to tap, and whether to carry.
pub(crate) struct Tapping {
    /// By ONNX value: the layer computed there.
    layers: HashMap<String, Layer>,
    carries: bool,
}

impl Tapping {
    pub fn new(layers: Vec<Layer>, carries: bool) -> Self {
        Self {
            layers: layers.into_iter().map(|l| (l.value.clone(), l)).collect(),
            carries,
        }
    }
}

/// `model` with taps (and, when asked, carries) inserted.
pub(crate) fn rewrite(model: &ModelProto, tapping: &Tapping) -> ModelProto {
    let mut model = model.clone();
    with_gradcam_opset(&mut model);
    let graph = model.graph.mut_or_insert_default();
    let initializers: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let old = std::mem::take(&mut graph.node);
    let mut nodes: Vec<NodeProto> = Vec::with_capacity(old.len() * 2);
    let mut renamed: HashMap<String, String> = HashMap::new(); // tapped value -> its tap's output
    let mut made_after: HashMap<String, usize> = HashMap::new(); // data value -> taps before it
    let mut taps = 0usize;
    let mut last_tap: Option<String> = None;
    let mut carried: HashMap<(String, usize), String> = HashMap::new();
    for input in &graph.input {
        if !initializers.contains(&input.name) {
            made_after.insert(input.name.clone(), 0);
        }
    }
    for mut node in old {
        for input in node.input.iter_mut() {
            if let Some(tapped) = renamed.get(input) {
                *input = tapped.clone();
            }
            // A data value made before the latest tap and read after it: carry it to the rows
            // of the latest tap's output (one carry per value and tap).
            if tapping.carries
                && let Some(&before) = made_after.get(input)
                && before < taps
                && let Some(after) = &last_tap
            {
                let output = carried
                    .entry((input.clone(), taps))
                    .or_insert_with(|| {
                        let output = format!("{input}__gradcam_carry{taps}");
                        nodes.push(gradcam_node(
                            CARRY,
                            format!("gradcam/carry/{output}"),
                            vec![input.clone(), after.clone()],
                            output.clone(),
                        ));
                        // A data value at the rows after the latest tap: what reads it is data
                        // too (a residual's downsampling convolution, tapped and biased).
                        made_after.insert(output.clone(), taps);
                        output
                    })
                    .clone();
                *input = output;
            }
        }
        let data_in = node.input.iter().any(|i| made_after.contains_key(i));
        let outputs = node.output.clone();
        // A convolution with a bias: its output goes through the probe with the bias first.
        let biased = (node.op_type == "Conv" && node.input.get(2).is_some_and(|b| !b.is_empty()))
            .then(|| node.name.clone());
        nodes.push(node);
        for value in outputs.iter().filter(|v| !v.is_empty() && data_in) {
            made_after.insert(value.clone(), taps);
            let mut current = value.clone();
            if let Some(name) = &biased {
                let output = format!("{value}__gradcam_bias");
                let mut bias = gradcam_node(
                    BIAS,
                    format!("gradcam/bias/{name}"),
                    vec![current],
                    output.clone(),
                );
                bias.attribute.push(string_attribute("layer", name));
                nodes.push(bias);
                made_after.insert(output.clone(), taps);
                renamed.insert(value.clone(), output.clone());
                current = output;
            }
            let Some(layer) = tapping.layers.get(value) else {
                continue;
            };
            for (k, name) in std::iter::once(&layer.name)
                .chain(&layer.aliases)
                .enumerate()
            {
                let output = format!("{value}__gradcam_tap{k}");
                let mut tap = gradcam_node(
                    TAP,
                    format!("gradcam/tap/{name}"),
                    vec![current],
                    output.clone(),
                );
                tap.attribute.push(string_attribute("layer", name));
                nodes.push(tap);
                taps += 1;
                made_after.insert(output.clone(), taps);
                current = output;
            }
            renamed.insert(value.clone(), current.clone());
            last_tap = Some(current);
        }
    }
    graph.node = nodes;
    // A tapped graph output is read through its last tap.
    for output in graph.output.iter_mut() {
        if let Some(tapped) = renamed.get(&output.name) {
            output.name = tapped.clone();
        }
    }
    model
}

/// Declare the `gradcam` operator domain.
fn with_gradcam_opset(model: &mut ModelProto) {
    if model.opset_import.iter().any(|o| o.domain == DOMAIN) {
        return;
    }
    if let Some(first) = model.opset_import.first() {
        let mut opset = first.clone();
        opset.domain = DOMAIN.into();
        opset.version = 1;
        model.opset_import.push(opset);
    }
}

fn gradcam_node(op: &str, name: String, inputs: Vec<String>, output: String) -> NodeProto {
    let mut node = NodeProto::new();
    node.op_type = op.into();
    node.domain = DOMAIN.into();
    node.name = name;
    node.input = inputs;
    node.output = vec![output];
    node
}

fn string_attribute(name: &str, value: &str) -> AttributeProto {
    let mut attribute = AttributeProto::new();
    attribute.name = name.into();
    attribute.type_ = AttributeType::STRING.into();
    attribute.s = value.as_bytes().to_vec().into();
    attribute
}
