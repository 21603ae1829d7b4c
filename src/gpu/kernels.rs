//! One type per WGSL kernel: its pipeline, its explicit bind-group layout, its `Dims`
//! uniform (mirrored field for field by the struct in the shader), and an `encode` method.
//! Shaders are named by the `Shader` enum, whose exhaustive `match` maps each onto its
//! `include_str!` source; none is assembled from strings at run time. The
//! kernels that read X open with shaders/x_storage.wgsl, joined to their file by `concat!`
//! at compile time, and take its storage format as the pipeline constant `X_FORMAT`.

use std::borrow::Cow;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::gpu::storage::XStorage;
use crate::step::{Step, StepDims};

/// A shader's source: the named files of shaders/, in order, joined at compile time (the
/// kernels that read X open with x_storage.wgsl, the register kernels then with a tiles
/// file).
macro_rules! shader {
    ($($file:literal),+) => {
        concat!($(include_str!(concat!("../../shaders/", $file)), "\n"),+)
    };
}

/// Every shader the kernels build, one variant per composed source; the register kernels
/// come twice, reading the rows of Θ and d each invocation for itself or shared through
/// the subgroup. The logits and gradient kernels open with the declarations they share
/// (logits_io.wgsl, gradient_io.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shader {
    Logits,
    LogitsLanes,
    GradientSlices,
    LogitsRows,
    LogitsRowsSubgroup,
    GradientCols,
    GradientColsSubgroup,
    Softmax,
    Gradient,
    Reduce,
    Update,
    Gather,
    Fused,
}

impl Shader {
    /// Every variant, for checks that walk them all.
    #[cfg(test)]
    const ALL: [Shader; 13] = [
        Shader::Logits,
        Shader::LogitsLanes,
        Shader::GradientSlices,
        Shader::LogitsRows,
        Shader::LogitsRowsSubgroup,
        Shader::GradientCols,
        Shader::GradientColsSubgroup,
        Shader::Softmax,
        Shader::Gradient,
        Shader::Reduce,
        Shader::Update,
        Shader::Gather,
        Shader::Fused,
    ];

    /// The label of its module and pipelines.
    fn name(self) -> &'static str {
        match self {
            Shader::Logits => "logits",
            Shader::LogitsLanes => "logits_lanes",
            Shader::GradientSlices => "gradient_slices",
            Shader::LogitsRows => "logits_rows",
            Shader::LogitsRowsSubgroup => "logits_rows_subgroup",
            Shader::GradientCols => "gradient_cols",
            Shader::GradientColsSubgroup => "gradient_cols_subgroup",
            Shader::Softmax => "softmax",
            Shader::Gradient => "gradient",
            Shader::Reduce => "reduce",
            Shader::Update => "update",
            Shader::Gather => "gather",
            Shader::Fused => "fused",
        }
    }

    /// Its WGSL, joined from the files of shaders/ at compile time.
    fn source(self) -> &'static str {
        match self {
            Shader::Logits => shader!("x_storage.wgsl", "logits_io.wgsl", "logits.wgsl"),
            Shader::LogitsLanes => shader!(
                "x_storage.wgsl",
                "logits_io.wgsl",
                "tiles_plain.wgsl",
                "logits_lanes.wgsl"
            ),
            Shader::GradientSlices => shader!(
                "x_storage.wgsl",
                "gradient_io.wgsl",
                "tiles_plain.wgsl",
                "acc16.wgsl",
                "gradient_slices.wgsl"
            ),
            Shader::LogitsRows => shader!(
                "x_storage.wgsl",
                "logits_io.wgsl",
                "tiles_plain.wgsl",
                "acc16.wgsl",
                "logits_rows.wgsl"
            ),
            Shader::LogitsRowsSubgroup => shader!(
                "x_storage.wgsl",
                "logits_io.wgsl",
                "tiles_subgroup.wgsl",
                "acc16.wgsl",
                "logits_rows.wgsl"
            ),
            Shader::GradientCols => shader!(
                "x_storage.wgsl",
                "gradient_io.wgsl",
                "tiles_plain.wgsl",
                "acc16.wgsl",
                "gradient_cols.wgsl"
            ),
            Shader::GradientColsSubgroup => shader!(
                "x_storage.wgsl",
                "gradient_io.wgsl",
                "tiles_subgroup.wgsl",
                "acc16.wgsl",
                "gradient_cols.wgsl"
            ),
            Shader::Softmax => include_str!("../../shaders/softmax.wgsl"),
            Shader::Gradient => shader!("x_storage.wgsl", "gradient_io.wgsl", "gradient.wgsl"),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl"),
            Shader::Update => include_str!("../../shaders/update.wgsl"),
            Shader::Gather => shader!("x_storage.wgsl", "gather.wgsl"),
            Shader::Fused => shader!("x_storage.wgsl", "tiles_plain.wgsl", "fused.wgsl"),
        }
    }
}

/// How a binding is accessed, in binding order.
#[derive(Clone, Copy)]
enum Access {
    Read,
    ReadWrite,
    Uniform,
}

fn layout(device: &wgpu::Device, label: &str, access: &[Access]) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = access
        .iter()
        .enumerate()
        .map(|(i, a)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match a {
                    Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    Access::Uniform => wgpu::BufferBindingType::Uniform,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

/// The pipelines of `entries` in `shader`; `constants` give its pipeline constants, among
/// them the storage of X to kernels that read it (x_storage.wgsl's `X_FORMAT`).
fn pipelines(
    device: &wgpu::Device,
    shader: Shader,
    layout: &wgpu::BindGroupLayout,
    entries: &[&str],
    constants: &[(&str, f64)],
) -> Vec<wgpu::ComputePipeline> {
    let name = shader.name();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(shader.source())),
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    entries
        .iter()
        .map(|entry| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&format!("{name}::{entry}")),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                // Every kernel writes the workgroup memory it reads before a barrier, so
                // the zero fill WebGPU would add is dead work; on the GL backend it is
                // also a constant array the size of the tile that llvmpipe takes a
                // minute and more to compile.
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
        })
        .collect()
}

/// The pipeline constant that tells x_storage.wgsl how X is stored.
fn x_format(storage: XStorage) -> (&'static str, f64) {
    ("X_FORMAT", f64::from(storage.format()))
}

/// A bind group with its own `Dims` uniform buffer and the dims it holds.
pub(crate) struct Bound<D> {
    group: wgpu::BindGroup,
    uniform: wgpu::Buffer,
    pub(crate) dims: D,
}

impl<D: Pod> Bound<D> {
    fn new(
        device: &wgpu::Device,
        label: &str,
        layout: &wgpu::BindGroupLayout,
        buffers: &[&wgpu::Buffer],
        dims: D,
    ) -> Self {
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(&dims),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let mut entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        entries.push(wgpu::BindGroupEntry {
            binding: buffers.len() as u32,
            resource: uniform.as_entire_binding(),
        });
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout,
            entries: &entries,
        });
        Bound {
            group,
            uniform,
            dims,
        }
    }

    /// Replaces the dims; the write lands before the next submission.
    pub(crate) fn set(&mut self, queue: &wgpu::Queue, dims: D) {
        queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&dims));
        self.dims = dims;
    }
}

/// Folds `total` workgroups into a 2-D grid whose x never exceeds `max_dim`; shaders
/// recover the linear index as `wy·num_x + wx` and bounds-check it.
pub(crate) fn grid(total: u32, max_dim: u32) -> (u32, u32) {
    let total = total.max(1);
    if total <= max_dim {
        (total, 1)
    } else {
        (max_dim, total.div_ceil(max_dim))
    }
}

fn dispatch(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    group: &wgpu::BindGroup,
    wg: (u32, u32, u32),
) {
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, group, &[]);
    pass.dispatch_workgroups(wg.0, wg.1, wg.2);
}

/// Which implementation of the two matrix products (logits and gradient) a device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelVariant {
    /// Register-blocked tiles staged in workgroup memory (logits.wgsl, gradient.wgsl):
    /// 256 invocations per workgroup, 4×4 outputs each, coalesced loads and data reuse
    /// for real GPUs; the gradient is split over row blocks to fill the device.
    Tiled,
    /// Four rows (logits_rows.wgsl) or four features (gradient_cols.wgsl) per invocation,
    /// with 16 classes each in registers and no barriers: for adapters that run
    /// invocations as CPU SIMD lanes (llvmpipe, lavapipe), where barriers and workgroup
    /// memory are slow. The default on CPU adapters.
    Register,
    /// Loads coalesced across the lanes of a GPU's SIMD groups, with no sums across lanes
    /// in the main loop: logits with 16 lanes over classes and eight rows per invocation
    /// (logits_lanes.wgsl), and a gradient with 32 lanes over four consecutive features
    /// each and eight row slices per workgroup, added in slice order at the end
    /// (gradient_slices.wgsl), in row blocks sized to fill the device.
    Coalesced,
    /// The default on GPUs: the coalesced kernels, which took less time than the tiled and
    /// register ones for both products at every benchmark shape on an NVIDIA H200
    /// (BENCHMARKS.md: 1.4–3.4× less for the logits, 1.1–6.3× for the gradient).
    Auto,
}

impl KernelVariant {
    /// The implementation of both matrix products under this choice.
    fn product_kind(self) -> ProductKind {
        match self {
            KernelVariant::Tiled => ProductKind::Tiled,
            KernelVariant::Register => ProductKind::Register,
            KernelVariant::Coalesced | KernelVariant::Auto => ProductKind::Coalesced,
        }
    }

    /// Rows or features per invocation of the register kernels under this choice.
    fn register_outputs_per_invocation(self) -> u32 {
        match self {
            KernelVariant::Register => REGISTER_OUTPUTS_PER_INVOCATION,
            KernelVariant::Tiled | KernelVariant::Auto | KernelVariant::Coalesced => 1,
        }
    }
}

/// One implementation of a matrix product (logits or gradient partials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProductKind {
    /// logits.wgsl, gradient.wgsl.
    Tiled,
    /// logits_rows.wgsl, gradient_cols.wgsl.
    Register,
    /// logits_lanes.wgsl, gradient_slices.wgsl.
    Coalesced,
}

/// How much each invocation of the coalesced kernels takes on: rows per invocation of
/// logits_lanes.wgsl (`ROWS`, 4 or 8) and rows per loop iteration of a slice in
/// gradient_slices.wgsl (`PAIRS`, 1 or 2, the loads of both in flight together). Either
/// choice gives the same sums in the same order, so results do not depend on it; only
/// speed does. The default, 8 and 2, measured fastest on an NVIDIA H200 (BENCHMARKS.md);
/// `SOFTMAX_REGRESSION_COALESCED=rows=4,pairs=1,quads=0` (any of the keys) overrides it,
/// which is how the benchmarks compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CoalescedTuning {
    pub rows: u32,
    pub pairs: u32,
    /// Whether the logits of 64 classes or more take four classes per lane (`quads=1`).
    pub quads: bool,
}

impl Default for CoalescedTuning {
    fn default() -> Self {
        CoalescedTuning {
            rows: 8,
            pairs: 2,
            quads: true,
        }
    }
}

impl CoalescedTuning {
    /// The default, or what `SOFTMAX_REGRESSION_COALESCED` sets.
    pub(crate) fn from_env() -> crate::error::Result<Self> {
        const VAR: &str = "SOFTMAX_REGRESSION_COALESCED";
        let mut tuning = CoalescedTuning::default();
        let Ok(value) = std::env::var(VAR) else {
            return Ok(tuning);
        };
        for item in value.split(',').filter(|i| !i.is_empty()) {
            let bad = || {
                crate::error::Error::setting(
                    VAR,
                    &value,
                    format!("`{item}`: expected rows=4|8, pairs=1|2 or quads=0|1"),
                )
            };
            let (key, v) = item.split_once('=').ok_or_else(bad)?;
            match (key, v) {
                ("rows", "4" | "8") => tuning.rows = v.parse().map_err(|_| bad())?,
                ("pairs", "1" | "2") => tuning.pairs = v.parse().map_err(|_| bad())?,
                ("quads", "0" | "1") => tuning.quads = v == "1",
                _ => return Err(bad()),
            }
        }
        Ok(tuning)
    }
}

/// Row slices per workgroup of gradient_slices.wgsl, and the features one workgroup covers.
pub(crate) const SLICES: u32 = 8;
pub(crate) const SLICES_FEATURES: u32 = 128;

/// Classes held in registers per invocation by the register kernels.
pub(crate) const CLASS_TILE: u32 = 16;

/// Rows (logits_rows.wgsl) or features (gradient_cols.wgsl) per invocation of the register
/// kernels under [`KernelVariant::Register`], the CPU default: each row of Θ or of P − Y
/// read is then shared by four outputs, which on lavapipe takes the register logits at
/// 30000 × 784 × 16 from about 95 to about 60 ms (BENCHMARKS.md). [`KernelVariant::Auto`]
/// keeps one per invocation, for occupancy on GPUs.
const REGISTER_OUTPUTS_PER_INVOCATION: u32 = 4;

/// Rows of X staged at a time by the tiled gradient kernel; row blocks are multiples of it.
pub(crate) const TILE: u32 = 16;

/// The (BM, BN) output tile of one 256-invocation workgroup of the tiled kernels, in rows
/// (logits) or features (gradient) × classes: narrow tiles when K ≤ 16 so that few
/// classes do not waste three quarters of the work, square ones otherwise. Mirrors the
/// choice made in logits.wgsl and gradient.wgsl.
pub(crate) fn tile_shape(k: u32) -> (u32, u32) {
    if k <= 16 { (256, 16) } else { (64, 64) }
}

/// `Dims` of logits.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct LogitsDims {
    pub rows: u32,
    pub n: u32,
    pub k: u32,
    /// Value of u8 code 0 (x_storage.wgsl).
    pub x_lo: f32,
    /// Value between consecutive u8 codes.
    pub x_step: f32,
    pub _pad: [u32; 3],
}

/// What the matrix-product pipelines are built for: the kernel choice, the storage of X,
/// and whether the register kernels share rows through the subgroup.
#[derive(Clone, Copy)]
struct ProductBuild {
    variant: KernelVariant,
    storage: XStorage,
    subgroup_tiles: bool,
    tuning: CoalescedTuning,
}

/// The shaders of one matrix product, one per kernel kind (the register kernel twice: rows
/// of its own, or shared through the subgroup).
struct ProductShaders {
    tiled: Shader,
    register: Shader,
    register_subgroup: Shader,
    coalesced: Shader,
}

/// A matrix product's pipeline, of the one kind its kernel choice runs.
struct ProductPipeline {
    kind: ProductKind,
    pipeline: wgpu::ComputePipeline,
}

impl ProductPipeline {
    /// `shaders` are the product's kernels; the register and coalesced ones come with
    /// their pipeline constants besides `X_FORMAT`.
    fn new(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        build: ProductBuild,
        shaders: ProductShaders,
        register_constants: &[(&str, f64)],
        coalesced_constants: &[(&str, f64)],
    ) -> Self {
        let kind = build.variant.product_kind();
        let (shader, extra) = match kind {
            ProductKind::Tiled => (shaders.tiled, &[][..]),
            ProductKind::Register if build.subgroup_tiles => {
                (shaders.register_subgroup, register_constants)
            }
            ProductKind::Register => (shaders.register, register_constants),
            ProductKind::Coalesced => (shaders.coalesced, coalesced_constants),
        };
        let mut constants = vec![x_format(build.storage)];
        constants.extend_from_slice(extra);
        ProductPipeline {
            kind,
            pipeline: pipelines(device, shader, layout, &["main"], &constants).remove(0),
        }
    }
}

/// Z = XΘ + 1bᵀ for one row chunk (logits.wgsl, logits_rows.wgsl, logits_lanes.wgsl).
pub(crate) struct Logits {
    layout: wgpu::BindGroupLayout,
    pipeline: ProductPipeline,
    /// Rows per invocation of the register kernel (its pipeline constant ROWS).
    rows_per_invocation: u32,
    /// Rows per invocation of the coalesced kernel (its pipeline constant ROWS).
    lanes_rows: u32,
    /// The coalesced kernel's entry point `quads` (four classes per lane), for K of at
    /// least [`QUADS_MIN_CLASSES`], when built.
    quads: Option<wgpu::ComputePipeline>,
    max_dim: u32,
}

/// Fewest classes for which the coalesced logits take four classes per lane (entry point
/// `quads` of logits_lanes.wgsl): below 64 a tile of 64 classes would leave lanes idle.
const QUADS_MIN_CLASSES: u32 = 64;

impl Logits {
    fn new(device: &wgpu::Device, build: ProductBuild, max_dim: u32) -> Self {
        let rows_per_invocation = build.variant.register_outputs_per_invocation();
        let layout = layout(
            device,
            "logits",
            &[
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::Uniform,
            ],
        );
        Logits {
            pipeline: ProductPipeline::new(
                device,
                &layout,
                build,
                ProductShaders {
                    tiled: Shader::Logits,
                    register: Shader::LogitsRows,
                    register_subgroup: Shader::LogitsRowsSubgroup,
                    coalesced: Shader::LogitsLanes,
                },
                &[("ROWS", f64::from(rows_per_invocation))],
                &[("ROWS", f64::from(build.tuning.rows))],
            ),
            quads: (build.tuning.quads && build.variant.product_kind() == ProductKind::Coalesced)
                .then(|| {
                    let constants = [
                        x_format(build.storage),
                        ("ROWS", f64::from(build.tuning.rows)),
                    ];
                    pipelines(device, Shader::LogitsLanes, &layout, &["quads"], &constants)
                        .remove(0)
                }),
            layout,
            rows_per_invocation,
            lanes_rows: build.tuning.rows,
            max_dim,
        }
    }

    /// x (rows, n) · w (n·K + K) · z (rows, K).
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        x: &wgpu::Buffer,
        w: &wgpu::Buffer,
        z: &wgpu::Buffer,
        dims: LogitsDims,
    ) -> Bound<LogitsDims> {
        Bound::new(device, "logits", &self.layout, &[x, w, z], dims)
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<LogitsDims>) {
        let d = b.dims;
        let workgroups = match self.pipeline.kind {
            ProductKind::Tiled => {
                let (bm, bn) = tile_shape(d.k);
                let (x, y) = grid(d.rows.div_ceil(bm), self.max_dim);
                (x, y, d.k.div_ceil(bn))
            }
            ProductKind::Register => {
                let (x, y) = grid(d.rows.div_ceil(64 * self.rows_per_invocation), self.max_dim);
                (x, y, d.k.div_ceil(CLASS_TILE))
            }
            ProductKind::Coalesced => {
                let (x, y) = grid(d.rows.div_ceil(16 * self.lanes_rows), self.max_dim);
                if let Some(quads) = self.quads.as_ref().filter(|_| d.k >= QUADS_MIN_CLASSES) {
                    dispatch(pass, quads, &b.group, (x, y, d.k.div_ceil(64)));
                    return;
                }
                (x, y, d.k.div_ceil(CLASS_TILE))
            }
        };
        dispatch(pass, &self.pipeline.pipeline, &b.group, workgroups);
    }
}

/// `Dims` of softmax.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct SoftmaxDims {
    pub rows: u32,
    pub k: u32,
    pub has_labels: u32,
    pub has_weights: u32,
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
    fn new(device: &wgpu::Device, variant: KernelVariant, max_dim: u32) -> Self {
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
                KernelVariant::Tiled | KernelVariant::Auto | KernelVariant::Coalesced => {
                    SOFTMAX_ROW_PER_THREAD_MAX_K
                }
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

/// `Dims` of gradient.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct GradientDims {
    pub rows: u32,
    pub n: u32,
    pub k: u32,
    pub rows_per_block: u32,
    pub stride: u32,
    /// Value of u8 code 0 (x_storage.wgsl).
    pub x_lo: f32,
    /// Value between consecutive u8 codes.
    pub x_step: f32,
    pub _pad: u32,
}

impl GradientDims {
    pub(crate) fn blocks(&self) -> u32 {
        self.rows.div_ceil(self.rows_per_block.max(1))
    }
}

/// Per-row-block partials of Xᵀ(P − Y), Σ(P − Y) and the loss (gradient.wgsl,
/// gradient_cols.wgsl, gradient_slices.wgsl).
pub(crate) struct Gradient {
    layout: wgpu::BindGroupLayout,
    pipeline: ProductPipeline,
}

impl Gradient {
    fn new(device: &wgpu::Device, build: ProductBuild) -> Self {
        let cols = build.variant.register_outputs_per_invocation();
        let layout = layout(
            device,
            "gradient",
            &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::Uniform,
            ],
        );
        Gradient {
            pipeline: ProductPipeline::new(
                device,
                &layout,
                build,
                ProductShaders {
                    tiled: Shader::Gradient,
                    register: Shader::GradientCols,
                    register_subgroup: Shader::GradientColsSubgroup,
                    coalesced: Shader::GradientSlices,
                },
                // Workgroups of 64 features either way: the dispatch does not depend on it.
                &[("COLS", f64::from(cols)), ("WG", f64::from(64 / cols))],
                &[("PAIRS", f64::from(build.tuning.pairs))],
            ),
            layout,
        }
    }

    /// The kernel that sums the partials.
    pub(crate) fn kind(&self) -> ProductKind {
        self.pipeline.kind
    }

    /// x (rows, n) · d (rows, K) · row_loss (rows) · partials (blocks, n·K + K + 1).
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        x: &wgpu::Buffer,
        d: &wgpu::Buffer,
        row_loss: &wgpu::Buffer,
        partials: &wgpu::Buffer,
        dims: GradientDims,
    ) -> Bound<GradientDims> {
        Bound::new(
            device,
            "gradient",
            &self.layout,
            &[x, d, row_loss, partials],
            dims,
        )
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<GradientDims>) {
        let d = b.dims;
        let workgroups = match self.kind() {
            ProductKind::Tiled => {
                let (bm, bn) = tile_shape(d.k);
                ((d.n + 1).div_ceil(bm), d.k.div_ceil(bn), d.blocks())
            }
            ProductKind::Register => ((d.n + 1).div_ceil(64), d.k.div_ceil(CLASS_TILE), d.blocks()),
            ProductKind::Coalesced => (
                (d.n + 1).div_ceil(SLICES_FEATURES),
                d.k.div_ceil(CLASS_TILE),
                d.blocks(),
            ),
        };
        dispatch(pass, &self.pipeline.pipeline, &b.group, workgroups);
    }
}

/// `Dims` of fused.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct FusedDims {
    pub rows: u32,
    pub n: u32,
    pub k: u32,
    pub rows_per_block: u32,
    pub stride: u32,
    pub has_weights: u32,
    /// Value of u8 code 0 (x_storage.wgsl).
    pub x_lo: f32,
    /// Value between consecutive u8 codes.
    pub x_step: f32,
}

impl FusedDims {
    pub(crate) fn blocks(&self) -> u32 {
        self.rows.div_ceil(self.rows_per_block.max(1))
    }
}

/// The single-pass loss-and-gradient kernel for K ≤ [`FUSED_MAX_CLASSES`] (fused.wgsl):
/// logits, softmax and the gradient's row-block partials, in gradient.wgsl's layout.
pub(crate) struct Fused {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    max_dim: u32,
    /// Whether problems use it (K permitting); see [`fused_wanted`].
    pub(crate) enabled: bool,
}

/// Most classes the fused kernel handles (one class tile in registers).
pub(crate) const FUSED_MAX_CLASSES: usize = CLASS_TILE as usize;

/// Whether the fused kernel is used: `SOFTMAX_REGRESSION_FUSED=1` turns it on. It is off
/// by default: on lavapipe it measured slower than the unfused register kernels (see
/// BENCHMARKS.md), and on GPUs its row blocks, which follow the gradient kernel's, would be
/// too few to fill the device. The unfused kernels are the reference path either way.
pub(crate) fn fused_wanted() -> bool {
    matches!(
        std::env::var("SOFTMAX_REGRESSION_FUSED").ok().as_deref(),
        Some("1") | Some("on")
    )
}

impl Fused {
    fn new(device: &wgpu::Device, max_dim: u32, storage: XStorage, enabled: bool) -> Self {
        let layout = layout(
            device,
            "fused",
            &[
                Access::Read,
                Access::Read,
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::Uniform,
            ],
        );
        let pipeline = pipelines(
            device,
            Shader::Fused,
            &layout,
            &["main"],
            &[x_format(storage)],
        )
        .remove(0);
        Fused {
            layout,
            pipeline,
            max_dim,
            enabled,
        }
    }

    /// [x (rows, n), w (n·K + K), labels (rows), weights (rows), partials].
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        buffers: [&wgpu::Buffer; 5],
        dims: FusedDims,
    ) -> Bound<FusedDims> {
        Bound::new(device, "fused", &self.layout, &buffers, dims)
    }

    pub(crate) fn encode(&self, pass: &mut wgpu::ComputePass<'_>, b: &Bound<FusedDims>) {
        let (x, y) = grid(b.dims.blocks(), self.max_dim);
        dispatch(pass, &self.pipeline, &b.group, (x, y, 1));
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
    fn new(device: &wgpu::Device, variant: KernelVariant, max_dim: u32) -> Self {
        let layout = layout(
            device,
            "reduce",
            &[Access::Read, Access::ReadWrite, Access::Uniform],
        );
        let (entry, outputs_per_workgroup) = match variant.product_kind() {
            ProductKind::Coalesced => ("sliced", 32),
            ProductKind::Tiled | ProductKind::Register => ("main", 256),
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
    fn new(device: &wgpu::Device, max_dim: u32) -> Self {
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
    fn new(device: &wgpu::Device, storage: XStorage, max_dim: u32) -> Self {
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

/// All compiled kernels of a device.
pub(crate) struct Kernels {
    /// The choice of matrix-product kernels these were built for.
    pub variant: KernelVariant,
    /// How the kernels that read X expect it stored.
    pub storage: XStorage,
    /// Whether the register kernels share rows of Θ and d through the subgroup
    /// (tiles_subgroup.wgsl) rather than each invocation loading them (tiles_plain.wgsl).
    pub subgroup_tiles: bool,
    pub fused: Fused,
    pub logits: Logits,
    pub softmax: Softmax,
    pub gradient: Gradient,
    pub reduce: Reduce,
    pub update: Update,
    pub gather: Gather,
}

impl Kernels {
    pub(crate) fn new(
        device: &wgpu::Device,
        max_dim: u32,
        variant: KernelVariant,
        storage: XStorage,
        subgroup_tiles: bool,
        fused: bool,
        tuning: CoalescedTuning,
    ) -> Self {
        let build = ProductBuild {
            variant,
            storage,
            subgroup_tiles,
            tuning,
        };
        Kernels {
            variant,
            storage,
            subgroup_tiles,
            fused: Fused::new(device, max_dim, storage, fused),
            logits: Logits::new(device, build, max_dim),
            softmax: Softmax::new(device, variant, max_dim),
            gradient: Gradient::new(device, build),
            reduce: Reduce::new(device, variant, max_dim),
            update: Update::new(device, max_dim),
            gather: Gather::new(device, storage, max_dim),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shader;

    /// Each shader has its own label and a source; those that read X open with
    /// x_storage.wgsl, whose `X_FORMAT` constant the pipelines set.
    #[test]
    fn every_shader_has_a_source_and_its_own_name() {
        let x_storage = include_str!("../../shaders/x_storage.wgsl");
        for (i, shader) in Shader::ALL.iter().enumerate() {
            assert!(!shader.source().trim().is_empty(), "{shader:?}");
            assert!(
                Shader::ALL[..i].iter().all(|s| s.name() != shader.name()),
                "{shader:?}"
            );
            let reads_x = !matches!(shader, Shader::Softmax | Shader::Reduce | Shader::Update);
            assert_eq!(
                shader.source().starts_with(x_storage),
                reads_x,
                "{shader:?}"
            );
        }
    }
}
