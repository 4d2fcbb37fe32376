//! The last step: burn-onnx's Rust source made explainable. Its `forward` functions (the model's
//! and, in a partitioned graph, each submodule's) take the probe the taps pass activations
//! through; the model's plain `forward` stays, and `gradcam::GradCam` is implemented for it.

use syn::visit_mut::{self, VisitMut};
use syn::{Expr, ImplItem, Item, Member, Type, parse_quote};

use crate::error::{OnnxError, Result};
use crate::layers::Layer;
use crate::ops::probe;

/// What the generated `impl GradCam` declares.
pub(crate) struct Declarations<'a> {
    /// The layers in forward order.
    pub layers: &'a [Layer],
    /// The layers (and aliases) the logits are affine in.
    pub affine: Vec<String>,
    /// The layer explained when none is named.
    pub default_layer: Option<String>,
    /// The input's channels (height and width are left free: the export's sizes are in the
    /// file's header).
    pub channels: Option<usize>,
    /// The file's first lines.
    pub header: String,
}

/// `code` (burn-onnx's, with the taps' and carries' statements) with the probe threaded through
/// and `gradcam::GradCam` implemented.
///
/// # Errors
/// [`OnnxError::Generation`] if burn-onnx's code does not have the shape expected of it.
pub(crate) fn explainable(code: &str, declarations: &Declarations<'_>) -> Result<String> {
    let mut file: syn::File = syn::parse_str(code).map_err(|e| OnnxError::Generation {
        message: format!("its code does not parse: {e}"),
    })?;
    // burn-onnx's `Default` loads the weights from the path given to it at generation time
    // (relative to that working directory): `Model::from_file` says where they are instead.
    file.items.retain(|item| {
        !matches!(item, Item::Impl(block) if block.trait_.as_ref().is_some_and(|(_, path, _)| path.is_ident("Default")))
    });
    // burn-onnx's code is what it is: its unused bindings and helpers must not fail a build that
    // denies warnings.
    for item in file.items.iter_mut() {
        match item {
            Item::Use(item) => item.attrs.push(parse_quote!(#[allow(unused_imports)])),
            Item::Struct(item) => item.attrs.push(parse_quote!(#[allow(dead_code)])),
            Item::Impl(item) => item.attrs.push(parse_quote!(#[allow(unused, clippy::all)])),
            _ => {}
        }
    }
    let mut threader = Threader { model_forwards: 0 };
    threader.visit_file_mut(&mut file);
    if threader.model_forwards != 1 {
        return Err(OnnxError::Generation {
            message: format!(
                "expected one `Model::forward`, found {}",
                threader.model_forwards
            ),
        });
    }
    let names: Vec<&str> = declarations
        .layers
        .iter()
        .flat_map(|l| std::iter::once(&l.name).chain(&l.aliases))
        .map(String::as_str)
        .collect();
    let affine = &declarations.affine;
    let default = match &declarations.default_layer {
        Some(layer) => quote::quote! { Some(#layer.to_string()) },
        None => quote::quote! { None },
    };
    let channels = match declarations.channels {
        Some(c) => quote::quote! { Some(#c) },
        None => quote::quote! { None },
    };
    let probe = probe();
    let extra: syn::File = parse_quote! {
        #[allow(dead_code)]
        impl Model {
            /// The model's forward, as burn-onnx generates it: the probe passes every activation
            /// through unchanged.
            ///
            /// # Shapes
            /// - `input`: `[n, c, h, w]`
            /// - returns `[n, classes]`
            pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
                self.forward_with_probe(input, &mut gradcam::Probe::passthrough())
            }

            /// Load the weights from a `.bpk` file, as an error rather than a panic.
            ///
            /// # Errors
            /// The file cannot be read, or its tensors do not fit the model.
            pub fn try_from_file(
                file: impl AsRef<std::path::Path>,
                device: &Device,
            ) -> Result<Self, String> {
                let mut model = Self::new(device);
                let mut store = BurnpackStore::from_file(file.as_ref());
                model
                    .load_from(&mut store)
                    .map_err(|e| format!("{}: {e}", file.as_ref().display()))?;
                Ok(model)
            }
        }

        impl gradcam::GradCam for Model {
            /// Every activation `[n, c, h, w]` of the graph, by the ONNX node that computes it,
            /// each followed by the module paths whose output it is (`layer4`, `features.12`).
            fn layers(&self) -> Vec<String> {
                [#(#names),*].iter().map(|name| name.to_string()).collect()
            }

            fn default_layer(&self) -> Option<String> {
                #default
            }

            /// The layers after which only affine ops of them reach the logits (pools,
            /// reshapes, sums, linear layers): ShapleyCAM's `J A` from two forwards there.
            fn affine_after(&self, layer: &str) -> bool {
                const AFFINE: &[&str] = &[#(#affine),*];
                AFFINE.contains(&layer)
            }

            fn input_shape(&self) -> [Option<usize>; 3] {
                [#channels, None, None]
            }

            fn forward_probed(
                &self,
                input: Tensor<4>,
                #probe: &mut gradcam::Probe<'_>,
            ) -> Tensor<2> {
                self.forward_with_probe(input, #probe)
            }
        }
    };
    file.items.extend(extra.items);
    let body = prettyplease::unparse(&file);
    Ok(format!("{}{body}", declarations.header))
}

/// Threads the probe: a parameter on every `forward` of the generated modules (the model's
/// renamed `forward_with_probe`), passed on in every `self.submoduleN.forward(..)`.
struct Threader {
    model_forwards: usize,
}

impl VisitMut for Threader {
    fn visit_item_mut(&mut self, item: &mut Item) {
        if let Item::Impl(block) = item
            && block.trait_.is_none()
            && let Type::Path(path) = &*block.self_ty
            && let Some(name) = path.path.get_ident()
        {
            let is_model = name == "Model";
            let probe = probe();
            for member in block.items.iter_mut() {
                if let ImplItem::Fn(f) = member
                    && f.sig.ident == "forward"
                {
                    f.sig
                        .inputs
                        .push(parse_quote!(#probe: &mut gradcam::Probe<'_>));
                    if is_model {
                        f.sig.ident = parse_quote!(forward_with_probe);
                        f.attrs.push(parse_quote!(#[doc = " The forward, its activations passed through `probe` (see `gradcam::GradCam`)."]));
                        self.model_forwards += 1;
                    }
                }
            }
        }
        visit_mut::visit_item_mut(self, item);
    }

    fn visit_expr_method_call_mut(&mut self, call: &mut syn::ExprMethodCall) {
        visit_mut::visit_expr_method_call_mut(self, call);
        if call.method == "forward"
            && let Expr::Field(field) = &*call.receiver
            && let Member::Named(name) = &field.member
            && name.to_string().starts_with("submodule")
        {
            let probe = probe();
            call.args.push(parse_quote!(#probe));
        }
    }
}
