//! The map-reduction kernel: `sum_k alpha_k A^k` as one device op, a Burn backend extension.
//!
//! [`CamBackend::cam_weighted_sum`] has a default body in backend tensor ops (a batched matrix
//! product): it serves `flex` and `ndarray` and stays differentiable through `Autodiff`. On
//! CubeCL backends (`wgpu`, `vulkan`) a `#[cube(launch)]` kernel computes each output pixel in one
//! thread, reading the activations once for each target. [`weighted_sum`] is the public entry:
//! the same function on every backend.

// burn-ndarray is deprecated upstream but still a supported backend here.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::{Autodiff, Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::Tensor;

/// The Grad-CAM weighted channel sum as a backend operation.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(feature = "wgpu"),
    Fusion: cfg(feature = "wgpu"),
    Autodiff,
)]
pub trait CamBackend: Backend {
    /// `out[b, j, p] = sum_k weights[b, j, k] * activations[b, k, p]`.
    ///
    /// # Shapes
    /// - `activations`: `[b, k, p]`
    /// - `weights`: `[b, m, k]`
    /// - returns `[b, m, p]`
    #[fusion(dtype = activations, shape = output_shape(activations, weights))]
    fn cam_weighted_sum(
        activations: FloatTensor<Self>,
        weights: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::float_matmul(weights, activations)
    }
}

/// The output shape `[b, m, p]` of [`CamBackend::cam_weighted_sum`].
#[allow(dead_code)]
fn output_shape(
    activations: &burn::tensor::Shape,
    weights: &burn::tensor::Shape,
) -> burn::tensor::Shape {
    burn::tensor::Shape::new([activations[0], weights[1], activations[2]])
}

#[cfg(feature = "flex")]
impl CamBackend for burn::backend::Flex {}

#[cfg(feature = "ndarray")]
#[allow(deprecated)]
impl CamBackend for burn::backend::NdArray {}

impl<B: Backend + CamBackend, C: CheckpointStrategy> CamBackend for Autodiff<B, C> {}

#[cfg(feature = "wgpu")]
mod cube {
    use burn::backend::cubecl::dtype_to_storage_type;
    use burn::backend::tensor::FloatTensor;
    use burn::tensor::Shape;
    use burn_cubecl::CubeBackend;
    // The `#[cube]` macro names `cubecl::..` paths.
    use burn_cubecl::cubecl;
    use burn_cubecl::cubecl::calculate_cube_count_elemwise;
    use burn_cubecl::cubecl::prelude::*;
    use burn_cubecl::kernel::into_contiguous;
    use burn_cubecl::ops::numeric::empty_device_dtype;

    /// One thread per output element `(b, j, p)`: the sum over channels of weight times
    /// activation. Threads of a cube run over consecutive pixels, so reads of `acts` coalesce.
    #[cube(launch)]
    fn weighted_sum_kernel<F: Float>(
        acts: &Tensor<F>,
        weights: &Tensor<F>,
        out: &mut Tensor<F>,
        #[define(F)] _dtype: ElemType,
    ) {
        let idx = ABSOLUTE_POS;
        if idx >= out.len() {
            terminate!();
        }
        let pixels = out.shape(2);
        let targets = out.shape(1);
        let channels = acts.shape(1);
        let p = idx % pixels;
        let j = (idx / pixels) % targets;
        let b = idx / (pixels * targets);
        let act_base = b * channels * pixels + p;
        let weight_base = (b * targets + j) * channels;
        let mut acc = F::new(0.0);
        for c in 0..channels {
            acc += weights[weight_base + c] * acts[act_base + c * pixels];
        }
        out[idx] = acc;
    }

    impl super::CamBackend for CubeBackend {
        fn cam_weighted_sum(
            activations: FloatTensor<Self>,
            weights: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            let acts = into_contiguous(activations);
            let weights = into_contiguous(weights);
            let (b, p) = (acts.meta.shape()[0], acts.meta.shape()[2]);
            let m = weights.meta.shape()[1];
            let dtype = acts.dtype;
            let out = empty_device_dtype(
                acts.client.clone(),
                acts.device.clone(),
                Shape::new([b, m, p]),
                dtype,
            );
            let count = b * m * p;
            let client = acts.client.clone();
            let cube_dim = CubeDim::new(&client, count);
            let cube_count = calculate_cube_count_elemwise(&client, count, cube_dim);
            weighted_sum_kernel::launch(
                &client,
                cube_count,
                cube_dim,
                acts.into_tensor_arg(),
                weights.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                dtype_to_storage_type(dtype),
            );
            out
        }
    }
}

/// The weighted channel sum through the backend extension: the kernel on CubeCL backends, the
/// tensor-op body elsewhere.
///
/// # Shapes
/// - `activations`: `[b, k, h, w]`
/// - `weights`: `[b, m, k]`
/// - returns `[b, m, h, w]`
pub fn weighted_sum(activations: Tensor<4>, weights: Tensor<3>) -> Tensor<4> {
    let [b, k, h, w] = activations.dims();
    let [_, m, _] = weights.dims();
    let acts = activations.reshape([b, k, h * w]).into_dispatch();
    let out =
        <burn::backend::Dispatch as CamBackend>::cam_weighted_sum(acts, weights.into_dispatch());
    Tensor::<3>::from_dispatch(out).reshape([b, m, h, w])
}
