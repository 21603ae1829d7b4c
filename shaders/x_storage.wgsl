// How X is stored on the device: the declarations every kernel that reads X opens with
// (kernels.rs puts this file in front of logits, logits_rows, gradient, gradient_cols,
// fused and gather). It is not a kernel of its own.
//
// X is bound as 32-bit words, its elements row-major and packed from the low bits up;
// the pipeline constant X_FORMAT says how (XStorage in storage.rs):
//
//   0 f32: one element per word, the value's bits.
//   1 f16: two per word (element 2w in bits 0..16 of word w), IEEE half precision.
//   2 u8:  four per word (element 4w in bits 0..8), a code q with value lo + step·q,
//          where lo and step come with each kernel's dims (one pair per dataset).
//
// Arithmetic is f32 in every format; only the stored values differ.
//
// Binding: 0 x read, declared as groups of four words (array<vec4<u32>>, so X buffers
// are whole multiples of 16 bytes) so that x_at4 can read four aligned f32 values with one
// load; x_word reads one word.

override X_FORMAT: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<vec4<u32>>;

// Word w of X.
fn x_word(w: u32) -> u32 {
    return x[w >> 2u][w & 3u];
}

// Elements of X per 32-bit word.
fn x_per_word() -> u32 {
    return 1u << X_FORMAT;
}

// Whether every row of X (n elements) starts where x_at4 can take its fast path: on a
// multiple of 4 elements for f32, on a word for f16 and u8.
fn x_whole_words(n: u32) -> bool {
    return n % select(x_per_word(), 4u, X_FORMAT == 0u) == 0u;
}

// The stored bits of element i: a whole word (f32), a half word (f16) or a byte (u8).
fn x_bits(i: u32) -> u32 {
    let word = x_word(i >> X_FORMAT);
    if (X_FORMAT == 0u) {
        return word;
    }
    let shift = 5u - X_FORMAT;                // log2 of the bits per element
    let lane = i & ((1u << X_FORMAT) - 1u);   // the element's place in its word
    let mask = 0xffffffffu >> (32u - (32u >> X_FORMAT));
    return (word >> (lane << shift)) & mask;
}

// The value of element i of X.
fn x_at(i: u32, lo: f32, step: f32) -> f32 {
    if (X_FORMAT == 0u) {
        return bitcast<f32>(x_word(i));
    }
    if (X_FORMAT == 1u) {
        return unpack2x16float(x_word(i >> 1u))[i & 1u];
    }
    return fma(step, f32((x_word(i >> 2u) >> ((i & 3u) << 3u)) & 255u), lo);
}

// Elements i .. i + 4 of X, with as few loads as the format allows: for f32 one load of
// four words when i is a multiple of 4, else four; for f16 two word loads, or three unless
// i is even; for u8 one, or two unless i is a multiple of 4.
// `whole_words` says that i is such a multiple (4 for f32, the elements per word for f16
// and u8). Callers know it for a whole workgroup: i is a row start plus a multiple of 4,
// and every row starts on one when x_whole_words(n), so that CPU adapters run only one of
// the two paths. Elements past the end of X read as whatever the bounds check gives;
// callers never use them.
fn x_at4(i: u32, lo: f32, step: f32, whole_words: bool) -> vec4<f32> {
    if (X_FORMAT == 0u) {
        if (whole_words) {
            return bitcast<vec4<f32>>(x[i >> 2u]);
        }
        return vec4<f32>(x_at(i, lo, step), x_at(i + 1u, lo, step), x_at(i + 2u, lo, step),
                         x_at(i + 3u, lo, step));
    }
    if (X_FORMAT == 1u) {
        let a = unpack2x16float(x_word(i >> 1u));
        let b = unpack2x16float(x_word((i >> 1u) + 1u));
        if (whole_words) {
            return vec4<f32>(a, b);
        }
        let c = unpack2x16float(x_word((i >> 1u) + 2u));
        return select(vec4<f32>(a.y, b, c.x), vec4<f32>(a, b), (i & 1u) == 0u);
    }
    var bytes = x_word(i >> 2u);
    if (!whole_words) {
        // The four bytes from byte i mod 4 of the word pair (w, w + 1).
        let shift = (i & 3u) << 3u;
        let next = x_word((i >> 2u) + 1u);
        bytes = select((bytes >> shift) | (next << (32u - shift)), bytes, shift == 0u);
    }
    let codes = vec4<u32>(bytes & 255u, (bytes >> 8u) & 255u, (bytes >> 16u) & 255u, bytes >> 24u);
    return fma(vec4<f32>(step), vec4<f32>(codes), vec4<f32>(lo));
}
