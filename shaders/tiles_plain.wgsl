// Reading a row of 16 values that every invocation of a workgroup needs at once (a row of
// a Θ class tile, a row of a d class tile): the declarations the register kernels open
// with (kernels.rs puts this file, or tiles_subgroup.wgsl, after x_storage.wgsl and in
// front of logits_rows and gradient_cols; fused always gets this one). It is not a kernel
// of its own.
//
// This version makes each invocation load all 16 values itself, so it may be called from
// any control flow. tiles_subgroup.wgsl has each subgroup load them once and share them.
//
// The including kernel declares the buffer as `tile_src: array<f32>` and calls
// tile_init() first; a kernel that may get tiles_subgroup.wgsl instead calls tile16() only
// in uniform control flow (every invocation of the workgroup, with the same t).

fn tile_init() {}

// tile_src[t .. t + 16) as four vec4s; past the end of the buffer the values read as 0.
fn tile16(t: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(
        vec4<f32>(tile_src[t], tile_src[t + 1u], tile_src[t + 2u], tile_src[t + 3u]),
        vec4<f32>(tile_src[t + 4u], tile_src[t + 5u], tile_src[t + 6u], tile_src[t + 7u]),
        vec4<f32>(tile_src[t + 8u], tile_src[t + 9u], tile_src[t + 10u], tile_src[t + 11u]),
        vec4<f32>(tile_src[t + 12u], tile_src[t + 13u], tile_src[t + 14u], tile_src[t + 15u]),
    );
}
