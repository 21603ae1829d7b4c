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
// With the pipeline constant ROWS > 1 each invocation computes up to four rows, 64 apart,
// sharing every row of Θ it reads among them: on CPU adapters that divides the Θ loads and
// subgroup broadcasts per row by ROWS (kernels.rs sets 4 for KernelVariant::Register; the
// GPU default keeps 1, one row per invocation, for occupancy).
//
// Shapes: x (rows, n) · w (n·K + K): theta (n, K) row-major then bias (K) · z (rows, K).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 w read (named
// tile_src, as the tiles file expects) · 2 z write · 3 dims uniform (same Dims as
// logits.wgsl).
// Dispatch: (ceil(rows / (64·ROWS)) folded into x ≤ 65535 and y, then ceil(K / 16) in z)
// workgroups of 64; rows (wy·num_x + wx)·64·ROWS + 64·q + lx for q < ROWS, classes
// [wz·16, wz·16 + 16).
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

// Rows per invocation: 1, 2, 3 or 4.
override ROWS: u32 = 1u;

// Writes the logits of one row, unless the row is past the end.
fn store_row(row: u32, k0: u32, kt: u32, a: Acc16) {
    if (row >= dims.rows) {
        return;
    }
    let out = row * dims.k + k0;
    let bias = dims.n * dims.k + k0;
    for (var c = 0u; c < kt; c = c + 1u) {
        z[out + c] = acc16_at(a, c) + tile_src[bias + c];
    }
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    tile_init();
    let row0 = (wg.y * nwg.x + wg.x) * 64u * ROWS + lid.x;
    let row1 = row0 + 64u;
    let row2 = row0 + 128u;
    let row3 = row0 + 192u;
    let k0 = wg.z * KT;
    let kt = min(KT, dims.k - k0);
    // The sums of row q in sq (the ones past ROWS stay unused).
    var s0 = Acc16();
    var s1 = Acc16();
    var s2 = Acc16();
    var s3 = Acc16();
    let last = dims.rows - 1u;
    let x0 = min(row0, last) * dims.n;
    let x1 = min(row1, last) * dims.n;
    let x2 = min(row2, last) * dims.n;
    let x3 = min(row3, last) * dims.n;
    for (var j = 0u; j < dims.n; j = j + 1u) {
        // Θ[j, k0 .. k0+16): past column K the values belong to the next row of Θ (or read
        // as 0 past the buffer); those lanes are never written out.
        let t = tile16(j * dims.k + k0);
        s0 = acc16_add(s0, x_at(x0 + j, dims.x_lo, dims.x_step), t);
        if (ROWS > 1u) {
            s1 = acc16_add(s1, x_at(x1 + j, dims.x_lo, dims.x_step), t);
        }
        if (ROWS > 2u) {
            s2 = acc16_add(s2, x_at(x2 + j, dims.x_lo, dims.x_step), t);
        }
        if (ROWS > 3u) {
            s3 = acc16_add(s3, x_at(x3 + j, dims.x_lo, dims.x_step), t);
        }
    }
    store_row(row0, k0, kt, s0);
    if (ROWS > 1u) {
        store_row(row1, k0, kt, s1);
    }
    if (ROWS > 2u) {
        store_row(row2, k0, kt, s2);
    }
    if (ROWS > 3u) {
        store_row(row3, k0, kt, s3);
    }
}
