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
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 d read · 2 row_loss read · 3 partials write · 4 dims uniform.
// Tiles: a workgroup of 256 invocations computes BM features (of n + 1) × BN classes,
// BN = 16, BM = 256 when K ≤ 16 and BN = BM = 64 otherwise (tile_shape in kernels.rs);
// invocation t = (tx, ty), tx = t mod (BN/4), holds features 4ty..4ty+3 × classes
// 4tx..4tx+3 of the tile in four vec4 registers. The block's rows are walked in stages of
// 16 in increasing order (reproducible), staging X (16 × BM, coalesced along features)
// and d (16 × BN, coalesced along classes) in workgroup memory.
// Dispatch: (ceil((n + 1) / BM), ceil(K / BN), blocks); the first workgroup also sums
// the loss.

// Dims, row_loss (binding 2), partials (3) and dims (4) come from gradient_io.wgsl.
@group(0) @binding(1) var<storage, read> d: array<f32>;

const STAGE: u32 = 16u;

// a_tile[s·(BM/4) + g] = x[r0 + s, j0 + 4g .. 4g+3]; b_tile[s·(BN/4) + g] = d[r0 + s, k0 + 4g .. 4g+3].
var<workgroup> a_tile: array<vec4<f32>, 1024>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let gx = select(16u, 4u, dims.k <= 16u);  // class groups of 4 per tile
    let gy = 256u / gx;                         // feature groups of 4 per tile
    let bm = 4u * gy;
    let bn = 4u * gx;
    let tx = t % gx;
    let ty = t / gx;
    let j0 = wg.x * bm;
    let k0 = wg.y * bn;
    let start = wg.z * dims.rows_per_block;
    let end = min(dims.rows, start + dims.rows_per_block);
    let owns_loss = wg.x == 0u && wg.y == 0u && t == 0u;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var loss = 0.0;
    for (var r0 = start; r0 < end; r0 = r0 + STAGE) {
        for (var e = t; e < STAGE * bm; e = e + 256u) {
            let s = e / bm;
            let jj = e % bm;
            let j = j0 + jj;
            var v = 0.0;
            if (r0 + s < end && j <= dims.n) {
                v = select(x_at((r0 + s) * dims.n + min(j, dims.n - 1u), dims.x_lo, dims.x_step), 1.0, j == dims.n);
            }
            a_tile[s * gy + jj / 4u][jj % 4u] = v;
        }
        for (var e = t; e < STAGE * bn; e = e + 256u) {
            let s = e / bn;
            let c = e % bn;
            var v = 0.0;
            if (r0 + s < end && k0 + c < dims.k) {
                v = d[(r0 + s) * dims.k + k0 + c];
            }
            b_tile[s * gx + c / 4u][c % 4u] = v;
        }
        if (owns_loss) {
            for (var s = 0u; s < STAGE && r0 + s < end; s = s + 1u) {
                loss = loss + row_loss[r0 + s];
            }
        }
        workgroupBarrier();
        for (var s = 0u; s < STAGE; s = s + 1u) {
            let a = a_tile[s * gy + ty];
            let b = b_tile[s * gx + tx];
            a0 = a0 + a.x * b;
            a1 = a1 + a.y * b;
            a2 = a2 + a.z * b;
            a3 = a3 + a.w * b;
        }
        workgroupBarrier();
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
    if (owns_loss) {
        partials[out + dims.n * dims.k + dims.k] = loss;
    }
}
