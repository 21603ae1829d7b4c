// Per-row-block partial sums of the gradient for one row chunk on GPUs: the coalesced
// variant of gradient.wgsl (KernelVariant::Coalesced in kernels.rs).
//
//   partials[b, j·K + k]   = Σ_{r ∈ block b} x[r, j] · d[r, k]     (j < n)
//   partials[b, n·K + k]   = Σ_{r ∈ block b} d[r, k]               (bias column j = n)
//   partials[b, n·K + K]   = Σ_{r ∈ block b} row_loss[r]           (first class tile)
//
// A workgroup of 256 invocations is 8 row slices × 32 quads. Quad q = t mod 32 holds
// four consecutive features j = wx·128 + 4q .. + 4 and 16 classes k0 = wy·16 .. + 16 in
// registers (64 sums); slice s = t / 32 walks rows start + s, start + s + 8, … of the
// block. Where SIMD groups have 32 lanes (NVIDIA) each is one slice, so each load of x
// reads 512 consecutive bytes of one row (f32), and its 16 values of d[r, k0 ..] are the
// same for every lane. At the
// end the eight slices' sums are added in slice order through workgroup memory, eight
// classes of one feature at a time, and each invocation writes one partial.
//
// Features past n read whatever follows (the next row, or the bounds check past X) and
// are never written; the bias column reads as 1. Sums are in a fixed order (rows in
// increasing order within a slice, then slices 0..7): reproducible.
//
// Shapes: x (rows, n) · d (rows, K) · row_loss (rows) · partials (blocks, n·K + K + 1).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 d read (named
// tile_src) ·
// 2 row_loss read · 3 partials write · 4 dims uniform (same Dims as gradient.wgsl).
// Dispatch: (ceil((n + 1) / 128), ceil(K / 16), blocks) workgroups of 256; block b = wz
// covers rows [b·rows_per_block, min(rows, (b + 1)·rows_per_block)).

// Dims, row_loss (binding 2), partials (3) and dims (4) come from gradient_io.wgsl.
// d is named tile_src, as tiles_plain.wgsl (which kernels.rs puts in front) expects.
@group(0) @binding(1) var<storage, read> tile_src: array<vec4<f32>>;

const SLICES: u32 = 8u;
const QUADS: u32 = 32u;

// Rows per loop iteration of a slice, 1 or 2: with 2 the loads of rows r and r + 8 are in
// flight together (the sums still take r first, so the result is the same).
override PAIRS: u32 = 2u;

// Eight sums per (slice, quad) while the slices are combined: red[2·(32·s + q) + h].
var<workgroup> red: array<vec4<f32>, 512>;
// The slices' loss sums.
var<workgroup> red_loss: array<f32, 8>;

// d[i .. i + 16) as four vec4s: four loads when `aligned` (i a multiple of 4), else
// tile16's sixteen. Past the end of d the values read as 0 (bounds check) and are never
// written out.
fn d16(i: u32, aligned: bool) -> array<vec4<f32>, 4> {
    if (aligned) {
        let a = i >> 2u;
        return array<vec4<f32>, 4>(tile_src[a], tile_src[a + 1u], tile_src[a + 2u],
                                   tile_src[a + 3u]);
    }
    return tile16(i);
}

// Adds the eight slices' sums of one feature, classes k0 + 8h .. + 8, and writes them:
// invocation t takes class 8h + t mod 8 of quad t / 8. Every invocation calls it.
fn combine(lo: vec4<f32>, hi: vec4<f32>, t: u32, j_first: u32, f: u32, k0: u32, h: u32, out: u32) {
    let s = t / QUADS;
    let q = t % QUADS;
    red[2u * (QUADS * s + q)] = lo;
    red[2u * (QUADS * s + q) + 1u] = hi;
    workgroupBarrier();
    let qo = t / 8u;
    let c = t % 8u;
    var sum = 0.0;
    for (var p = 0u; p < SLICES; p = p + 1u) {
        sum = sum + red[2u * (QUADS * p + qo) + c / 4u][c % 4u];
    }
    let j = j_first + 4u * qo + f;
    let k = k0 + 8u * h + c;
    if (j <= dims.n && k < dims.k) {
        partials[out + j * dims.k + k] = sum;
    }
    workgroupBarrier();
}

// Acc16 (acc16.wgsl) as two halves of eight classes: combine() takes one at a time.
fn combine_feature(a: Acc16, t: u32, j_first: u32, f: u32, k0: u32, out: u32) {
    combine(a.c0, a.c1, t, j_first, f, k0, 0u, out);
    combine(a.c2, a.c3, t, j_first, f, k0, 1u, out);
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let s = t / QUADS;
    let q = t % QUADS;
    let j_first = wg.x * 4u * QUADS;
    let j0 = j_first + 4u * q;
    let k0 = wg.y * 16u;
    let block = wg.z;
    let start = block * dims.rows_per_block;
    let end = min(dims.rows, start + dims.rows_per_block);
    let whole_words = x_whole_words(dims.n);
    let base = min(j0, dims.n);
    let bias = vec4<u32>(j0, j0 + 1u, j0 + 2u, j0 + 3u) == vec4<u32>(dims.n);
    // The quad holding the bias column also sums the losses of its slice's rows.
    let sums_loss = any(bias) && k0 == 0u;
    let aligned = dims.k % 4u == 0u && k0 % 4u == 0u;
    var s0 = Acc16();
    var s1 = Acc16();
    var s2 = Acc16();
    var s3 = Acc16();
    var loss = 0.0;
    var r = start + s;
    if (PAIRS == 2u) {
        for (; r + SLICES < end; r = r + 2u * SLICES) {
            let u = r + SLICES;
            let dr = d16(r * dims.k + k0, aligned);
            let du = d16(u * dims.k + k0, aligned);
            let v = select(x_at4(r * dims.n + base, dims.x_lo, dims.x_step, whole_words),
                           vec4<f32>(1.0), bias);
            let w = select(x_at4(u * dims.n + base, dims.x_lo, dims.x_step, whole_words),
                           vec4<f32>(1.0), bias);
            s0 = acc16_add(acc16_add(s0, v.x, dr), w.x, du);
            s1 = acc16_add(acc16_add(s1, v.y, dr), w.y, du);
            s2 = acc16_add(acc16_add(s2, v.z, dr), w.z, du);
            s3 = acc16_add(acc16_add(s3, v.w, dr), w.w, du);
            if (sums_loss) {
                loss = loss + row_loss[r] + row_loss[u];
            }
        }
    }
    for (; r < end; r = r + SLICES) {
        let dr = d16(r * dims.k + k0, aligned);
        let v = select(x_at4(r * dims.n + base, dims.x_lo, dims.x_step, whole_words),
                       vec4<f32>(1.0), bias);
        s0 = acc16_add(s0, v.x, dr);
        s1 = acc16_add(s1, v.y, dr);
        s2 = acc16_add(s2, v.z, dr);
        s3 = acc16_add(s3, v.w, dr);
        if (sums_loss) {
            loss = loss + row_loss[r];
        }
    }
    let out = block * dims.stride;
    combine_feature(s0, t, j_first, 0u, k0, out);
    combine_feature(s1, t, j_first, 1u, k0, out);
    combine_feature(s2, t, j_first, 2u, k0, out);
    combine_feature(s3, t, j_first, 3u, k0, out);
    if (sums_loss) {
        red_loss[s] = loss;
    }
    workgroupBarrier();
    if (t == 0u && dims.n >= j_first && dims.n < j_first + 4u * QUADS && k0 == 0u) {
        var total = 0.0;
        for (var p = 0u; p < SLICES; p = p + 1u) {
            total = total + red_loss[p];
        }
        partials[out + dims.n * dims.k + dims.k] = total;
    }
}
