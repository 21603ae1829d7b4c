// Per-row-block partial sums of the gradient for one row chunk, with no float atomics,
// as a register-blocked tiled matrix product split over row blocks:
//
//   partials[b, j·K + k]   = Σ_{r ∈ block b} x[r, j] · d[r, k]     (partial Xᵀ(P − Y), n×K)
//   partials[b, n·K + k]   = Σ_{r ∈ block b} d[r, k]               (partial Σ(P − Y), K)
//   partials[b, n·K + K]   = Σ_{r ∈ block b} row_loss[r]           (partial Σ −log P, 1)
//
// where d = P − Y (the softmax kernel's output) and block b holds rows
// [b·rows_per_block, min(rows, (b+1)·rows_per_block)). Reduce sums the blocks in order.
// The bias row is feature j = n with x = 1, so both lines share one product.
//
// Shapes: x (rows, n) · d (rows, K) · row_loss (rows) · partials (blocks, stride) with
// stride = n·K + K + 1.
// Bindings: 0 x read · 1 d read · 2 row_loss read · 3 partials write · 4 dims uniform.
// Tiles (tile_shape in kernels.rs): a workgroup of 256 invocations computes BM features
// (of n + 1) × BN classes.
// - `main`, K ≤ 64: BN = 16, BM = 256 when K ≤ 16, else BN = BM = 64; invocation
//   t = (tx, ty), tx = t mod (BN/4), holds features 4ty..4ty+3 × classes 4tx..4tx+3 of
//   the tile in four vec4 registers.
// - `main_wide`, K > 64: BM = BN = 128; invocation (tx, ty) = (t mod 16, t / 16) holds
//   features {4ty, 64 + 4ty} + 0..3 × classes {4tx, 64 + 4tx} + 0..3 in sixteen vec4s. The block's rows are walked in stages of
// 16 in increasing order (reproducible): X (16 × BM, coalesced along features) and d
// (16 × BN, coalesced along classes) go through registers into workgroup memory, the next
// stage's loads issued before this stage's arithmetic.
// Dispatch: (ceil((n + 1) / BM), ceil(K / BN), blocks); the first workgroup of each block
// also sums the loss.

struct Dims {
    rows: u32,
    n: u32,
    k: u32,
    rows_per_block: u32,
    stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> d: array<f32>;
@group(0) @binding(2) var<storage, read> row_loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<uniform> dims: Dims;

const STAGE: u32 = 16u;

// Element e of a stage (e = t + 256q for invocation t) lives at tile[e / 4][e % 4]:
// a_tile[s·(BM/4) + g] = x[r0 + s, j0 + 4g .. 4g+3]; b_tile[s·(BN/4) + g] = d[r0 + s, k0 + 4g .. 4g+3].
var<workgroup> a_tile: array<vec4<f32>, 1024>;
var<workgroup> b_tile: array<vec4<f32>, 512>;
var<workgroup> loss_tile: array<f32, 16>;

// This invocation's 16·BM/256 (at most 16) elements of the X stage at row r0 (x = 1 in
// the bias row j = n).
fn load_x(t: u32, j0: u32, bm: u32, r0: u32, end: u32, count: u32) -> array<f32, 16> {
    var v: array<f32, 16>;
    for (var q = 0u; q < 16u; q = q + 1u) {
        let e = t + 256u * q;
        let r = r0 + e / bm;
        let j = j0 + e % bm;
        v[q] = 0.0;
        if (q < count && r < end && j <= dims.n) {
            v[q] = select(x[r * dims.n + min(j, dims.n - 1u)], 1.0, j == dims.n);
        }
    }
    return v;
}

// This invocation's 16·BN/256 (at most 8) elements of the d stage at row r0.
fn load_d(t: u32, k0: u32, bn: u32, r0: u32, end: u32, count: u32) -> array<f32, 8> {
    var v: array<f32, 8>;
    for (var q = 0u; q < 8u; q = q + 1u) {
        let e = t + 256u * q;
        let r = r0 + e / bn;
        let k = k0 + e % bn;
        v[q] = 0.0;
        if (q < count && r < end && k < dims.k) {
            v[q] = d[r * dims.k + k];
        }
    }
    return v;
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let gx = select(16u, 4u, dims.k <= 16u);  // class groups of 4 per tile
    let gy = 256u / gx;                         // feature groups of 4 per tile
    let bm = 4u * gy;
    let bn = 4u * gx;
    let na = bm / 16u;
    let nb = bn / 16u;
    let tx = t % gx;
    let ty = t / gx;
    let j0 = wg.x * bm;
    let k0 = wg.y * bn;
    let start = wg.z * dims.rows_per_block;
    let end = min(dims.rows, start + dims.rows_per_block);
    // The first workgroup of the block also sums the loss: invocations t < 16 fetch one row
    // loss each per stage, and invocation 0 adds them in row order.
    let sums_loss = wg.x == 0u && wg.y == 0u;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var loss = 0.0;
    var ra = load_x(t, j0, bm, start, end, na);
    var rb = load_d(t, k0, bn, start, end, nb);
    var rl = 0.0;
    if (sums_loss && t < STAGE && start + t < end) {
        rl = row_loss[start + t];
    }
    for (var r0 = start; r0 < end; r0 = r0 + STAGE) {
        workgroupBarrier();
        for (var q = 0u; q < 16u; q = q + 1u) {
            let e = t + 256u * q;
            if (q < na) {
                a_tile[e / 4u][e % 4u] = ra[q];
            }
        }
        for (var q = 0u; q < 8u; q = q + 1u) {
            let e = t + 256u * q;
            if (q < nb) {
                b_tile[e / 4u][e % 4u] = rb[q];
            }
        }
        if (t < STAGE) {
            loss_tile[t] = rl;
        }
        workgroupBarrier();
        let next = r0 + STAGE;
        if (next < end) {
            ra = load_x(t, j0, bm, next, end, na);
            rb = load_d(t, k0, bn, next, end, nb);
            if (sums_loss && t < STAGE) {
                rl = select(0.0, row_loss[min(next + t, end - 1u)], next + t < end);
            }
        }
        if (sums_loss && t == 0u) {
            for (var s = 0u; s < STAGE; s = s + 1u) {
                loss = loss + loss_tile[s];
            }
        }
        for (var s = 0u; s < STAGE; s = s + 1u) {
            let a = a_tile[s * gy + ty];
            let b = b_tile[s * gx + tx];
            a0 = a0 + a.x * b;
            a1 = a1 + a.y * b;
            a2 = a2 + a.z * b;
            a3 = a3 + a.w * b;
        }
    }
    let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let out = wg.z * dims.stride;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let j = j0 + 4u * ty + i;
        for (var c = 0u; c < 4u; c = c + 1u) {
            let k = k0 + 4u * tx + c;
            if (j <= dims.n && k < dims.k) {
                partials[out + j * dims.k + k] = acc[i][c];
            }
        }
    }
    if (sums_loss && t == 0u) {
        partials[out + dims.n * dims.k + dims.k] = loss;
    }
}

@compute @workgroup_size(256, 1, 1)
fn main_wide(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let tx = t % 16u;
    let ty = t / 16u;
    let j0 = wg.x * 128u;
    let k0 = wg.y * 128u;
    let start = wg.z * dims.rows_per_block;
    let end = min(dims.rows, start + dims.rows_per_block);
    let sums_loss = wg.x == 0u && wg.y == 0u;
    // acc[2i + h]: feature (i < 4 ? 4ty + i : 64 + 4ty + i − 4), classes 64h + 4tx .. +3.
    var acc: array<vec4<f32>, 16>;
    var loss = 0.0;
    var ra = load_x(t, j0, 128u, start, end, 8u);
    var rb = load_d(t, k0, 128u, start, end, 8u);
    var rl = 0.0;
    if (sums_loss && t < STAGE && start + t < end) {
        rl = row_loss[start + t];
    }
    for (var r0 = start; r0 < end; r0 = r0 + STAGE) {
        workgroupBarrier();
        for (var q = 0u; q < 8u; q = q + 1u) {
            let e = t + 256u * q;
            a_tile[e / 4u][e % 4u] = ra[q];
            b_tile[e / 4u][e % 4u] = rb[q];
        }
        if (t < STAGE) {
            loss_tile[t] = rl;
        }
        workgroupBarrier();
        let next = r0 + STAGE;
        if (next < end) {
            ra = load_x(t, j0, 128u, next, end, 8u);
            rb = load_d(t, k0, 128u, next, end, 8u);
            if (sums_loss && t < STAGE) {
                rl = select(0.0, row_loss[min(next + t, end - 1u)], next + t < end);
            }
        }
        if (sums_loss && t == 0u) {
            for (var s = 0u; s < STAGE; s = s + 1u) {
                loss = loss + loss_tile[s];
            }
        }
        for (var s = 0u; s < STAGE; s = s + 1u) {
            let a_lo = a_tile[s * 32u + ty];
            let a_hi = a_tile[s * 32u + 16u + ty];
            let b_lo = b_tile[s * 32u + tx];
            let b_hi = b_tile[s * 32u + 16u + tx];
            for (var i = 0u; i < 4u; i = i + 1u) {
                acc[2u * i] = acc[2u * i] + a_lo[i] * b_lo;
                acc[2u * i + 1u] = acc[2u * i + 1u] + a_lo[i] * b_hi;
                acc[2u * i + 8u] = acc[2u * i + 8u] + a_hi[i] * b_lo;
                acc[2u * i + 9u] = acc[2u * i + 9u] + a_hi[i] * b_hi;
            }
        }
    }
    let out = wg.z * dims.stride;
    for (var i = 0u; i < 8u; i = i + 1u) {
        let j = j0 + select(4u * ty + i, 60u + 4u * ty + i, i >= 4u);
        for (var h = 0u; h < 2u; h = h + 1u) {
            for (var c = 0u; c < 4u; c = c + 1u) {
                let k = k0 + 64u * h + 4u * tx + c;
                if (j <= dims.n && k < dims.k) {
                    partials[out + j * dims.k + k] = acc[2u * i + h][c];
                }
            }
        }
    }
    if (sums_loss && t == 0u) {
        partials[out + dims.n * dims.k + dims.k] = loss;
    }
}
