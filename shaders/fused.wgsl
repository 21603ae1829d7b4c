// The whole loss-and-gradient pass of one row chunk in one kernel, for K ≤ 16: per row
// block, logits → stable softmax → w·(P − Y) → partial Xᵀ(P − Y), so each row of X is read
// by one workgroup, twice in a row while it is in cache, and Z never goes to memory.
//
//   partials[b, j·K + k] = Σ_{r ∈ block b} x[r, j] · d[r, k]     (j < n)
//   partials[b, n·K + k] = Σ_{r ∈ block b} d[r, k]
//   partials[b, n·K + K] = Σ_{r ∈ block b} w_r · (log s_r − (z[r, y] − M_r))
//   with z[r, k] = Σ_j x[r, j]·Θ[j, k] + b_k, M_r = max_k z[r, k], s_r = Σ_k exp(z[r, k] − M_r)
//   and  d[r, k] = w_r · (exp(z[r, k] − M_r) / s_r − 1{k = y_r})
//
// the same quantities logits.wgsl, softmax.wgsl and gradient.wgsl produce (the partials
// layout is gradient.wgsl's, so reduce.wgsl sums them). A workgroup walks its block SUB
// (256) rows at a time: each invocation computes the logits, softmax and d of 4 of them in
// registers (lanes read their own row of x and the same Θ entries) and leaves d in
// workgroup memory; after a barrier, invocation i sums x[r, j]·d[r, ·] over those rows for
// features j ≡ i (mod 64), invocation c < K sums d[r, c] (the bias) and invocation K the
// losses, each adding to the block's partials. Every sum runs in a fixed order.
//
// Shapes: x (rows, n) · w (n·K + K): Θ (n, K) row-major, then b (K) · labels (rows) u32 ·
// weights (rows) f32 · partials (blocks, n·K + K + 1).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 w read (named
// tile_src, read through tile16 of tiles_plain.wgsl, which kernels.rs puts in front of
// this file; the subgroup version would need every invocation at each call) · 2 labels
// read · 3 weights read · 4 partials read_write · 5 dims uniform.
// Dispatch: blocks = ceil(rows / rows_per_block) workgroups of 64, folded into a 2-D grid
// (x ≤ 65535); block = wy·num_x + wx.

struct Dims {
    rows: u32,
    n: u32,
    k: u32,
    rows_per_block: u32,
    stride: u32,
    has_weights: u32,
    x_lo: f32,
    x_step: f32,
}

@group(0) @binding(1) var<storage, read> tile_src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;
@group(0) @binding(5) var<uniform> dims: Dims;

const WG: u32 = 64u;
const KT: u32 = 16u;

// Rows in flight per step of a block: each invocation computes SUB / 64 of them.
const SUB: u32 = 256u;

// d of the SUB rows in flight, 16 classes per row (zeros past K), and their losses.
var<workgroup> dsh: array<f32, 4096>;
var<workgroup> lsh: array<f32, 256>;

fn d_tile(r: u32) -> array<vec4<f32>, 4> {
    let t = r * KT;
    return array<vec4<f32>, 4>(
        vec4<f32>(dsh[t], dsh[t + 1u], dsh[t + 2u], dsh[t + 3u]),
        vec4<f32>(dsh[t + 4u], dsh[t + 5u], dsh[t + 6u], dsh[t + 7u]),
        vec4<f32>(dsh[t + 8u], dsh[t + 9u], dsh[t + 10u], dsh[t + 11u]),
        vec4<f32>(dsh[t + 12u], dsh[t + 13u], dsh[t + 14u], dsh[t + 15u]),
    );
}

// Row r's d (into dsh[slot]) and weighted cross-entropy (into lsh[slot]); zeros when the
// row is past the block. The 16 class lanes stay in four vec4s (no dynamic indexing, which
// CPU adapters turn into memory traffic); lanes past K hold −∞ logits, so their
// probability and d are 0.
fn row_forward(r: u32, valid: bool, slot: u32) {
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    if (valid) {
        let xrow = r * dims.n;
        for (var j = 0u; j < dims.n; j = j + 1u) {
            let xv = x_at(xrow + j, dims.x_lo, dims.x_step);
            // Θ[j, 0 .. 16): past column K the values belong to the next row of Θ (or read
            // as 0 beyond the buffer) and only ever meet a d of 0.
            let t = tile16(j * dims.k);
            a0 = a0 + xv * t[0];
            a1 = a1 + xv * t[1];
            a2 = a2 + xv * t[2];
            a3 = a3 + xv * t[3];
        }
    }
    let bias = tile16(dims.n * dims.k);
    let i0 = vec4<u32>(0u, 1u, 2u, 3u);
    let i1 = i0 + vec4<u32>(4u);
    let i2 = i0 + vec4<u32>(8u);
    let i3 = i0 + vec4<u32>(12u);
    let kk = vec4<u32>(dims.k);
    let neg = vec4<f32>(-3.0e38);
    let z0 = select(neg, a0 + bias[0], i0 < kk);
    let z1 = select(neg, a1 + bias[1], i1 < kk);
    let z2 = select(neg, a2 + bias[2], i2 < kk);
    let z3 = select(neg, a3 + bias[3], i3 < kk);
    let m4 = max(max(z0, z1), max(z2, z3));
    let m = max(max(m4.x, m4.y), max(m4.z, m4.w));
    let zero = vec4<f32>(0.0);
    let e0 = select(zero, exp(z0 - m), i0 < kk);
    let e1 = select(zero, exp(z1 - m), i1 < kk);
    let e2 = select(zero, exp(z2 - m), i2 < kk);
    let e3 = select(zero, exp(z3 - m), i3 < kk);
    let s4 = (e0 + e1) + (e2 + e3);
    let s = (s4.x + s4.y) + (s4.z + s4.w);
    var y = 0xffffffffu;
    var wr = 0.0;
    if (valid) {
        y = labels[r];
        wr = 1.0;
        if (dims.has_weights == 1u) {
            wr = weights[r];
        }
    }
    let yy = vec4<u32>(y);
    let one = vec4<f32>(1.0);
    let zy4 = select(zero, z0, i0 == yy) + select(zero, z1, i1 == yy)
        + select(zero, z2, i2 == yy) + select(zero, z3, i3 == yy);
    let z_y = (zy4.x + zy4.y) + (zy4.z + zy4.w);
    let d0 = wr * (e0 / s - select(zero, one, i0 == yy));
    let d1 = wr * (e1 / s - select(zero, one, i1 == yy));
    let d2 = wr * (e2 / s - select(zero, one, i2 == yy));
    let d3 = wr * (e3 / s - select(zero, one, i3 == yy));
    let t = slot * KT;
    dsh[t] = d0.x;
    dsh[t + 1u] = d0.y;
    dsh[t + 2u] = d0.z;
    dsh[t + 3u] = d0.w;
    dsh[t + 4u] = d1.x;
    dsh[t + 5u] = d1.y;
    dsh[t + 6u] = d1.z;
    dsh[t + 7u] = d1.w;
    dsh[t + 8u] = d2.x;
    dsh[t + 9u] = d2.y;
    dsh[t + 10u] = d2.z;
    dsh[t + 11u] = d2.w;
    dsh[t + 12u] = d3.x;
    dsh[t + 13u] = d3.y;
    dsh[t + 14u] = d3.z;
    dsh[t + 15u] = d3.w;
    lsh[slot] = select(0.0, wr * (log(s) - (z_y - m)), valid);
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // block is uniform across the workgroup, so this early return keeps barriers uniform.
    let block = wg.y * nwg.x + wg.x;
    let start = block * dims.rows_per_block;
    if (start >= dims.rows) {
        return;
    }
    let end = min(dims.rows, start + dims.rows_per_block);
    let out = block * dims.stride;
    for (var base = start; base < end; base = base + SUB) {
        for (var q = 0u; q < SUB / WG; q = q + 1u) {
            let slot = q * WG + lid.x;
            let r = base + slot;
            row_forward(r, r < end, slot);
        }
        workgroupBarrier();
        let count = min(SUB, end - base);
        let first = base == start;
        // Features j ≡ lid (mod 64): Σ_i x[base + i, j] · d[i, ·].
        for (var j = lid.x; j < dims.n; j = j + WG) {
            var a0 = vec4<f32>(0.0);
            var a1 = vec4<f32>(0.0);
            var a2 = vec4<f32>(0.0);
            var a3 = vec4<f32>(0.0);
            for (var i = 0u; i < count; i = i + 1u) {
                let xv = x_at((base + i) * dims.n + j, dims.x_lo, dims.x_step);
                let t = d_tile(i);
                a0 = a0 + xv * t[0];
                a1 = a1 + xv * t[1];
                a2 = a2 + xv * t[2];
                a3 = a3 + xv * t[3];
            }
            let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
            let o = out + j * dims.k;
            for (var c = 0u; c < dims.k; c = c + 1u) {
                var prev = 0.0;
                if (!first) {
                    prev = partials[o + c];
                }
                partials[o + c] = prev + acc[c / 4u][c % 4u];
            }
        }
        // Σ_i d[i, c] for class c = lid, and the loss on invocation K.
        if (lid.x <= dims.k) {
            var v = 0.0;
            for (var i = 0u; i < count; i = i + 1u) {
                v = v + select(dsh[i * KT + min(lid.x, KT - 1u)], lsh[i], lid.x == dims.k);
            }
            let o = out + dims.n * dims.k + lid.x;
            var prev = 0.0;
            if (!first) {
                prev = partials[o];
            }
            partials[o] = prev + v;
        }
        workgroupBarrier();
    }
}
