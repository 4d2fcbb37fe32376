//! The device kernels behind the methods, public for benchmarks and for methods of your own:
//! the weighted channel sum `sum_k w_k A^k` (a CubeCL kernel on `wgpu`/`vulkan`, a batched
//! matrix product on the CPU backends) and its split-K variant for GPUs; the guided ReLU of guided
//! backpropagation (crate-private: models reach it through `Probe::relu`).

pub(crate) mod guided_relu;
pub(crate) mod weighted_sum;

pub use weighted_sum::{weighted_sum, weighted_sum_split};
