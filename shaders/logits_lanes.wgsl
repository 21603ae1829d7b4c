// Logits for one row chunk on GPUs, Z = XΘ + 1bᵀ, with the lanes of a workgroup over
// classes: the coalesced variant (KernelVariant::Coalesced in kernels.rs).
//
// A workgroup of 256 invocations is 16 row groups × 16 class lanes. Lane c = t mod 16 of
// row group g = t / 16 computes class k0 + c of the ROWS consecutive rows
// row0 + g·ROWS + q (q < ROWS), one sum per row in registers. Per step of four features
// it loads Θ[j .. j+4, k0 + c] (16 lanes read 16 consecutive floats of each row of Θ)
// and, for each of its rows, x[row, j .. j+4] with one load (x_at4): the same address
// for all 16 lanes of the group, so a 32-lane SIMD group reads two rows' 16 bytes per
// load and a row's cache line serves eight steps. No workgroup memory, no barriers, no
// subgroup operations, and no sums across lanes.
//
// Lanes past class K compute on class K − 1 and rows past the chunk on its last row;
// neither writes. Sums run in increasing j, one feature at a time: reproducible, and the
// same whatever ROWS.
//
// Shapes: x (rows, n) · w (n·K + K): theta (n, K) row-major then bias (K) · z (rows, K).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 w read (named
// tile_src) · 2 z write · 3 dims uniform (same Dims as logits.wgsl).
// Dispatch: (ceil(rows / (16·ROWS)) folded into x ≤ 65535 and y, then ceil(K / 16) in z)
// workgroups of 256; rows from (wy·num_x + wx)·16·ROWS, classes [wz·16, wz·16 + 16).
//
// Entry point `quads`, for many classes: lane c takes the four classes k0 + 4c .. + 4 of
// a tile of 64 (k0 = wz·64), read with one load per feature of Θ when K is a multiple of
// 4, so that each load of x serves 16 multiply-adds instead of 4. Dispatch as above with
// ceil(K / 64) in z.

// Dims, z (binding 2) and dims (binding 3) come from logits_io.wgsl.
// w is named tile_src, as tiles_plain.wgsl (which kernels.rs puts in front) expects;
// tile_at reads one value.
@group(0) @binding(1) var<storage, read> tile_src: array<vec4<f32>>;

// Rows per invocation, 4 or 8 (sums are kept four rows to a vec4).
override ROWS: u32 = 8u;

// The sums of rows q (a) and 4 + q (b) for q < 4.
struct Sums {
    a: vec4<f32>,
    b: vec4<f32>,
}

// x[row_q, i .. i + 4) for the invocation's rows (xs: their first elements, four to a
// vec4), one feature of Θ (t) at a time: s.a[q] += x[row q, i + f] · t[f].
fn step4(s: Sums, xa: vec4<u32>, xb: vec4<u32>, i: u32, t: vec4<f32>, whole_words: bool) -> Sums {
    let a0 = x_at4(xa.x + i, dims.x_lo, dims.x_step, whole_words);
    let a1 = x_at4(xa.y + i, dims.x_lo, dims.x_step, whole_words);
    let a2 = x_at4(xa.z + i, dims.x_lo, dims.x_step, whole_words);
    let a3 = x_at4(xa.w + i, dims.x_lo, dims.x_step, whole_words);
    var r = s;
    r.a = r.a + vec4<f32>(a0.x, a1.x, a2.x, a3.x) * t.x;
    r.a = r.a + vec4<f32>(a0.y, a1.y, a2.y, a3.y) * t.y;
    r.a = r.a + vec4<f32>(a0.z, a1.z, a2.z, a3.z) * t.z;
    r.a = r.a + vec4<f32>(a0.w, a1.w, a2.w, a3.w) * t.w;
    if (ROWS > 4u) {
        let b0 = x_at4(xb.x + i, dims.x_lo, dims.x_step, whole_words);
        let b1 = x_at4(xb.y + i, dims.x_lo, dims.x_step, whole_words);
        let b2 = x_at4(xb.z + i, dims.x_lo, dims.x_step, whole_words);
        let b3 = x_at4(xb.w + i, dims.x_lo, dims.x_step, whole_words);
        r.b = r.b + vec4<f32>(b0.x, b1.x, b2.x, b3.x) * t.x;
        r.b = r.b + vec4<f32>(b0.y, b1.y, b2.y, b3.y) * t.y;
        r.b = r.b + vec4<f32>(b0.z, b1.z, b2.z, b3.z) * t.z;
        r.b = r.b + vec4<f32>(b0.w, b1.w, b2.w, b3.w) * t.w;
    }
    return r;
}

// Feature j of the four rows that start at xs.
fn x_col(xs: vec4<u32>, j: u32) -> vec4<f32> {
    return vec4<f32>(x_at(xs.x + j, dims.x_lo, dims.x_step), x_at(xs.y + j, dims.x_lo, dims.x_step),
                     x_at(xs.z + j, dims.x_lo, dims.x_step), x_at(xs.w + j, dims.x_lo, dims.x_step));
}

// Writes the logit of class k for row `row`, unless the row is past the chunk.
fn store(row: u32, k: u32, sum: f32, bias: f32) {
    if (row < dims.rows) {
        z[row * dims.k + k] = sum + bias;
    }
}

// The invocation's first row and where each of its rows starts in X (a: rows 0..4,
// b: rows 4..8); rows past the chunk start where its last row does.
struct RowStarts {
    row0: u32,
    xa: vec4<u32>,
    xb: vec4<u32>,
}

fn row_starts(wg: vec3<u32>, nwg: vec3<u32>, t: u32) -> RowStarts {
    let row0 = (wg.y * nwg.x + wg.x) * 16u * ROWS + (t / 16u) * ROWS;
    let last = dims.rows - 1u;
    let a = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last));
    let b = min(vec4<u32>(row0) + vec4<u32>(4u, 5u, 6u, 7u), vec4<u32>(last));
    return RowStarts(row0, a * dims.n, b * dims.n);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let n = dims.n;
    let k = wg.z * 16u + t % 16u;
    let live = k < dims.k;
    let kc = min(k, dims.k - 1u);
    let rows = row_starts(wg, nwg, t);
    let row0 = rows.row0;
    let xa = rows.xa;
    let xb = rows.xb;
    let whole_words = x_whole_words(n);
    var s = Sums();
    var j = 0u;
    for (; j + 4u <= n; j = j + 4u) {
        let tj = j * dims.k + kc;
        let th = vec4<f32>(tile_at(tj), tile_at(tj + dims.k), tile_at(tj + 2u * dims.k),
                           tile_at(tj + 3u * dims.k));
        s = step4(s, xa, xb, j, th, whole_words);
    }
    for (; j < n; j = j + 1u) {
        let th = tile_at(j * dims.k + kc);
        s.a = s.a + x_col(xa, j) * th;
        if (ROWS > 4u) {
            s.b = s.b + x_col(xb, j) * th;
        }
    }
    if (!live) {
        return;
    }
    let bias = tile_at(n * dims.k + k);
    store(row0, k, s.a.x, bias);
    store(row0 + 1u, k, s.a.y, bias);
    store(row0 + 2u, k, s.a.z, bias);
    store(row0 + 3u, k, s.a.w, bias);
    if (ROWS > 4u) {
        store(row0 + 4u, k, s.b.x, bias);
        store(row0 + 5u, k, s.b.y, bias);
        store(row0 + 6u, k, s.b.z, bias);
        store(row0 + 7u, k, s.b.w, bias);
    }
}

// Θ[j, c .. c + 4): one load when K is a multiple of 4 (`aligned`), else four, each
// clamped to class K − 1. c < K.
fn theta4(j: u32, c: u32, aligned: bool) -> vec4<f32> {
    let i = j * dims.k + c;
    if (aligned) {
        return tile_src[i >> 2u];
    }
    let top = j * dims.k + dims.k - 1u;
    return vec4<f32>(tile_at(i), tile_at(min(i + 1u, top)), tile_at(min(i + 2u, top)),
                     tile_at(min(i + 3u, top)));
}

// The sums of four classes for each of up to eight rows.
struct QuadSums {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
    r4: vec4<f32>,
    r5: vec4<f32>,
    r6: vec4<f32>,
    r7: vec4<f32>,
}

// One row's sums over features i .. i + 4 (t: their rows of Θ), in order of feature.
fn quad_step(a: vec4<f32>, v: vec4<f32>, t: array<vec4<f32>, 4>) -> vec4<f32> {
    return a + v.x * t[0] + v.y * t[1] + v.z * t[2] + v.w * t[3];
}

// Writes row `row`'s logits of classes c .. c + 4 that lie below K.
fn store4(row: u32, c: u32, sums: vec4<f32>) {
    if (row >= dims.rows) {
        return;
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (c + i < dims.k) {
            z[row * dims.k + c + i] = sums[i] + tile_at(dims.n * dims.k + c + i);
        }
    }
}

@compute @workgroup_size(256, 1, 1)
fn quads(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let n = dims.n;
    let c = wg.z * 64u + 4u * (t % 16u);
    let aligned = dims.k % 4u == 0u;
    // Lanes past class K read the last whole group of four (or class K − 1) and write nothing.
    let cc = select(min(c, dims.k - 1u), min(c, dims.k - 4u), aligned);
    let rows = row_starts(wg, nwg, t);
    let row0 = rows.row0;
    let xa = rows.xa;
    let xb = rows.xb;
    let whole_words = x_whole_words(n);
    var s = QuadSums();
    var j = 0u;
    for (; j + 4u <= n; j = j + 4u) {
        let th = array<vec4<f32>, 4>(theta4(j, cc, aligned), theta4(j + 1u, cc, aligned),
                                     theta4(j + 2u, cc, aligned), theta4(j + 3u, cc, aligned));
        s.r0 = quad_step(s.r0, x_at4(xa.x + j, dims.x_lo, dims.x_step, whole_words), th);
        s.r1 = quad_step(s.r1, x_at4(xa.y + j, dims.x_lo, dims.x_step, whole_words), th);
        s.r2 = quad_step(s.r2, x_at4(xa.z + j, dims.x_lo, dims.x_step, whole_words), th);
        s.r3 = quad_step(s.r3, x_at4(xa.w + j, dims.x_lo, dims.x_step, whole_words), th);
        if (ROWS > 4u) {
            s.r4 = quad_step(s.r4, x_at4(xb.x + j, dims.x_lo, dims.x_step, whole_words), th);
            s.r5 = quad_step(s.r5, x_at4(xb.y + j, dims.x_lo, dims.x_step, whole_words), th);
            s.r6 = quad_step(s.r6, x_at4(xb.z + j, dims.x_lo, dims.x_step, whole_words), th);
            s.r7 = quad_step(s.r7, x_at4(xb.w + j, dims.x_lo, dims.x_step, whole_words), th);
        }
    }
    for (; j < n; j = j + 1u) {
        let th = theta4(j, cc, aligned);
        let a = x_col(xa, j);
        s.r0 = s.r0 + a.x * th;
        s.r1 = s.r1 + a.y * th;
        s.r2 = s.r2 + a.z * th;
        s.r3 = s.r3 + a.w * th;
        if (ROWS > 4u) {
            let b = x_col(xb, j);
            s.r4 = s.r4 + b.x * th;
            s.r5 = s.r5 + b.y * th;
            s.r6 = s.r6 + b.z * th;
            s.r7 = s.r7 + b.w * th;
        }
    }
    if (c >= dims.k) {
        return;
    }
    store4(row0, c, s.r0);
    store4(row0 + 1u, c, s.r1);
    store4(row0 + 2u, c, s.r2);
    store4(row0 + 3u, c, s.r3);
    if (ROWS > 4u) {
        store4(row0 + 4u, c, s.r4);
        store4(row0 + 5u, c, s.r5);
        store4(row0 + 6u, c, s.r6);
        store4(row0 + 7u, c, s.r7);
    }
}
