// Reading a row of 16 values that every invocation of a workgroup needs at once (a row of
// a Θ class tile, a row of a d class tile): the declarations the register kernels open
// with (kernels.rs puts this file, or tiles_subgroup.wgsl, after x_storage.wgsl and in
// front of logits_rows and gradient_cols; fused, logits_lanes and gradient_slices always
// get this one). It is not a kernel of its own.
//
// This version makes each invocation load all 16 values itself, so it may be called from
// any control flow. tiles_subgroup.wgsl has each subgroup load them once and share them.
//
// The including kernel declares the buffer as `tile_src: array<vec4<f32>>` (so that
// tile16x2 can read four values with one load; tile_at reads one) and calls tile_init()
// first; a kernel that may get tiles_subgroup.wgsl instead calls tile16() and tile16x2()
// only in uniform control flow (every invocation of the workgroup, with the same t).

fn tile_init() {}

// Element i of tile_src.
fn tile_at(i: u32) -> f32 {
    return tile_src[i >> 2u][i & 3u];
}

// tile_src[t .. t + 16) as four vec4s; past the end of the buffer the values read as 0.
fn tile16(t: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(
        vec4<f32>(tile_at(t), tile_at(t + 1u), tile_at(t + 2u), tile_at(t + 3u)),
        vec4<f32>(tile_at(t + 4u), tile_at(t + 5u), tile_at(t + 6u), tile_at(t + 7u)),
        vec4<f32>(tile_at(t + 8u), tile_at(t + 9u), tile_at(t + 10u), tile_at(t + 11u)),
        vec4<f32>(tile_at(t + 12u), tile_at(t + 13u), tile_at(t + 14u), tile_at(t + 15u)),
    );
}

// Two rows of 16, tile16(t) and tile16(u), for t and u multiples of 4: four vec4 loads
// each.
fn tile16x2(t: u32, u: u32) -> array<array<vec4<f32>, 4>, 2> {
    let a = t >> 2u;
    let b = u >> 2u;
    return array<array<vec4<f32>, 4>, 2>(
        array<vec4<f32>, 4>(tile_src[a], tile_src[a + 1u], tile_src[a + 2u], tile_src[a + 3u]),
        array<vec4<f32>, 4>(tile_src[b], tile_src[b + 1u], tile_src[b + 2u], tile_src[b + 3u]),
    );
}
