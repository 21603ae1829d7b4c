//! Where a run computes: resolving `--backend` to an adapter request or the CPU engine
//! before any data is read, opening it, and describing the choice in words.

use softmax_regression::formats::{self, Format};
use softmax_regression::{AdapterRequest, Backend, GpuContext};

use crate::args::{BackendArg, TrainArgs, XStorageArg};
use crate::{CliResult, Failure};

/// Where a run computes, decided before any data is read: an adapter to open, or the CPU
/// engine (`None`), and why, when that is not what `--backend` plainly says.
pub struct Engine {
    pub request: Option<AdapterRequest>,
    pub why: Option<String>,
}

impl Engine {
    pub fn is_gpu(&self) -> bool {
        self.request.is_some()
    }
}

/// Resolves `--backend`. `auto` takes the best adapter, except that a software rasteriser
/// (Mesa's llvmpipe or lavapipe) computes more slowly than the CPU engine: when that is all
/// there is, or nothing is found, `auto` uses the CPU engine, unless the run needs an
/// adapter (`needs_adapter` says why) or `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` ask for one.
/// `--backend vulkan` or `gl` always opens the adapter.
pub fn choose_engine(
    arg: BackendArg,
    x_storage: XStorageArg,
    needs_adapter: Option<String>,
) -> CliResult<Engine> {
    let mut request = match arg {
        BackendArg::Cpu if x_storage != XStorageArg::F32 => {
            return Err(Failure::Input(format!(
                "--x-storage {} needs a GPU backend; the CPU reference (--backend cpu) computes in f64 on the values as read",
                x_storage.storage().name()
            )));
        }
        BackendArg::Cpu => {
            return Ok(Engine {
                request: None,
                why: None,
            });
        }
        BackendArg::Auto => AdapterRequest::default(),
        BackendArg::Vulkan => AdapterRequest::backend("vulkan")?,
        BackendArg::Gl => AdapterRequest::backend("gl")?,
        BackendArg::Metal => AdapterRequest::backend("metal")?,
        BackendArg::Dx12 => AdapterRequest::backend("dx12")?,
    };
    request.x_storage = x_storage.storage();
    let software = match arg {
        BackendArg::Auto => softmax_regression::gpu::software_only(&request),
        _ => None,
    };
    let Some(software) = software else {
        return Ok(Engine {
            request: Some(request),
            why: None,
        });
    };
    Ok(match needs_adapter {
        Some(reason) => Engine {
            request: Some(request),
            why: Some(format!("{software}, used because {reason}")),
        },
        None => Engine {
            request: None,
            why: Some(format!(
                "{software}, slower than the CPU engine (--backend vulkan or gl uses it anyway)"
            )),
        },
    })
}

/// Opens the engine's adapter: none for the CPU engine.
pub fn open_engine(engine: &Engine) -> CliResult<Vec<GpuContext>> {
    Ok(match &engine.request {
        Some(request) => vec![GpuContext::new(request)?],
        None => Vec::new(),
    })
}

/// Opens the adapters `--devices` names (`all`, or numbers and name fragments as `info`
/// lists them, separated by commas), in that order; without `--devices`, the engine's one
/// adapter (or none).
pub fn open_devices(engine: &Engine, spec: Option<&str>) -> CliResult<Vec<GpuContext>> {
    let (Some(spec), Some(request)) = (spec, &engine.request) else {
        return open_engine(engine);
    };
    let chosen = softmax_regression::gpu::choose_adapters(request, spec)
        .map_err(|why| Failure::Input(format!("--devices {spec} is invalid: {why}")))?;
    Ok(GpuContext::open_each(request, &chosen)?)
}

/// The engine in words, with why it was chosen when `--backend` did not say it plainly.
pub fn describe_engine(devices: &[GpuContext], engine: &Engine) -> String {
    match &engine.why {
        Some(why) => format!(
            "{}, chosen by --backend auto: {why}",
            Backend::of(devices).describe()
        ),
        None => Backend::of(devices).describe(),
    }
}

/// Why a training run cannot be served by the CPU engine, if it cannot: a device budget, a
/// device storage of X, or a `.npy` X too large to read into memory, which only the
/// adapter streams from the mapped file.
pub fn train_needs_adapter(a: &TrainArgs) -> Option<String> {
    if a.devices.is_some() {
        return Some("--devices names adapters to train on".into());
    }
    if a.max_gpu_memory.is_some() {
        return Some("--max-gpu-memory sets a device budget".into());
    }
    if a.x_storage != XStorageArg::F32 {
        return Some(format!(
            "--x-storage {} stores X on the device",
            a.x_storage.storage().name()
        ));
    }
    let path = a.data.data.as_deref()?;
    let format = a.data.data_format();
    let size = std::fs::metadata(path).ok()?.len();
    let free = formats::available_memory()?;
    (format == Some(Format::Npy) && a.validation.is_none() && size > free / 2).then(|| {
        format!(
            "X ({}) is over half the free memory ({}), so it is streamed from the mapped file",
            softmax_regression::gpu::human_bytes(size),
            softmax_regression::gpu::human_bytes(free)
        )
    })
}
