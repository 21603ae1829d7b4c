// Sums per-block partials in a fixed order, with no float atomics, so the result is
// bit-identical run to run on one adapter:
//
//   out[i] = (accumulate ? out[i] : 0) + Σ_{p = 0, 1, …, parts−1} partials[p·len + i]
//
// The host calls it once per row chunk with accumulate = 0 for the first chunk and 1
// after, so chunks are also summed in order.
//
// Shapes: partials (parts, len) · out (len).
// Bindings: 0 partials read · 1 out read_write · 2 dims uniform.
// Dispatch: ceil(len / 256) workgroups of 256, folded into a 2-D grid (x ≤ 65535);
// i = (wy·num_x + wx)·256 + lx.
//
// Entry point `sliced`, for GPUs with many parts (the coalesced kernel set): a workgroup
// of 256 takes 32 consecutive outputs, and its eight groups of 32 invocations sum the
// parts p ≡ s (mod 8), s = lx / 32, each in increasing p; then the eight sums are added
// in order of s. A fixed order too, with eight times the invocations, each making an
// eighth of the loads. Dispatch: ceil(len / 32) workgroups of 256, folded the same way;
// i = (wy·num_x + wx)·32 + lx mod 32.

struct Dims {
    len: u32,
    parts: u32,
    accumulate: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> dims: Dims;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = (wg.y * nwg.x + wg.x) * 256u + lid.x;
    if (i >= dims.len) {
        return;
    }
    var sum = 0.0;
    for (var p = 0u; p < dims.parts; p = p + 1u) {
        sum = sum + partials[p * dims.len + i];
    }
    if (dims.accumulate != 0u) {
        sum = out[i] + sum;
    }
    out[i] = sum;
}

const SLICES: u32 = 8u;

var<workgroup> slice_sums: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn sliced(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let o = lid.x % 32u;
    let s = lid.x / 32u;
    let i = (wg.y * nwg.x + wg.x) * 32u + o;
    var sum = 0.0;
    if (i < dims.len) {
        for (var p = s; p < dims.parts; p = p + SLICES) {
            sum = sum + partials[p * dims.len + i];
        }
    }
    slice_sums[lid.x] = sum;
    workgroupBarrier();
    if (s != 0u || i >= dims.len) {
        return;
    }
    var total = slice_sums[o];
    for (var q = 1u; q < SLICES; q = q + 1u) {
        total = total + slice_sums[32u * q + o];
    }
    if (dims.accumulate != 0u) {
        total = out[i] + total;
    }
    out[i] = total;
}
