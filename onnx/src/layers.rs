//! Which activations become explainable layers, and their names.
//!
//! Every value the graph computes from its input that is a float tensor of rank 4 with the
//! batch on its first axis (the outputs of Conv, BatchNormalization, Relu and the other
//! activations, Add, Concat, the pools, ...) is a layer, named after the ONNX node that computes
//! it (`/layer4/layer4.1/relu_1/Relu`: torch's exporter writes the module path and the op). Its
//! types come from onnx-ir's own inference, on a copy of the graph tapped everywhere.
//!
//! **Module names.** The module path of a node names the module's output: the last layer
//! computed inside it. `layer4` (torchvision's ResNet), `layer4.1` (its last block),
//! `features.12` (MobileNet), `fire9` (SqueezeNet) select what pytorch-grad-cam's
//! `target_layers=[model.layer4]` selects. The path is read from the node name's segments:
//! `/layer4/layer4.1/conv1/Conv` lies in `layer4`, `layer4.1` and `layer4.1.conv1`.

use std::collections::HashMap;
use std::sync::Arc;

use onnx_ir::{ArgType, Message, ModelProto, Node};

use crate::error::{OnnxError, Result};
use crate::graph::Graph;
use crate::ops::Inference;
use crate::rewrite::{Tapping, rewrite};

/// One explainable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The name `probe.layer` gets: the ONNX node's name (`:k` for its output `k > 0`), or the
    /// output's name where the node has none; made unique.
    pub name: String,
    /// Module paths whose output this is (`["layer4.1", "layer4"]`), deepest first: further
    /// names of the same layer.
    pub aliases: Vec<String>,
    /// The ONNX value (output name) it is.
    pub value: String,
    /// Its `[c, h, w]` where the export knows them.
    pub shape: [Option<usize>; 3],
}

/// The explainable layers of `graph`, in forward order.
///
/// # Errors
/// [`OnnxError::NoLayers`], or the failures of onnx-ir's parse ([`OnnxError::Generation`]).
pub(crate) fn find(graph: &Graph) -> Result<Vec<Layer>> {
    let data = graph.data_values();
    let outputs: Vec<&str> = graph
        .model
        .graph
        .output
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    // Every data value, named: tapped for the parse that gives their types.
    let mut candidates = Vec::new();
    for node in &graph.model.graph.node {
        for (k, value) in node.output.iter().enumerate() {
            if value.is_empty() || !data.contains(value) || outputs.contains(&value.as_str()) {
                continue;
            }
            let base = if node.name.is_empty() {
                value
            } else {
                &node.name
            };
            let name = if k == 0 {
                base.clone()
            } else {
                format!("{base}:{k}")
            };
            candidates.push(Layer {
                name,
                aliases: Vec::new(),
                value: value.clone(),
                shape: [None; 3],
            });
        }
    }
    unique_names(&mut candidates);
    let everything = Tapping::new(candidates.clone(), false);
    let types = tap_types(&rewrite(&graph.model, &everything))?;
    let mut layers: Vec<Layer> = candidates
        .into_iter()
        .filter_map(|mut layer| match types.get(&layer.name) {
            Some(ArgType::Tensor(t)) if t.rank == 4 && t.dtype.is_float() => {
                let shape = t.static_shape.clone().unwrap_or_default();
                // The batch axis is the symbolic one: a fixed first axis is not a batch.
                if shape.first().is_some_and(Option::is_some) {
                    return None;
                }
                layer.shape = [1, 2, 3].map(|i| shape.get(i).copied().flatten());
                Some(layer)
            }
            _ => None,
        })
        .collect();
    if layers.is_empty() {
        return Err(OnnxError::NoLayers);
    }
    name_modules(&mut layers);
    Ok(layers)
}

/// The layer explained by default: the last one whose map is larger than one pixel (not a
/// global pool's `[n, k, 1, 1]`), by its shortest name.
pub(crate) fn default_layer(layers: &[Layer]) -> Option<String> {
    let larger = |l: &&Layer| !matches!(l.shape, [_, Some(1), Some(1)]);
    let layer = layers.iter().rev().find(larger).or(layers.last())?;
    Some(layer.aliases.last().unwrap_or(&layer.name).clone())
}

/// Suffix repeated names `#2`, `#3`, ... (ONNX does not require unique node names; the probe
/// does).
fn unique_names(layers: &mut [Layer]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for layer in layers.iter_mut() {
        let count = seen.entry(layer.name.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            layer.name = format!("{}#{count}", layer.name);
        }
    }
}

/// The module paths of a torch-exported node name, outermost first:
/// `/features/features.13/conv/conv.0/Conv` gives `features`, `features.13`, `features.13.conv`,
/// `features.13.conv.0`. torch writes each scope relative to its parent module, except that a
/// scope extending the previous one's name (`features` then `features.13`, `conv` then `conv.0`)
/// is relative to the same module as it. Names not in torch's `/a/b/Op` form give none.
fn module_paths(name: &str) -> Vec<String> {
    let Some(rest) = name.strip_prefix('/') else {
        return Vec::new();
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let mut paths: Vec<String> = Vec::new();
    // The previous segment, and the module path it is relative to.
    let mut previous: Option<(&str, String)> = None;
    for &segment in &segments[..segments.len().saturating_sub(1)] {
        let base = match &previous {
            Some((prev, base)) if segment.starts_with(&format!("{prev}.")) => base.clone(),
            _ => paths.last().cloned().unwrap_or_default(),
        };
        let path = if base.is_empty() {
            segment.to_string()
        } else {
            format!("{base}.{segment}")
        };
        paths.push(path);
        previous = Some((segment, base));
    }
    paths
}

/// Give each module path to the last layer inside it, where no layer already has that name.
fn name_modules(layers: &mut [Layer]) {
    let mut last: HashMap<String, usize> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        for path in module_paths(&layer.name) {
            if last.insert(path.clone(), i).is_none() {
                order.push(path);
            }
        }
    }
    let taken: Vec<String> = layers.iter().map(|l| l.name.clone()).collect();
    for path in order {
        if taken.contains(&path) {
            continue;
        }
        layers[last[&path]].aliases.push(path);
    }
    // Deepest first: `layer4.1` is tapped before `layer4`.
    for layer in layers.iter_mut() {
        layer
            .aliases
            .sort_by_key(|a| std::cmp::Reverse(a.matches('.').count()));
    }
}

/// onnx-ir's types of the tapped values, by layer name.
fn tap_types(model: &ModelProto) -> Result<HashMap<String, ArgType>> {
    let bytes = model.write_to_bytes().map_err(|e| OnnxError::Generation {
        message: e.to_string(),
    })?;
    let graph = onnx_ir::OnnxGraphBuilder::new()
        .with_custom_op_inference(Arc::new(Inference))
        .parse_bytes(&bytes)
        .map_err(|e| OnnxError::Generation {
            message: e.to_string(),
        })?;
    Ok(graph
        .nodes
        .iter()
        .filter_map(|node| match node {
            Node::Custom(tap) => Some((
                tap.attrs.get_string("layer")?.to_string(),
                tap.inputs[0].ty.clone(),
            )),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_follow_torchs_scopes() {
        assert_eq!(
            module_paths("/layer4/layer4.1/relu_1/Relu"),
            ["layer4", "layer4.1", "layer4.1.relu_1"]
        );
        assert_eq!(
            module_paths("/features/features.13/conv/conv.0/conv.0.2/Clip"),
            [
                "features",
                "features.13",
                "features.13.conv",
                "features.13.conv.0",
                "features.13.conv.0.2"
            ]
        );
        assert_eq!(module_paths("/Relu"), Vec::<String>::new());
        assert_eq!(module_paths("relu17"), Vec::<String>::new());
    }

    #[test]
    fn a_module_names_its_last_layer() {
        let layer = |name: &str, hw: usize| Layer {
            name: name.into(),
            aliases: Vec::new(),
            value: name.into(),
            shape: [Some(8), Some(hw), Some(hw)],
        };
        let mut layers = vec![
            layer("/layer4/layer4.0/relu/Relu", 7),
            layer("/layer4/layer4.1/conv1/Conv", 7),
            layer("/layer4/layer4.1/relu_1/Relu", 7),
            layer("/avgpool/GlobalAveragePool", 1),
        ];
        name_modules(&mut layers);
        assert_eq!(layers[2].aliases, ["layer4.1.relu_1", "layer4.1", "layer4"]);
        assert_eq!(layers[0].aliases, ["layer4.0.relu", "layer4.0"]);
        assert_eq!(layers[3].aliases, ["avgpool"]);
        assert_eq!(default_layer(&layers).as_deref(), Some("layer4"));
    }
}
