// The gradient of the objective from the reduced sums, and one optimizer step.
// w is the flat parameter vector: Θ (n, K) row-major in w[0 .. n·K], then b in
// w[n·K .. n·K + K]; len = n·K + K.
//
// finalize:   g[i] = sums[i] · inv_m + (i < n·K ? λ · w[i] : 0)   (bias not regularised)
// step_plain: w[i] −= lr · g[i]
// step_momentum: v[i] = μ v[i] + g[i];  w[i] −= lr · v[i]          (v in m1)
// step_adam:  m = β₁m + (1−β₁)g;  v = β₂v + (1−β₂)g²;
//             w −= lr · (m / c₁) / (√(v / c₂) + ε),  c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ (host)
//
// Shapes: sums (len + 1, the loss sum last, unused here) · w, g, m1, m2 (len).
// Bindings: 0 sums read · 1 w read_write · 2 g read_write · 3 m1 read_write ·
//           4 m2 read_write · 5 dims uniform.
// Dispatch: ceil(len / 256) workgroups of 256, folded into a 2-D grid (x ≤ 65535);
// i = (wy·num_x + wx)·256 + lx.

struct Dims {
    len: u32,
    nk: u32,
    _pad0: u32,
    _pad1: u32,
    inv_m: f32,
    l2: f32,
    lr: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    c1: f32,
    c2: f32,
    _pad2: f32,
    _pad3: f32,
    _pad4: f32,
}

@group(0) @binding(0) var<storage, read> sums: array<f32>;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m1: array<f32>;
@group(0) @binding(4) var<storage, read_write> m2: array<f32>;
@group(0) @binding(5) var<uniform> dims: Dims;

fn index(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 256u + lid.x;
}

@compute @workgroup_size(256, 1, 1)
fn finalize(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = index(wg, nwg, lid);
    if (i >= dims.len) {
        return;
    }
    var grad = sums[i] * dims.inv_m;
    if (i < dims.nk) {
        grad = grad + dims.l2 * w[i];
    }
    g[i] = grad;
}

@compute @workgroup_size(256, 1, 1)
fn step_plain(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = index(wg, nwg, lid);
    if (i >= dims.len) {
        return;
    }
    w[i] = w[i] - dims.lr * g[i];
}

@compute @workgroup_size(256, 1, 1)
fn step_momentum(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = index(wg, nwg, lid);
    if (i >= dims.len) {
        return;
    }
    let v = dims.momentum * m1[i] + g[i];
    m1[i] = v;
    w[i] = w[i] - dims.lr * v;
}

@compute @workgroup_size(256, 1, 1)
fn step_adam(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = index(wg, nwg, lid);
    if (i >= dims.len) {
        return;
    }
    let grad = g[i];
    let m = dims.beta1 * m1[i] + (1.0 - dims.beta1) * grad;
    let v = dims.beta2 * m2[i] + (1.0 - dims.beta2) * grad * grad;
    m1[i] = m;
    m2[i] = v;
    w[i] = w[i] - dims.lr * (m / dims.c1) / (sqrt(v / dims.c2) + dims.eps);
}
