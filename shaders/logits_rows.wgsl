// Logits for one row chunk, one invocation per row: Z = XΘ + 1bᵀ.
//
// The register variant of logits.wgsl, for adapters that run invocations as CPU SIMD
// lanes (llvmpipe, lavapipe): no workgroup memory and no barriers. Invocation r keeps
// the logits of up to 16 classes in registers, streams its own row of x once per class
// tile, and reads Θ entries that are the same for every lane through tile16 (from
// tiles_plain.wgsl or tiles_subgroup.wgsl, which kernels.rs puts in front of this file).
// Invocations past the last row compute on the last row and write nothing, so that every
// invocation reaches each tile16 call.
//
// With the pipeline constant ROWS > 1 each invocation computes up to four rows, 64 apart,
// sharing every row of Θ it reads among them: on CPU adapters that divides the Θ loads and
// subgroup broadcasts per row by ROWS (kernels.rs sets 4 for KernelVariant::Register; the
// GPU default keeps 1, one row per invocation, for occupancy). Each row is read four
// features at a time (x_at4) when X is packed (f16, u8) or is f32 with n a multiple of 4:
// fewer loads for the same values.
//
// Shapes: x (rows, n) · w (n·K + K): theta (n, K) row-major then bias (K) · z (rows, K).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 w read (named
// tile_src, as the tiles file expects) · 2 z write · 3 dims uniform (same Dims as
// logits.wgsl).
// Dispatch: (ceil(rows / (64·ROWS)) folded into x ≤ 65535 and y, then ceil(K / 16) in z)
// workgroups of 64; rows (wy·num_x + wx)·64·ROWS + 64·q + lx for q < ROWS, classes
// [wz·16, wz·16 + 16).
// Sums over j run in increasing j: reproducible.

// Dims, z (binding 2) and dims (binding 3) come from logits_io.wgsl.
@group(0) @binding(1) var<storage, read> tile_src: array<vec4<f32>>;

const KT: u32 = 16u;

// Rows per invocation: 1, 2, 3 or 4.
override ROWS: u32 = 1u;

// Writes the logits of one row, unless the row is past the end.
fn store_row(row: u32, k0: u32, kt: u32, a: Acc16) {
    if (row >= dims.rows) {
        return;
    }
    let out = row * dims.k + k0;
    let bias = dims.n * dims.k + k0;
    for (var c = 0u; c < kt; c = c + 1u) {
        z[out + c] = acc16_at(a, c) + tile_at(bias + c);
    }
}

// The sums of the invocation's rows (the ones past ROWS stay unused).
struct RowSums {
    s0: Acc16,
    s1: Acc16,
    s2: Acc16,
    s3: Acc16,
}

// One feature j of every row: sq += v[q] · t, with v[q] = x[row q, j] and t the row
// Θ[j, k0 .. k0+16). Past column K the values of Θ belong to its next row (or read as 0
// past the buffer); those lanes are never written out.
fn feature_step(s: RowSums, t: array<vec4<f32>, 4>, v: vec4<f32>) -> RowSums {
    var r = s;
    r.s0 = acc16_add(s.s0, v.x, t);
    if (ROWS > 1u) {
        r.s1 = acc16_add(s.s1, v.y, t);
    }
    if (ROWS > 2u) {
        r.s2 = acc16_add(s.s2, v.z, t);
    }
    if (ROWS > 3u) {
        r.s3 = acc16_add(s.s3, v.w, t);
    }
    return r;
}

// Four features j .. j + 4 of every row: t0 .. t3 are their rows of Θ, and row q of X
// starts at element xs[q] (x_at4 reads its four values; see there for `whole_words`).
fn four_steps(s: RowSums, t0: array<vec4<f32>, 4>, t1: array<vec4<f32>, 4>,
              t2: array<vec4<f32>, 4>, t3: array<vec4<f32>, 4>, xs: vec4<u32>, j: u32,
              whole_words: bool) -> RowSums {
    let v0 = x_at4(xs.x + j, dims.x_lo, dims.x_step, whole_words);
    let v1 = x_at4(xs.y + j, dims.x_lo, dims.x_step, whole_words);
    let v2 = x_at4(xs.z + j, dims.x_lo, dims.x_step, whole_words);
    let v3 = x_at4(xs.w + j, dims.x_lo, dims.x_step, whole_words);
    var r = feature_step(s, t0, vec4<f32>(v0.x, v1.x, v2.x, v3.x));
    r = feature_step(r, t1, vec4<f32>(v0.y, v1.y, v2.y, v3.y));
    r = feature_step(r, t2, vec4<f32>(v0.z, v1.z, v2.z, v3.z));
    return feature_step(r, t3, vec4<f32>(v0.w, v1.w, v2.w, v3.w));
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    tile_init();
    let row0 = (wg.y * nwg.x + wg.x) * 64u * ROWS + lid.x;
    let row1 = row0 + 64u;
    let row2 = row0 + 128u;
    let row3 = row0 + 192u;
    let k0 = wg.z * KT;
    let kt = min(KT, dims.k - k0);
    let last = dims.rows - 1u;
    // Rows past ROWS read row 0 again; their loads and sums are dropped by the compiler.
    let x0 = min(row0, last) * dims.n;
    let x1 = select(x0, min(row1, last) * dims.n, ROWS > 1u);
    let x2 = select(x0, min(row2, last) * dims.n, ROWS > 2u);
    let x3 = select(x0, min(row3, last) * dims.n, ROWS > 3u);
    var s = RowSums();
    var j = 0u;
    let whole_words = x_whole_words(dims.n);
    if (X_FORMAT != 0u || whole_words) {
        // Four features of each row from one load (f32 rows on groups of four words) or
        // one or two word loads (packed X; x_at4), then one step per feature, in the same
        // order as below.
        let xs = vec4<u32>(x0, x1, x2, x3);
        // With K a multiple of 4 every row of Θ starts on a vec4, and two rows come from
        // one load per lane (tile16x2).
        if (dims.k % 4u == 0u) {
            for (; j + 4u <= dims.n; j = j + 4u) {
                let t = j * dims.k + k0;
                let a = tile16x2(t, t + dims.k);
                let b = tile16x2(t + 2u * dims.k, t + 3u * dims.k);
                s = four_steps(s, a[0], a[1], b[0], b[1], xs, j, whole_words);
            }
        } else {
            for (; j + 4u <= dims.n; j = j + 4u) {
                let t = j * dims.k + k0;
                s = four_steps(s, tile16(t), tile16(t + dims.k), tile16(t + 2u * dims.k),
                               tile16(t + 3u * dims.k), xs, j, whole_words);
            }
        }
    }
    for (; j < dims.n; j = j + 1u) {
        let v = vec4<f32>(x_at(x0 + j, dims.x_lo, dims.x_step), x_at(x1 + j, dims.x_lo, dims.x_step),
                          x_at(x2 + j, dims.x_lo, dims.x_step), x_at(x3 + j, dims.x_lo, dims.x_step));
        s = feature_step(s, tile16(j * dims.k + k0), v);
    }
    store_row(row0, k0, kt, s.s0);
    if (ROWS > 1u) {
        store_row(row1, k0, kt, s.s1);
    }
    if (ROWS > 2u) {
        store_row(row2, k0, kt, s.s2);
    }
    if (ROWS > 3u) {
        store_row(row3, k0, kt, s.s3);
    }
}
