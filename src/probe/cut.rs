//! The probe's capturing mode: the explained layers recorded, the autodiff graph started at the
//! first of them (the cut), its rows repeated once per target.

use burn::tensor::Tensor;

use super::rows::{repeat_rows, zero_leaf};
use crate::error::ModelError;

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
pub(crate) struct Cut {
    wanted: Vec<String>,
    images: usize,
    /// Rows per image after the cut: the targets per image with gradients, 1 without.
    rows_per_image: usize,
    gradients: bool,
    seen: Vec<String>,
    /// The first contract violation the forward showed.
    error: Option<ModelError>,
    captured: Vec<CapturedLayer>,
}

impl Cut {
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
            rows_per_image: if gradients { targets_per_image } else { 1 },
            gradients,
            seen: Vec::new(),
            error: None,
            captured: Vec::new(),
        }
    }

    /// The rows the forward carries after the first wanted layer.
    pub fn rows_after_cut(&self) -> usize {
        self.images * self.rows_per_image
    }

    /// The explained layer whose rows were repeated, and how many times, once the forward has
    /// passed it with more than one target per image: a forward that fails after that point
    /// most likely combined a tensor from before it with one after it without
    /// [`Probe::carry`](crate::Probe::carry).
    pub fn repeated_at(&self) -> Option<(&str, usize)> {
        let first = self.captured.first()?;
        (self.rows_per_image > 1).then_some((first.name.as_str(), self.rows_per_image))
    }

    /// The first contract violation seen so far.
    pub fn error(&self) -> Option<&ModelError> {
        self.error.as_ref()
    }

    fn fail(&mut self, error: ModelError) {
        self.error.get_or_insert(error);
    }

    pub fn layer(&mut self, name: &str, activation: Tensor<4>) -> Tensor<4> {
        if self.seen.iter().any(|seen| seen == name) {
            self.fail(ModelError::DuplicateLayer {
                name: name.to_string(),
            });
            return activation;
        }
        self.seen.push(name.to_string());
        let shape = activation.dims();
        if shape.contains(&0) {
            self.fail(ModelError::EmptyActivation {
                name: name.to_string(),
                shape,
            });
            return activation;
        }
        if !self.wanted.iter().any(|wanted| wanted == name) {
            return activation;
        }
        let name = name.to_string();
        let [rows, k, h, w] = shape;
        let first = self.captured.is_empty();
        let expected = if first {
            self.images
        } else {
            self.rows_after_cut()
        };
        if rows != expected {
            self.fail(ModelError::LayerBatch {
                name,
                got: rows,
                expected,
            });
            return activation;
        }
        let m = self.rows_per_image;
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
            let zero = zero_leaf(&activation); // [n * m, k, h, w]
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

    /// The captured layers, in forward order, or the first contract violation: a layer seen
    /// twice, with the wrong rows or empty, or a wanted layer never seen.
    pub fn finish(self) -> Result<Vec<CapturedLayer>, ModelError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if let Some(name) = self
            .wanted
            .iter()
            .find(|name| !self.captured.iter().any(|c| &c.name == *name))
        {
            return Err(ModelError::LayerNotReached { name: name.clone() });
        }
        Ok(self.captured)
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn a_later_layer_with_the_wrong_rows_is_reported() {
        let device = Device::flex();
        let mut cut = Cut::new(vec!["a".into(), "b".into()], 2, 3, true);
        let a = cut.layer("a", Tensor::<4>::ones([2, 1, 2, 2], &device));
        assert_eq!(a.dims(), [6, 1, 2, 2]);
        assert_eq!(cut.repeated_at(), Some(("a", 3)));
        let _ = cut.layer("b", Tensor::<4>::ones([2, 1, 2, 2], &device));
        assert!(matches!(
            cut.finish(),
            Err(ModelError::LayerBatch { ref name, got: 2, expected: 6 }) if name == "b"
        ));
    }

    #[test]
    fn an_empty_activation_and_a_layer_never_seen_are_reported() {
        let device = Device::flex();
        let mut cut = Cut::new(vec!["a".into()], 1, 1, true);
        let _ = cut.layer("a", Tensor::<4>::ones([1, 4, 0, 0], &device));
        assert!(matches!(
            cut.finish(),
            Err(ModelError::EmptyActivation {
                shape: [1, 4, 0, 0],
                ..
            })
        ));
        let cut = Cut::new(vec!["a".into()], 1, 1, false);
        assert!(matches!(
            cut.finish(),
            Err(ModelError::LayerNotReached { ref name }) if name == "a"
        ));
    }
}
