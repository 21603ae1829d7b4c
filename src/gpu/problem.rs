//! A problem on the device: X and the labels as row chunks (each within the device's
//! storage-binding limit), the parameters, optimizer state and scratch, and the kernels
//! bound to them once. It records the passes the oracle, the trainer and the evaluator
//! submit.
//!
//! X is resident (every chunk in its own buffer, uploaded once) when it fits the device
//! and the context's memory budget; otherwise it is streamed: two chunk-sized slots take
//! turns, and while the device computes on one chunk the host reads the next from its
//! source into the other (double buffering). The kernels, their dimensions and the order
//! of the sums are the same either way, so for the same chunk boundaries the results are
//! bit-identical.

use std::cell::RefCell;
use std::sync::Arc;

use ndarray::{ArrayView1, ArrayView2};

use crate::data::source::{ChunkSource, read_rows_parallel};
use crate::error::{Error, Result};
use crate::gpu::context::{DeviceBuffer, GpuContext, Reservation, widen_f32};
use crate::gpu::kernels::{
    Bound, CLASS_TILE, FUSED_MAX_CLASSES, FusedDims, GatherDims, Gradient, GradientDims,
    LogitsDims, ProductKind, ReduceDims, SLICES, SLICES_FEATURES, SoftmaxDims, TILE, UpdateDims,
    UpdateEntry, tile_shape,
};
use crate::gpu::storage::{XCodec, XRange, XStorage};
use crate::step::StepDims;

/// How the rows of a dataset are laid out in chunks on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Rows in every chunk but possibly the last.
    pub chunk_rows: usize,
    /// Number of chunks.
    pub chunks: usize,
}

/// Workgroups the tiled gradient kernel aims for per chunk (tiles × row blocks).
const TARGET_WORKGROUPS: u64 = 1024;

/// Fewest rows in one block of the tiled gradient kernel: shorter blocks would spend more
/// on partials (one n×K copy per block) and their reduction than they gain in parallelism.
const MIN_TILED_BLOCK_ROWS: u64 = 256;

/// Most rows in one block of the register gradient kernel.
const REGISTER_BLOCK_ROWS: u64 = 1024;

/// Fewest rows each row slice of the coalesced gradient kernel sums in a block.
const MIN_SLICE_ROWS: u64 = 16;

impl ChunkPlan {
    /// The largest chunk that keeps X (rows·n values stored as `storage`), Z (rows·K·4
    /// bytes) and every dispatch dimension within the device's limits, capped by
    /// `requested` when given.
    pub fn new(
        m: usize,
        n: usize,
        k: usize,
        storage: XStorage,
        limits: &wgpu::Limits,
        requested: Option<usize>,
    ) -> Result<Self> {
        if let Some(0) = requested {
            return Err(Error::setting("chunk_rows", 0, "must be at least 1"));
        }
        let max_bytes = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        // Whole groups of four words of X (as XStorage::bytes allocates them): a chunk's
        // rows may end inside a group, never past the limit.
        let by_x = (max_bytes / 16 * 4 * storage.per_word() as u64) / n as u64;
        let by_z = max_bytes / (4 * k as u64);
        let by_dispatch = TILE as u64 * limits.max_compute_workgroups_per_dimension as u64;
        let limit = by_x.min(by_z).min(by_dispatch).min(m as u64) as usize;
        if limit == 0 {
            return Err(Error::OutOfMemory {
                context: format!(
                    "planning row chunks: one row of {n} features or {k} classes is over the device's {max_bytes}-byte buffer limit"
                ),
            });
        }
        let chunk_rows = requested.map_or(limit, |r| r.min(limit));
        Ok(ChunkPlan {
            chunk_rows,
            chunks: m.div_ceil(chunk_rows),
        })
    }

    /// Rows of chunk `c` of a dataset of m rows.
    pub fn rows_in(&self, c: usize, m: usize) -> usize {
        (m - c * self.chunk_rows).min(self.chunk_rows)
    }
}

/// Row blocks for the gradient kernel: enough workgroups to fill the device, within the
/// partials capacity; X decoded with `codec`.
fn gradient_dims(
    gradient: &Gradient,
    rows: usize,
    n: usize,
    k: usize,
    max_blocks: u64,
    codec: XCodec,
) -> GradientDims {
    let (wanted, max_useful) = match gradient.kind() {
        ProductKind::Tiled => {
            let (bm, bn) = tile_shape(k as u32);
            let tiles = (n as u64 + 1).div_ceil(bm as u64) * (k as u64).div_ceil(bn as u64);
            (
                TARGET_WORKGROUPS.div_ceil(tiles),
                (rows as u64).div_ceil(MIN_TILED_BLOCK_ROWS),
            )
        }
        // Each invocation sums its block's rows one after another; blocks of at most
        // REGISTER_BLOCK_ROWS rows keep those f32 sums short.
        ProductKind::Register => (
            (rows as u64).div_ceil(REGISTER_BLOCK_ROWS),
            (rows as u64).div_ceil(TILE as u64),
        ),
        // Enough workgroups to fill the device, each slice summing at least
        // MIN_SLICE_ROWS rows.
        ProductKind::Coalesced => {
            let tiles = (n as u64 + 1).div_ceil(SLICES_FEATURES as u64)
                * (k as u64).div_ceil(CLASS_TILE as u64);
            (
                TARGET_WORKGROUPS.div_ceil(tiles),
                (rows as u64).div_ceil(SLICES as u64 * MIN_SLICE_ROWS),
            )
        }
    };
    let blocks = wanted.clamp(1, max_useful.max(1)).min(max_blocks.max(1));
    let rows_per_block = (rows as u64).div_ceil(blocks).next_multiple_of(TILE as u64) as u32;
    GradientDims {
        rows: rows as u32,
        n: n as u32,
        k: k as u32,
        rows_per_block,
        stride: (n * k + k + 1) as u32,
        x_lo: codec.lo,
        x_step: codec.step,
        _pad: 0,
    }
}

/// The range of every value of X (for fitting a compact storage's codec).
fn scan(x: &Rows<'_>) -> Result<XRange> {
    match x {
        Rows::View(view) => Ok(XRange::of_values(
            view.as_standard_layout().as_slice().unwrap_or(&[]),
        )),
        Rows::Shared(source) => XRange::of_source(source.as_ref()),
    }
}

/// Rows of X to put on the device: a borrowed array, or a shared source that can be
/// streamed.
pub(crate) enum Rows<'a> {
    View(ArrayView2<'a, f32>),
    Shared(Arc<dyn ChunkSource>),
}

impl Rows<'_> {
    fn dim(&self) -> (usize, usize) {
        match self {
            Rows::View(x) => x.dim(),
            Rows::Shared(s) => (s.n_rows(), s.n_features()),
        }
    }
}

/// The state of a streamed X: which chunk each slot holds and the last submission that
/// reads it.
struct Stream {
    source: Arc<dyn ChunkSource>,
    holds: [Option<usize>; 2],
    last_use: [Option<wgpu::SubmissionIndex>; 2],
    host: Vec<f32>,
    /// The rows in `host` encoded for compact storage.
    words: Vec<u32>,
    /// wgpu's staging copies of the two slots' uploads, counted against the budget.
    _staging: Reservation,
}

struct Chunk {
    rows: usize,
    /// Index into `DeviceProblem::xs`: the chunk's own buffer, or its streaming slot.
    slot: usize,
    labels: DeviceBuffer,
    weights: DeviceBuffer,
    logits: Bound<LogitsDims>,
    softmax: Bound<SoftmaxDims>,
    gradient: Bound<GradientDims>,
    /// The single-pass kernel replacing logits, softmax and gradient in full-batch passes,
    /// when the device uses it and K allows.
    fused: Option<Bound<FusedDims>>,
    reduce_first: Bound<ReduceDims>,
    reduce_next: Bound<ReduceDims>,
}

/// Device buffers for mini-batches: the gathered rows and kernels bound to them.
struct BatchSlot {
    capacity: usize,
    idx: DeviceBuffer,
    gathers: Vec<Bound<GatherDims>>,
    logits: Bound<LogitsDims>,
    softmax: Bound<SoftmaxDims>,
    gradient: Bound<GradientDims>,
    reduce: Bound<ReduceDims>,
    update: Bound<UpdateDims>,
}

/// X, labels, parameters and scratch on one device.
pub(crate) struct DeviceProblem<'c> {
    ctx: &'c GpuContext,
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) plan: ChunkPlan,
    chunks: Vec<Chunk>,
    xs: Vec<DeviceBuffer>,
    stream: Option<RefCell<Stream>>,
    pub(crate) w: DeviceBuffer,
    pub(crate) g: DeviceBuffer,
    pub(crate) sums: DeviceBuffer,
    pub(crate) z: DeviceBuffer,
    pub(crate) row_loss: DeviceBuffer,
    update_full: Bound<UpdateDims>,
    batch: Option<BatchSlot>,
    max_blocks: u64,
    partials: DeviceBuffer,
    m1: DeviceBuffer,
    m2: DeviceBuffer,
    has_weights: bool,
    /// How X is stored in `xs` and the batch buffer.
    codec: XCodec,
    /// Memory outside the crate's own buffers: each kernel binding's uniform buffer, and
    /// wgpu's staging for parameter and state uploads.
    _overhead: Reservation,
    /// Staging for every readback the problem makes, allocated once so that reads never
    /// allocate (and so never pass the memory budget) after planning.
    readback: DeviceBuffer,
}

/// Bytes counted per kernel binding for its uniform buffer (allocation granularity
/// included).
const UNIFORM_BYTES: u64 = 256;

impl Chunk {
    /// The reduction of chunk `c`: the first chunk overwrites the sums, later ones add.
    fn reduce(&self, c: usize) -> &Bound<ReduceDims> {
        if c == 0 {
            &self.reduce_first
        } else {
            &self.reduce_next
        }
    }
}

impl<'c> DeviceProblem<'c> {
    /// Uploads X (m, n) and, when given, the labels and sample weights, as row chunks, and
    /// binds every kernel. `batch_capacity` reserves room for mini-batches of up to that
    /// many rows.
    ///
    /// When an allocation fails (the device is out of memory, or the context's memory
    /// budget would be passed), everything allocated is freed and the plan is retried with
    /// chunks of half as many rows, whose scratch buffers are smaller, down to one row.
    ///
    /// A shared source is streamed when X (with its labels and weights) is larger than the
    /// memory budget, or when keeping it resident fails; a borrowed array is always kept
    /// resident.
    pub(crate) fn new(
        ctx: &'c GpuContext,
        x: Rows<'_>,
        labels: Option<&[u32]>,
        weights: Option<&[f32]>,
        k: usize,
        chunk_rows: Option<usize>,
        batch_capacity: Option<usize>,
    ) -> Result<Self> {
        let (m, n) = x.dim();
        let codec = match ctx.x_storage() {
            XStorage::F32 => XCodec::F32,
            storage => XCodec::fit(storage, n, &scan(&x)?)?,
        };
        let resident_bytes = codec.storage.bytes(m * n) + 8 * m as u64;
        let can_stream = matches!(x, Rows::Shared(_));
        let mut streamed = can_stream && ctx.memory_budget().is_some_and(|b| resident_bytes > b);
        let mut rows = chunk_rows;
        loop {
            match Self::allocate(
                ctx,
                &x,
                codec,
                labels,
                weights,
                k,
                rows,
                batch_capacity,
                streamed,
            ) {
                Err(Error::OutOfMemory { context }) => {
                    if can_stream && !streamed {
                        streamed = true;
                        continue;
                    }
                    let planned =
                        ChunkPlan::new(m, n, k, codec.storage, ctx.limits(), rows)?.chunk_rows;
                    if planned > 1 {
                        rows = Some(planned / 2);
                        continue;
                    }
                    return Err(match ctx.memory_budget() {
                        Some(budget) => Error::BudgetTooSmall {
                            budget,
                            detail: format!(
                                "the parameters, their gradient and optimizer state ({} values each) and one row of data do not fit ({context})",
                                n * k + k
                            ),
                        },
                        None => Error::OutOfMemory { context },
                    });
                }
                other => return other,
            }
        }
    }

    /// Whether X is streamed rather than resident.
    pub(crate) fn is_streamed(&self) -> bool {
        self.stream.is_some()
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate(
        ctx: &'c GpuContext,
        x: &Rows<'_>,
        codec: XCodec,
        labels: Option<&[u32]>,
        weights: Option<&[f32]>,
        k: usize,
        chunk_rows: Option<usize>,
        batch_capacity: Option<usize>,
        streamed: bool,
    ) -> Result<Self> {
        let (m, n) = x.dim();
        let plan = ChunkPlan::new(m, n, k, codec.storage, ctx.limits(), chunk_rows)?;
        // The kernels dispatch one workgroup per 16 features or classes along one grid
        // dimension.
        let max_dim = ctx.limits().max_compute_workgroups_per_dimension as usize;
        if n.div_ceil(TILE as usize) > max_dim || k.div_ceil(TILE as usize) > max_dim {
            return Err(Error::OutOfMemory {
                context: format!(
                    "planning dispatches: {n} features × {k} classes is over the device's limit of {} per dimension",
                    16 * max_dim
                ),
            });
        }
        let len = n * k + k;
        let stride = len + 1;
        let max_bytes = ctx
            .limits()
            .max_storage_buffer_binding_size
            .min(ctx.limits().max_buffer_size);
        let max_blocks = max_bytes / (4 * stride as u64);
        if max_blocks == 0 {
            return Err(Error::OutOfMemory {
                context: format!(
                    "allocating the gradient: {n}×{k} parameters are over the device's {max_bytes}-byte buffer limit"
                ),
            });
        }
        let batch_capacity = batch_capacity.map(|b| b.min(plan.chunk_rows));
        let scratch_rows = plan.chunk_rows.max(batch_capacity.unwrap_or(0));
        let partial_blocks =
            gradient_dims(&ctx.kernels.gradient, scratch_rows, n, k, max_blocks, codec).blocks()
                as u64;

        let w = ctx.storage_buffer("parameters w", 4 * len as u64)?;
        let g = ctx.storage_buffer("gradient g", 4 * len as u64)?;
        let m1 = ctx.storage_buffer("optimizer state m1", 4 * len as u64)?;
        let m2 = ctx.storage_buffer("optimizer state m2", 4 * len as u64)?;
        let sums = ctx.storage_buffer("reduced sums", 4 * stride as u64)?;
        let z = ctx.storage_buffer("logits z", 4 * (scratch_rows * k) as u64)?;
        let row_loss = ctx.storage_buffer("row losses", 4 * scratch_rows as u64)?;
        let partials =
            ctx.storage_buffer("gradient partials", 4 * stride as u64 * partial_blocks)?;

        let kernels = &ctx.kernels;
        let (xs, stream) = match (streamed, x) {
            (true, Rows::Shared(source)) => {
                let bytes = codec.storage.bytes(plan.chunk_rows * n);
                let xs = vec![
                    ctx.storage_buffer("x slot 0", bytes)?,
                    ctx.storage_buffer("x slot 1", bytes)?,
                ];
                let staging = ctx.reservation("x upload staging", 2 * bytes)?;
                let stream = Stream {
                    source: Arc::clone(source),
                    holds: [None, None],
                    last_use: [None, None],
                    host: Vec::new(),
                    words: Vec::new(),
                    _staging: staging,
                };
                (xs, Some(RefCell::new(stream)))
            }
            _ => {
                let mut xs = Vec::with_capacity(plan.chunks);
                let mut host = Vec::new();
                let mut words = Vec::new();
                let x_std = match x {
                    Rows::View(view) => Some(view.as_standard_layout()),
                    Rows::Shared(_) => None,
                };
                let flat = x_std.as_ref().and_then(|v| v.as_slice()).unwrap_or(&[]);
                for c in 0..plan.chunks {
                    let (start, rows) = (c * plan.chunk_rows, plan.rows_in(c, m));
                    let values = match x {
                        Rows::View(_) => &flat[start * n..(start + rows) * n],
                        Rows::Shared(source) => {
                            host.resize(rows * n, 0.0);
                            read_rows_parallel(source.as_ref(), start, n, &mut host)?;
                            &host[..]
                        }
                    };
                    let label = format!("x chunk {c}");
                    xs.push(ctx.storage_buffer_with(&label, codec.stored(values, &mut words))?);
                }
                (xs, None)
            }
        };
        let mut chunks = Vec::with_capacity(plan.chunks);
        for c in 0..plan.chunks {
            let rows = plan.rows_in(c, m);
            let start = c * plan.chunk_rows;
            let slot = if stream.is_some() { c % 2 } else { c };
            let x_buf = &xs[slot];
            let labels_buf = match labels {
                Some(l) => {
                    ctx.storage_buffer_with(&format!("labels chunk {c}"), &l[start..start + rows])?
                }
                None => ctx.storage_buffer("no labels", 4)?,
            };
            let weights_buf = match weights {
                Some(wt) => ctx
                    .storage_buffer_with(&format!("weights chunk {c}"), &wt[start..start + rows])?,
                None => ctx.storage_buffer("no weights", 4)?,
            };
            let chunk = ctx.scoped(&format!("binding chunk {c}"), |device| {
                let gdims = gradient_dims(&kernels.gradient, rows, n, k, max_blocks, codec);
                // The first chunk overwrites the sums; later ones add to them.
                let reduce = |accumulate: u32| {
                    kernels.reduce.bind(
                        device,
                        &partials,
                        &sums,
                        ReduceDims {
                            len: stride as u32,
                            parts: gdims.blocks(),
                            accumulate,
                            _pad: 0,
                        },
                    )
                };
                Chunk {
                    rows,
                    slot,
                    logits: kernels.logits.bind(
                        device,
                        x_buf,
                        &w,
                        &z,
                        LogitsDims {
                            rows: rows as u32,
                            n: n as u32,
                            k: k as u32,
                            x_lo: codec.lo,
                            x_step: codec.step,
                            _pad: [0; 3],
                        },
                    ),
                    softmax: kernels.softmax.bind(
                        device,
                        [&labels_buf, &weights_buf, &z, &row_loss],
                        SoftmaxDims {
                            rows: rows as u32,
                            k: k as u32,
                            has_labels: labels.is_some() as u32,
                            has_weights: weights.is_some() as u32,
                        },
                    ),
                    gradient: kernels
                        .gradient
                        .bind(device, x_buf, &z, &row_loss, &partials, gdims),
                    // Same row blocks as the gradient kernel, so the same reductions apply.
                    fused: (kernels.fused.enabled && k <= FUSED_MAX_CLASSES && labels.is_some())
                        .then(|| {
                            kernels.fused.bind(
                                device,
                                [x_buf, &w, &labels_buf, &weights_buf, &partials],
                                FusedDims {
                                    rows: rows as u32,
                                    n: n as u32,
                                    k: k as u32,
                                    rows_per_block: gdims.rows_per_block,
                                    stride: gdims.stride,
                                    has_weights: weights.is_some() as u32,
                                    x_lo: codec.lo,
                                    x_step: codec.step,
                                },
                            )
                        }),
                    reduce_first: reduce(0),
                    reduce_next: reduce(1),
                    labels: labels_buf,
                    weights: weights_buf,
                }
            })?;
            chunks.push(chunk);
        }
        let update_dims = UpdateDims {
            len: len as u32,
            nk: (n * k) as u32,
            inv_m: 1.0 / m as f32,
            ..bytemuck::Zeroable::zeroed()
        };
        let update_full = ctx.scoped("binding the update", |device| {
            kernels
                .update
                .bind(device, &sums, &w, &g, &m1, &m2, update_dims)
        })?;

        // Five bindings per chunk, the full-batch update, and for mini-batches one gather
        // per chunk plus five more; uploads of w, m1 and m2 each stage `len` values.
        let bindings =
            5 * plan.chunks as u64 + 1 + batch_capacity.map_or(0, |_| plan.chunks as u64 + 5);
        // Reads: (loss, g, w), (w, m1, m2), or one chunk's (z, row losses).
        let readback =
            ctx.readback_buffer(4 * ((3 * len) as u64).max((plan.chunk_rows * (k + 1)) as u64))?;
        let overhead = ctx.reservation(
            "uniform buffers and upload staging",
            bindings * UNIFORM_BYTES + 3 * 4 * len as u64,
        )?;
        let mut problem = DeviceProblem {
            ctx,
            m,
            n,
            k,
            plan,
            chunks,
            xs,
            stream,
            w,
            g,
            sums,
            z,
            row_loss,
            update_full,
            batch: None,
            max_blocks,
            partials,
            m1,
            m2,
            has_weights: weights.is_some(),
            codec,
            _overhead: overhead,
            readback,
        };
        if let (Some(capacity), Some(_)) = (batch_capacity, labels) {
            problem.batch = Some(problem.bind_batch(capacity, update_dims)?);
        }
        Ok(problem)
    }

    fn bind_batch(&self, capacity: usize, update_dims: UpdateDims) -> Result<BatchSlot> {
        let (n, k) = (self.n, self.k);
        let ctx = self.ctx;
        let idx = ctx.storage_buffer("batch indices", 4 * capacity as u64)?;
        let bx = ctx.storage_buffer("batch x", self.codec.storage.bytes(capacity * n))?;
        let bl = ctx.storage_buffer("batch labels", 4 * capacity as u64)?;
        let bw = ctx.storage_buffer("batch weights", 4 * capacity as u64)?;
        let has_weights = self.has_weights as u32;
        let kernels = &ctx.kernels;
        let gdims = gradient_dims(
            &kernels.gradient,
            capacity,
            n,
            k,
            self.max_blocks,
            self.codec,
        );
        ctx.scoped("binding the mini-batch kernels", |device| BatchSlot {
            capacity,
            gathers: self
                .chunks
                .iter()
                .map(|c| {
                    kernels.gather.bind(
                        device,
                        [&self.xs[c.slot], &c.labels, &c.weights, &idx, &bx, &bl, &bw],
                        GatherDims {
                            batch: 0,
                            n: n as u32,
                            has_weights,
                            _pad: 0,
                        },
                    )
                })
                .collect(),
            logits: kernels.logits.bind(
                device,
                &bx,
                &self.w,
                &self.z,
                LogitsDims {
                    rows: 0,
                    n: n as u32,
                    k: k as u32,
                    x_lo: self.codec.lo,
                    x_step: self.codec.step,
                    _pad: [0; 3],
                },
            ),
            softmax: kernels.softmax.bind(
                device,
                [&bl, &bw, &self.z, &self.row_loss],
                SoftmaxDims {
                    rows: 0,
                    k: k as u32,
                    has_labels: 1,
                    has_weights,
                },
            ),
            gradient: kernels.gradient.bind(
                device,
                &bx,
                &self.z,
                &self.row_loss,
                &self.partials,
                gdims,
            ),
            reduce: kernels.reduce.bind(
                device,
                &self.partials,
                &self.sums,
                ReduceDims {
                    len: (n * k + k + 1) as u32,
                    parts: gdims.blocks(),
                    accumulate: 0,
                    _pad: 0,
                },
            ),
            update: kernels.update.bind(
                device,
                &self.sums,
                &self.w,
                &self.g,
                &self.m1,
                &self.m2,
                update_dims,
            ),
            idx,
        })
    }

    /// Number of parameters, n·K + K.
    pub(crate) fn len(&self) -> usize {
        self.n * self.k + self.k
    }

    /// Writes w = (Θ row-major, b).
    pub(crate) fn set_params(&self, w: &[f32]) {
        self.ctx
            .queue
            .write_buffer(&self.w, 0, bytemuck::cast_slice(w));
    }

    /// Uploads (Θ, b) into w = (Θ row-major, b), straight from Θ's memory when it is in
    /// standard layout.
    pub(crate) fn set_params_from(&self, theta: ArrayView2<'_, f32>, bias: ArrayView1<'_, f32>) {
        match (theta.as_slice(), bias.as_slice()) {
            (Some(t), Some(b)) => {
                let queue = &self.ctx.queue;
                queue.write_buffer(&self.w, 0, bytemuck::cast_slice(t));
                queue.write_buffer(&self.w, 4 * t.len() as u64, bytemuck::cast_slice(b));
            }
            _ => self.set_params(&crate::params::flatten(theta, bias)),
        }
    }

    /// Reads back (w, m1, m2): the parameters and the optimizer moments.
    pub(crate) fn read_state(&self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let len = self.len();
        let mut out = self.ctx.read_f32_via(
            Some(&self.readback),
            &[(&self.w, 0, len), (&self.m1, 0, len), (&self.m2, 0, len)],
            "reading the optimizer state",
        )?;
        let m2 = out.pop().unwrap_or_default();
        let m1 = out.pop().unwrap_or_default();
        let w = out.pop().unwrap_or_default();
        Ok((w, m1, m2))
    }

    /// Writes the parameters and the optimizer moments (see [`DeviceProblem::read_state`]).
    pub(crate) fn write_state(&self, w: &[f32], m1: &[f32], m2: &[f32]) {
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.w, 0, bytemuck::cast_slice(w));
        queue.write_buffer(&self.m1, 0, bytemuck::cast_slice(m1));
        queue.write_buffer(&self.m2, 0, bytemuck::cast_slice(m2));
    }

    /// Zeroes the optimizer state.
    pub(crate) fn reset_state(&self) {
        let zeros = vec![0f32; self.len()];
        self.ctx
            .queue
            .write_buffer(&self.m1, 0, bytemuck::cast_slice(&zeros));
        self.ctx
            .queue
            .write_buffer(&self.m2, 0, bytemuck::cast_slice(&zeros));
    }

    fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Records one compute pass with `record` and submits it.
    fn submit_pass(
        &self,
        label: &str,
        record: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) -> wgpu::SubmissionIndex {
        let mut encoder = self.encoder(label);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            record(&mut pass);
        }
        self.ctx.submit(encoder.finish())
    }

    /// Chunk `c`'s gradient partials, summed into the reduced sums (the first chunk
    /// overwrites them, later ones add, in chunk order).
    fn record_chunk(&self, pass: &mut wgpu::ComputePass<'_>, c: usize, chunk: &Chunk) {
        self.encode_chunk_gradient(pass, chunk);
        self.ctx.kernels.reduce.encode(pass, chunk.reduce(c));
    }

    /// One chunk's gradient partials: the fused kernel, or logits → softmax → gradient.
    fn encode_chunk_gradient(&self, pass: &mut wgpu::ComputePass<'_>, chunk: &Chunk) {
        let kernels = &self.ctx.kernels;
        match &chunk.fused {
            Some(fused) => kernels.fused.encode(pass, fused),
            None => {
                kernels.logits.encode(pass, &chunk.logits);
                kernels.softmax.encode(pass, &chunk.softmax);
                kernels.gradient.encode(pass, &chunk.gradient);
            }
        }
    }

    /// Whether full-batch passes use the fused kernel.
    pub(crate) fn is_fused(&self) -> bool {
        self.chunks.iter().all(|c| c.fused.is_some())
    }

    /// Sets the hyper-parameters the full-batch finalize and step read.
    pub(crate) fn configure_full(&mut self, dims: StepDims) {
        let d = UpdateDims {
            step: dims,
            ..self.update_full.dims
        };
        self.update_full.set(&self.ctx.queue, d);
    }

    /// Full-batch gradient into g (every chunk's partials reduced in chunk order, then
    /// g = sums/m + λΘ), optionally followed by one optimizer step. Resident X: one
    /// submission. Streamed X: one submission per chunk, each chunk uploaded into its slot
    /// while the device works on the previous one, then one for the update. With
    /// `gradient_ready` the gradient pass is skipped (g is current).
    pub(crate) fn full_step(
        &mut self,
        step: Option<UpdateEntry>,
        gradient_ready: bool,
    ) -> Result<()> {
        let update = &self.ctx.kernels.update;
        let finish = |pass: &mut wgpu::ComputePass<'_>| {
            if !gradient_ready {
                update.encode(pass, &self.update_full, UpdateEntry::Finalize);
            }
            if let Some(entry) = step {
                update.encode(pass, &self.update_full, entry);
            }
        };
        if self.stream.is_none() {
            self.submit_pass("full-batch step", |pass| {
                if !gradient_ready {
                    for (c, chunk) in self.chunks.iter().enumerate() {
                        self.record_chunk(pass, c, chunk);
                    }
                }
                finish(pass);
            });
            return self.ctx.check("a full-batch step");
        }
        if !gradient_ready {
            for (c, chunk) in self.chunks.iter().enumerate() {
                self.ensure_chunk(c)?;
                let index =
                    self.submit_pass("streamed chunk", |pass| self.record_chunk(pass, c, chunk));
                self.used(c, index);
            }
        }
        self.submit_pass("full-batch update", finish);
        self.ctx.check("a streamed full-batch step")
    }

    /// Waits until the device has finished everything submitted so far.
    pub(crate) fn wait_idle(&self, context: &str) -> Result<()> {
        self.ctx.wait(None, context)
    }

    /// With X streamed, makes chunk `c` the content of its slot: waits until the device
    /// is done with what the slot held, then reads the rows from the source and queues
    /// their upload (which runs before the next submission). Resident X: nothing to do.
    fn ensure_chunk(&self, c: usize) -> Result<()> {
        let Some(stream) = &self.stream else {
            return Ok(());
        };
        let mut st = stream.borrow_mut();
        let slot = c % 2;
        if st.holds[slot] == Some(c) {
            return Ok(());
        }
        if let Some(index) = st.last_use[slot].take() {
            self.ctx
                .wait(Some(index), "waiting for a chunk slot to be free")?;
        }
        st.holds[slot] = None;
        let (start, rows) = (c * self.plan.chunk_rows, self.plan.rows_in(c, self.m));
        let Stream {
            source,
            host,
            words,
            ..
        } = &mut *st;
        host.resize(rows * self.n, 0.0);
        // Several threads read the rows: on a fast GPU this host side bounds streaming.
        read_rows_parallel(source.as_ref(), start, self.n, host)?;
        self.ctx
            .queue
            .write_buffer(&self.xs[slot], 0, self.codec.stored(host, words));
        st.holds[slot] = Some(c);
        Ok(())
    }

    /// Notes that submission `index` reads chunk `c`'s slot.
    fn used(&self, c: usize, index: wgpu::SubmissionIndex) {
        if let Some(stream) = &self.stream {
            stream.borrow_mut().last_use[c % 2] = Some(index);
        }
    }

    /// One mini-batch step: gather rows `local` of chunk `chunk`, its gradient (mean over
    /// the batch, + λΘ), then the optimizer step, as one submission.
    pub(crate) fn batch_step(
        &mut self,
        chunk: usize,
        local: &[u32],
        dims: StepDims,
        entry: UpdateEntry,
    ) -> Result<()> {
        let queue = &self.ctx.queue;
        let (n, k) = (self.n, self.k);
        let max_blocks = self.max_blocks;
        let rows = local.len();
        let no_slot = || Error::setting("batch_size", rows, "no mini-batch buffers were reserved");
        let (capacity, chunks) = self
            .batch
            .as_ref()
            .map(|slot| (slot.capacity, slot.gathers.len()))
            .ok_or_else(no_slot)?;
        if rows == 0 || rows > capacity || chunk >= chunks {
            return Err(Error::setting(
                "batch_size",
                rows,
                format!("must be between 1 and {capacity}"),
            ));
        }
        self.ensure_chunk(chunk)?;
        let slot = self.batch.as_mut().ok_or_else(no_slot)?;
        queue.write_buffer(&slot.idx, 0, bytemuck::cast_slice(local));
        let g = &mut slot.gathers[chunk];
        g.set(
            queue,
            GatherDims {
                batch: rows as u32,
                ..g.dims
            },
        );
        slot.logits.set(
            queue,
            LogitsDims {
                rows: rows as u32,
                ..slot.logits.dims
            },
        );
        slot.softmax.set(
            queue,
            SoftmaxDims {
                rows: rows as u32,
                ..slot.softmax.dims
            },
        );
        let gdims = gradient_dims(
            &self.ctx.kernels.gradient,
            rows,
            n,
            k,
            max_blocks,
            self.codec,
        );
        slot.gradient.set(queue, gdims);
        slot.reduce.set(
            queue,
            ReduceDims {
                parts: gdims.blocks(),
                ..slot.reduce.dims
            },
        );
        let mut ud = UpdateDims {
            step: dims,
            ..slot.update.dims
        };
        ud.inv_m = 1.0 / rows as f32;
        slot.update.set(queue, ud);

        let kernels = &self.ctx.kernels;
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("mini-batch step"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("mini-batch step"),
                timestamp_writes: None,
            });
            kernels.gather.encode(&mut pass, &slot.gathers[chunk]);
            kernels.logits.encode(&mut pass, &slot.logits);
            kernels.softmax.encode(&mut pass, &slot.softmax);
            kernels.gradient.encode(&mut pass, &slot.gradient);
            kernels.reduce.encode(&mut pass, &slot.reduce);
            kernels
                .update
                .encode(&mut pass, &slot.update, UpdateEntry::Finalize);
            kernels.update.encode(&mut pass, &slot.update, entry);
        }
        let index = self.ctx.submit(encoder.finish());
        self.used(chunk, index);
        self.ctx.check("a mini-batch step")
    }

    /// Runs the full-batch gradient pass one kernel at a time, waiting after each, and
    /// returns the seconds spent in each kernel (summed over chunks), in pass order, and
    /// whether they come from GPU timestamps (else from the wall clock around each
    /// submission and its wait).
    pub(crate) fn profile_full(&self) -> Result<(Vec<(&'static str, f64)>, bool)> {
        let kernels = &self.ctx.kernels;
        let fused = self.is_fused();
        let names: &[&'static str] = if fused {
            &["fused", "reduce", "finalize"]
        } else {
            &["logits", "softmax", "gradient", "reduce", "finalize"]
        };
        let mut times: Vec<(&'static str, f64)> = names.iter().map(|&k| (k, 0.0)).collect();
        let last = times.len() - 1;
        let stamps = match self.ctx.has_timestamps() {
            true => Some((
                self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("kernel timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                self.ctx.query_buffer(16)?,
                self.ctx.storage_buffer("timestamp copy", 16)?,
            )),
            false => None,
        };
        let period = f64::from(self.ctx.queue.get_timestamp_period()) * 1e-9;
        let mut timed = |slot: usize, record: &dyn Fn(&mut wgpu::ComputePass<'_>)| -> Result<()> {
            let mut encoder = self.encoder(times[slot].0);
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(times[slot].0),
                    timestamp_writes: stamps.as_ref().map(|(set, _, _)| {
                        wgpu::ComputePassTimestampWrites {
                            query_set: set,
                            beginning_of_pass_write_index: Some(0),
                            end_of_pass_write_index: Some(1),
                        }
                    }),
                });
                record(&mut pass);
            }
            if let Some((set, resolved, copy)) = &stamps {
                encoder.resolve_query_set(set, 0..2, resolved, 0);
                encoder.copy_buffer_to_buffer(resolved, 0, copy, 0, 16);
            }
            let started = std::time::Instant::now();
            self.ctx.submit_and_wait(encoder.finish(), times[slot].0)?;
            let wall = started.elapsed().as_secs_f64();
            times[slot].1 += match &stamps {
                Some((_, _, copy)) => {
                    // Two u64 ticks, read as four 32-bit words.
                    let words: Vec<u32> = self
                        .ctx
                        .read_f32(&[(copy, 0, 4)], "reading timestamps")?
                        .concat()
                        .iter()
                        .map(|w| w.to_bits())
                        .collect();
                    let tick =
                        |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
                    tick(1).saturating_sub(tick(0)) as f64 * period
                }
                None => wall,
            };
            Ok(())
        };
        for (c, chunk) in self.chunks.iter().enumerate() {
            self.ensure_chunk(c)?;
            let reduce_slot = match &chunk.fused {
                Some(f) => {
                    timed(0, &|p| kernels.fused.encode(p, f))?;
                    1
                }
                None => {
                    timed(0, &|p| kernels.logits.encode(p, &chunk.logits))?;
                    timed(1, &|p| kernels.softmax.encode(p, &chunk.softmax))?;
                    timed(2, &|p| kernels.gradient.encode(p, &chunk.gradient))?;
                    3
                }
            };
            timed(reduce_slot, &|p| kernels.reduce.encode(p, chunk.reduce(c)))?;
        }
        timed(last, &|p| {
            kernels
                .update
                .encode(p, &self.update_full, UpdateEntry::Finalize)
        })?;
        Ok((times, stamps.is_some()))
    }

    /// Reads back (Σ_i −log P[i, y], g, w) after a full-batch gradient pass.
    pub(crate) fn read_loss_gradient_params(&self) -> Result<(f64, Vec<f32>, Vec<f32>)> {
        let (loss_sum, mut out) =
            self.read_loss_and(&[&self.g, &self.w], bytemuck::pod_collect_to_vec::<u8, f32>)?;
        let w = out.pop().unwrap_or_default();
        let g = out.pop().unwrap_or_default();
        Ok((loss_sum, g, w))
    }

    /// Reads back the summed loss and the gradient g, without the parameters (which the
    /// caller already has), widened to f64 as they leave the staging buffer.
    pub(crate) fn read_loss_gradient(&self) -> Result<(f64, Vec<f64>)> {
        let (loss_sum, mut out) = self.read_loss_and(&[&self.g], widen_f32)?;
        Ok((loss_sum, out.pop().unwrap_or_default()))
    }

    /// The summed loss and whole copies of `buffers` (each of `len` values), in one
    /// readback, each decoded by `decode`.
    fn read_loss_and<T: Copy + Into<f64>>(
        &self,
        buffers: &[&DeviceBuffer],
        decode: impl Fn(&[u8]) -> Vec<T>,
    ) -> Result<(f64, Vec<Vec<T>>)> {
        let mut out = self.ctx.read_via(
            Some(&self.readback),
            &self.loss_and_ranges(buffers),
            "reading the loss and gradient",
            decode,
        )?;
        let rest = out.split_off(1.min(out.len()));
        let loss_sum = out.pop().and_then(|v| v.first().copied());
        Ok((loss_sum.map_or(f64::NAN, Into::into), rest))
    }

    /// The readback ranges of the summed loss followed by whole copies of `buffers`.
    fn loss_and_ranges<'b>(
        &'b self,
        buffers: &[&'b DeviceBuffer],
    ) -> Vec<(&'b wgpu::Buffer, u64, usize)> {
        let len = self.len();
        std::iter::once((&*self.sums, len as u64, 1))
            .chain(buffers.iter().map(|&b| (&**b, 0, len)))
            .collect()
    }

    /// Runs logits and softmax chunk by chunk and hands each chunk's (row offset, z, row
    /// losses) to `each`: z holds P (no labels) or P − Y (with labels).
    pub(crate) fn forward_chunks(&self, mut each: impl FnMut(usize, &[f32], &[f32])) -> Result<()> {
        let kernels = &self.ctx.kernels;
        for (c, chunk) in self.chunks.iter().enumerate() {
            self.ensure_chunk(c)?;
            let index = self.submit_pass("forward", |pass| {
                kernels.logits.encode(pass, &chunk.logits);
                kernels.softmax.encode(pass, &chunk.softmax);
            });
            self.used(c, index);
            let out = self.ctx.read_f32_via(
                Some(&self.readback),
                &[
                    (&self.z, 0, chunk.rows * self.k),
                    (&self.row_loss, 0, chunk.rows),
                ],
                "reading predictions",
            )?;
            each(c * self.plan.chunk_rows, &out[0], &out[1]);
        }
        Ok(())
    }
}
