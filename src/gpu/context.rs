//! The device context: the device created on the adapter that [`super::adapter`] chooses,
//! with the adapter's own limits; the kernels compiled once; device memory counted against
//! an optional budget; and the error plumbing that turns wgpu's validation, out-of-memory
//! and device-lost reports into [`Error`]s instead of panics. Every wait on the device is
//! bounded by a timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::gpu::adapter::{AdapterRequest, AdapterSummary, choose, instance, summarize};
use crate::gpu::kernels::{CoalescedTuning, KernelVariant, Kernels};
use crate::gpu::storage::XStorage;
use crate::util::human_bytes;

/// How long one poll of a wait blocks before the device-lost state is looked at again.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The kernels `request` chooses, compiled for the device.
fn compile_kernels(
    device: &wgpu::Device,
    request: &AdapterRequest,
    summary: &AdapterSummary,
    subgroups: bool,
) -> Result<Kernels> {
    let max_dim = summary.limits.max_compute_workgroups_per_dimension;
    let variant = request.resolved_kernels(summary.device_type)?;
    let tuning = CoalescedTuning::from_env()?;
    let fused = request.resolved_fused()?;
    scoped(device, "compiling the kernels", |device| {
        Kernels::new(
            device,
            max_dim,
            variant,
            request.x_storage,
            subgroups,
            fused,
            tuning,
        )
    })
}

/// Runs `f` inside out-of-memory and validation error scopes of `device`.
fn scoped<T>(
    device: &wgpu::Device,
    context: &str,
    f: impl FnOnce(&wgpu::Device) -> T,
) -> Result<T> {
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let out = f(device);
    let validation = pollster::block_on(validation.pop());
    let oom = pollster::block_on(oom.pop());
    if let Some(e) = oom {
        return Err(Error::OutOfMemory {
            context: format!("{context} ({e})"),
        });
    }
    if let Some(e) = validation {
        return Err(Error::Gpu {
            context: context.to_string(),
            message: e.to_string(),
        });
    }
    Ok(out)
}

/// Device errors reported outside an error scope, and the device-lost message.
#[derive(Default)]
struct Faults {
    uncaptured: Vec<wgpu::Error>,
    lost: Option<String>,
}

/// A wgpu device and queue with the crate's compiled kernels. Create one and reuse it:
/// compiling the pipelines is the expensive part.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) kernels: Kernels,
    summary: AdapterSummary,
    faults: Arc<Mutex<Faults>>,
    timeout: Duration,
    memory: Arc<Memory>,
    /// Held while polling the device: wgpu 30's `Device::poll` from two threads at once
    /// can trip an assertion inside wgpu-core (a race between their fence samples), and a
    /// context may be shared between threads.
    polls: Mutex<()>,
}

/// Bytes held by this context's storage and staging buffers, against an optional budget.
#[derive(Debug)]
struct Memory {
    /// `u64::MAX` when there is no budget.
    budget: AtomicU64,
    in_use: AtomicU64,
    peak: AtomicU64,
}

/// The most bytes one storage buffer may hold and bind on a device with `limits`.
pub(crate) fn binding_limit(limits: &wgpu::Limits) -> u64 {
    limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
}

/// A device buffer whose bytes count against the context's memory budget until it is
/// dropped.
#[derive(Debug)]
pub(crate) struct DeviceBuffer {
    buffer: wgpu::Buffer,
    bytes: u64,
    memory: Arc<Memory>,
}

impl std::ops::Deref for DeviceBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

/// Bytes counted against the budget without a buffer of the crate's own (see
/// [`GpuContext::reservation`]).
#[derive(Debug)]
pub(crate) struct Reservation {
    bytes: u64,
    memory: Arc<Memory>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.memory.in_use.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        self.memory.in_use.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.summary.name)
            .field("backend", &self.summary.backend)
            .finish()
    }
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

const NO_ADAPTER_HINT: &str = "On Linux without a GPU, install Mesa's software Vulkan driver \
(`apt-get install mesa-vulkan-drivers`) or use the OpenGL backend (WGPU_BACKEND=gl); \
otherwise install your GPU's Vulkan driver, or train on the CPU";

impl GpuContext {
    /// Opens the adapter the environment asks for (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`), or
    /// the best one found: discrete, integrated, virtual, then software.
    pub fn from_env() -> Result<Self> {
        Self::new(&AdapterRequest::default())
    }

    /// Opens an adapter as the request says, with the adapter's own limits (not the WebGPU
    /// defaults, so large storage buffers work), and compiles every kernel.
    pub fn new(request: &AdapterRequest) -> Result<Self> {
        let backends = request.resolved_backends();
        let name = request.resolved_name();
        let inst = instance(backends);
        let adapters = pollster::block_on(inst.enumerate_adapters(backends));
        let summaries: Vec<AdapterSummary> = adapters.iter().map(summarize).collect();
        let chosen = match request.index {
            Some(i) if summaries.get(i).is_some_and(|s| s.compute) => Some(i),
            Some(i) => {
                return Err(Error::NoAdapter {
                    tried: format!(
                        "adapter {i} of the {} found for backends {backends:?}{}",
                        summaries.len(),
                        if i < summaries.len() {
                            " (it has no compute shaders)"
                        } else {
                            ""
                        }
                    ),
                    hint: "`softmax-regression info` lists the adapters with their numbers"
                        .to_string(),
                });
            }
            None => choose(&summaries, name.as_deref()),
        };
        let Some(index) = chosen else {
            let found = if summaries.is_empty() {
                "none found".to_string()
            } else {
                summaries
                    .iter()
                    .map(|s| {
                        format!(
                            "{} ({:?}{})",
                            s.name,
                            s.backend,
                            if s.compute { "" } else { ", no compute" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let filter = name
                .map(|n| format!(", name containing {n:?}"))
                .unwrap_or_default();
            return Err(Error::NoAdapter {
                tried: format!("backends {backends:?}{filter}; adapters: {found}"),
                hint: NO_ADAPTER_HINT.to_string(),
            });
        };
        let Some(adapter) = adapters.into_iter().nth(index) else {
            return Err(Error::NoAdapter {
                tried: format!("backends {backends:?}"),
                hint: NO_ADAPTER_HINT.to_string(),
            });
        };
        let summary = summaries[index].clone();
        let subgroups = request.resolved_subgroups(
            &summary,
            adapter.features().contains(wgpu::Features::SUBGROUP)
                && adapter.get_info().subgroup_min_size >= 8,
        )?;
        let mut required_features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        if subgroups {
            required_features |= wgpu::Features::SUBGROUP;
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("softmax-regression"),
            // Timestamps, where the adapter has them, time kernels in benchmarks.
            required_features,
            required_limits: summary.limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).map_err(|e| {
            Error::RequestDevice {
                adapter: summary.name.clone(),
                message: e.to_string(),
            }
        })?;

        let faults = Arc::new(Mutex::new(Faults::default()));
        let sink = Arc::clone(&faults);
        device.on_uncaptured_error(Arc::new(move |e| {
            if let Ok(mut f) = sink.lock() {
                f.uncaptured.push(e);
            }
        }));
        let sink = Arc::clone(&faults);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut f) = sink.lock() {
                f.lost = Some(format!("{reason:?}: {message}"));
            }
        });

        let timeout = request.timeout.unwrap_or(Duration::from_secs(600));
        let kernels = compile_kernels(&device, request, &summary, subgroups)?;
        let ctx = GpuContext {
            kernels,
            device,
            queue,
            summary,
            faults,
            timeout,
            memory: Arc::new(Memory {
                budget: AtomicU64::new(request.memory_budget.unwrap_or(u64::MAX)),
                in_use: AtomicU64::new(0),
                peak: AtomicU64::new(0),
            }),
            polls: Mutex::new(()),
        };
        ctx.check("compiling the kernels")?;
        Ok(ctx)
    }

    /// Opens the adapters at `indices` of [`list_adapters`](super::list_adapters) (as
    /// [`choose_adapters`](super::choose_adapters) gives them), each with `request`'s
    /// other settings, in that order.
    pub fn open_each(request: &AdapterRequest, indices: &[usize]) -> Result<Vec<Self>> {
        indices
            .iter()
            .map(|&i| {
                GpuContext::new(&AdapterRequest {
                    index: Some(i),
                    ..request.clone()
                })
            })
            .collect()
    }

    /// Name, backend, type and limits of the adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// Which matrix-product kernels this context runs.
    pub fn kernel_variant(&self) -> KernelVariant {
        self.kernels.variant
    }

    /// How this context stores X on the device.
    pub fn x_storage(&self) -> XStorage {
        self.kernels.storage
    }

    /// The device's limits (the adapter's own, as requested).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.summary.limits
    }

    /// One line naming the adapter, for logs: `llvmpipe (LLVM 15.0.6, 256 bits) via Vulkan (Cpu)`.
    pub fn describe(&self) -> String {
        let kernels = match (self.kernel_variant(), self.kernels.subgroup_tiles) {
            #[cfg(feature = "kernel-lab")]
            (KernelVariant::Tiled, _) => "tiled",
            (KernelVariant::Register, true) => "register (subgroup-shared)",
            (KernelVariant::Register, false) => "register",
            (KernelVariant::Coalesced, _) => "coalesced",
            (KernelVariant::Auto, _) => "auto (coalesced)",
        };
        let fused = if self.kernels.fused_enabled() {
            ", fused for K ≤ 16"
        } else {
            ""
        };
        let storage = match self.x_storage() {
            XStorage::F32 => String::new(),
            other => format!(", X stored as {}", other.name()),
        };
        format!(
            "{} via {:?} ({:?}, {kernels} kernels{fused}{storage})",
            self.summary.name, self.summary.backend, self.summary.device_type
        )
    }

    /// Runs `f` inside out-of-memory and validation error scopes, turning what they catch
    /// into [`Error::OutOfMemory`] or [`Error::Gpu`].
    pub(crate) fn scoped<T>(&self, context: &str, f: impl FnOnce(&wgpu::Device) -> T) -> Result<T> {
        let out = scoped(&self.device, context, f)?;
        self.check(context)?;
        Ok(out)
    }

    /// Reports a lost device or an error raised outside any scope since the last check.
    pub(crate) fn check(&self, context: &str) -> Result<()> {
        let lock = || {
            self.faults.lock().map_err(|_| Error::Gpu {
                context: context.to_string(),
                message: "the device error handler panicked".to_string(),
            })
        };
        let errors = {
            let faults = lock()?;
            if let Some(message) = faults.lost.clone() {
                return Err(Error::DeviceLost { message });
            }
            !faults.uncaptured.is_empty()
        };
        if errors {
            // Errors often follow a lost device, whose callback runs during a poll: give it
            // the chance, so the loss is what gets reported.
            let _ = self.poll(wgpu::PollType::Poll);
        }
        let mut faults = lock()?;
        if let Some(message) = faults.lost.clone() {
            return Err(Error::DeviceLost { message });
        }
        if let Some(e) = faults.uncaptured.drain(..).next() {
            return Err(match e {
                wgpu::Error::OutOfMemory { .. } => Error::OutOfMemory {
                    context: context.to_string(),
                },
                other => Error::Gpu {
                    context: context.to_string(),
                    message: other.to_string(),
                },
            });
        }
        Ok(())
    }

    /// Submits encoded work and waits for it, bounded by the context's timeout.
    pub(crate) fn submit_and_wait(
        &self,
        commands: wgpu::CommandBuffer,
        context: &str,
    ) -> Result<()> {
        let index = self.queue.submit([commands]);
        self.wait(Some(index), context)
    }

    /// Submits encoded work without waiting; errors surface at the next wait or check.
    pub(crate) fn submit(&self, commands: wgpu::CommandBuffer) -> wgpu::SubmissionIndex {
        self.queue.submit([commands])
    }

    /// Polls the device, one thread at a time.
    fn poll(&self, kind: wgpu::PollType) -> std::result::Result<wgpu::PollStatus, wgpu::PollError> {
        let _one_at_a_time = self.polls.lock().unwrap_or_else(|e| e.into_inner());
        self.device.poll(kind)
    }

    pub(crate) fn wait(&self, index: Option<wgpu::SubmissionIndex>, context: &str) -> Result<()> {
        // Wait in short slices and look for a lost device between them: some drivers never
        // signal the work of a device that was lost or destroyed, so a single long wait
        // would only end at the timeout.
        let started = std::time::Instant::now();
        let poll = loop {
            let left = self.timeout.saturating_sub(started.elapsed());
            let poll = self.poll(wgpu::PollType::Wait {
                submission_index: index.clone(),
                timeout: Some(left.min(WAIT_SLICE)),
            });
            match poll {
                Err(wgpu::PollError::Timeout) if left > WAIT_SLICE => self.check(context)?,
                other => break other,
            }
        };
        match poll {
            Ok(_) => self.check(context),
            Err(wgpu::PollError::Timeout) => Err(Error::Timeout {
                context: context.to_string(),
                seconds: self.timeout.as_secs(),
            }),
            Err(e) => {
                // A lost device makes the poll fail too; report the loss, which says more.
                let _ = self.poll(wgpu::PollType::Poll);
                self.check(context)?;
                Err(Error::Gpu {
                    context: context.to_string(),
                    message: e.to_string(),
                })
            }
        }
    }

    /// Creates a storage buffer of `bytes` bytes, rounded up to a whole multiple of 16 (the
    /// kernels read X, Θ and P − Y as groups of four words), checked against the device's
    /// limits first.
    pub(crate) fn storage_buffer(&self, label: &str, bytes: u64) -> Result<DeviceBuffer> {
        let bytes = bytes.max(16).next_multiple_of(16);
        let limit = binding_limit(&self.summary.limits);
        if bytes > limit {
            return Err(Error::OutOfMemory {
                context: format!(
                    "allocating {label}: {bytes} bytes is over the device's {limit}-byte buffer limit"
                ),
            });
        }
        self.tracked(label, bytes, STORAGE, false)
    }

    /// Creates a buffer after reserving its bytes against the budget.
    fn tracked(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
        mapped_at_creation: bool,
    ) -> Result<DeviceBuffer> {
        self.reserve(label, bytes)?;
        let created = self.scoped(&format!("allocating {label} ({bytes} bytes)"), |device| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation,
            })
        });
        match created {
            Ok(buffer) => Ok(DeviceBuffer {
                buffer,
                bytes,
                memory: Arc::clone(&self.memory),
            }),
            Err(e) => {
                self.memory.in_use.fetch_sub(bytes, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// Counts `bytes` of memory the crate uses outside its own buffers (wgpu's upload
    /// staging) against the budget until the returned guard is dropped.
    pub(crate) fn reservation(&self, label: &str, bytes: u64) -> Result<Reservation> {
        self.reserve(label, bytes)?;
        Ok(Reservation {
            bytes,
            memory: Arc::clone(&self.memory),
        })
    }

    /// Counts `bytes` as in use, or fails when that would pass the budget.
    fn reserve(&self, label: &str, bytes: u64) -> Result<()> {
        let m = &self.memory;
        let budget = m.budget.load(Ordering::SeqCst);
        let mut in_use = m.in_use.load(Ordering::SeqCst);
        loop {
            let after = in_use.saturating_add(bytes);
            if after > budget {
                return Err(Error::OutOfMemory {
                    context: format!(
                        "allocating {label}: {} would bring device memory in use to {}, over the budget of {}",
                        human_bytes(bytes),
                        human_bytes(after),
                        human_bytes(budget)
                    ),
                });
            }
            match m
                .in_use
                .compare_exchange(in_use, after, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    m.peak.fetch_max(after, Ordering::SeqCst);
                    return Ok(());
                }
                Err(now) => in_use = now,
            }
        }
    }

    /// Destroys the device, as a driver reset or a removed GPU would; every later use
    /// fails with [`Error::DeviceLost`]. For testing the error paths.
    #[doc(hidden)]
    pub fn destroy_device(&self) {
        self.device.destroy();
    }

    /// Whether kernel times can come from GPU timestamps (the adapter has
    /// `TIMESTAMP_QUERY`).
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// A buffer that query results resolve into and are copied out of.
    pub(crate) fn query_buffer(&self, bytes: u64) -> Result<DeviceBuffer> {
        self.tracked(
            "timestamp results",
            bytes,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            false,
        )
    }

    /// Caps the device memory this context's buffers may hold at once (`None`: no cap).
    /// Allocations that would pass it fail with [`Error::OutOfMemory`], as a full device
    /// would; the trainer then plans smaller chunks, or streams the data.
    pub fn set_memory_budget(&self, bytes: Option<u64>) {
        self.memory
            .budget
            .store(bytes.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// The budget set by [`GpuContext::set_memory_budget`] or the request.
    pub fn memory_budget(&self) -> Option<u64> {
        match self.memory.budget.load(Ordering::SeqCst) {
            u64::MAX => None,
            b => Some(b),
        }
    }

    /// Bytes the context's storage and staging buffers hold now.
    pub fn memory_in_use(&self) -> u64 {
        self.memory.in_use.load(Ordering::SeqCst)
    }

    /// The most bytes held at once since the context was made or the last
    /// [`GpuContext::reset_memory_peak`].
    pub fn memory_peak(&self) -> u64 {
        self.memory.peak.load(Ordering::SeqCst)
    }

    /// Starts a new peak measurement from the bytes in use now.
    pub fn reset_memory_peak(&self) {
        self.memory
            .peak
            .store(self.memory.in_use.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Creates a storage buffer holding `data`, written through a mapping at creation (no
    /// staging copy), padded with zeros to a whole multiple of 16 bytes (the kernels read X,
    /// Θ and P − Y as groups of four words).
    pub(crate) fn storage_buffer_with<T: bytemuck::Pod>(
        &self,
        label: &str,
        data: &[T],
    ) -> Result<DeviceBuffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let size = (bytes.len() as u64).max(16).next_multiple_of(16);
        let limit = binding_limit(&self.summary.limits);
        if size > limit {
            return Err(Error::OutOfMemory {
                context: format!(
                    "allocating {label}: {size} bytes is over the device's {limit}-byte buffer limit"
                ),
            });
        }
        let buffer = self.tracked(label, size, STORAGE, true)?;
        {
            let mut view = buffer
                .slice(..)
                .get_mapped_range_mut()
                .map_err(|e| Error::Gpu {
                    context: format!("mapping {label} for upload"),
                    message: format!("{e:?}"),
                })?;
            view.slice(..bytes.len()).copy_from_slice(bytes);
            view.slice(bytes.len()..).fill(0);
        }
        buffer.unmap();
        Ok(buffer)
    }

    /// Reads `len` f32 values from each `(buffer, first element)` in one submission.
    pub(crate) fn read_f32(
        &self,
        ranges: &[(&wgpu::Buffer, u64, usize)],
        context: &str,
    ) -> Result<Vec<Vec<f32>>> {
        self.read_f32_via(None, ranges, context)
    }

    /// A mappable buffer of `bytes` for [`GpuContext::read_f32_via`], counted against the
    /// budget like every other buffer.
    pub(crate) fn readback_buffer(&self, bytes: u64) -> Result<DeviceBuffer> {
        self.tracked(
            "readback staging",
            bytes.max(4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            false,
        )
    }

    /// [`GpuContext::read_f32`] through `staging` (from [`GpuContext::readback_buffer`])
    /// when it is given and large enough, else through a new staging buffer.
    pub(crate) fn read_f32_via(
        &self,
        staging: Option<&DeviceBuffer>,
        ranges: &[(&wgpu::Buffer, u64, usize)],
        context: &str,
    ) -> Result<Vec<Vec<f32>>> {
        self.read_via(
            staging,
            ranges,
            context,
            bytemuck::pod_collect_to_vec::<u8, f32>,
        )
    }

    /// Copies each range of f32 values into the staging buffer (as in
    /// [`GpuContext::read_f32_via`]) in one submission, maps it and hands each range's
    /// bytes to `decode` (e.g. [`widen_f32`]).
    pub(crate) fn read_via<T>(
        &self,
        staging: Option<&DeviceBuffer>,
        ranges: &[(&wgpu::Buffer, u64, usize)],
        context: &str,
        decode: impl Fn(&[u8]) -> Vec<T>,
    ) -> Result<Vec<Vec<T>>> {
        let total: u64 = ranges
            .iter()
            .map(|r| (r.2 as u64 * 4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT))
            .sum();
        let own;
        let staging: &DeviceBuffer = match staging {
            Some(s) if s.bytes >= total => s,
            _ => {
                own = self.readback_buffer(total)?;
                &own
            }
        };
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        let mut offset = 0u64;
        for &(buffer, first, len) in ranges {
            let bytes = len as u64 * 4;
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(buffer, first * 4, staging, offset, bytes);
            }
            offset += bytes.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        }
        let index = self.queue.submit([encoder.finish()]);
        let mapped: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> =
            Arc::default();
        let slot = Arc::clone(&mapped);
        // Only the bytes copied: the staging buffer may be much larger (it also serves a
        // chunk's logits), and mapping costs in proportion to the range.
        staging
            .slice(..total)
            .map_async(wgpu::MapMode::Read, move |r| {
                if let Ok(mut s) = slot.lock() {
                    *s = Some(r);
                }
            });
        self.wait(Some(index), context)?;
        // The map callback runs during a poll, possibly one made by another thread sharing
        // the device; keep polling until it has run or the timeout passes.
        let started = std::time::Instant::now();
        let state = loop {
            if let Some(s) = mapped.lock().ok().and_then(|s| s.clone()) {
                break Some(s);
            }
            if started.elapsed() >= self.timeout {
                break None;
            }
            self.wait(None, context)?;
            if mapped.lock().ok().and_then(|s| s.clone()).is_none() {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        };
        match state {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(Error::Gpu {
                    context: context.to_string(),
                    message: e.to_string(),
                });
            }
            None => {
                return Err(Error::Timeout {
                    context: format!("{context} (mapping)"),
                    seconds: self.timeout.as_secs(),
                });
            }
        }
        let out = {
            let view = staging
                .slice(..total)
                .get_mapped_range()
                .map_err(|e| Error::Gpu {
                    context: context.to_string(),
                    message: format!("{e:?}"),
                })?;
            let mut out = Vec::with_capacity(ranges.len());
            let mut offset = 0usize;
            for &(_, _, len) in ranges {
                let bytes = &view[offset..offset + len * 4];
                out.push(decode(bytes));
                offset += (len * 4).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT as usize);
            }
            out
        };
        staging.unmap();
        Ok(out)
    }
}

/// f32 values in native byte order, widened to f64 in one pass (straight from mapped
/// staging memory, with no f32 copy in between; long ones over rayon's pool).
pub(crate) fn widen_f32(bytes: &[u8]) -> Vec<f64> {
    match bytemuck::try_cast_slice::<u8, f32>(bytes) {
        Ok(values) => crate::vectors::map(values, f64::from),
        Err(_) => bytes
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_ne_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widened_readback_bytes_keep_every_value_aligned_or_not() {
        let values = [1.5f32, -0.0, f32::MIN_POSITIVE, 3.25e7, -7.0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let expected: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(widen_f32(&bytes), expected);
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        assert_eq!(widen_f32(&shifted[1..]), expected);
    }
}
