// Adds the pieces of each row or column of a sparse chunk (sparse_pieces.wgsl) in
// order, with no float atomics, so the result is bit-identical run to run on one adapter:
//
//   out[out_offset + c_s·K + k] = init_s,k + Σ_{q = seg[seg_base + s] … seg[seg_base + s + 1] − 1}
//                                          partials[(q − piece_base)·K + k]
//
// where c_s = s, or c_s = cols[seg_base + s] when has_cols = 1: a mini-batch's CSC copy
// holds only the columns its rows touch (the host clears the partials first, so the
// others are 0).
//
// where init_s,k = init[init_offset + k] when has_init = 1 (the bias b, for the logits)
// and 0 otherwise. A row or column with no stored values has no pieces and gets init
// alone.
// Logits: segments are the chunk's rows, out is z (rows, K). Gradient: segments are the
// n features and the bias column, out is one block of gradient partials laid out as the
// dense gradient kernels write them (features, then the bias row), which the shared
// reduce kernel adds into the sums; then the row losses, one segment with K = 1, written
// after the bias row.
//
// Shapes: seg (segments + 1 from seg_base) u32 · partials (pieces, K) f32 ·
//         init (≥ init_offset + K) f32 · out (≥ out_offset + (max c_s + 1)·K) f32 ·
//         cols (segments from seg_base, when has_cols = 1) u32.
// Bindings: 0 seg read · 1 partials read · 2 init read · 3 out read_write ·
//           4 cols read · 5 dims uniform.
// Dispatch: ceil(segments·K / 256) workgroups of 256 folded into a 2-D grid (x ≤ 65535);
// i = (wy·num_x + wx)·256 + lx, s = i / K, k = i mod K.

struct Dims {
    segments: u32,
    k: u32,
    seg_base: u32,
    piece_base: u32,
    out_offset: u32,
    init_offset: u32,
    has_init: u32,
    has_cols: u32,
}

@group(0) @binding(0) var<storage, read> seg: array<u32>;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> init: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> cols: array<u32>;
@group(0) @binding(5) var<uniform> dims: Dims;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
    let s = i / dims.k;
    if (s >= dims.segments) {
        return;
    }
    let k = i % dims.k;
    var sum = 0.0;
    if (dims.has_init != 0u) {
        sum = init[dims.init_offset + k];
    }
    for (var q = seg[dims.seg_base + s]; q < seg[dims.seg_base + s + 1u]; q = q + 1u) {
        sum = sum + partials[(q - dims.piece_base) * dims.k + k];
    }
    var c = s;
    if (dims.has_cols != 0u) {
        c = cols[dims.seg_base + s];
    }
    out[dims.out_offset + c * dims.k + k] = sum;
}
