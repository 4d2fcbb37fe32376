//! The three operators the generator inserts into the ONNX graph (domain `gradcam`) and the code
//! burn-onnx generates for them: `Tap`, an activation passed through the probe, `Carry`, a
//! tensor from before a tap brought to the rows after it, and `Bias`, a convolution's output
//! passed through the probe with its bias (for FullGrad); and the code of every `Relu` node, the
//! probe's ReLU (guided in guided backpropagation).

use burn_onnx::ext::proc_macro2::TokenStream;
use burn_onnx::ext::quote::quote;
use burn_onnx::ext::{
    ArgType, CodegenContext, CustomNode, CustomOp, Node, NodeType, OpOverride, ProcessError,
    arg_to_ident,
};
use onnx_ir::{CustomOpInference, HookCoverage, MissingReason};

/// The operators' ONNX domain.
pub(crate) const DOMAIN: &str = "gradcam";
/// `Tap(x) -> y`, attribute `layer`: `let y = probe.layer("layer", x);`
pub(crate) const TAP: &str = "Tap";
/// `Carry(before, after) -> y`: `let y = Probe::carry(before, after.dims()[0]);`
pub(crate) const CARRY: &str = "Carry";
/// `Bias(x) -> y`, attribute `layer`, `x` the output of a 2-d convolution with a bias: `let y =
/// probe.bias("layer", x, || self.conv.bias.as_ref().map(|b| b.val()));`
pub(crate) const BIAS: &str = "Bias";
/// The probe's name in the generated code: no ONNX value can be named so (burn-onnx sanitises
/// graph names to identifiers without a leading double underscore).
pub(crate) const PROBE: &str = "__gradcam_probe";

/// [`TAP`]'s code.
pub(crate) struct Tap;

impl CustomOp for Tap {
    fn op_type(&self) -> &str {
        TAP
    }
    fn domain(&self) -> &str {
        DOMAIN
    }
    fn infer_output_types(&self, node: &CustomNode) -> Result<Vec<ArgType>, ProcessError> {
        Ok(vec![node.inputs[0].ty.clone()])
    }
    fn forward(
        &self,
        node: &CustomNode,
        ctx: &mut CodegenContext<'_, '_>,
    ) -> Result<TokenStream, ProcessError> {
        let input = ctx.arg(&node.inputs[0]);
        let output = arg_to_ident(&node.outputs[0]);
        let layer = node
            .attrs
            .get_string("layer")
            .ok_or_else(|| ProcessError::Custom("a gradcam Tap without its `layer`".into()))?;
        let probe = probe();
        Ok(quote! { let #output = #probe.layer(#layer, #input); })
    }
}

/// [`CARRY`]'s code.
pub(crate) struct Carry;

impl CustomOp for Carry {
    fn op_type(&self) -> &str {
        CARRY
    }
    fn domain(&self) -> &str {
        DOMAIN
    }
    fn infer_output_types(&self, node: &CustomNode) -> Result<Vec<ArgType>, ProcessError> {
        Ok(vec![node.inputs[0].ty.clone()])
    }
    fn forward(
        &self,
        node: &CustomNode,
        ctx: &mut CodegenContext<'_, '_>,
    ) -> Result<TokenStream, ProcessError> {
        let before = ctx.arg(&node.inputs[0]);
        let after = ctx.arg(&node.inputs[1]);
        let output = arg_to_ident(&node.outputs[0]);
        Ok(quote! { let #output = gradcam::Probe::carry(#before, #after.dims()[0]); })
    }
}

/// [`BIAS`]'s code.
pub(crate) struct Bias;

impl CustomOp for Bias {
    fn op_type(&self) -> &str {
        BIAS
    }
    fn domain(&self) -> &str {
        DOMAIN
    }
    fn infer_output_types(&self, node: &CustomNode) -> Result<Vec<ArgType>, ProcessError> {
        Ok(vec![node.inputs[0].ty.clone()])
    }
    fn forward(
        &self,
        node: &CustomNode,
        ctx: &mut CodegenContext<'_, '_>,
    ) -> Result<TokenStream, ProcessError> {
        let input = ctx.arg(&node.inputs[0]);
        let output = arg_to_ident(&node.outputs[0]);
        let layer = node
            .attrs
            .get_string("layer")
            .ok_or_else(|| ProcessError::Custom("a gradcam Bias without its `layer`".into()))?;
        // burn-onnx names a node's first output `<field>_out1`, its module field `<field>`.
        let field = node.inputs[0]
            .name
            .strip_suffix("_out1")
            .filter(|_| matches!(node.inputs[0].ty, ArgType::Tensor(ref t) if t.rank == 4))
            .map(|field| syn::Ident::new(field, proc_macro2::Span::call_site()));
        let probe = probe();
        Ok(match field {
            Some(conv) => quote! {
                let #output = #probe.bias(#layer, #input, || self.#conv.bias.as_ref().map(|b| b.val()));
            },
            // Not a 2-d convolution's output as burn-onnx names it: no bias to route.
            None => quote! { let #output = #input; },
        })
    }
}

/// Every ONNX `Relu` as `probe.relu(x)`: a plain ReLU, guided during guided backpropagation.
pub(crate) struct ProbeRelu;

impl OpOverride for ProbeRelu {
    fn target(&self) -> NodeType {
        NodeType::Relu
    }
    fn forward(
        &self,
        node: &Node,
        ctx: &mut CodegenContext<'_, '_>,
    ) -> Result<TokenStream, ProcessError> {
        let input = ctx.arg(&node.inputs()[0]);
        let output = arg_to_ident(&node.outputs()[0]);
        let probe = probe();
        Ok(quote! { let #output = #probe.relu(#input); })
    }
}

/// The probe's identifier.
pub(crate) fn probe() -> syn::Ident {
    syn::Ident::new(PROBE, proc_macro2::Span::call_site())
}

/// Type inference for [`TAP`], [`CARRY`] and [`BIAS`] alone (the first parse, before any code
/// exists): each gives its first input's type.
pub(crate) struct Inference;

impl CustomOpInference for Inference {
    fn coverage(&self, op_type: &str, domain: &str, _opset: usize) -> HookCoverage {
        if domain == DOMAIN && [TAP, CARRY, BIAS].contains(&op_type) {
            HookCoverage::Covered
        } else {
            HookCoverage::Missing(MissingReason::NoHook)
        }
    }
    fn infer(&self, node: &CustomNode) -> Result<Option<Vec<ArgType>>, ProcessError> {
        Ok(Some(vec![node.inputs[0].ty.clone()]))
    }
}
