//! The backends a build can run on and their float types: the choices of `--device` and
//! `--dtype`, shared by `gradcam` and `gradcam-bench`.

use burn::tensor::{Device, FloatDType};
use clap::ValueEnum;

/// The float type the network runs in (maps are `f32` whatever it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// 16-bit floats: faster on GPUs, slower on the CPU.
    F16,
    /// bfloat16, where the backend has it (flex; not Vulkan).
    Bf16,
}

impl Backend {
    /// The device in `precision`, set before any tensor exists on it.
    pub fn device_in(self, precision: Precision) -> Result<Device, String> {
        let mut device = self.device()?;
        let dtype = match precision {
            Precision::F32 => return Ok(device),
            Precision::F16 => FloatDType::F16,
            Precision::Bf16 => FloatDType::BF16,
        };
        if !device.supports_dtype(dtype) {
            return Err(format!("{self:?} has no {dtype:?} arithmetic"));
        }
        device
            .configure(dtype)
            .map_err(|e| format!("{self:?} in {dtype:?}: {e:?}"))?;
        Ok(device)
    }
}

/// The backends this build can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Burn's flex CPU backend.
    Flex,
    /// Burn's ndarray CPU backend.
    Ndarray,
    /// wgpu (Vulkan, Metal or DX12; WGSL shaders).
    Wgpu,
    /// Vulkan with SPIR-V shaders (cooperative matrices where the GPU has them).
    Vulkan,
}

impl Backend {
    /// The device, or why this build has none.
    pub fn device(self) -> Result<Device, String> {
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Ok(Device::flex()),
            #[cfg(not(feature = "flex"))]
            Self::Flex => missing("flex"),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            // burn-ndarray is deprecated upstream, still supported here
            Self::Ndarray => Ok(Device::ndarray()),
            #[cfg(not(feature = "ndarray"))]
            Self::Ndarray => missing("ndarray"),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(Default::default())),
            #[cfg(not(feature = "wgpu"))]
            Self::Wgpu => missing("wgpu"),
            #[cfg(feature = "vulkan")]
            Self::Vulkan => Ok(Device::vulkan(Default::default())),
            #[cfg(not(feature = "vulkan"))]
            Self::Vulkan => missing("vulkan"),
        }
    }
}

/// The error for a backend this build lacks.
#[allow(dead_code)] // unused when every backend is built
fn missing(feature: &str) -> Result<Device, String> {
    Err(format!(
        "this build has no {feature}: rebuild with `--features {feature}`"
    ))
}
