// Logits for one row chunk, Z = XΘ + 1bᵀ, as a register-blocked tiled matrix product.
//
// Shapes: x (rows, n) · w (n·K + K): theta (n, K) row-major then bias (K) · z (rows, K).
// Bindings: 0 x read · 1 w read · 2 z write · 3 dims uniform.
// Tiles (tile_shape in kernels.rs): a workgroup of 256 invocations computes BM rows × BN
// classes of Z.
// - `main`, K ≤ 64: BN = 16, BM = 256 when K ≤ 16, else BN = BM = 64. Invocation
//   t = (tx, ty), tx = t mod (BN/4), holds rows 4ty..4ty+3 × classes 4tx..4tx+3 of its
//   tile in four vec4 registers.
// - `main_wide`, K > 64: BM = BN = 128. Invocation (tx, ty) = (t mod 16, t / 16) holds
//   8 × 8 outputs, rows {4ty, 64 + 4ty} + 0..3 × classes {4tx, 64 + 4tx} + 0..3, in
//   sixteen vec4 registers: 16 FMAs per workgroup-memory read instead of 8. The workgroup walks n in stages of 16 features:
// X (BM × 16, row-major, loads coalesced along features) and Θ (16 × BN, coalesced along
// classes) go through registers into workgroup memory, and the next stage's loads are
// issued before this stage's arithmetic so that memory latency overlaps it. Each stage is
// 16 rank-1 updates (of 16 or 64 FMAs per invocation), read four features at a time. Sums run in
// increasing j: reproducible.
// Dispatch: (ceil(rows / BM) folded into x ≤ 65535 and y — see `grid` — , ceil(K / BN));
// row tile = wy·num_x + wx, class tile = wz.

struct Dims {
    rows: u32,
    n: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

const STAGE: u32 = 16u;

// Element e of a stage (e = t + 256q for invocation t) lives at tile[e / 4][e % 4]:
// a_tile[4r + q] = X[row0 + r, j0 + 4q .. 4q+3]; b_tile[s·(BN/4) + g] = Θ[j0 + s, col0 + 4g .. 4g+3].
var<workgroup> a_tile: array<vec4<f32>, 1024>;
var<workgroup> b_tile: array<vec4<f32>, 512>;

// This invocation's BM·16/256 (at most 16) elements of the X stage at feature j0.
fn load_x(t: u32, row0: u32, j0: u32, count: u32) -> array<f32, 16> {
    var v: array<f32, 16>;
    for (var q = 0u; q < 16u; q = q + 1u) {
        let e = t + 256u * q;
        let row = row0 + e / STAGE;
        let j = j0 + e % STAGE;
        v[q] = 0.0;
        if (q < count && row < dims.rows && j < dims.n) {
            v[q] = x[row * dims.n + j];
        }
    }
    return v;
}

// This invocation's 16·BN/256 (at most 8) elements of the Θ stage at feature j0.
fn load_theta(t: u32, col0: u32, bn: u32, j0: u32, count: u32) -> array<f32, 8> {
    var v: array<f32, 8>;
    for (var q = 0u; q < 8u; q = q + 1u) {
        let e = t + 256u * q;
        let j = j0 + e / bn;
        let col = col0 + e % bn;
        v[q] = 0.0;
        if (q < count && j < dims.n && col < dims.k) {
            v[q] = w[j * dims.k + col];
        }
    }
    return v;
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let gx = select(16u, 4u, dims.k <= 16u);  // class groups of 4 per tile
    let gy = 256u / gx;                         // row groups of 4 per tile
    let bm = 4u * gy;
    let bn = 4u * gx;
    let na = bm / 16u;
    let nb = bn / 16u;
    let tx = t % gx;
    let ty = t / gx;
    let row0 = (wg.y * nwg.x + wg.x) * bm;
    let col0 = wg.z * bn;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var ra = load_x(t, row0, 0u, na);
    var rb = load_theta(t, col0, bn, 0u, nb);
    for (var j0 = 0u; j0 < dims.n; j0 = j0 + STAGE) {
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
        workgroupBarrier();
        if (j0 + STAGE < dims.n) {
            ra = load_x(t, row0, j0 + STAGE, na);
            rb = load_theta(t, col0, bn, j0 + STAGE, nb);
        }
        for (var q = 0u; q < STAGE / 4u; q = q + 1u) {
            // Rows 4ty..4ty+3 at features 4q..4q+3, and Θ's four rows for those features.
            let r0 = a_tile[(16u * ty) + q];
            let r1 = a_tile[(16u * ty + 4u) + q];
            let r2 = a_tile[(16u * ty + 8u) + q];
            let r3 = a_tile[(16u * ty + 12u) + q];
            let b0 = b_tile[(4u * q) * gx + tx];
            let b1 = b_tile[(4u * q + 1u) * gx + tx];
            let b2 = b_tile[(4u * q + 2u) * gx + tx];
            let b3 = b_tile[(4u * q + 3u) * gx + tx];
            a0 = a0 + r0.x * b0 + r0.y * b1 + r0.z * b2 + r0.w * b3;
            a1 = a1 + r1.x * b0 + r1.y * b1 + r1.z * b2 + r1.w * b3;
            a2 = a2 + r2.x * b0 + r2.y * b1 + r2.z * b2 + r2.w * b3;
            a3 = a3 + r3.x * b0 + r3.y * b1 + r3.z * b2 + r3.w * b3;
        }
    }
    let acc = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let bias = dims.n * dims.k;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let row = row0 + 4u * ty + i;
        for (var c = 0u; c < 4u; c = c + 1u) {
            let col = col0 + 4u * tx + c;
            if (row < dims.rows && col < dims.k) {
                z[row * dims.k + col] = acc[i][c] + w[bias + col];
            }
        }
    }
}

@compute @workgroup_size(256, 1, 1)
fn main_wide(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let tx = t % 16u;
    let ty = t / 16u;
    let row0 = (wg.y * nwg.x + wg.x) * 128u;
    let col0 = wg.z * 128u;
    // acc[2i + h]: row (i < 4 ? 4ty + i : 64 + 4ty + i − 4), classes 64h + 4tx .. +3.
    var acc: array<vec4<f32>, 16>;
    var ra = load_x(t, row0, 0u, 8u);
    var rb = load_theta(t, col0, 128u, 0u, 8u);
    for (var j0 = 0u; j0 < dims.n; j0 = j0 + STAGE) {
        workgroupBarrier();
        for (var q = 0u; q < 8u; q = q + 1u) {
            let e = t + 256u * q;
            a_tile[e / 4u][e % 4u] = ra[q];
            b_tile[e / 4u][e % 4u] = rb[q];
        }
        workgroupBarrier();
        if (j0 + STAGE < dims.n) {
            ra = load_x(t, row0, j0 + STAGE, 8u);
            rb = load_theta(t, col0, 128u, j0 + STAGE, 8u);
        }
        for (var q = 0u; q < STAGE / 4u; q = q + 1u) {
            // Θ rows 4q..4q+3 at this invocation's two class groups.
            var b: array<vec4<f32>, 8>;
            for (var f = 0u; f < 4u; f = f + 1u) {
                b[2u * f] = b_tile[(4u * q + f) * 32u + tx];
                b[2u * f + 1u] = b_tile[(4u * q + f) * 32u + 16u + tx];
            }
            for (var i = 0u; i < 8u; i = i + 1u) {
                let row = select(4u * ty + i, 60u + 4u * ty + i, i >= 4u);
                let a = a_tile[row * 4u + q];
                acc[2u * i] = acc[2u * i] + a.x * b[0] + a.y * b[2] + a.z * b[4] + a.w * b[6];
                acc[2u * i + 1u] = acc[2u * i + 1u] + a.x * b[1] + a.y * b[3] + a.z * b[5] + a.w * b[7];
            }
        }
    }
    let bias = dims.n * dims.k;
    for (var i = 0u; i < 8u; i = i + 1u) {
        let row = row0 + select(4u * ty + i, 60u + 4u * ty + i, i >= 4u);
        for (var h = 0u; h < 2u; h = h + 1u) {
            for (var c = 0u; c < 4u; c = c + 1u) {
                let col = col0 + 64u * h + 4u * tx + c;
                if (row < dims.rows && col < dims.k) {
                    z[row * dims.k + col] = acc[2u * i + h][c] + w[bias + col];
                }
            }
        }
    }
}
