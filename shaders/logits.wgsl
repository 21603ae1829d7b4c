// Logits for one row chunk: Z = XΘ + 1bᵀ.
//
// Shapes: x (rows, n) · w (n·K + K): theta (n, K) row-major then bias (K) · z (rows, K).
// Bindings: 0 x read · 1 w read · 2 z write · 3 dims uniform.
// Dispatch: (ceil(K / 16), ceil(rows / 16), 1) workgroups of 16×16 invocations.
// Invocation (lx, ly) of workgroup (wx, wy) owns z[wy·16 + ly, wx·16 + lx]; the workgroup
// walks n in tiles of 16, staging a 16×16 block of x and of theta in workgroup memory.
// The sum over j runs in increasing j, so results are the same run to run.

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

const TILE: u32 = 16u;

var<workgroup> x_tile: array<array<f32, 16>, 16>;      // [row][j]
var<workgroup> theta_tile: array<array<f32, 16>, 16>;  // [j][k]

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.y * TILE + lid.y;
    let col = wg.x * TILE + lid.x;
    var acc = 0.0;
    let tiles = (dims.n + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t = t + 1u) {
        // x_tile[ly][lx] = x[row, t·16 + lx]
        let xj = t * TILE + lid.x;
        var xv = 0.0;
        if (row < dims.rows && xj < dims.n) {
            xv = x[row * dims.n + xj];
        }
        x_tile[lid.y][lid.x] = xv;
        // theta_tile[ly][lx] = theta[t·16 + ly, col]
        let tj = t * TILE + lid.y;
        var tv = 0.0;
        if (tj < dims.n && col < dims.k) {
            tv = w[tj * dims.k + col];
        }
        theta_tile[lid.y][lid.x] = tv;
        workgroupBarrier();
        for (var jj = 0u; jj < TILE; jj = jj + 1u) {
            acc = acc + x_tile[lid.y][jj] * theta_tile[jj][lid.x];
        }
        workgroupBarrier();
    }
    if (row < dims.rows && col < dims.k) {
        z[row * dims.k + col] = acc + w[dims.n * dims.k + col];
    }
}
