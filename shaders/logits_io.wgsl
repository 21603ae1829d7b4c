// What every logits kernel (logits.wgsl, logits_rows.wgsl, logits_lanes.wgsl) shares:
// its Dims uniform, mirrored by LogitsDims in kernels.rs, and the bindings of z and dims
// (kernels.rs puts this file in front of each; it is not a kernel of its own). Each
// kernel declares binding 1, w, in the shape it reads.

struct Dims {
    rows: u32,
    n: u32,
    k: u32,
    x_lo: f32,
    x_step: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;
