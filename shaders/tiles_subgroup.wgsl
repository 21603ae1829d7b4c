// Reading a row of 16 values that every invocation of a workgroup needs at once, shared
// through the subgroup: the same functions as tiles_plain.wgsl (see there), for adapters
// with subgroup operations and subgroups of at least 8 invocations (kernels.rs uses it
// on CPU adapters: lavapipe runs 8 invocations as the lanes of one SIMD register).
//
// Lane l of each subgroup loads tile_src[t + l mod 8] and tile_src[t + 8 + l mod 8]; the
// 16 values then come from lanes 0..7 by subgroupBroadcast. On lavapipe a storage load
// whose address the compiler cannot prove uniform becomes a loop over the lanes, so two
// such loads instead of sixteen remove most of the register kernels' cost. When rows
// start on a vec4, tile16x2 reads two rows with one vec4 load per lane.
//
// The including kernel declares the buffer as `tile_src: array<vec4<f32>>` (so that
// tile16x2 can read four values with one load; tile_at reads one), calls tile_init()
// first, with every invocation active, and calls tile16() and tile16x2() only in uniform
// control flow.

// This invocation's lane within its subgroup, mod 8.
var<private> tile_lane: u32;

fn tile_init() {
    // With every invocation active, the number of lanes below this one is its lane id.
    tile_lane = subgroupExclusiveAdd(1u) % 8u;
}

// Element i of tile_src.
fn tile_at(i: u32) -> f32 {
    return tile_src[i >> 2u][i & 3u];
}

// tile_src[t .. t + 16) as four vec4s; past the end of the buffer the values read as 0.
fn tile16(t: u32) -> array<vec4<f32>, 4> {
    let lo = tile_at(t + tile_lane);
    let hi = tile_at(t + 8u + tile_lane);
    return array<vec4<f32>, 4>(
        vec4<f32>(subgroupBroadcast(lo, 0u), subgroupBroadcast(lo, 1u),
                  subgroupBroadcast(lo, 2u), subgroupBroadcast(lo, 3u)),
        vec4<f32>(subgroupBroadcast(lo, 4u), subgroupBroadcast(lo, 5u),
                  subgroupBroadcast(lo, 6u), subgroupBroadcast(lo, 7u)),
        vec4<f32>(subgroupBroadcast(hi, 0u), subgroupBroadcast(hi, 1u),
                  subgroupBroadcast(hi, 2u), subgroupBroadcast(hi, 3u)),
        vec4<f32>(subgroupBroadcast(hi, 4u), subgroupBroadcast(hi, 5u),
                  subgroupBroadcast(hi, 6u), subgroupBroadcast(hi, 7u)),
    );
}

// Two rows of 16, tile16(t) and tile16(u), for t and u multiples of 4: lanes 0..3 load
// the four vec4s of the first and lanes 4..7 those of the second, one load each, where
// tile16 takes two scalar loads per lane for one row (on lavapipe a vec4 load costs
// about two scalar ones, so this halves the loads per row).
fn tile16x2(t: u32, u: u32) -> array<array<vec4<f32>, 4>, 2> {
    let v = tile_src[(select(t, u, tile_lane >= 4u) >> 2u) + (tile_lane & 3u)];
    return array<array<vec4<f32>, 4>, 2>(
        array<vec4<f32>, 4>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u),
                            subgroupBroadcast(v, 2u), subgroupBroadcast(v, 3u)),
        array<vec4<f32>, 4>(subgroupBroadcast(v, 4u), subgroupBroadcast(v, 5u),
                            subgroupBroadcast(v, 6u), subgroupBroadcast(v, 7u)),
    );
}
