//! Everything that touches wgpu: the device context, the kernels, and problems resident
//! on the device.

mod context;
pub(crate) mod kernels;
pub(crate) mod problem;
pub mod single;
mod storage;

pub use crate::util::human_bytes;
pub use context::{AdapterRequest, AdapterSummary, GpuContext, list_adapters};
pub use kernels::KernelVariant;
pub use problem::ChunkPlan;
pub use storage::{F16_MAX, XStorage};
