//! The probe's replacing mode: one layer's activation swapped for given rows (Ablation-CAM's
//! ablated copies), everything before it run once, everything after it on the new rows.

use burn::tensor::Tensor;

use crate::error::{GradCamError, MethodError, ModelError};

/// Replace the activation of one layer with given rows, once.
#[derive(Debug)]
pub(crate) struct Replace {
    layer: String,
    state: State,
}

#[derive(Debug)]
enum State {
    /// The layer has not been reached yet (boxed: a tensor is large next to the other states).
    Waiting(Box<Tensor<4>>),
    /// The layer was reached and replaced.
    Done,
    /// The layer was reached; the replacement's `[k, h, w]` did not fit its activation's.
    Mismatch {
        got: [usize; 3],
        expected: [usize; 3],
    },
}

impl Replace {
    /// Replace `layer`'s activation with `with`.
    ///
    /// # Shapes
    /// - `with`: `[r, k, h, w]`, the layer's `[k, h, w]`
    pub fn new(layer: String, with: Tensor<4>) -> Self {
        Self {
            layer,
            state: State::Waiting(Box::new(with)),
        }
    }

    pub fn layer(&mut self, name: &str, activation: Tensor<4>) -> Tensor<4> {
        if name != self.layer {
            return activation;
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Waiting(with) => {
                let [_, k, h, w] = activation.dims();
                let [_, wk, wh, ww] = with.dims();
                if [k, h, w] == [wk, wh, ww] {
                    *with
                } else {
                    self.state = State::Mismatch {
                        got: [wk, wh, ww],
                        expected: [k, h, w],
                    };
                    activation
                }
            }
            done => {
                self.state = done;
                activation
            }
        }
    }

    /// Whether the replacement happened: an error when the layer was never reached (the model's
    /// fault) or the rows did not fit it (`method`'s).
    pub fn finish(self, method: &'static str) -> Result<(), GradCamError> {
        match self.state {
            State::Done => Ok(()),
            State::Waiting(_) => Err(ModelError::LayerNotReached { name: self.layer }.into()),
            State::Mismatch { got, expected } => Err(GradCamError::Method {
                method,
                error: MethodError::Replacement {
                    layer: self.layer,
                    got,
                    expected,
                },
            }),
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn replace_swaps_one_layer_once_and_checks_its_shape() {
        let device = Device::flex();
        let with = Tensor::<4>::zeros([5, 2, 3, 3], &device);
        let mut replace = Replace::new("b".into(), with);
        let x = Tensor::<4>::ones([1, 2, 3, 3], &device);
        assert_eq!(replace.layer("a", x.clone()).dims(), [1, 2, 3, 3]);
        assert_eq!(replace.layer("b", x.clone()).dims(), [5, 2, 3, 3]);
        assert_eq!(replace.layer("b", x.clone()).dims(), [1, 2, 3, 3], "once");
        assert!(replace.finish("m").is_ok());
        let mut wrong = Replace::new("b".into(), Tensor::<4>::zeros([5, 2, 4, 3], &device));
        let _ = wrong.layer("b", x);
        assert!(matches!(
            wrong.finish("m"),
            Err(GradCamError::Method {
                error: MethodError::Replacement {
                    got: [2, 4, 3],
                    expected: [2, 3, 3],
                    ..
                },
                ..
            })
        ));
        let never = Replace::new("c".into(), Tensor::<4>::zeros([1, 1, 1, 1], &device));
        assert!(matches!(
            never.finish("m"),
            Err(GradCamError::Model(ModelError::LayerNotReached { .. }))
        ));
    }
}
