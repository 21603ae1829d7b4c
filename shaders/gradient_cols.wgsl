// Per-row-block partial sums of the gradient for one row chunk, one invocation per
// feature: the register variant of gradient.wgsl for adapters that run invocations as
// CPU SIMD lanes (llvmpipe, lavapipe), with no workgroup memory and no barriers.
//
//   partials[b, j·K + k]   = Σ_{r ∈ block b} x[r, j] · d[r, k]     (j < n)
//   partials[b, n·K + k]   = Σ_{r ∈ block b} d[r, k]               (invocation j = n)
//   partials[b, n·K + K]   = Σ_{r ∈ block b} row_loss[r]           (j = n, first class tile)
//
// Invocation j keeps the sums of up to 16 classes in registers and walks the block's
// rows in increasing order (reproducible); lanes read consecutive x[r, j] and the same
// d[r, k], through tile16 (from tiles_plain.wgsl or tiles_subgroup.wgsl, which kernels.rs
// puts in front of this file). Invocations past feature n compute on feature n − 1 and
// write nothing, so that every invocation reaches each tile16 call.
//
// With the pipeline constant COLS > 1 each invocation sums up to four features, WG apart,
// sharing every row of d it reads among them: on CPU adapters that divides the d loads and
// subgroup broadcasts per feature by COLS. kernels.rs sets COLS = 4 with workgroups of
// WG = 16 for KernelVariant::Register (a workgroup still covers 64 features), and keeps
// COLS = 1, WG = 64 on the GPU default. When COLS = 4 and X is packed (f16, u8) or f32
// with n a multiple of 4, an invocation's four features are consecutive instead, so that
// one load (f32) or one or two word loads (packed; x_at4) give all four.
//
// Shapes: x (rows, n) · d (rows, K) · row_loss (rows) · partials (blocks, n·K + K + 1).
// Bindings: 0 x read (declared in x_storage.wgsl, any storage format) · 1 d read (named
// tile_src, as the tiles file expects) · 2 row_loss read · 3 partials write · 4 dims
// uniform (same Dims as gradient.wgsl).
// Dispatch: (ceil((n + 1) / (WG·COLS)), ceil(K / 16), blocks) workgroups of WG;
// features j = wx·WG·COLS + WG·q + lx for q < COLS (quads: wx·WG·COLS + 4·quad(lx) + q,
// with quad(lx) = lx for packed X and alternate halves for f32, see main),
// classes [wy·16, wy·16 + 16), block b = wz.

// Dims, row_loss (binding 2), partials (3) and dims (4) come from gradient_io.wgsl.
@group(0) @binding(1) var<storage, read> tile_src: array<vec4<f32>>;

const KT: u32 = 16u;

// Features per invocation (1, 2, 3 or 4) and invocations per workgroup.
override COLS: u32 = 1u;
override WG: u32 = 64u;

// Writes feature j's sums (j = n: the bias), unless j is past n.
fn store_col(j: u32, out: u32, kt: u32, a: Acc16) {
    if (j > dims.n) {
        return;
    }
    let o = out + j * dims.k;
    for (var c = 0u; c < kt; c = c + 1u) {
        partials[o + c] = acc16_at(a, c);
    }
}

// x[r, j] for feature j < n, and 1 for the bias column j = n (so that its sums are Σ d).
fn x_or_one(r: u32, j: u32) -> f32 {
    return select(x_at(r * dims.n + min(j, dims.n - 1u), dims.x_lo, dims.x_step), 1.0, j == dims.n);
}

// x[r, base .. base + 4) with the bias column (where `bias` says) reading as 1; see x_at4
// for `whole_words`.
fn x_quad(r: u32, base: u32, bias: vec4<bool>, whole_words: bool) -> vec4<f32> {
    return select(x_at4(r * dims.n + base, dims.x_lo, dims.x_step, whole_words), vec4<f32>(1.0),
                  bias);
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    tile_init();
    // Four consecutive features per invocation ("quads"), read together, when COLS = 4
    // and X is packed or f32 with rows on groups of four words.
    let whole_words = x_whole_words(dims.n);
    let quads = (X_FORMAT != 0u || whole_words) && COLS == 4u;
    let first = wg.x * WG * COLS;
    // Which quad of the workgroup's WG invocation takes. For f32 the workgroup reads 256
    // bytes of each row (four cache lines): the first half of the workgroup takes the even
    // quads and the second half the odd ones, so that on a CPU adapter, where each half
    // is a SIMD group run after the other, the first group reads all four lines of a row
    // and the second finds them in cache (1.3–1.5× faster on lavapipe than the halves
    // taking a contiguous 128 bytes each, see BENCHMARKS.md). Packed rows are read
    // contiguously: there the workgroup's slice of a row is one line or two.
    let half = WG / 2u;
    let quad = select(lid.x, 2u * (lid.x % half) + lid.x / half, X_FORMAT == 0u && WG % 2u == 0u);
    let j0 = first + select(lid.x, 4u * quad, quads);
    let apart = select(WG, 1u, quads);
    let j1 = j0 + apart;
    let j2 = j1 + apart;
    let j3 = j2 + apart;
    let k0 = wg.y * KT;
    let kt = min(KT, dims.k - k0);
    let block = wg.z;
    let start = block * dims.rows_per_block;
    let end = min(dims.rows, start + dims.rows_per_block);
    // The sums of feature q in sq (the ones past COLS stay unused).
    var s0 = Acc16();
    var s1 = Acc16();
    var s2 = Acc16();
    var s3 = Acc16();
    if (quads) {
        // x[r, j0 .. j0 + 4) in one load (f32) or one or two word loads (packed); the
        // bias column reads as 1. Features past n read values of the next row, or whatever
        // the bounds check gives past X, and are never written out.
        let base = min(j0, dims.n);
        let bias = vec4<u32>(j0, j1, j2, j3) == vec4<u32>(dims.n);
        var r = start;
        if (dims.k % 4u == 0u) {
            // With K a multiple of 4 every row of d starts on a vec4: two rows come from
            // one load per lane (tile16x2), summed in the same order as below.
            for (; r + 2u <= end; r = r + 2u) {
                let t = tile16x2(r * dims.k + k0, (r + 1u) * dims.k + k0);
                let v = x_quad(r, base, bias, whole_words);
                let w = x_quad(r + 1u, base, bias, whole_words);
                s0 = acc16_add(acc16_add(s0, v.x, t[0]), w.x, t[1]);
                s1 = acc16_add(acc16_add(s1, v.y, t[0]), w.y, t[1]);
                s2 = acc16_add(acc16_add(s2, v.z, t[0]), w.z, t[1]);
                s3 = acc16_add(acc16_add(s3, v.w, t[0]), w.w, t[1]);
            }
        }
        for (; r < end; r = r + 1u) {
            let t = tile16(r * dims.k + k0);
            let v = x_quad(r, base, bias, whole_words);
            s0 = acc16_add(s0, v.x, t);
            s1 = acc16_add(s1, v.y, t);
            s2 = acc16_add(s2, v.z, t);
            s3 = acc16_add(s3, v.w, t);
        }
    } else {
        // Sets q ≥ 1 whose features all lie past n (in the last workgroup, where the bias
        // column n may stand alone) skip their sums; the test is the same for the whole
        // workgroup.
        let live1 = COLS > 1u && first + WG <= dims.n;
        let live2 = COLS > 2u && first + 2u * WG <= dims.n;
        let live3 = COLS > 3u && first + 3u * WG <= dims.n;
        for (var r = start; r < end; r = r + 1u) {
            // d[r, k0 .. k0+16): past column K the values belong to the next row (or read
            // as 0 past the buffer) and are never written out.
            let t = tile16(r * dims.k + k0);
            s0 = acc16_add(s0, x_or_one(r, j0), t);
            if (live1) {
                s1 = acc16_add(s1, x_or_one(r, j1), t);
            }
            if (live2) {
                s2 = acc16_add(s2, x_or_one(r, j2), t);
            }
            if (live3) {
                s3 = acc16_add(s3, x_or_one(r, j3), t);
            }
        }
    }
    let out = block * dims.stride + k0;
    store_col(j0, out, kt, s0);
    if (COLS > 1u) {
        store_col(j1, out, kt, s1);
    }
    if (COLS > 2u) {
        store_col(j2, out, kt, s2);
    }
    if (COLS > 3u) {
        store_col(j3, out, kt, s3);
    }
    // The invocation holding the bias column sums the block's losses, in row order.
    let has_bias = j0 == dims.n || (COLS > 1u && j1 == dims.n) || (COLS > 2u && j2 == dims.n)
        || (COLS > 3u && j3 == dims.n);
    if (has_bias && k0 == 0u) {
        var loss = 0.0;
        for (var r = start; r < end; r = r + 1u) {
            loss = loss + row_loss[r];
        }
        partials[block * dims.stride + dims.n * dims.k + dims.k] = loss;
    }
}
