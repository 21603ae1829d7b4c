// Running sums of 16 classes for one row (logits) or one feature (gradient): the type the
// register kernels keep in registers (kernels.rs puts this file in front of logits_rows
// and gradient_cols). It is not a kernel of its own.
//
// Four vec4s, never indexed by a runtime value while summing: CPU adapters turn dynamic
// indexing into memory traffic.

struct Acc16 {
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
    c3: vec4<f32>,
}

// a + v · t, class by class, for t a row of 16 values (as tile16 returns them).
fn acc16_add(a: Acc16, v: f32, t: array<vec4<f32>, 4>) -> Acc16 {
    return Acc16(a.c0 + v * t[0], a.c1 + v * t[1], a.c2 + v * t[2], a.c3 + v * t[3]);
}

// The sum of class c < 16.
fn acc16_at(a: Acc16, c: u32) -> f32 {
    let all = array<vec4<f32>, 4>(a.c0, a.c1, a.c2, a.c3);
    return all[c / 4u][c % 4u];
}
