//! Everything that touches wgpu: the device context, the kernels, and problems resident
//! on the device.

mod adapter;
pub(crate) mod chunks;
mod context;
pub(crate) mod kernels;
pub mod single;
mod storage;

pub use crate::util::{human_bytes, parse_size};
pub use adapter::{AdapterRequest, AdapterSummary, choose_adapters, list_adapters, software_only};
pub use chunks::ChunkPlan;
pub use context::GpuContext;
pub use kernels::KernelVariant;
pub use storage::{F16_MAX, XStorage};
