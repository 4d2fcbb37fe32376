//! The weighted channel sum `sum_k w_k A^k` as one device op, a Burn backend extension.
//!
//! `CamBackend::cam_weighted_sum` has a default body in backend tensor ops (a batched matrix
//! product): it serves `flex` and `ndarray` and stays differentiable through `Autodiff`. On
//! CubeCL backends (`wgpu`, `vulkan`) a `#[cube(launch)]` kernel computes each output pixel (or,
//! split-K, each part of its channels) in one thread, reading the activations once for each
//! target. [`weighted_sum`] and [`weighted_sum_split`] are the public entries: the same function
//! on every backend, with its shapes checked.

// burn-ndarray is deprecated upstream but still a supported backend here.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::{Autodiff, Backend, backend_extension, tensor::FloatTensor};
use burn::tensor::Tensor;

use crate::error::{GradCamError, Result};

/// The weighted channel sum as a backend operation.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(feature = "wgpu"),
    Fusion: cfg(feature = "wgpu"),
    Autodiff,
)]
pub(crate) trait CamBackend: Backend {
    /// `out[b, j, p] = sum_k weights[b, j, k] * activations[b, k, p]`, the channel axis cut
    /// into `splits` parts: on CubeCL backends one thread per output and part (more threads when
    /// outputs are few and channels many), the parts added by a second reduction when there
    /// are several; elsewhere a batched matrix product, whatever `splits`.
    ///
    /// # Shapes
    /// - `activations`: `[b, k, p]`
    /// - `weights`: `[b, m, k]`
    /// - returns `[b, m, p]`
    #[fusion(dtype = activations, shape = output_shape(activations, weights))]
    fn cam_weighted_sum(
        activations: FloatTensor<Self>,
        weights: FloatTensor<Self>,
        #[fusion(scalar)] splits: usize,
    ) -> FloatTensor<Self> {
        let _ = splits;
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

    /// One thread per output element `(b, j, p)` and part `s` of the channels: the partial sum
    /// over channels `[s * chunk, (s + 1) * chunk)` of weight times activation, into
    /// `partial[s, b, j, p]` (with one part, the whole sum). Threads of a cube run over
    /// consecutive pixels, so reads of `acts` coalesce.
    #[cube(launch)]
    fn weighted_sum_kernel<F: Float>(
        acts: &Tensor<F>,
        weights: &Tensor<F>,
        partial: &mut Tensor<F>,
        #[define(F)] _dtype: ElemType,
    ) {
        let idx = ABSOLUTE_POS;
        if idx >= partial.len() {
            terminate!();
        }
        let pixels = partial.shape(3);
        let targets = partial.shape(2);
        let batch = partial.shape(1);
        let splits = partial.shape(0);
        let channels = acts.shape(1);
        let p = idx % pixels;
        let j = (idx / pixels) % targets;
        let b = (idx / (pixels * targets)) % batch;
        let s = idx / (pixels * targets * batch);
        let chunk = (channels - 1) / splits + 1; // channels >= 1: the ceiling of channels / splits
        let start = s * chunk;
        let mut end = start + chunk;
        if end > channels {
            end = channels;
        }
        let act_base = b * channels * pixels + p;
        let weight_base = (b * targets + j) * channels;
        let mut acc = F::new(0.0);
        for c in start..end {
            acc += weights[weight_base + c] * acts[act_base + c * pixels];
        }
        partial[idx] = acc;
    }

    /// `partial[s, b, j, p]`: the weighted sums over each of `splits` parts of the channels.
    ///
    /// # Shapes
    /// - `acts`: `[b, k, p]`, `weights`: `[b, m, k]`; returns `[splits, b, m, p]`
    fn partial_sums(
        activations: FloatTensor<CubeBackend>,
        weights: FloatTensor<CubeBackend>,
        splits: usize,
    ) -> FloatTensor<CubeBackend> {
        let acts = into_contiguous(activations);
        let weights = into_contiguous(weights);
        let (b, k, p) = (
            acts.meta.shape()[0],
            acts.meta.shape()[1],
            acts.meta.shape()[2],
        );
        let m = weights.meta.shape()[1];
        let splits = splits.clamp(1, k.max(1));
        let dtype = acts.dtype;
        let partial = empty_device_dtype(
            acts.client.clone(),
            acts.device.clone(),
            Shape::new([splits, b, m, p]),
            dtype,
        );
        let count = splits * b * m * p;
        let client = acts.client.clone();
        let cube_dim = CubeDim::new(&client, count);
        let cube_count = calculate_cube_count_elemwise(&client, count, cube_dim);
        weighted_sum_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            acts.into_tensor_arg(),
            weights.into_tensor_arg(),
            partial.clone().into_tensor_arg(),
            dtype_to_storage_type(dtype),
        );
        partial
    }

    impl super::CamBackend for CubeBackend {
        fn cam_weighted_sum(
            activations: FloatTensor<Self>,
            weights: FloatTensor<Self>,
            splits: usize,
        ) -> FloatTensor<Self> {
            use burn::backend::ops::FloatTensorOps;
            let partial = partial_sums(activations, weights, splits); // [s, b, m, p]
            let [parts, b, m, p] = partial.meta.shape().dims::<4>();
            let summed = if parts == 1 {
                partial
            } else {
                Self::float_sum_dim(partial, 0) // [1, b, m, p]
            };
            Self::float_reshape(summed, Shape::new([b, m, p]))
        }
    }
}

/// The weighted channel sum `sum_k w_k A^k` for `m` weight vectors per image: one CubeCL kernel
/// on `wgpu`/`vulkan` (each activation read once for all targets; from 1024 channels the
/// split-K kernel of [`weighted_sum_split`] with 8 parts), a batched matrix product on the CPU
/// backends.
///
/// # Shapes
/// - `activations`: `[b, k, h, w]`
/// - `weights`: `[b, m, k]`
/// - returns `[b, m, h, w]`
///
/// # Errors
/// [`InputError::Argument`](crate::InputError::Argument) if the weights' batch or channel count differs from the
/// activations', or a tensor is empty.
pub fn weighted_sum(activations: Tensor<4>, weights: Tensor<3>) -> Result<Tensor<4>> {
    check_shapes("weighted_sum", &activations, &weights)?;
    Ok(weighted_sum_unchecked(activations, weights))
}

/// [`weighted_sum`] with the channel axis cut into `splits` parts, each summed by its own GPU
/// thread and the parts added by a second reduction (split-K): more threads for maps of few
/// pixels and many channels (ResNet-50's `layer4`: 49 pixels, 2048 channels). The same matrix
/// product as [`weighted_sum`] on the CPU backends. Measured against [`weighted_sum`] in
/// BENCHMARKS.md.
///
/// # Shapes
/// As [`weighted_sum`].
///
/// # Errors
/// As [`weighted_sum`], and for `splits == 0`.
pub fn weighted_sum_split(
    activations: Tensor<4>,
    weights: Tensor<3>,
    splits: usize,
) -> Result<Tensor<4>> {
    check_shapes("weighted_sum_split", &activations, &weights)?;
    if splits == 0 {
        return Err(GradCamError::argument(format!(
            "weighted_sum_split: {splits} splits"
        )));
    }
    Ok(sum_in_parts(activations, weights, splits))
}

/// [`weighted_sum`] for callers that built the shapes themselves.
///
/// # Panics
/// If the shapes do not fit (a bug in the caller: the GPU kernel would read out of bounds).
pub(crate) fn weighted_sum_unchecked(activations: Tensor<4>, weights: Tensor<3>) -> Tensor<4> {
    let [b, k, h, w] = activations.dims();
    let [wb, m, wk] = weights.dims();
    assert_eq!(
        [wb, wk],
        [b, k],
        "weighted_sum: weights {:?} for activations {:?}",
        [wb, m, wk],
        [b, k, h, w]
    );
    // Split-K where it was measured to win (H200, BENCHMARKS.md): 2048 and 1280 channels of 49
    // pixels, 2x faster; no gain at 512 channels. The CPU backends ignore the split.
    let splits = if k >= SPLIT_K_FROM { SPLITS } else { 1 };
    sum_in_parts(activations, weights, splits)
}

/// The backend op on Burn tensors: `[b, k, h, w]` and `[b, m, k]` to `[b, m, h, w]`.
fn sum_in_parts(activations: Tensor<4>, weights: Tensor<3>, splits: usize) -> Tensor<4> {
    let [b, k, h, w] = activations.dims();
    let [_, m, _] = weights.dims();
    let acts = activations.reshape([b, k, h * w]).into_dispatch();
    let out = <burn::backend::Dispatch as CamBackend>::cam_weighted_sum(
        acts,
        weights.into_dispatch(),
        splits,
    );
    Tensor::<3>::from_dispatch(out).reshape([b, m, h, w])
}

/// [`InputError::Argument`](crate::InputError::Argument) unless the weights' batch and channel counts are the
/// activations' and nothing is empty; `what` names the function.
fn check_shapes(what: &str, activations: &Tensor<4>, weights: &Tensor<3>) -> Result<()> {
    let [b, k, h, w] = activations.dims();
    let [wb, m, wk] = weights.dims();
    if [wb, wk] != [b, k] || b * k * h * w * m == 0 {
        return Err(GradCamError::argument(format!(
            "{what}: weights {:?} do not fit activations {:?} (expected [{b}, m, {k}], nothing \
             empty)",
            [wb, m, wk],
            [b, k, h, w]
        )));
    }
    Ok(())
}

/// The channel count from which [`weighted_sum`] sums in [`SPLITS`] parts.
const SPLIT_K_FROM: usize = 1024;

/// The parts of a split-K weighted sum (8 to 32 measured within 10 % of each other).
const SPLITS: usize = 8;

/// The tensor-op reference: one batched matrix product.
///
/// # Shapes
/// - `activations`: `[b, k, h, w]`
/// - `weights`: `[b, m, k]`
/// - returns `[b, m, h, w]`
#[cfg(test)]
pub(crate) fn weighted_sum_reference(activations: Tensor<4>, weights: Tensor<3>) -> Tensor<4> {
    let [b, k, h, w] = activations.dims();
    let [_, m, _] = weights.dims();
    weights
        .matmul(activations.reshape([b, k, h * w])) // [b, m, h * w]
        .reshape([b, m, h, w])
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::host::read;
    use burn::tensor::{Device, TensorData};

    /// `len` values in `[-scale, scale)` from a fixed-seed LCG.
    fn tensor<const D: usize>(
        seed: u64,
        shape: [usize; D],
        scale: f32,
        device: &Device,
    ) -> Tensor<D> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let values: Vec<f32> = (0..shape.iter().product())
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// `gamma_n = n u / (1 - n u)`, `u = 2^-24`: a float32 sum of `n` terms in any order is
    /// within `gamma_n` times the sum of their magnitudes of the exact sum (Higham, eq. 3.5).
    fn gamma(n: usize) -> f32 {
        let nu = n as f32 / (1u64 << 24) as f32;
        nu / (1.0 - nu)
    }

    /// `(b, k, h, w, m)`: odd sizes, one pixel, one channel, batches of 1 and 33, pixel counts
    /// that are not multiples of a workgroup.
    const SHAPES: [[usize; 5]; 7] = [
        [1, 1, 1, 1, 1],
        [33, 3, 5, 7, 2],
        [2, 17, 13, 11, 3],
        [1, 64, 1, 1, 1],
        [3, 1, 16, 16, 1],
        [1, 300, 7, 7, 1],
        [2, 1280, 7, 7, 2], // from 1024 channels `weighted_sum` splits
    ];

    /// Both the op and the reference sum `k` products per output: each is within
    /// `gamma_(k+1) sum |w a|` of the exact value, so they differ by at most twice that.
    fn against_reference(device: &Device) {
        for (i, [b, k, h, w, m]) in SHAPES.into_iter().enumerate() {
            let acts = tensor(300 + i as u64, [b, k, h, w], 2.0, device);
            let weights = tensor(400 + i as u64, [b, m, k], 1.0, device);
            let got = weighted_sum(acts.clone(), weights.clone()).unwrap();
            assert_eq!(got.dims(), [b, m, h, w]);
            // Split-K sums the same products in another grouping: within the same bound.
            let split = weighted_sum_split(acts.clone(), weights.clone(), 1 + i % 4 * 3).unwrap();
            let split = read(split);
            let bound = read(weighted_sum_reference(
                acts.clone().abs(),
                weights.clone().abs(),
            ));
            let expected = read(weighted_sum_reference(acts, weights));
            for (j, ((g, e), s)) in read(got).iter().zip(&expected).zip(&bound).enumerate() {
                let tol = 2.0 * gamma(k + 1) * s * (1.0 + 2.0 * gamma(k + 1));
                assert!(
                    (g - e).abs() <= tol,
                    "shape {:?} value {j}: {g} vs {e}",
                    [b, k, h, w, m]
                );
                assert!(
                    (split[j] - e).abs() <= tol,
                    "split-K, shape {:?} value {j}: {} vs {e}",
                    [b, k, h, w, m],
                    split[j]
                );
            }
        }
    }

    #[test]
    fn the_op_matches_the_tensor_op_reference_on_cpu() {
        against_reference(&Device::flex());
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
        against_reference(&Device::ndarray());
    }

    #[cfg(feature = "wgpu")]
    #[test]
    #[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
    fn wgpu_kernel_matches_the_tensor_op_reference() {
        let device = Device::wgpu(Default::default());
        device
            .identity()
            .expect("a wgpu adapter: install a Vulkan driver (lavapipe: mesa-vulkan-drivers)");
        against_reference(&device);
    }

    #[test]
    fn gradients_through_the_op_equal_the_reference() {
        let device = Device::flex();
        let [b, k, h, w, m] = [3, 5, 4, 6, 2];
        let probe = tensor(7, [b, m, h, w], 1.0, &device);
        let grads = |use_op: bool| {
            let acts = tensor(5, [b, k, h, w], 1.0, &device)
                .autodiff()
                .require_grad();
            let weights = tensor(6, [b, m, k], 1.0, &device).autodiff().require_grad();
            let out = if use_op {
                weighted_sum(acts.clone(), weights.clone()).unwrap()
            } else {
                weighted_sum_reference(acts.clone(), weights.clone())
            };
            let g = (out * probe.clone()).sum().backward();
            (
                read(acts.grad(&g).unwrap()),
                read(weights.grad(&g).unwrap()),
            )
        };
        let (ka, kw) = grads(true);
        let (ra, rw) = grads(false);
        // dA sums m products per value, dW sums h w: both paths are matmuls of the same
        // values, each within gamma of the exact; |probe|, |w|, |a| <= 1 bound every term.
        for (got, want, n) in [(&ka, &ra, m), (&kw, &rw, h * w)] {
            for (g, r) in got.iter().zip(want.iter()) {
                assert!((g - r).abs() <= 2.0 * gamma(n + 1) * n as f32, "{g} vs {r}");
            }
        }
        assert!(
            ka.iter().any(|v| v.abs() > 1e-3),
            "the gradient is not trivially zero"
        );
    }
}
