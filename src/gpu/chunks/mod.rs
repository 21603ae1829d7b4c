//! [`DeviceChunks`], a problem on the device: X and the labels as row chunks (each within
//! the device's storage-binding limit), the parameters, optimizer state and scratch, and
//! the kernels bound to them once. It records the passes the oracle, the trainer and the
//! evaluator submit.
//!
//! X is resident (every chunk in its own buffer, uploaded once) when it fits the device
//! and the context's memory budget; otherwise it is streamed: two chunk-sized slots take
//! turns, and while the device computes on one chunk the host reads the next from its
//! source into the other (double buffering). The kernels, their dimensions and the order
//! of the sums are the same either way, so for the same chunk boundaries the results are
//! bit-identical.

mod allocate;
mod batch;
mod plan;
mod readback;
mod sparse;

use std::cell::RefCell;
use std::sync::Arc;

use ndarray::{ArrayView1, ArrayView2};

use crate::data::Csr;
use crate::data::source::{ChunkSource, read_rows_parallel};
use crate::error::{Error, Result};
use crate::gpu::context::{DeviceBuffer, GpuContext, Reservation, binding_limit, widen_f32};
use crate::gpu::kernels::{
    Bound, CLASS_TILE, GatherDims, Gradient, GradientDims, Kernels, LogitsDims, ProductKind,
    ReduceDims, SLICES, SLICES_FEATURES, SoftmaxDims, TILE, UpdateDims, UpdateEntry,
};
#[cfg(feature = "kernel-lab")]
use crate::gpu::kernels::{FUSED_MAX_CLASSES, FusedDims, tile_shape};
use crate::gpu::storage::{XCodec, XRange, XStorage};
use crate::step::StepDims;

use allocate::scan;
pub use plan::ChunkPlan;
use plan::gradient_dims;
use sparse::{SparseBound, SparseBuffers, SparseCommon, SparseHost, SparseShape};

/// Rows of X to put on the device: a borrowed array, a shared source that can be
/// streamed, or a sparse matrix (held as CSR row chunks with a CSC copy each, resident or
/// streamed).
pub(crate) enum Rows<'a> {
    View(ArrayView2<'a, f32>),
    Shared(Arc<dyn ChunkSource>),
    Sparse(Arc<Csr>),
}

impl Rows<'_> {
    fn dim(&self) -> (usize, usize) {
        match self {
            Rows::View(x) => x.dim(),
            Rows::Shared(s) => (s.n_rows(), s.n_features()),
            Rows::Sparse(c) => (c.n_rows(), c.n_cols()),
        }
    }

    /// A dataset's rows: sparse when it holds CSR, else its row source.
    pub(crate) fn of(data: &crate::data::Dataset) -> Rows<'static> {
        match data.shared_csr() {
            Some(csr) => Rows::Sparse(csr),
            None => Rows::Shared(data.source()),
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
    /// A sparse X: the matrix, each chunk's shape, and the arrays of the chunk being
    /// uploaded.
    sparse: Option<(Arc<Csr>, Vec<SparseShape>, SparseHost)>,
    /// wgpu's staging copies of the two slots' uploads, counted against the budget.
    _staging: Reservation,
}

struct Chunk {
    rows: usize,
    /// Index into `DeviceChunks::xs` (dense) or `sparse_xs`: the chunk's own buffers, or
    /// its streaming slot.
    slot: usize,
    labels: DeviceBuffer,
    weights: DeviceBuffer,
    products: Products,
    softmax: Bound<SoftmaxDims>,
    /// The single-pass kernel replacing logits, softmax and gradient in full-batch passes,
    /// when the device uses it and K allows.
    #[cfg(feature = "kernel-lab")]
    fused: Option<Bound<FusedDims>>,
    reduce_first: Bound<ReduceDims>,
    reduce_next: Bound<ReduceDims>,
    /// With several models: the sums of the chunk's row losses per model (first chunk,
    /// later chunks), from the row losses laid out (rows, models).
    loss_reduce: Option<[Bound<ReduceDims>; 2]>,
}

/// A chunk's two products, Z = XΘ + 1bᵀ and the gradient partials: dense kernels over its
/// rows, or the sparse kernels over its CSR and CSC arrays.
enum Products {
    Dense {
        logits: Bound<LogitsDims>,
        gradient: Bound<GradientDims>,
    },
    Sparse(Box<SparseBound>),
}

/// Device buffers for mini-batches: the gathered rows and kernels bound to them.
struct BatchSlot {
    capacity: usize,
    x: BatchX,
    /// The batch's labels and weights, read by the softmax.
    labels: DeviceBuffer,
    weights: DeviceBuffer,
    softmax: Bound<SoftmaxDims>,
    reduce: Bound<ReduceDims>,
    update: Bound<UpdateDims>,
}

/// A mini-batch's rows: gathered on the device from a dense chunk, or gathered on the
/// host from a sparse X and uploaded as the sparse kernels' arrays. A problem has at most
/// one, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum BatchX {
    Dense {
        idx: DeviceBuffer,
        gathers: Vec<Bound<GatherDims>>,
        logits: Bound<LogitsDims>,
        gradient: Bound<GradientDims>,
    },
    Sparse(SparseBatch),
}

/// A sparse X with every row's label and, when weighted, weight: what sparse mini-batches
/// are gathered from.
type SparseRowsOf<'a> = (&'a Arc<Csr>, &'a [u32], Option<&'a [f32]>);

/// What a sparse mini-batch is built from and uploaded into.
struct SparseBatch {
    csr: Arc<Csr>,
    /// Every row's label and weight, from which each batch's are gathered.
    labels: Vec<u32>,
    weights: Option<Vec<f32>>,
    host: SparseHost,
    buffers: SparseBuffers,
    bound: SparseBound,
    /// The piece partials of the batch's products.
    _scratch: DeviceBuffer,
    /// Scratch for each batch's labels and weights.
    batch_labels: Vec<u32>,
    batch_weights: Vec<f32>,
}

/// X, labels, parameters and scratch on one device.
pub(crate) struct DeviceChunks<'c> {
    ctx: &'c GpuContext,
    pub(crate) m: usize,
    pub(crate) n: usize,
    /// Columns of the products: K, or models × K when several models share the pass.
    pub(crate) k: usize,
    /// Models whose parameters sit side by side in w (Θ of (n, models·K), b of models·K):
    /// the softmax runs per model, and each model's loss is summed on its own. At most
    /// `slots`, the models the buffers were allocated for ([`DeviceChunks::set_models`]).
    pub(crate) models: usize,
    slots: usize,
    /// Each model's summed row losses (models > 1 only).
    loss_sums: Option<DeviceBuffer>,
    pub(crate) plan: ChunkPlan,
    chunks: Vec<Chunk>,
    xs: Vec<DeviceBuffer>,
    /// A sparse X's chunks (or its two streaming slots); empty for dense X.
    sparse_xs: Vec<SparseBuffers>,
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
    /// z = XΘ + 1bᵀ for the chunk's rows.
    fn encode_logits(&self, kernels: &Kernels, pass: &mut wgpu::ComputePass<'_>) {
        match &self.products {
            Products::Dense { logits, .. } => kernels.logits.encode(pass, logits),
            Products::Sparse(s) => s.encode_logits(kernels, pass),
        }
    }

    /// The chunk's gradient partials, from d = w_r·(P − Y) in z.
    fn encode_gradient(&self, kernels: &Kernels, pass: &mut wgpu::ComputePass<'_>) {
        match &self.products {
            Products::Dense { gradient, .. } => kernels.gradient.encode(pass, gradient),
            Products::Sparse(s) => s.encode_gradient(kernels, pass),
        }
    }

    /// The reduction of chunk `c`: the first chunk overwrites the sums, later ones add.
    fn reduce(&self, c: usize) -> &Bound<ReduceDims> {
        if c == 0 {
            &self.reduce_first
        } else {
            &self.reduce_next
        }
    }
}

impl<'c> DeviceChunks<'c> {
    /// Uploads X (m, n) and, when given, the labels and sample weights, as row chunks, and
    /// binds every kernel. `batch_capacity` reserves room for mini-batches of up to that
    /// many rows.
    ///
    /// When an allocation fails (the device is out of memory, or the context's memory
    /// budget would be passed), everything allocated is freed and the plan is retried with
    /// chunks of half as many rows, whose scratch buffers are smaller, down to one row.
    ///
    /// A shared source or a sparse X is streamed when X (with its labels and weights) is
    /// larger than the memory budget, or when keeping it resident fails; a borrowed array is
    /// always kept resident. A sparse X is computed on by the sparse kernels (mini-batches
    /// too), except with compact storage, which reads its rows densely.
    pub(crate) fn new(
        ctx: &'c GpuContext,
        x: Rows<'_>,
        labels: Option<&[u32]>,
        weights: Option<&[f32]>,
        k: usize,
        chunk_rows: Option<usize>,
        batch_capacity: Option<usize>,
    ) -> Result<Self> {
        Self::build(
            ctx,
            x,
            (labels, weights),
            (k, 1),
            chunk_rows,
            batch_capacity,
        )
    }

    /// Full-batch passes for `models` models of K classes at once (a regularisation
    /// path): the products have models·K columns, so each chunk of X is read once for all
    /// of them; the softmax and the loss are per model. No mini-batches.
    pub(crate) fn for_models(
        ctx: &'c GpuContext,
        x: Rows<'_>,
        labels: &[u32],
        weights: Option<&[f32]>,
        (k, models): (usize, usize),
        chunk_rows: Option<usize>,
    ) -> Result<Self> {
        Self::build(
            ctx,
            x,
            (Some(labels), weights),
            (k * models, models),
            chunk_rows,
            None,
        )
    }

    fn build(
        ctx: &'c GpuContext,
        x: Rows<'_>,
        (labels, weights): (Option<&[u32]>, Option<&[f32]>),
        (k, models): (usize, usize),
        chunk_rows: Option<usize>,
        batch_capacity: Option<usize>,
    ) -> Result<Self> {
        // The compact storages encode dense values: with them, a sparse X's rows are
        // read densely, chunk by chunk.
        let x = match x {
            Rows::Sparse(csr) if ctx.x_storage() != XStorage::F32 => Rows::Shared(csr),
            x => x,
        };
        let (m, n) = x.dim();
        let codec = match ctx.x_storage() {
            XStorage::F32 => XCodec::F32,
            storage => XCodec::fit(storage, n, &scan(&x)?)?,
        };
        let resident_bytes = match &x {
            Rows::Sparse(csr) => {
                let plan = sparse::sparse_plan(csr, k, ctx.limits(), chunk_rows)?;
                sparse::estimated_bytes(csr, &plan)
            }
            _ => codec.storage.bytes(m * n),
        } + 8 * m as u64;
        let can_stream = !matches!(x, Rows::View(_));
        let mut streamed = can_stream && ctx.memory_budget().is_some_and(|b| resident_bytes > b);
        let mut rows = chunk_rows;
        loop {
            match Self::allocate(
                ctx,
                &x,
                codec,
                (labels, weights),
                (k, models),
                rows,
                batch_capacity,
                streamed,
            ) {
                Err(Error::OutOfMemory { context }) => {
                    if can_stream && !streamed {
                        streamed = true;
                        continue;
                    }
                    let planned = Self::plan(&x, k, codec, ctx.limits(), rows)?.chunk_rows;
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

    /// Points every kernel at `active` models of the ones allocated for (at least 1, at
    /// most that many): the products shrink to active·K columns, w and g hold the active
    /// models side by side, and the softmax and loss sums cover that many. Nothing is
    /// reallocated; only the kernels' dimensions change.
    pub(crate) fn set_models(&mut self, active: usize) {
        if active == self.models || active == 0 || active > self.slots {
            return;
        }
        let per_model = self.k / self.models;
        let (n, k) = (self.n, per_model * active);
        let stride = n * k + k + 1;
        // No more blocks of partials than the buffer sized for all models holds.
        let max_blocks = self
            .max_blocks
            .min(self.partials.size() / (4 * stride as u64));
        let (ctx, codec) = (self.ctx, self.codec);
        let (queue, kernels) = (&ctx.queue, &ctx.kernels);
        let has_weights = self.has_weights;
        for chunk in &mut self.chunks {
            let rows = chunk.rows;
            let parts = match &mut chunk.products {
                Products::Dense { logits, gradient } => {
                    logits.set(queue, LogitsDims::new(rows, n, k, codec));
                    let gdims = gradient_dims(&kernels.gradient, rows, n, k, max_blocks, codec);
                    gradient.set(queue, gdims);
                    gdims.blocks()
                }
                Products::Sparse(sparse) => {
                    kernels.sparse_pieces.prepare(&ctx.device, k as u32);
                    sparse.set_width(queue, n, k);
                    1
                }
            };
            let (first, next) = (&mut chunk.reduce_first, &mut chunk.reduce_next);
            for (bound, accumulate) in [(first, false), (next, true)] {
                bound.set(queue, ReduceDims::new(stride, parts, accumulate));
            }
            let labelled = chunk.softmax.dims.has_labels != 0;
            chunk.softmax.set(
                queue,
                allocate::softmax_dims(rows, k, active, (labelled, has_weights)),
            );
            if let Some(sums) = &mut chunk.loss_reduce {
                for (bound, accumulate) in sums.iter_mut().zip([false, true]) {
                    bound.set(queue, ReduceDims::new(active, rows as u32, accumulate));
                }
            }
        }
        let update = UpdateDims {
            len: (n * k + k) as u32,
            nk: (n * k) as u32,
            ..self.update_full.dims
        };
        self.update_full.set(queue, update);
        self.k = k;
        self.models = active;
    }

    /// The most models the buffers hold side by side (1 but for a regularisation path).
    pub(crate) fn slots(&self) -> usize {
        self.slots
    }

    /// Whether X is streamed rather than resident.
    pub(crate) fn is_streamed(&self) -> bool {
        self.stream.is_some()
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

    /// Writes the parameters and the optimizer moments (see [`DeviceChunks::read_state`]).
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
        if let Some(sums) = &chunk.loss_reduce {
            self.ctx
                .kernels
                .reduce
                .encode(pass, &sums[(c > 0) as usize]);
        }
    }

    /// One chunk's gradient partials: the fused kernel, or logits → softmax → gradient.
    fn encode_chunk_gradient(&self, pass: &mut wgpu::ComputePass<'_>, chunk: &Chunk) {
        let kernels = &self.ctx.kernels;
        #[cfg(feature = "kernel-lab")]
        if let Some(fused) = &chunk.fused {
            kernels.fused.encode(pass, fused);
            return;
        }
        chunk.encode_logits(kernels, pass);
        kernels.softmax.encode(pass, &chunk.softmax);
        chunk.encode_gradient(kernels, pass);
    }

    /// Whether full-batch passes use the fused kernel.
    pub(crate) fn is_fused(&self) -> bool {
        #[cfg(feature = "kernel-lab")]
        return self.chunks.iter().all(|c| c.fused.is_some());
        #[cfg(not(feature = "kernel-lab"))]
        false
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
            sparse,
            ..
        } = &mut *st;
        if let Some((csr, shapes, arrays)) = sparse {
            let shape = arrays.build(csr, start, rows);
            debug_assert_eq!(shape, shapes[c]);
            self.sparse_xs[slot].write(&self.ctx.queue, csr, start, arrays, shape);
            st.holds[slot] = Some(c);
            return Ok(());
        }
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
}
