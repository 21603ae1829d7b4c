//! The kernels around the products: the row-wise stable softmax and cross-entropy, the
//! reduction of gradient partials, the optimizer update, and the mini-batch gather.

use super::*;

/// `Dims` of softmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct SoftmaxDims {
    /// Kernel rows: data rows × models.
    pub rows: u32,
    pub k: u32,
    pub has_labels: u32,
    pub has_weights: u32,
    /// Models side by side in each data row's logits (1 but for a regularisation path).
    pub models: u32,
    pub _pad: [u32; 3],
}

impl SoftmaxDims {
    /// `rows` data rows of one model with K classes.
    pub(crate) fn new(rows: usize, k: usize, has_labels: bool, has_weights: bool) -> Self {
        SoftmaxDims {
            rows: rows as u32,
            k: k as u32,
            has_labels: has_labels as u32,
            has_weights: has_weights as u32,
            models: 1,
            _pad: [0; 3],
        }
    }
}

/// Largest K for which one invocation per row is used with the tiled and `auto` kernels;
/// above it, one workgroup per row. With the register kernels (CPU adapters) every K gets
/// one invocation per row: there the workgroup's barriers cost more than they save (at
/// K = 100 on lavapipe, 58 ms against 677 ms for 100000 rows).
pub(crate) const SOFTMAX_ROW_PER_THREAD_MAX_K: u32 = 64;

/// Stable softmax, P − Y in place and per-row cross-entropy (softmax.wgsl).
pub(crate) struct Softmax {
    layout: wgpu::BindGroupLayout,
    per_thread: wgpu::ComputePipeline,
    per_workgroup: wgpu::ComputePipeline,
    /// Largest K given one invocation per row.
    per_thread_max_k: u32,
    max_dim: u32,
}

impl Softmax {
    pub(super) fn new(device: &wgpu::Device, variant: KernelVariant, max_dim: u32) -> Self {
        let layout = layout(
            device,
            "softmax",
            &[
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::ReadWrite,
                Access::Uniform,
            ],
        );
        let mut p = pipelines(
            device,
            Shader::Softmax,
            &layout,
            &["row_per_thread", "row_per_workgroup"],
            &[],
        );
        let per_workgroup = p.remove(1);
        let per_thread = p.remove(0);
        Softmax {
            layout,
            per_thread,
            per_workgroup,
            per_thread_max_k: match variant {
                KernelVariant::Register => u32::MAX,
                _ => SOFTMAX_ROW_PER_THREAD_MAX_K,
            },
            max_dim,
        }
    }

    /// [labels (rows), weights (rows), z (rows, K), row_loss (rows)].
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        buffers: [&wgpu::Buffer; 4],
        dims: SoftmaxDims,
    ) -> Bound<SoftmaxDims> {
        Bound::new(device, "softmax", &self.layout, &buffers, dims)
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<SoftmaxDims>) {
        let d = b.dims;
        if d.k <= self.per_thread_max_k {
            let (x, y) = grid(d.rows.div_ceil(64), self.max_dim);
            dispatch(pass, &self.per_thread, &b.group, (x, y, 1));
        } else {
            let (x, y) = grid(d.rows, self.max_dim);
            dispatch(pass, &self.per_workgroup, &b.group, (x, y, 1));
        }
    }
}

/// `Dims` of reduce.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct ReduceDims {
    pub len: u32,
    pub parts: u32,
    pub accumulate: u32,
    pub _pad: u32,
}

impl ReduceDims {
    /// Sums of `parts` rows of `len` values, overwriting the output or adding to it.
    pub(crate) fn new(len: usize, parts: u32, accumulate: bool) -> Self {
        ReduceDims {
            len: len as u32,
            parts,
            accumulate: accumulate as u32,
            _pad: 0,
        }
    }
}

/// Fixed-order sum of partials (reduce.wgsl): entry point `sliced`, eight invocations per
/// output, with the coalesced kernels, whose gradient makes many more partials; `main`,
/// one invocation per output, otherwise.
pub(crate) struct Reduce {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Outputs per workgroup of the pipeline.
    outputs_per_workgroup: u32,
    max_dim: u32,
}

impl Reduce {
    pub(super) fn new(device: &wgpu::Device, variant: KernelVariant, max_dim: u32) -> Self {
        let layout = layout(
            device,
            "reduce",
            &[Access::Read, Access::ReadWrite, Access::Uniform],
        );
        let (entry, outputs_per_workgroup) = match variant.product_kind() {
            ProductKind::Coalesced => ("sliced", 32),
            _ => ("main", 256),
        };
        let pipeline = pipelines(device, Shader::Reduce, &layout, &[entry], &[]).remove(0);
        Reduce {
            layout,
            pipeline,
            outputs_per_workgroup,
            max_dim,
        }
    }

    /// partials (parts, len) · out (len).
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        partials: &wgpu::Buffer,
        out: &wgpu::Buffer,
        dims: ReduceDims,
    ) -> Bound<ReduceDims> {
        Bound::new(device, "reduce", &self.layout, &[partials, out], dims)
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<ReduceDims>) {
        let (x, y) = grid(
            b.dims.len.div_ceil(self.outputs_per_workgroup),
            self.max_dim,
        );
        dispatch(pass, &self.pipeline, &b.group, (x, y, 1));
    }
}

/// `Dims` of update.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct UpdateDims {
    pub len: u32,
    pub nk: u32,
    pub _pad0: [u32; 2],
    pub inv_m: f32,
    pub step: StepDims,
    pub _pad1: [f32; 3],
}

/// Which entry point of update.wgsl to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpdateEntry {
    Finalize = 0,
    Plain = 1,
    Momentum = 2,
    Adam = 3,
}

impl UpdateEntry {
    /// The entry point that applies `step`.
    pub(crate) fn of_step(step: Step) -> Self {
        match step {
            Step::Plain => UpdateEntry::Plain,
            Step::Momentum { .. } => UpdateEntry::Momentum,
            Step::Adam { .. } => UpdateEntry::Adam,
        }
    }
}

/// Gradient finalisation (mean, + λΘ) and the optimizer steps (update.wgsl).
pub(crate) struct Update {
    layout: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
    max_dim: u32,
}

impl Update {
    pub(super) fn new(device: &wgpu::Device, max_dim: u32) -> Self {
        let rw = Access::ReadWrite;
        let layout = layout(
            device,
            "update",
            &[Access::Read, rw, rw, rw, rw, Access::Uniform],
        );
        let pipelines = pipelines(
            device,
            Shader::Update,
            &layout,
            &["finalize", "step_plain", "step_momentum", "step_adam"],
            &[],
        );
        Update {
            layout,
            pipelines,
            max_dim,
        }
    }

    /// sums (len + 1) · w, g, m1, m2 (len).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        sums: &wgpu::Buffer,
        w: &wgpu::Buffer,
        g: &wgpu::Buffer,
        m1: &wgpu::Buffer,
        m2: &wgpu::Buffer,
        dims: UpdateDims,
    ) -> Bound<UpdateDims> {
        Bound::new(device, "update", &self.layout, &[sums, w, g, m1, m2], dims)
    }

    pub(crate) fn encode(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        b: &Bound<UpdateDims>,
        entry: UpdateEntry,
    ) {
        let (x, y) = grid(b.dims.len.div_ceil(256), self.max_dim);
        dispatch(pass, &self.pipelines[entry as usize], &b.group, (x, y, 1));
    }
}

/// `Dims` of gather.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct GatherDims {
    pub batch: u32,
    pub n: u32,
    pub has_weights: u32,
    pub _pad: u32,
}

/// Copies a mini-batch's rows out of a chunk (gather.wgsl).
pub(crate) struct Gather {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    storage: XStorage,
    max_dim: u32,
}

impl Gather {
    pub(super) fn new(device: &wgpu::Device, storage: XStorage, max_dim: u32) -> Self {
        let r = Access::Read;
        let layout = layout(
            device,
            "gather",
            &[
                r,
                r,
                r,
                r,
                Access::ReadWrite,
                Access::ReadWrite,
                Access::ReadWrite,
                Access::Uniform,
            ],
        );
        let pipeline = pipelines(
            device,
            Shader::Gather,
            &layout,
            &["main"],
            &[x_format(storage)],
        )
        .remove(0);
        Gather {
            layout,
            pipeline,
            storage,
            max_dim,
        }
    }

    /// [x (rows, n), labels (rows), weights (rows), idx (batch), batch_x (batch, n),
    /// batch_labels (batch), batch_weights (batch)].
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        buffers: [&wgpu::Buffer; 7],
        dims: GatherDims,
    ) -> Bound<GatherDims> {
        Bound::new(device, "gather", &self.layout, &buffers, dims)
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<GatherDims>) {
        let d = b.dims;
        let words = self.storage.words(d.batch as usize * d.n as usize) as u32;
        let (x, y) = grid(words.max(d.batch).div_ceil(256), self.max_dim);
        dispatch(pass, &self.pipeline, &b.group, (x, y, 1));
    }
}
