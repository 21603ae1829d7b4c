// Logits for one row chunk, one invocation per row: Z = XΘ + 1bᵀ.
//
// The register variant of logits.wgsl, for adapters that run invocations as CPU SIMD
// lanes (llvmpipe, lavapipe): no workgroup memory and no barriers. Invocation r keeps
// the logits of up to 16 classes in registers, streams its own row of x once per class
// tile, and reads Θ entries that are the same for every lane through tile16 (from
// tiles_plain.wgsl or tiles_subgroup.wgsl, which kernels.rs puts in front of this file).
// Invocations past the last row compute on the last row and write nothing, so that every
// invocation reaches each tile16 call.
//
// Shapes: x (rows, n) · w (n·K + K): theta (n, K) row-major then bias (K) · z (rows, K).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 w read (named
// tile_src, as the tiles file expects) · 2 z write · 3 dims uniform (same Dims as
// logits.wgsl).
// Dispatch: (ceil(rows / 64) folded into x ≤ 65535 and y, ceil(K / 16), 1) workgroups of 64;
// row = (wy·num_x + wx)·64 + lx, classes [wz·16, wz·16 + 16) with wz = workgroup_id.z.
// Sums over j run in increasing j: reproducible.

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

@group(0) @binding(1) var<storage, read> tile_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

const KT: u32 = 16u;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    tile_init();
    let row = (wg.y * nwg.x + wg.x) * 64u + lid.x;
    let live = row < dims.rows;
    let k0 = wg.z * KT;
    let kt = min(KT, dims.k - k0);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    let xrow = min(row, dims.rows - 1u) * dims.n;
    for (var j = 0u; j < dims.n; j = j + 1u) {
        let xv = x_at(xrow + j, dims.x_lo, dims.x_step);
        // Θ[j, k0 .. k0+16): past column K the values belong to the next row of Θ (or read
        // as 0 past the buffer); those lanes are never written out.
        let t = tile16(j * dims.k + k0);
        a0 = a0 + xv * t[0];
        a1 = a1 + xv * t[1];
        a2 = a2 + xv * t[2];
        a3 = a3 + xv * t[3];
    }
    if (!live) {
        return;
    }
    let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let out = row * dims.k + k0;
    let bias = dims.n * dims.k + k0;
    for (var c = 0u; c < kt; c = c + 1u) {
        z[out + c] = acc[c / 4u][c % 4u] + tile_src[bias + c];
    }
}
