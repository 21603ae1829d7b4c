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

#[cfg(feature = "kernel-lab")]
mod lab;
mod products;
mod rowwise;
mod sparse;

#[cfg(feature = "kernel-lab")]
pub(crate) use lab::*;
pub use products::KernelVariant;
pub(crate) use products::*;
pub(crate) use rowwise::*;
pub(crate) use sparse::*;

/// A shader's source: the named files of shaders/, in order, joined at compile time (the
/// kernels that read X open with x_storage.wgsl, the register kernels then with a tiles
/// file).
macro_rules! shader {
    ($($file:literal),+) => {
        concat!($(include_str!(concat!("../../../shaders/", $file)), "\n"),+)
    };
}

/// Every shader the kernels build, one variant per composed source; the register kernels
/// come twice, reading the rows of Θ and d each invocation for itself or shared through
/// the subgroup. The logits and gradient kernels open with the declarations they share
/// (logits_io.wgsl, gradient_io.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shader {
    #[cfg(feature = "kernel-lab")]
    Logits,
    LogitsLanes,
    GradientSlices,
    LogitsRows,
    LogitsRowsSubgroup,
    GradientCols,
    GradientColsSubgroup,
    Softmax,
    #[cfg(feature = "kernel-lab")]
    Gradient,
    Reduce,
    Update,
    Gather,
    SparsePieces,
    SparseSegments,
    #[cfg(feature = "kernel-lab")]
    Fused,
}

impl Shader {
    /// Every variant, for checks that walk them all.
    #[cfg(test)]
    const ALL: &[Shader] = &[
        #[cfg(feature = "kernel-lab")]
        Shader::Logits,
        Shader::LogitsLanes,
        Shader::GradientSlices,
        Shader::LogitsRows,
        Shader::LogitsRowsSubgroup,
        Shader::GradientCols,
        Shader::GradientColsSubgroup,
        Shader::Softmax,
        #[cfg(feature = "kernel-lab")]
        Shader::Gradient,
        Shader::Reduce,
        Shader::Update,
        Shader::Gather,
        Shader::SparsePieces,
        Shader::SparseSegments,
        #[cfg(feature = "kernel-lab")]
        Shader::Fused,
    ];

    /// The label of its module and pipelines.
    fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "kernel-lab")]
            Shader::Logits => "logits",
            Shader::LogitsLanes => "logits_lanes",
            Shader::GradientSlices => "gradient_slices",
            Shader::LogitsRows => "logits_rows",
            Shader::LogitsRowsSubgroup => "logits_rows_subgroup",
            Shader::GradientCols => "gradient_cols",
            Shader::GradientColsSubgroup => "gradient_cols_subgroup",
            Shader::Softmax => "softmax",
            #[cfg(feature = "kernel-lab")]
            Shader::Gradient => "gradient",
            Shader::Reduce => "reduce",
            Shader::Update => "update",
            Shader::Gather => "gather",
            Shader::SparsePieces => "sparse_pieces",
            Shader::SparseSegments => "sparse_segments",
            #[cfg(feature = "kernel-lab")]
            Shader::Fused => "fused",
        }
    }

    /// Its WGSL, joined from the files of shaders/ at compile time.
    fn source(self) -> &'static str {
        match self {
            #[cfg(feature = "kernel-lab")]
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
            Shader::Softmax => include_str!("../../../shaders/softmax.wgsl"),
            #[cfg(feature = "kernel-lab")]
            Shader::Gradient => shader!("x_storage.wgsl", "gradient_io.wgsl", "gradient.wgsl"),
            Shader::Reduce => include_str!("../../../shaders/reduce.wgsl"),
            Shader::Update => include_str!("../../../shaders/update.wgsl"),
            Shader::Gather => shader!("x_storage.wgsl", "gather.wgsl"),
            Shader::SparsePieces => shader!("acc16.wgsl", "sparse_pieces.wgsl"),
            Shader::SparseSegments => include_str!("../../../shaders/sparse_segments.wgsl"),
            #[cfg(feature = "kernel-lab")]
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

/// All compiled kernels of a device.
pub(crate) struct Kernels {
    /// The choice of matrix-product kernels these were built for.
    pub variant: KernelVariant,
    /// How the kernels that read X expect it stored.
    pub storage: XStorage,
    /// Whether the register kernels share rows of Θ and d through the subgroup
    /// (tiles_subgroup.wgsl) rather than each invocation loading them (tiles_plain.wgsl).
    pub subgroup_tiles: bool,
    #[cfg(feature = "kernel-lab")]
    pub fused: Fused,
    pub logits: Logits,
    pub softmax: Softmax,
    pub gradient: Gradient,
    pub reduce: Reduce,
    pub update: Update,
    pub gather: Gather,
    pub sparse_pieces: SparsePieces,
    pub sparse_segments: SparseSegments,
}

impl Kernels {
    /// Whether full-batch passes with K ≤ 16 use the fused kernel.
    pub(crate) fn fused_enabled(&self) -> bool {
        #[cfg(feature = "kernel-lab")]
        return self.fused.enabled;
        #[cfg(not(feature = "kernel-lab"))]
        false
    }

    pub(crate) fn new(
        device: &wgpu::Device,
        max_dim: u32,
        variant: KernelVariant,
        storage: XStorage,
        subgroup_tiles: bool,
        fused: bool,
        tuning: CoalescedTuning,
    ) -> Self {
        // Without the kernel lab the context never asks for the fused kernel.
        #[cfg(not(feature = "kernel-lab"))]
        let _ = fused;
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
            #[cfg(feature = "kernel-lab")]
            fused: Fused::new(device, max_dim, storage, fused),
            logits: Logits::new(device, build, max_dim),
            softmax: Softmax::new(device, variant, max_dim),
            gradient: Gradient::new(device, build),
            reduce: Reduce::new(device, variant, max_dim),
            update: Update::new(device, max_dim),
            gather: Gather::new(device, storage, max_dim),
            sparse_pieces: SparsePieces::new(device, variant, max_dim),
            sparse_segments: SparseSegments::new(device, max_dim),
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
        let x_storage = include_str!("../../../shaders/x_storage.wgsl");
        for (i, shader) in Shader::ALL.iter().enumerate() {
            assert!(!shader.source().trim().is_empty(), "{shader:?}");
            assert!(
                Shader::ALL[..i].iter().all(|s| s.name() != shader.name()),
                "{shader:?}"
            );
            let reads_x = !matches!(
                shader,
                Shader::Softmax
                    | Shader::Reduce
                    | Shader::Update
                    | Shader::SparsePieces
                    | Shader::SparseSegments
            );
            assert_eq!(
                shader.source().starts_with(x_storage),
                reads_x,
                "{shader:?}"
            );
        }
    }
}
