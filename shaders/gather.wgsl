// Copies the rows of one mini-batch out of a row chunk, in the order of a shuffled index
// list, so the other kernels can treat the batch as a chunk of its own:
//
//   batch_x[b, j] = x[idx[b], j]   batch_labels[b] = labels[idx[b]]
//   batch_weights[b] = weights[idx[b]]   (when dims.has_weights = 1)
//
// Shapes: x (rows, n) · labels, weights (rows) · idx (batch) · batch_x (batch, n) ·
// batch_labels, batch_weights (batch).
// Bindings: 0 x read · 1 labels read · 2 weights read · 3 idx read · 4 batch_x write ·
//           5 batch_labels write · 6 batch_weights write · 7 dims uniform.
// Dispatch: ceil(batch·n / 256) workgroups of 256, folded into a 2-D grid (x ≤ 65535);
// element e = (wy·num_x + wx)·256 + lx, b = e / n, j = e mod n.

struct Dims {
    batch: u32,
    n: u32,
    has_weights: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> batch_x: array<f32>;
@group(0) @binding(5) var<storage, read_write> batch_labels: array<u32>;
@group(0) @binding(6) var<storage, read_write> batch_weights: array<f32>;
@group(0) @binding(7) var<uniform> dims: Dims;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let e = (wg.y * nwg.x + wg.x) * 256u + lid.x;
    if (e >= dims.batch * dims.n) {
        return;
    }
    let b = e / dims.n;
    let j = e % dims.n;
    let src = idx[b];
    batch_x[e] = x[src * dims.n + j];
    if (j == 0u) {
        batch_labels[b] = labels[src];
        if (dims.has_weights != 0u) {
            batch_weights[b] = weights[src];
        }
    }
}
