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
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 w read · 2 z
// write · 3 dims uniform (same Dims as logits.wgsl).
// Dispatch: (ceil(rows / (16·ROWS)) folded into x ≤ 65535 and y, then ceil(K / 16) in z)
// workgroups of 256; rows from (wy·num_x + wx)·16·ROWS, classes [wz·16, wz·16 + 16).

struct Dims {
    rows: u32,
    n: u32,
    k: u32,
    x_lo: f32,
    x_step: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

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

// Writes the logit of class k for row `row`, unless the row is past the chunk.
fn store(row: u32, k: u32, sum: f32, bias: f32) {
    if (row < dims.rows) {
        z[row * dims.k + k] = sum + bias;
    }
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
    let row0 = (wg.y * nwg.x + wg.x) * 16u * ROWS + (t / 16u) * ROWS;
    let last = dims.rows - 1u;
    let xa = vec4<u32>(min(row0, last), min(row0 + 1u, last), min(row0 + 2u, last),
                       min(row0 + 3u, last)) * n;
    let xb = vec4<u32>(min(row0 + 4u, last), min(row0 + 5u, last), min(row0 + 6u, last),
                       min(row0 + 7u, last)) * n;
    let whole_words = x_whole_words(n);
    var s = Sums();
    var j = 0u;
    for (; j + 4u <= n; j = j + 4u) {
        let tj = j * dims.k + kc;
        let th = vec4<f32>(w[tj], w[tj + dims.k], w[tj + 2u * dims.k], w[tj + 3u * dims.k]);
        s = step4(s, xa, xb, j, th, whole_words);
    }
    for (; j < n; j = j + 1u) {
        let th = w[j * dims.k + kc];
        s.a = s.a + vec4<f32>(x_at(xa.x + j, dims.x_lo, dims.x_step),
                              x_at(xa.y + j, dims.x_lo, dims.x_step),
                              x_at(xa.z + j, dims.x_lo, dims.x_step),
                              x_at(xa.w + j, dims.x_lo, dims.x_step)) * th;
        if (ROWS > 4u) {
            s.b = s.b + vec4<f32>(x_at(xb.x + j, dims.x_lo, dims.x_step),
                                  x_at(xb.y + j, dims.x_lo, dims.x_step),
                                  x_at(xb.z + j, dims.x_lo, dims.x_step),
                                  x_at(xb.w + j, dims.x_lo, dims.x_step)) * th;
        }
    }
    if (!live) {
        return;
    }
    let bias = w[n * dims.k + k];
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
