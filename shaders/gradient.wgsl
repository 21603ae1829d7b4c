// Per-row-block partial sums of the gradient for one row chunk, with no float atomics:
//
//   partials[b, j·K + k]   = Σ_{r ∈ block b} x[r, j] · d[r, k]     (partial Xᵀ(P − Y), n×K)
//   partials[b, n·K + k]   = Σ_{r ∈ block b} d[r, k]               (partial Σ(P − Y), K)
//   partials[b, n·K + K]   = Σ_{r ∈ block b} row_loss[r]           (partial Σ −log P, 1)
//
// where d = P − Y (the softmax kernel's output) and block b holds rows
// [b·rows_per_block, min(rows, (b+1)·rows_per_block)). Reduce sums the blocks in order.
//
// Shapes: x (rows, n) · d (rows, K) · row_loss (rows) · partials (blocks, stride) with
// stride = n·K + K + 1.
// Bindings: 0 x read · 1 d read · 2 row_loss read · 3 partials write · 4 dims uniform.
// Dispatch: (ceil(K / 16), ceil(n / 16), blocks) workgroups of 16×16 invocations;
// invocation (lx, ly) of workgroup (wx, wy, b) owns output (j = wy·16 + ly, k = wx·16 + lx)
// and walks its block's rows in tiles of 16 (increasing row order: reproducible).

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

const TILE: u32 = 16u;

var<workgroup> x_tile: array<array<f32, 16>, 16>;  // [row][j]
var<workgroup> d_tile: array<array<f32, 16>, 16>;  // [row][k]

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let j0 = wg.y * TILE;
    let k0 = wg.x * TILE;
    let j = j0 + lid.y;
    let k = k0 + lid.x;
    let block = wg.z;
    let start = block * dims.rows_per_block;
    let end = min(dims.rows, start + dims.rows_per_block);
    // The bias partial is taken by the first row of workgroups, the loss partial by the
    // first workgroup; both read the same staged d tile.
    let owns_bias = wg.y == 0u && lid.y == 0u;
    let owns_loss = wg.x == 0u && wg.y == 0u && lid.x == 0u && lid.y == 0u;
    var acc = 0.0;
    var bias_acc = 0.0;
    var loss_acc = 0.0;
    for (var r0 = start; r0 < end; r0 = r0 + TILE) {
        let r = r0 + lid.y;
        // x_tile[ly][lx] = x[r, j0 + lx]; d_tile[ly][lx] = d[r, k0 + lx]
        var xv = 0.0;
        if (r < end && j0 + lid.x < dims.n) {
            xv = x[r * dims.n + j0 + lid.x];
        }
        x_tile[lid.y][lid.x] = xv;
        var dv = 0.0;
        if (r < end && k < dims.k) {
            dv = d[r * dims.k + k];
        }
        d_tile[lid.y][lid.x] = dv;
        workgroupBarrier();
        // Each tile is summed on its own before joining the running sum: the running
        // sum then takes rows/16 additions instead of rows, which keeps f32 rounding of
        // long blocks small.
        var tile_acc = 0.0;
        for (var rr = 0u; rr < TILE; rr = rr + 1u) {
            tile_acc = tile_acc + x_tile[rr][lid.y] * d_tile[rr][lid.x];
        }
        acc = acc + tile_acc;
        if (owns_bias) {
            var tile_bias = 0.0;
            for (var rr = 0u; rr < TILE; rr = rr + 1u) {
                tile_bias = tile_bias + d_tile[rr][lid.x];
            }
            bias_acc = bias_acc + tile_bias;
        }
        if (owns_loss) {
            var tile_loss = 0.0;
            for (var rr = 0u; rr < TILE && r0 + rr < end; rr = rr + 1u) {
                tile_loss = tile_loss + row_loss[r0 + rr];
            }
            loss_acc = loss_acc + tile_loss;
        }
        workgroupBarrier();
    }
    let out = block * dims.stride;
    if (j < dims.n && k < dims.k) {
        partials[out + j * dims.k + k] = acc;
    }
    let nk = dims.n * dims.k;
    if (owns_bias && k < dims.k) {
        partials[out + nk + k] = bias_acc;
    }
    if (owns_loss) {
        partials[out + nk + dims.k] = loss_acc;
    }
}
