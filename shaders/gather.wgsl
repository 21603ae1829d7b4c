// Copies the rows of one mini-batch out of a row chunk, in the order of a shuffled index
// list, so the other kernels can treat the batch as a chunk of its own:
//
//   batch_x[b, j] = x[idx[b], j]   batch_labels[b] = labels[idx[b]]
//   batch_weights[b] = weights[idx[b]]   (when dims.has_weights = 1)
//
// batch_x is stored as x is (x_storage.wgsl): the stored bits are copied, not the values,
// so a compact X stays compact and exact.
//
// Shapes: x (rows, n) · labels, weights (rows) · idx (batch) · batch_x (batch, n) packed
// into ceil(batch·n / per) words, per = elements per word · batch_labels, batch_weights
// (batch).
// Bindings: 0 x read (declared in x_storage.wgsl) · 1 labels read · 2 weights read ·
//           3 idx read · 4 batch_x write · 5 batch_labels write · 6 batch_weights write ·
//           7 dims uniform.
// Dispatch: ceil(max(words, batch) / 256) workgroups of 256, folded into a 2-D grid
// (x ≤ 65535); invocation e = (wy·num_x + wx)·256 + lx writes word e of batch_x (elements
// e·per .. e·per + per − 1, element q at row q / n, column q mod n) and row e's label and
// weight.

struct Dims {
    batch: u32,
    n: u32,
    has_weights: u32,
    _pad: u32,
}

@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> batch_x: array<u32>;
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
    if (e < dims.batch) {
        let src = idx[e];
        batch_labels[e] = labels[src];
        if (dims.has_weights != 0u) {
            batch_weights[e] = weights[src];
        }
    }
    let per = x_per_word();
    let elements = dims.batch * dims.n;
    if (e * per >= elements) {
        return;
    }
    let bits = 32u / per;
    var word = 0u;
    for (var t = 0u; t < per; t = t + 1u) {
        let q = e * per + t;
        if (q < elements) {
            let b = q / dims.n;
            let j = q % dims.n;
            word = word | (x_bits(idx[b] * dims.n + j) << (t * bits));
        }
    }
    batch_x[e] = word;
}
