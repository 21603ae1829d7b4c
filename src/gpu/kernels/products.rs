//! The two matrix products, Z = XΘ + 1bᵀ and the gradient partials Xᵀ(P − Y), in the
//! kernel kind the device runs: register (CPU adapters) or coalesced (GPUs).

use super::*;
use crate::gpu::storage::XCodec;

/// Which implementation of the two matrix products (logits and gradient) a device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelVariant {
    #[cfg(feature = "kernel-lab")]
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
    pub(super) fn product_kind(self) -> ProductKind {
        match self {
            #[cfg(feature = "kernel-lab")]
            KernelVariant::Tiled => ProductKind::Tiled,
            KernelVariant::Register => ProductKind::Register,
            KernelVariant::Coalesced | KernelVariant::Auto => ProductKind::Coalesced,
        }
    }

    /// Rows or features per invocation of the register kernels under this choice.
    fn register_outputs_per_invocation(self) -> u32 {
        match self {
            KernelVariant::Register => REGISTER_OUTPUTS_PER_INVOCATION,
            _ => 1,
        }
    }
}

/// One implementation of a matrix product (logits or gradient partials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProductKind {
    #[cfg(feature = "kernel-lab")]
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
    /// The default, or, in a build with the kernel lab, what `SOFTMAX_REGRESSION_COALESCED`
    /// sets (a build without it refuses the variable rather than ignore it).
    pub(crate) fn from_env() -> crate::error::Result<Self> {
        const VAR: &str = "SOFTMAX_REGRESSION_COALESCED";
        let mut tuning = CoalescedTuning::default();
        let Ok(value) = std::env::var(VAR) else {
            return Ok(tuning);
        };
        if !cfg!(feature = "kernel-lab") {
            return Err(crate::error::Error::setting(
                VAR,
                value,
                "the coalesced kernels are tuned in the kernel lab: build with `--features kernel-lab`",
            ));
        }
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

#[cfg(feature = "kernel-lab")]
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

impl LogitsDims {
    /// `rows` rows of n features against K classes, X decoded with `codec`.
    pub(crate) fn new(rows: usize, n: usize, k: usize, codec: XCodec) -> Self {
        LogitsDims {
            rows: rows as u32,
            n: n as u32,
            k: k as u32,
            x_lo: codec.lo,
            x_step: codec.step,
            _pad: [0; 3],
        }
    }
}

/// What the matrix-product pipelines are built for: the kernel choice, the storage of X,
/// and whether the register kernels share rows through the subgroup.
#[derive(Clone, Copy)]
pub(super) struct ProductBuild {
    pub(super) variant: KernelVariant,
    pub(super) storage: XStorage,
    pub(super) subgroup_tiles: bool,
    pub(super) tuning: CoalescedTuning,
}

/// The shaders of one matrix product, one per kernel kind (the register kernel twice: rows
/// of its own, or shared through the subgroup).
struct ProductShaders {
    #[cfg(feature = "kernel-lab")]
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
            #[cfg(feature = "kernel-lab")]
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
    pub(super) fn new(device: &wgpu::Device, build: ProductBuild, max_dim: u32) -> Self {
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
                    #[cfg(feature = "kernel-lab")]
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
            #[cfg(feature = "kernel-lab")]
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
    pub(super) fn new(device: &wgpu::Device, build: ProductBuild) -> Self {
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
                    #[cfg(feature = "kernel-lab")]
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
            #[cfg(feature = "kernel-lab")]
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
