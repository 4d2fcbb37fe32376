//! What the explainer captures: the public [`Capture`] (activations, gradients, targets of one
//! forward), and the crate-private probe logic behind it: capture layers (cutting the autodiff
//! graph at the first one), or replace one layer's activation (Ablation-CAM).

use burn::tensor::Tensor;

use crate::explanation::ExplainedTarget;
use crate::methods::LayerCapture;
use crate::target::Resolved;

/// One forward (and backward) through the model: what every method needs, captured once.
///
/// Made by [`Explainer::capture`](crate::Explainer::capture); turned into maps by
/// [`Explainer::explain_capture`](crate::Explainer::explain_capture), by any explainer whose
/// method needs no more than the capture holds. Several methods can share one capture.
#[derive(Clone)]
pub struct Capture {
    /// The input batch, `[n, c, H, W]`, without autodiff.
    pub input: Tensor<4>,
    /// The explained layers in forward order.
    pub layers: Vec<LayerCapture>,
    /// `[n][m]`: what each image's targets resolved to, with their scores.
    pub targets: Vec<Vec<ExplainedTarget>>,
    /// The targets' scores, `[n, m]`, without autodiff.
    pub scores: Tensor<2>,
    pub(crate) resolved: Vec<Resolved>,
    /// The class of every target, `[n * m]` as `f32` (`-1` for a custom score), on the device.
    pub(crate) classes: Tensor<1>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("input", &self.input.dims())
            .field("layers", &self.layers)
            .field("targets", &self.targets)
            .finish()
    }
}

/// One captured layer.
#[derive(Debug)]
pub(crate) struct CapturedLayer {
    pub name: String,
    /// The activation without autodiff, one row per image: `[n, k, h, w]`.
    pub activations: Tensor<4>,
    /// The gradient leaf, `[n * m, k, h, w]`, when gradients are wanted.
    pub leaf: Option<Tensor<4>>,
}

/// Capture state for one forward.
#[derive(Debug)]
pub(crate) struct CaptureProbe {
    wanted: Vec<String>,
    images: usize,
    targets_per_image: usize,
    gradients: bool,
    seen: Vec<String>,
    duplicate: Option<String>,
    batch_error: Option<(String, usize, usize)>,
    captured: Vec<CapturedLayer>,
}

/// What a finished capture found.
#[derive(Debug)]
pub(crate) struct Captured {
    pub layers: Vec<CapturedLayer>,
    /// A layer name the forward passed twice.
    pub duplicate: Option<String>,
    /// A later layer with the wrong number of rows: `(name, got, expected)`.
    pub batch_error: Option<(String, usize, usize)>,
}

impl CaptureProbe {
    /// Capture `wanted` for `images` images and `targets_per_image` targets each. With
    /// `gradients`, the first wanted layer becomes an autodiff leaf repeated once per target;
    /// without, activations are only recorded and the rows stay one per image.
    pub fn new(
        wanted: Vec<String>,
        images: usize,
        targets_per_image: usize,
        gradients: bool,
    ) -> Self {
        Self {
            wanted,
            images,
            targets_per_image: if gradients { targets_per_image } else { 1 },
            gradients,
            seen: Vec::new(),
            duplicate: None,
            batch_error: None,
            captured: Vec::new(),
        }
    }

    /// The rows the forward carries after the first wanted layer.
    pub fn rows_after_cut(&self) -> usize {
        self.images * self.targets_per_image
    }

    pub fn layer(&mut self, name: &str, activation: Tensor<4>) -> Tensor<4> {
        if self.seen.iter().any(|seen| seen == name) {
            self.duplicate.get_or_insert_with(|| name.to_string());
            return activation;
        }
        self.seen.push(name.to_string());
        if !self.wanted.iter().any(|wanted| wanted == name) {
            return activation;
        }
        let name = name.to_string();
        let [rows, k, h, w] = activation.dims();
        let first = self.captured.is_empty();
        let expected = if first {
            self.images
        } else {
            self.rows_after_cut()
        };
        if rows != expected {
            self.batch_error.get_or_insert((name, rows, expected));
            return activation;
        }
        let m = self.targets_per_image;
        if !self.gradients {
            self.captured.push(CapturedLayer {
                name,
                activations: activation.clone().without_autodiff(),
                leaf: None,
            });
            return activation;
        }
        if first {
            // The cut: everything before ran without autodiff; the graph starts here.
            let activations = activation.without_autodiff(); // [n, k, h, w]
            let leaf = repeat_rows(activations.clone(), m)
                .autodiff()
                .require_grad(); // [n * m, k, h, w]
            self.captured.push(CapturedLayer {
                name,
                activations,
                leaf: Some(leaf.clone()),
            });
            leaf
        } else {
            // A later layer: a zero-valued leaf added here receives dY/dA of this layer. The
            // rows of one image are equal (the layers in between treat rows independently), so
            // the first of each image's rows stands for all.
            let device = activation.device().without_autodiff();
            let zero = Tensor::<4>::zeros([rows, k, h, w], &device)
                .autodiff()
                .require_grad(); // [n * m, k, h, w]
            let activations = activation
                .clone()
                .without_autodiff()
                .reshape([self.images, m, k * h * w])
                .narrow(1, 0, 1)
                .reshape([self.images, k, h, w]); // [n, k, h, w]
            self.captured.push(CapturedLayer {
                name,
                activations,
                leaf: Some(zero.clone()),
            });
            activation.autodiff() + zero
        }
    }

    pub fn finish(self) -> Captured {
        Captured {
            layers: self.captured,
            duplicate: self.duplicate,
            batch_error: self.batch_error,
        }
    }
}

/// Replace the activation of one layer with given rows (Ablation-CAM's ablated copies).
#[derive(Debug)]
pub(crate) struct Replace {
    layer: String,
    with: Option<Tensor<4>>,
    /// The `[k, h, w]` the layer had when the replacement did not fit it.
    pub mismatch: Option<[usize; 3]>,
}

impl Replace {
    pub fn new(layer: String, with: Tensor<4>) -> Self {
        Self {
            layer,
            with: Some(with),
            mismatch: None,
        }
    }

    /// Whether the layer was reached and replaced.
    pub fn done(&self) -> bool {
        self.with.is_none()
    }

    pub fn layer(&mut self, name: &str, activation: Tensor<4>) -> Tensor<4> {
        if name != self.layer {
            return activation;
        }
        let Some(with) = self.with.take() else {
            return activation;
        };
        let [_, k, h, w] = activation.dims();
        let [_, wk, wh, ww] = with.dims();
        if [k, h, w] != [wk, wh, ww] {
            self.mismatch = Some([k, h, w]);
            return activation;
        }
        with
    }
}

/// Repeat each row `times` times, keeping the rows of one image together: the row layout of
/// everything after the cut (activations, logits, a transformer's special tokens).
///
/// # Shapes
/// - `x`: `[n, ...]`
/// - returns `[n * times, ...]`, row `i * times + j` = row `i` of `x`.
pub(crate) fn repeat_rows<const D: usize>(x: Tensor<D>, times: usize) -> Tensor<D> {
    if times == 1 {
        return x;
    }
    let dims = x.dims();
    let n = dims[0];
    let rest: usize = dims[1..].iter().product();
    let mut out = dims;
    out[0] = n * times;
    x.reshape([n, 1, rest]) // [n, 1, rest]
        .repeat_dim(1, times) // [n, times, rest]
        .reshape(out)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn repeat_rows_keeps_images_together() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0], [2, 1, 1, 1]), &device);
        let got = repeat_rows(x, 3).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(got, vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn a_later_layer_with_the_wrong_rows_is_reported() {
        let device = Device::flex();
        let mut capture = CaptureProbe::new(vec!["a".into(), "b".into()], 2, 3, true);
        let a = capture.layer("a", Tensor::<4>::ones([2, 1, 2, 2], &device));
        assert_eq!(a.dims(), [6, 1, 2, 2]);
        let _ = capture.layer("b", Tensor::<4>::ones([2, 1, 2, 2], &device));
        let done = capture.finish();
        assert_eq!(done.batch_error, Some(("b".to_string(), 2, 6)));
    }

    #[test]
    fn replace_swaps_one_layer_once_and_checks_its_shape() {
        let device = Device::flex();
        let with = Tensor::<4>::zeros([5, 2, 3, 3], &device);
        let mut replace = Replace::new("b".into(), with);
        let x = Tensor::<4>::ones([1, 2, 3, 3], &device);
        assert_eq!(replace.layer("a", x.clone()).dims(), [1, 2, 3, 3]);
        assert_eq!(replace.layer("b", x.clone()).dims(), [5, 2, 3, 3]);
        assert!(replace.done());
        let mut wrong = Replace::new("b".into(), Tensor::<4>::zeros([5, 2, 4, 3], &device));
        let _ = wrong.layer("b", x);
        assert_eq!(wrong.mismatch, Some([2, 3, 3]));
    }
}
