// Per-row-block partial sums of the gradient for one row chunk, one invocation per
// feature: the register variant of gradient.wgsl for adapters that run invocations as
// CPU SIMD lanes (llvmpipe, lavapipe), with no workgroup memory and no barriers.
//
//   partials[b, j·K + k]   = Σ_{r ∈ block b} x[r, j] · d[r, k]     (j < n)
//   partials[b, n·K + k]   = Σ_{r ∈ block b} d[r, k]               (invocation j = n)
//   partials[b, n·K + K]   = Σ_{r ∈ block b} row_loss[r]           (j = n, first class tile)
//
// Invocation j keeps the sums of up to 16 classes in registers and walks the block's
// rows in increasing order (reproducible); lanes read consecutive x[r, j] and the same
// d[r, k], through tile16 (from tiles_plain.wgsl or tiles_subgroup.wgsl, which kernels.rs
// puts in front of this file). Invocations past feature n compute on feature n − 1 and
// write nothing, so that every invocation reaches each tile16 call.
//
// Shapes: x (rows, n) · d (rows, K) · row_loss (rows) · partials (blocks, n·K + K + 1).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 d read (named
// tile_src, as the tiles file expects) · 2 row_loss read · 3 partials write · 4 dims
// uniform (same Dims as gradient.wgsl).
// Dispatch: (ceil((n + 1) / 64), ceil(K / 16), blocks) workgroups of 64;
// j = wx·64 + lx, classes [wy·16, wy·16 + 16), block b = wz.

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

@group(0) @binding(1) var<storage, read> tile_src: array<f32>;
@group(0) @binding(2) var<storage, read> row_loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<uniform> dims: Dims;

const KT: u32 = 16u;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    tile_init();
    let j = wg.x * 64u + lid.x;
    let k0 = wg.y * KT;
    let kt = min(KT, dims.k - k0);
    let block = wg.z;
    let start = block * dims.rows_per_block;
    let end = min(dims.rows, start + dims.rows_per_block);
    let is_bias = j == dims.n;
    // Invocation n sums d itself (x = 1) for Σ(P − Y); its column index reads a valid
    // element and the value is replaced by 1.
    let xcol = min(j, dims.n - 1u);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var r = start; r < end; r = r + 1u) {
        let xv = select(x_at(r * dims.n + xcol, dims.x_lo, dims.x_step), 1.0, is_bias);
        // d[r, k0 .. k0+16): past column K the values belong to the next row (or read as 0
        // past the buffer) and are never written out.
        let t = tile16(r * dims.k + k0);
        a0 = a0 + xv * t[0];
        a1 = a1 + xv * t[1];
        a2 = a2 + xv * t[2];
        a3 = a3 + xv * t[3];
    }
    if (j > dims.n) {
        return;
    }
    let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let out = block * dims.stride + j * dims.k + k0;
    for (var c = 0u; c < kt; c = c + 1u) {
        partials[out + c] = acc[c / 4u][c % 4u];
    }
    // One invocation sums the block's losses, in the same order as the rows above.
    if (is_bias && k0 == 0u) {
        var loss = 0.0;
        for (var r = start; r < end; r = r + 1u) {
            loss = loss + row_loss[r];
        }
        partials[block * dims.stride + dims.n * dims.k + dims.k] = loss;
    }
}
