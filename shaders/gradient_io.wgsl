// What every gradient-partials kernel (gradient.wgsl, gradient_cols.wgsl,
// gradient_slices.wgsl) shares: its Dims uniform, mirrored by GradientDims in kernels.rs,
// and the bindings of row_loss, partials and dims (kernels.rs puts this file in front of
// each; it is not a kernel of its own). Each kernel declares binding 1, d, in the shape
// it reads.

struct Dims {
    rows: u32,
    n: u32,
    k: u32,
    rows_per_block: u32,
    stride: u32,
    x_lo: f32,
    x_step: f32,
    _pad0: u32,
}

@group(0) @binding(2) var<storage, read> row_loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<uniform> dims: Dims;
