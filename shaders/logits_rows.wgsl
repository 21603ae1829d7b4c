// Logits for one row chunk, one invocation per row: Z = XΘ + 1bᵀ.
//
// The register variant of logits.wgsl, for adapters that run invocations as CPU SIMD
// lanes (llvmpipe, lavapipe): no workgroup memory and no barriers. Invocation r keeps
// the logits of up to 16 classes in registers, streams its own row of x once per class
// tile, and reads Θ entries that are the same for every lane.
//
// Shapes: x (rows, n) · w (n·K + K): theta (n, K) row-major then bias (K) · z (rows, K).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 w read · 2 z write · 3 dims uniform (same Dims as logits.wgsl).
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

@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

const KT: u32 = 16u;

// Θ[j, k0 .. k0+16) as four vec4s. Past column K the values belong to the next row of Θ
// (or are read as 0 beyond the buffer, by wgpu's bounds checks); those lanes are never
// written out. Fixed-size reads keep the accumulators in registers.
fn theta_tile(t: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(
        vec4<f32>(w[t], w[t + 1u], w[t + 2u], w[t + 3u]),
        vec4<f32>(w[t + 4u], w[t + 5u], w[t + 6u], w[t + 7u]),
        vec4<f32>(w[t + 8u], w[t + 9u], w[t + 10u], w[t + 11u]),
        vec4<f32>(w[t + 12u], w[t + 13u], w[t + 14u], w[t + 15u]),
    );
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = (wg.y * nwg.x + wg.x) * 64u + lid.x;
    if (row >= dims.rows) {
        return;
    }
    let k0 = wg.z * KT;
    let kt = min(KT, dims.k - k0);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    let xrow = row * dims.n;
    for (var j = 0u; j < dims.n; j = j + 1u) {
        let xv = x_at(xrow + j, dims.x_lo, dims.x_step);
        let t = theta_tile(j * dims.k + k0);
        a0 = a0 + xv * t[0];
        a1 = a1 + xv * t[1];
        a2 = a2 + xv * t[2];
        a3 = a3 + xv * t[3];
    }
    let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let out = row * dims.k + k0;
    let bias = dims.n * dims.k + k0;
    for (var c = 0u; c < kt; c = c + 1u) {
        z[out + c] = acc[c / 4u][c % 4u] + w[bias + c];
    }
}
