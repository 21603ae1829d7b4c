// Row-wise stable softmax for one row chunk, written in place of the logits as
// w_r·(P − Y), with the per-row weighted cross-entropy (the mean is taken by the host):
//
//   M = max_k z[r,k],  s = Σ_k exp(z[r,k] − M)
//   row_loss[r] = w_r · (log s − (z[r,y] − M))   (−log P[r,y], never log of a rounded P)
//   z[r,k]      = w_r · (exp(z[r,k] − M) / s − 1{k = y})
//
// w_r is the sample weight when dims.has_weights = 1, else 1. With dims.has_labels = 0
// the kernel writes P itself and row_loss = 0 (prediction).
//
// Several models (a regularisation path, dims.models = S > 1): the logits of data row i
// are S blocks of K side by side, (i, S·K), which this kernel sees as S rows of K, so
// kernel row r is model r mod S of data row r / S, whose label and weight it reads.
//
// Shapes: labels (rows / S) u32 · weights (rows / S) f32 · z (rows, K) f32 · row_loss
//         (rows) f32, with rows counting each data row S times.
// Bindings: 0 labels read · 1 weights read · 2 z read_write · 3 row_loss write ·
//           4 dims uniform.
// Entry points:
//   row_per_thread:    64 rows per workgroup, one invocation per row (small K).
//                      Dispatch: ceil(rows / 64) workgroups, folded into a 2-D grid
//                      (x ≤ 65535); row = (wy·num_x + wx)·64 + lx.
//   row_per_workgroup: one workgroup of 64 invocations per row (large K); the maximum and
//                      the sum are tree reductions in workgroup memory (fixed order).
//                      Dispatch: rows workgroups, folded into a 2-D grid; row = wy·num_x + wx.

struct Dims {
    rows: u32,
    k: u32,
    has_labels: u32,
    has_weights: u32,
    models: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> labels: array<u32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(4) var<uniform> dims: Dims;

const WG: u32 = 64u;

@compute @workgroup_size(64, 1, 1)
fn row_per_thread(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = (wg.y * nwg.x + wg.x) * WG + lid.x;
    if (row >= dims.rows) {
        return;
    }
    let base = row * dims.k;
    var max_z = z[base];
    for (var k = 1u; k < dims.k; k = k + 1u) {
        max_z = max(max_z, z[base + k]);
    }
    var sum = 0.0;
    for (var k = 0u; k < dims.k; k = k + 1u) {
        sum = sum + exp(z[base + k] - max_z);
    }
    let y = row_label(row);
    var z_y = 0.0;
    if (y < dims.k) {
        z_y = z[base + y];
    }
    let w = row_weight(row);
    row_loss[row] = w * row_cross_entropy(y, z_y, max_z, sum);
    write_p_minus_y(base, max_z, sum, y, w, 0u, 1u);
}

var<workgroup> scratch: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn row_per_workgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // row is uniform across the workgroup, so this early return keeps barriers uniform.
    let row = wg.y * nwg.x + wg.x;
    if (row >= dims.rows) {
        return;
    }
    let base = row * dims.k;
    var local_max = -3.4028234e38;
    for (var k = lid.x; k < dims.k; k = k + WG) {
        local_max = max(local_max, z[base + k]);
    }
    scratch[lid.x] = local_max;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            scratch[lid.x] = max(scratch[lid.x], scratch[lid.x + stride]);
        }
        workgroupBarrier();
    }
    let max_z = scratch[0];
    // Read z[r, y] now: the reduction below ends in barriers, so no invocation can have
    // overwritten it yet.
    let y = row_label(row);
    var z_y = 0.0;
    if (y < dims.k) {
        z_y = z[base + y];
    }
    workgroupBarrier();
    var local_sum = 0.0;
    for (var k = lid.x; k < dims.k; k = k + WG) {
        local_sum = local_sum + exp(z[base + k] - max_z);
    }
    scratch[lid.x] = local_sum;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid.x < stride) {
            scratch[lid.x] = scratch[lid.x] + scratch[lid.x + stride];
        }
        workgroupBarrier();
    }
    let sum = scratch[0];
    let w = row_weight(row);
    if (lid.x == 0u) {
        row_loss[row] = w * row_cross_entropy(y, z_y, max_z, sum);
    }
    write_p_minus_y(base, max_z, sum, y, w, lid.x, WG);
}

// The label of a row, or K (matching no class) when the chunk has no labels.
fn row_label(row: u32) -> u32 {
    if (dims.has_labels != 0u) {
        return labels[row / dims.models];
    }
    return dims.k;
}

// The sample weight of a row, or 1 when the chunk has none.
fn row_weight(row: u32) -> f32 {
    if (dims.has_weights != 0u) {
        return weights[row / dims.models];
    }
    return 1.0;
}

// −log P[r, y] = log s − (z[r,y] − M); 0 without a label.
fn row_cross_entropy(y: u32, z_y: f32, max_z: f32, sum: f32) -> f32 {
    if (y < dims.k) {
        return log(sum) - (z_y - max_z);
    }
    return 0.0;
}

// Writes w·(P − Y) over k = first, first + step, … of one row.
fn write_p_minus_y(base: u32, max_z: f32, sum: f32, y: u32, w: f32, first: u32, step: u32) {
    let inv_sum = 1.0 / sum;
    for (var k = first; k < dims.k; k = k + step) {
        var p = exp(z[base + k] - max_z) * inv_sum;
        if (k == y) {
            p = p - 1.0;
        }
        z[base + k] = w * p;
    }
}
