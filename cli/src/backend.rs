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
            Self::Wgpu => {
                gpu::prepare();
                Ok(Device::wgpu(Default::default()))
            }
            #[cfg(not(feature = "wgpu"))]
            Self::Wgpu => missing("wgpu"),
            #[cfg(feature = "vulkan")]
            Self::Vulkan => {
                gpu::prepare();
                Ok(Device::vulkan(Default::default()))
            }
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

/// What the command does before its first GPU device exists.
#[cfg(feature = "wgpu")]
mod gpu {
    use burn_cubecl::cubecl;
    use cubecl::config::cache::CacheConfig;
    use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    use cubecl::wgpu::wgpu;

    /// Keep CubeCL's caches out of the user's folders, and say so when the GPU is software.
    pub fn prepare() {
        caches_in_user_cache_folder();
        if let Some(warning) = software_only() {
            eprintln!("warning: {warning}");
        }
    }

    /// CubeCL keeps its autotune results and compiled kernels in `target/environment` of the
    /// outermost folder with a `Cargo.toml` above the working directory, which can be a folder
    /// of photos (the command then wrote there, and read its own cache as photos). Keep them in
    /// the user's cache folder (`~/.cache/cubecl` on Linux) instead, unless a `cubecl.toml`
    /// names another place.
    fn caches_in_user_cache_folder() {
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if matches!(config.environment.path, CacheConfig::Target) {
            config.environment.path = CacheConfig::Global;
        }
        // Set once, before any device: a second call keeps the first.
        let _ = CubeClRuntimeConfig::try_set(config);
    }

    /// A warning when every adapter wgpu finds is a software one (Mesa's lavapipe, say): it runs,
    /// but slowly, and its first call compiles for minutes.
    fn software_only() -> Option<String> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::all(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapters = cubecl::future::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let infos: Vec<_> = adapters.iter().map(wgpu::Adapter::get_info).collect();
        if infos
            .iter()
            .any(|info| info.device_type != wgpu::DeviceType::Cpu)
        {
            return None;
        }
        let names: Vec<_> = infos.iter().map(|info| info.name.as_str()).collect();
        Some(match names.is_empty() {
            true => "wgpu finds no adapter at all; the device will fail to start".to_string(),
            false => format!(
                "no GPU found: wgpu runs on the software device {}, slowly (the first call \
                 compiles for minutes); `--device flex` is faster on a CPU",
                names.join(", ")
            ),
        })
    }
}
