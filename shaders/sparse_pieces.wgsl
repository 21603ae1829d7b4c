// The products of a sparse row chunk, one piece at a time: a piece is a run of at most
// PIECE_LEN stored entries of one compressed row (CSR, for the logits) or one compressed
// column (the chunk's CSC copy, for the gradient), and each piece's dot products with
// the K columns of a dense matrix M are written as one row of partials:
//
//   out[p, k] = Σ_{t ∈ [bounds[q], bounds[q + 1])} val[t] · m[idx[t]·K + k],   q = piece_base + p
//
// Logits: the entries are a row's (column index, x) and M is Θ (n, K), so the row's
// pieces sum to (XΘ)[r, ·]. Gradient: the entries are a column's (row index, x) and M is
// d = w_r·(P − Y) (rows, K), so a feature's pieces sum to (Xᵀd)[j, ·]; the CSC copy ends
// with the bias column (every row, x = 1), which also sums the row losses (M = row_loss,
// K = 1). sparse_segments.wgsl adds each row's or column's pieces in order.
//
// No float atomics and a fixed order: each invocation sums its piece's entries in
// storage order. Long rows or columns (a row with 10,000 values, a feature in every row)
// are cut into many pieces, so they spread over the device instead of keeping one
// invocation busy while the rest wait.
//
// Layout: a workgroup of 64 invocations holds 64 / lanes pieces × lanes classes, lanes =
// min(K rounded up to a power of two, 64); the invocations of one piece read consecutive
// classes of the same row of M (coalesced loads of Θ or d), and share each entry's index
// and value.
// Shapes: bounds (pieces + 1) u32 · idx, val (entries) u32, f32 · m (rows of M, K) f32 ·
//         out (pieces, K) f32.
// Bindings: 0 bounds read · 1 idx read · 2 val read · 3 m read · 4 out read_write ·
//           5 dims uniform.
// Dispatch: ceil(pieces / (64 / lanes)) workgroups folded into a 2-D grid (x ≤ 65535),
// times ceil(K / lanes) along z; p = (wy·num_x + wx)·(64 / lanes) + lx / lanes,
// k = wz·lanes + lx mod lanes.

struct Dims {
    pieces: u32,
    k: u32,
    lanes: u32,
    piece_base: u32,
}

@group(0) @binding(0) var<storage, read> bounds: array<u32>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read> val: array<f32>;
@group(0) @binding(3) var<storage, read> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> dims: Dims;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let per_group = 64u / dims.lanes;
    let p = (wg.y * nwg.x + wg.x) * per_group + lid.x / dims.lanes;
    let k = wg.z * dims.lanes + lid.x % dims.lanes;
    if (p >= dims.pieces || k >= dims.k) {
        return;
    }
    let q = dims.piece_base + p;
    var sum = 0.0;
    for (var t = bounds[q]; t < bounds[q + 1u]; t = t + 1u) {
        sum = sum + val[t] * m[idx[t] * dims.k + k];
    }
    out[p * dims.k + k] = sum;
}

// Entry point `by_piece`, for CPU adapters (the register kernel set): one invocation per
// piece and tile of 16 classes, so each entry's index and value are loaded once per 16
// classes. The sums stay in vec4 registers (Acc16, from acc16.wgsl, which kernels.rs puts
// in front of this file), never indexed by a runtime value while summing; with at most
// four classes left in the tile, one vec4. Each class sums the same terms in the same
// order as in `main`. Past column K the loaded values belong to M's next row (or read as
// 0 past the buffer); those lanes are never written out.
// Dispatch: ceil(pieces / 64) workgroups folded into a 2-D grid, times ceil(K / 16) along
// z; p = (wy·num_x + wx)·64 + lx, classes 16·wz … 16·wz + 15.

// Four consecutive values of M from `base`.
fn m4(base: u32) -> vec4<f32> {
    return vec4<f32>(m[base], m[base + 1u], m[base + 2u], m[base + 3u]);
}

@compute @workgroup_size(64, 1, 1)
fn by_piece(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let p = (wg.y * nwg.x + wg.x) * 64u + lid.x;
    if (p >= dims.pieces) {
        return;
    }
    let q = dims.piece_base + p;
    let k0 = wg.z * 16u;
    let width = min(16u, dims.k - k0);
    let first = bounds[q];
    let end = bounds[q + 1u];
    let out_row = p * dims.k + k0;
    if (width <= 4u) {
        var a = vec4<f32>(0.0);
        for (var t = first; t < end; t = t + 1u) {
            a = a + val[t] * m4(idx[t] * dims.k + k0);
        }
        for (var c = 0u; c < width; c = c + 1u) {
            out[out_row + c] = a[c];
        }
        return;
    }
    var a = Acc16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var t = first; t < end; t = t + 1u) {
        let base = idx[t] * dims.k + k0;
        let row = array<vec4<f32>, 4>(m4(base), m4(base + 4u), m4(base + 8u), m4(base + 12u));
        a = acc16_add(a, val[t], row);
    }
    for (var c = 0u; c < width; c = c + 1u) {
        out[out_row + c] = acc16_at(a, c);
    }
}

// Entry point `by_piece4`, for CPU adapters when K is a multiple of 4: as `by_piece`, but
// M is read through `m4s`, a view of the same buffer as vec4s, and one invocation covers
// TILE4 vec4s (4·TILE4 classes; the host picks TILE4 ≤ 6 so the tiles split K/4
// evenly). A vec4 load is one load on CPU adapters, where four scalar loads are four
// loops over the SIMD lanes, so this form reads Θ and P − Y about three times faster.
// TILE4 is a pipeline constant, so the loops over the tile unroll and the sums stay in
// registers. Each class sums the same terms in the same order as in `main`.
// Dispatch: ceil(pieces / 64) workgroups folded into a 2-D grid, times
// ceil(K / (4·TILE4)) along z; p = (wy·num_x + wx)·64 + lx, vec4s TILE4·wz … of M's row.

@group(0) @binding(3) var<storage, read> m4s: array<vec4<f32>>;
override TILE4: u32 = 4u;

@compute @workgroup_size(64, 1, 1)
fn by_piece4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let p = (wg.y * nwg.x + wg.x) * 64u + lid.x;
    if (p >= dims.pieces) {
        return;
    }
    let q = dims.piece_base + p;
    let k4 = dims.k / 4u;
    let j0 = wg.z * TILE4;
    let end = bounds[q + 1u];
    var a: array<vec4<f32>, 6>;
    for (var j = 0u; j < TILE4; j = j + 1u) {
        a[j] = vec4<f32>(0.0);
    }
    for (var t = bounds[q]; t < end; t = t + 1u) {
        let base = idx[t] * k4 + j0;
        let v = val[t];
        for (var j = 0u; j < TILE4; j = j + 1u) {
            a[j] = a[j] + v * m4s[base + j];
        }
    }
    let out4 = p * k4 + j0;
    for (var j = 0u; j < TILE4; j = j + 1u) {
        if (j0 + j < k4) {
            let o = (out4 + j) * 4u;
            out[o] = a[j].x;
            out[o + 1u] = a[j].y;
            out[o + 2u] = a[j].z;
            out[o + 3u] = a[j].w;
        }
    }
}
