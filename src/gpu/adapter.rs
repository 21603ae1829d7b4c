//! Choosing an adapter: what a run asks for ([`AdapterRequest`], from the caller or the
//! environment), what each adapter offers ([`AdapterSummary`]), and which one is taken.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::gpu::kernels::KernelVariant;
use crate::gpu::storage::XStorage;

/// Which adapter to use. The default reads `WGPU_BACKEND` (e.g. `vulkan`, `gl`) and
/// `WGPU_ADAPTER_NAME` (a case-insensitive substring of the adapter's name).
#[derive(Debug, Clone, Default)]
pub struct AdapterRequest {
    /// Backends to consider; `None` takes `WGPU_BACKEND`, or every backend wgpu was built with.
    pub backends: Option<wgpu::Backends>,
    /// Substring of the adapter name; `None` takes `WGPU_ADAPTER_NAME`, or any adapter.
    pub name: Option<String>,
    /// Longest wait for one submission, `None` for the default of 600 s.
    pub timeout: Option<Duration>,
    /// Matrix-product kernels; `None` takes `SOFTMAX_REGRESSION_KERNELS` (`register`,
    /// `coalesced`, `auto`, or with the kernel lab `tiled`), else register kernels on CPU
    /// adapters and [`KernelVariant::Auto`] (the coalesced kernels) on GPUs.
    pub kernels: Option<KernelVariant>,
    /// Whether full-batch passes with K ≤ 16 use the single-pass fused kernel of the
    /// kernel lab (cargo feature `kernel-lab`; a build without it refuses `Some(true)`);
    /// `None` takes `SOFTMAX_REGRESSION_FUSED` (`1` turns it on), else off.
    pub fused: Option<bool>,
    /// Most bytes of device memory this context's buffers may hold at once (see
    /// [`GpuContext::set_memory_budget`](super::GpuContext::set_memory_budget)); `None`,
    /// the default, leaves it to the device.
    pub memory_budget: Option<u64>,
    /// How X is stored on the device: f32 (the default), or compactly as f16 or u8 codes
    /// (see [`XStorage`]). Every dataset put on this context is stored so.
    pub x_storage: XStorage,
    /// Whether the register kernels share the rows of Θ and of P − Y that every invocation
    /// reads through subgroup operations, one load per lane instead of sixteen (on
    /// lavapipe the step is 3–4× faster; BENCHMARKS.md). `None` takes
    /// `SOFTMAX_REGRESSION_SUBGROUPS` (`1` or `0`), else on for CPU adapters whose
    /// subgroups have at least 8 invocations and off elsewhere. `Some(true)` fails on an
    /// adapter without them.
    pub subgroups: Option<bool>,
    /// The adapter at this index of [`list_adapters`] for the request's backends (as the
    /// binary's `info` numbers them), instead of the best one; the name filter is then
    /// not used.
    pub index: Option<usize>,
}

impl AdapterRequest {
    /// A request for one named backend (`vulkan`, `gl`, `metal`, `dx12`).
    pub fn backend(name: &str) -> Result<Self> {
        let backends = match name.to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => wgpu::Backends::VULKAN,
            "gl" | "gles" | "opengl" => wgpu::Backends::GL,
            "metal" | "mtl" => wgpu::Backends::METAL,
            "dx12" | "d3d12" => wgpu::Backends::DX12,
            _ => {
                return Err(Error::setting(
                    "backend",
                    name,
                    "expected one of vulkan, gl, metal, dx12",
                ));
            }
        };
        Ok(AdapterRequest {
            backends: Some(backends),
            ..Default::default()
        })
    }

    pub(super) fn resolved_backends(&self) -> wgpu::Backends {
        self.backends
            .or_else(wgpu::Backends::from_env)
            .unwrap_or(wgpu::Backends::all())
    }

    pub(super) fn resolved_kernels(&self, device_type: wgpu::DeviceType) -> Result<KernelVariant> {
        if let Some(v) = self.kernels {
            return Ok(v);
        }
        match std::env::var("SOFTMAX_REGRESSION_KERNELS").ok().as_deref() {
            #[cfg(feature = "kernel-lab")]
            Some("tiled") => Ok(KernelVariant::Tiled),
            #[cfg(not(feature = "kernel-lab"))]
            Some("tiled") => Err(Error::setting(
                "SOFTMAX_REGRESSION_KERNELS",
                "tiled",
                LAB_ONLY,
            )),
            Some("register") => Ok(KernelVariant::Register),
            Some("coalesced") => Ok(KernelVariant::Coalesced),
            Some("auto") | Some("") | None => Ok(if device_type == wgpu::DeviceType::Cpu {
                KernelVariant::Register
            } else {
                KernelVariant::Auto
            }),
            Some(other) => Err(Error::setting(
                "SOFTMAX_REGRESSION_KERNELS",
                other,
                "expected `tiled`, `register`, `coalesced` or `auto`",
            )),
        }
    }

    pub(super) fn resolved_subgroups(
        &self,
        summary: &AdapterSummary,
        capable: bool,
    ) -> Result<bool> {
        let wanted = match self.subgroups {
            Some(v) => Some(v),
            None => match std::env::var("SOFTMAX_REGRESSION_SUBGROUPS")
                .ok()
                .as_deref()
            {
                Some("1") | Some("on") => Some(true),
                Some("0") | Some("off") => Some(false),
                Some("") | None => None,
                Some(other) => {
                    return Err(Error::setting(
                        "SOFTMAX_REGRESSION_SUBGROUPS",
                        other,
                        "expected `1` or `0`",
                    ));
                }
            },
        };
        match wanted {
            Some(true) if !capable => Err(Error::setting(
                "subgroups",
                true,
                format!(
                    "the adapter {} has no subgroup operations with subgroups of 8 or more invocations",
                    summary.name
                ),
            )),
            Some(v) => Ok(v),
            None => Ok(capable && summary.device_type == wgpu::DeviceType::Cpu),
        }
    }

    /// Whether the fused kernel is wanted: the request's choice, else
    /// `SOFTMAX_REGRESSION_FUSED` (`1` turns it on), else off. It is off by default: on
    /// lavapipe it measured slower than the unfused register kernels (BENCHMARKS.md), and on
    /// GPUs its row blocks, which follow the gradient kernel's, would be too few to fill the
    /// device. Only a build with the kernel lab has it.
    pub(super) fn resolved_fused(&self) -> Result<bool> {
        let wanted = self.fused.unwrap_or_else(|| {
            matches!(
                std::env::var("SOFTMAX_REGRESSION_FUSED").ok().as_deref(),
                Some("1") | Some("on")
            )
        });
        if wanted && !cfg!(feature = "kernel-lab") {
            return Err(Error::setting("fused", true, LAB_ONLY));
        }
        Ok(wanted)
    }

    pub(super) fn resolved_name(&self) -> Option<String> {
        self.name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|s| !s.is_empty())
    }
}

/// Why a kernel-lab choice is refused by a build without the lab.
const LAB_ONLY: &str = "that kernel is kept in the kernel lab, outside the default build: build with `--features kernel-lab`";

/// What `info` shows about one adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// The adapter's name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Backend: Vulkan, Gl, Metal, Dx12.
    pub backend: wgpu::Backend,
    /// Discrete, integrated, virtual, CPU or other.
    pub device_type: wgpu::DeviceType,
    /// Driver name and version.
    pub driver: String,
    /// Whether it can run compute shaders.
    pub compute: bool,
    /// The limits that decide chunk and dispatch sizes.
    pub limits: wgpu::Limits,
}

impl AdapterSummary {
    /// Whether the adapter is a software rasteriser (Mesa's llvmpipe or lavapipe, WARP),
    /// which computes more slowly than the CPU engine.
    pub fn is_software(&self) -> bool {
        self.device_type == wgpu::DeviceType::Cpu
    }
}

pub(super) fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

pub(super) fn summarize(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    AdapterSummary {
        name: info.name,
        backend: info.backend,
        device_type: info.device_type,
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
        compute: adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS),
        limits: adapter.limits(),
    }
}

/// Lower is preferred: real GPUs first, then virtual, then software, then the rest.
fn rank(s: &AdapterSummary) -> (u8, u8) {
    let ty = match s.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match s.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    };
    (ty, backend)
}

/// Every adapter wgpu finds for the request's backends (ignoring the name filter), and the
/// index of the one [`GpuContext::new`](super::GpuContext::new) would pick, if any.
pub fn list_adapters(request: &AdapterRequest) -> (Vec<AdapterSummary>, Option<usize>) {
    let adapters = pollster::block_on(
        instance(request.resolved_backends()).enumerate_adapters(request.resolved_backends()),
    );
    let summaries: Vec<AdapterSummary> = adapters.iter().map(summarize).collect();
    let pick = choose(&summaries, request.resolved_name().as_deref());
    (summaries, pick)
}

/// Why `auto` should take the CPU engine rather than open `request`'s adapter: the best
/// adapter is a software rasteriser (Mesa's llvmpipe or lavapipe), which computes more
/// slowly than the CPU engine, or no adapter was found. `None` when there is a real GPU,
/// or when `WGPU_BACKEND` or `WGPU_ADAPTER_NAME` ask for an adapter.
pub fn software_only(request: &AdapterRequest) -> Option<String> {
    let asked_by_env = ["WGPU_BACKEND", "WGPU_ADAPTER_NAME"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if asked_by_env {
        return None;
    }
    let (adapters, pick) = list_adapters(request);
    match pick.map(|i| &adapters[i]) {
        Some(a) if !a.is_software() => None,
        Some(a) => Some(format!(
            "the best adapter, {}, is a software rasteriser",
            a.name
        )),
        None => Some("no GPU adapter was found".to_string()),
    }
}

/// The adapters a list names, in its order: `all` (every adapter with compute shaders),
/// or entries separated by commas, each an index as [`list_adapters`] numbers them or a
/// fragment of an adapter's name or backend (`vulkan`, `gl`). Refused, with the reason:
/// an empty entry, an unknown index or name, an adapter named twice, or none found.
pub fn choose_adapters(
    request: &AdapterRequest,
    spec: &str,
) -> std::result::Result<Vec<usize>, String> {
    let (adapters, _) = list_adapters(request);
    let usable: Vec<usize> = (0..adapters.len())
        .filter(|&i| adapters[i].compute)
        .collect();
    let listed = || {
        usable
            .iter()
            .map(|&i| format!("{i}: {} ({:?})", adapters[i].name, adapters[i].backend))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut chosen: Vec<usize> = Vec::new();
    for entry in spec.split(',').map(str::trim) {
        let found: Vec<usize> = match entry {
            "all" => usable.clone(),
            "" => return Err("an entry is empty".into()),
            e if e.chars().all(|c| c.is_ascii_digit()) => {
                let i: usize = e.parse().unwrap_or(usize::MAX);
                if !usable.contains(&i) {
                    return Err(format!(
                        "there is no adapter {e} with compute shaders (found {})",
                        listed()
                    ));
                }
                vec![i]
            }
            name => {
                let lower = name.to_lowercase();
                // The name or the backend ("vulkan", "gl"), as `info` shows them.
                let label = |i: usize| {
                    format!("{} {:?}", adapters[i].name, adapters[i].backend).to_lowercase()
                };
                match usable.iter().find(|&&i| label(i).contains(&lower)) {
                    Some(&i) => vec![i],
                    None => {
                        return Err(format!(
                            "no adapter's name or backend contains {name:?} (found {})",
                            listed()
                        ));
                    }
                }
            }
        };
        for i in found {
            if chosen.contains(&i) {
                return Err(format!("adapter {i} ({}) is named twice", adapters[i].name));
            }
            chosen.push(i);
        }
    }
    if chosen.is_empty() {
        return Err("no adapter with compute shaders was found".into());
    }
    Ok(chosen)
}

pub(super) fn choose(summaries: &[AdapterSummary], name: Option<&str>) -> Option<usize> {
    let name = name.map(str::to_lowercase);
    summaries
        .iter()
        .enumerate()
        .filter(|(_, s)| s.compute)
        .filter(|(_, s)| {
            name.as_ref()
                .is_none_or(|n| s.name.to_lowercase().contains(n))
        })
        .min_by_key(|(i, s)| (rank(s), *i))
        .map(|(i, _)| i)
}
