//! The guided ReLU of guided backpropagation (Springenberg et al., "Striving for Simplicity: The
//! All Convolutional Net", ICLR 2015 workshop, [arXiv:1412.6806](https://arxiv.org/abs/1412.6806)):
//! a ReLU forward whose backward lets a gradient through only where both the input and the
//! incoming gradient are positive, `dx = dy * (x > 0) * (dy > 0)`.
//!
//! A Burn backend extension: every backend's forward is its own ReLU (the default body); the
//! `Autodiff` implementation records the guided backward, a custom `Backward` step. Models reach
//! it through [`Probe::relu`](crate::Probe::relu), which is a plain ReLU except while the
//! explainer runs guided backpropagation.

// burn-ndarray is deprecated upstream but still a supported backend here.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::{Autodiff, Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::Tensor;

/// The guided ReLU as a backend operation.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(feature = "wgpu"),
    Fusion: cfg(feature = "wgpu"),
    Autodiff,
)]
pub(crate) trait GuidedReluBackend: Backend {
    /// `max(x, 0)`; its backward (on `Autodiff`) is `dy * (x > 0) * (dy > 0)`.
    ///
    /// # Shapes
    /// - `x`: any; returns the same
    #[fusion(dtype = x, shape = same_shape(x))]
    fn guided_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::relu(x)
    }
}

/// The output shape of [`GuidedReluBackend::guided_relu`]: its input's.
#[allow(dead_code)]
fn same_shape(x: &burn::tensor::Shape) -> burn::tensor::Shape {
    x.clone()
}

#[cfg(feature = "flex")]
impl GuidedReluBackend for burn::backend::Flex {}

#[cfg(feature = "ndarray")]
impl GuidedReluBackend for burn::backend::NdArray {}

#[cfg(feature = "wgpu")]
impl GuidedReluBackend for burn_cubecl::CubeBackend {}

impl<B: Backend + GuidedReluBackend, C: CheckpointStrategy> GuidedReluBackend for Autodiff<B, C> {
    fn guided_relu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        /// The guided backward, given the forward's output (`y > 0` exactly where `x > 0`).
        #[derive(Debug)]
        struct Guided;

        impl<B: Backend> Backward<B, 1> for Guided {
            type State = FloatTensor<B>;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let output = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::relu_backward(output, B::relu(grad))
                });
            }
        }

        let (primitive, node) = x.into_parts();
        match Guided.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::guided_relu(primitive);
                prep.finish(output.clone(), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::guided_relu(primitive)),
        }
    }
}

/// The guided ReLU of a tensor: `max(x, 0)`, whose gradient (under autodiff) is guided.
pub(crate) fn guided_relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let out = <burn::backend::Dispatch as GuidedReluBackend>::guided_relu(x.into_dispatch());
    Tensor::from_dispatch(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// The guided backward on `device` (its autodiff twin), against the rule worked by hand.
    fn the_backward_is_guided(device: &Device) {
        let device = device.clone().autodiff();
        let x =
            Tensor::<1>::from_data(TensorData::new(vec![-1.0f32, 2.0, 3.0, -4.0], [4]), &device)
                .require_grad();
        let y = guided_relu(x.clone());
        assert_eq!(crate::host::read(y.clone()), vec![0.0, 2.0, 3.0, 0.0]);
        // Upstream gradients of both signs at every unit.
        let up =
            Tensor::<1>::from_data(TensorData::new(vec![5.0f32, 6.0, -7.0, 8.0], [4]), &device);
        let grads = (y * up).sum().backward();
        let g = x.grad(&grads).unwrap();
        // Unit 1: x > 0, dy > 0 passes; unit 2: dy < 0 stopped (a plain ReLU would pass -7);
        // units 0 and 3: x <= 0 stopped.
        assert_eq!(crate::host::read(g), vec![0.0, 6.0, 0.0, 0.0]);
    }

    #[cfg(feature = "flex")]
    #[test]
    fn the_backward_is_guided_on_flex() {
        the_backward_is_guided(&Device::flex());
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn the_backward_is_guided_on_ndarray() {
        the_backward_is_guided(&Device::ndarray());
    }

    #[cfg(feature = "wgpu")]
    #[test]
    #[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
    fn wgpu_backward_is_guided() {
        let device = Device::wgpu(Default::default());
        device
            .identity()
            .expect("a wgpu adapter: install a Vulkan driver (lavapipe: mesa-vulkan-drivers)");
        the_backward_is_guided(&device);
    }
}
