// Logits for one row chunk, Z = XΘ + 1bᵀ, as a register-blocked tiled matrix product.
//
// Shapes: x (rows, n) · w (n·K + K): theta (n, K) row-major then bias (K) · z (rows, K).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 w read · 2 z write · 3 dims uniform.
// Tiles: a workgroup of 256 invocations computes BM rows × BN classes of Z, with
// BN = 16, BM = 256 when K ≤ 16 and BN = BM = 64 otherwise (tile_shape in kernels.rs).
// Invocation t = (tx, ty), tx = t mod (BN/4), holds rows 4ty..4ty+3 × classes 4tx..4tx+3
// of its tile in four vec4 registers. The workgroup walks n in stages of 16 features,
// staging X (BM × 16, row-major, loads coalesced along features) and Θ (16 × BN,
// coalesced along classes) in workgroup memory as vec4s; each stage is 16 rank-1
// updates of 16 FMAs per invocation, read four features at a time. Sums run in
// increasing j: reproducible.
// Dispatch: (ceil(rows / BM) folded into x ≤ 65535 and y, 1, …) — see `grid` — with
// z = ceil(K / BN); row tile = wy·num_x + wx, class tile = wz.

// Dims, z (binding 2) and dims (binding 3) come from logits_io.wgsl.
@group(0) @binding(1) var<storage, read> w: array<f32>;

const STAGE: u32 = 16u;

// a_tile[4r + q] = X[row0 + r, j0 + 4q .. 4q+3]; b_tile[s·(BN/4) + g] = Θ[j0 + s, col0 + 4g .. 4g+3].
var<workgroup> a_tile: array<vec4<f32>, 1024>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

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
    let tx = t % gx;
    let ty = t / gx;
    let row0 = (wg.y * nwg.x + wg.x) * bm;
    let col0 = wg.z * bn;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var j0 = 0u; j0 < dims.n; j0 = j0 + STAGE) {
        for (var e = t; e < bm * STAGE; e = e + 256u) {
            let r = e / STAGE;
            let s = e % STAGE;
            var v = 0.0;
            if (row0 + r < dims.rows && j0 + s < dims.n) {
                v = x_at((row0 + r) * dims.n + j0 + s, dims.x_lo, dims.x_step);
            }
            a_tile[e / 4u][e % 4u] = v;
        }
        for (var e = t; e < STAGE * bn; e = e + 256u) {
            let s = e / bn;
            let c = e % bn;
            var v = 0.0;
            if (j0 + s < dims.n && col0 + c < dims.k) {
                v = w[(j0 + s) * dims.k + col0 + c];
            }
            b_tile[s * gx + c / 4u][c % 4u] = v;
        }
        workgroupBarrier();
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
        workgroupBarrier();
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
