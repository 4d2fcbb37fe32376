//! Which layers the logits are an affine function of: every op that reads the layer's value,
//! directly or through others, is affine in it (pooling by averages, reshapes, sums, products
//! with a value that does not depend on it, convolutions and linear layers by their weights,
//! BatchNorm in inference). The generated model declares them (`GradCam::affine_after`), and
//! ShapleyCAM there takes the logits' derivative along the layer from two forwards.

use std::collections::HashSet;

use onnx_ir::NodeProto;

use crate::graph::Graph;
use crate::layers::Layer;

/// The names (and aliases) of the layers of `graph` after which the logits are affine.
pub(crate) fn affine_layers(graph: &Graph, layers: &[Layer]) -> Vec<String> {
    let nodes = &graph.model.graph.node;
    let Some(output) = graph.model.graph.output.first().map(|o| o.name.as_str()) else {
        return Vec::new();
    };
    layers
        .iter()
        .filter(|layer| affine_after(nodes, &layer.value, output))
        .flat_map(|layer| std::iter::once(layer.name.clone()).chain(layer.aliases.clone()))
        .collect()
}

/// Whether `output` is an affine function of `value` through `nodes` (in topological order).
fn affine_after(nodes: &[NodeProto], value: &str, output: &str) -> bool {
    let mut depends: HashSet<&str> = [value].into();
    for node in nodes {
        let reading: Vec<usize> = (0..node.input.len())
            .filter(|&i| depends.contains(node.input[i].as_str()))
            .collect();
        if reading.is_empty() {
            continue;
        }
        if !affine_op(&node.op_type, &reading) {
            return false;
        }
        depends.extend(node.output.iter().map(String::as_str));
    }
    depends.contains(output)
}

/// Whether `op` is affine in its inputs `reading` (the others held fixed).
fn affine_op(op: &str, reading: &[usize]) -> bool {
    match op {
        // Affine in every input together.
        "Add" | "Sub" | "Concat" | "Sum" | "Identity" | "Dropout" | "Neg" => true,
        // Affine in their data (input 0); the other inputs are shapes, axes or parameters.
        "GlobalAveragePool" | "AveragePool" | "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze"
        | "Transpose" | "ReduceMean" | "ReduceSum" | "BatchNormalization" | "Conv" | "Div" => {
            reading == [0]
        }
        // Bilinear: affine in one factor at a time.
        "Gemm" | "MatMul" | "Mul" => reading == [0] || reading == [1],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_pool_and_a_linear_layer_are_affine_a_relu_or_a_square_is_not() {
        let head = [
            node("GlobalAveragePool", &["a"], "p"),
            node("Flatten", &["p"], "f"),
            node("Gemm", &["f", "w", "b"], "z"),
        ];
        assert!(affine_after(&head, "a", "z"));
        let relu = [
            node("Relu", &["a"], "r"),
            node("Gemm", &["r", "w", "b"], "z"),
        ];
        assert!(!affine_after(&relu, "a", "z"));
        let square = [
            node("Mul", &["a", "a"], "s"),
            node("Gemm", &["s", "w", "b"], "z"),
        ];
        assert!(!affine_after(&square, "a", "z"));
        // A residual sum with a value from before the layer stays affine in the layer.
        let residual = [
            node("Add", &["a", "x"], "y"),
            node("Gemm", &["y", "w", "b"], "z"),
        ];
        assert!(affine_after(&residual, "a", "z"));
        // A layer the logits do not read is not declared.
        assert!(!affine_after(&head, "elsewhere", "z"));
    }
}
