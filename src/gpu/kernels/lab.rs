//! Kernels kept for comparison rather than chosen by default: the single-pass fused
//! kernel (logits, softmax and gradient per row block).

use super::*;

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

impl Fused {
    pub(super) fn new(
        device: &wgpu::Device,
        max_dim: u32,
        storage: XStorage,
        enabled: bool,
    ) -> Self {
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
