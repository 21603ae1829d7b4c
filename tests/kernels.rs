//! Every kernel against the CPU reference, on seeded data and awkward shapes: m = 1,
//! n = 1, K = 2, K = 1000, sizes that are not multiples of any workgroup size, and logits
//! near ±1e4.

mod common;

use common::{assert_close, f64s, gpu, gpus, labels, normal, normal_vec};
use ndarray::{Array1, Array2, Axis, s};
use softmax_regression::gpu::{KernelVariant, single};
use softmax_regression::reference::{self, Step};
use softmax_regression::{AdapterRequest, Error, GpuContext};

// Tolerances, per kernel:
// - logits: one f32 dot product of length n; error grows like √n·ε·|x||θ|, so a small
//   absolute floor plus 1e-5 relative.
const LOGITS_TOL: (f64, f64) = (1e-4, 1e-5);
// - softmax: exp and one division per element, values in [0, 1]; the loss adds a log.
const SOFTMAX_TOL: (f64, f64) = (2e-6, 1e-5);
// - gradient partials: sums over a whole row block, so looser than softmax.
const GRADIENT_TOL: (f64, f64) = (1e-4, 1e-4);
// - reduce: a sum over parts in f32 against the f64 sum.
const REDUCE_TOL: (f64, f64) = (1e-5, 1e-5);
// - update: elementwise f32 arithmetic, the same expressions as the reference.
const UPDATE_TOL: (f64, f64) = (1e-7, 1e-6);

fn check_logits(m: usize, n: usize, k: usize, scale: f64, seed: u64) {
    check_logits_on(&gpus(), m, n, k, scale, seed);
}

fn check_logits_on(contexts: &[&GpuContext], m: usize, n: usize, k: usize, scale: f64, seed: u64) {
    let x = normal(m, n, 1.0, seed);
    let theta = normal(n, k, scale, seed + 1);
    let bias = normal_vec(k, scale, seed + 2);
    let want = reference::logits(
        x.view(),
        theta.mapv(f64::from).view(),
        bias.mapv(f64::from).view(),
    );
    let magnitude = want.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    for &ctx in contexts {
        let got = single::logits(ctx, x.view(), theta.view(), bias.view()).unwrap();
        assert_close(
            &format!("logits m={m} n={n} K={k} on {}", ctx.describe()),
            &f64s(&got),
            &want.iter().copied().collect::<Vec<_>>(),
            LOGITS_TOL.0 * magnitude.max(1.0) * 1e-2 + LOGITS_TOL.0,
            LOGITS_TOL.1,
        );
    }
}

#[test]
fn logits_rows_not_multiple_of_workgroup() {
    check_logits(37, 53, 10, 0.3, 1);
}

#[test]
fn logits_single_row_single_feature() {
    check_logits(1, 1, 2, 1.0, 2);
}

#[test]
fn logits_thousand_classes() {
    check_logits(45, 70, 1000, 0.1, 3);
}

/// Every tile shape of the tiled kernel (K ≤ 16, ≤ 64, > 64) with rows, features and
/// classes that leave partial tiles and a partial last stage of 16 features.
#[test]
fn logits_each_tile_shape_with_ragged_edges() {
    for (k, seed) in [(16, 4), (17, 5), (64, 6), (65, 7), (130, 8)] {
        check_logits(259, 37, k, 0.3, seed);
    }
    // Rows on groups of four words (one load per four features) and a feature tail; four
    // classes per lane of the coalesced kernel with K a multiple of 4 and not.
    for (n, k, seed) in [
        (128, 10, 9),
        (132, 20, 10),
        (6, 3, 11),
        (128, 100, 12),
        (36, 66, 13),
    ] {
        check_logits(131, n, k, 0.3, seed);
    }
}

/// On every kernel set: the register kernels take one invocation per row for every K,
/// the others a workgroup per row above 64 classes, so both entry points are checked.
fn check_softmax(z: Array2<f32>, y: &[u32]) {
    let z64 = z.mapv(f64::from);
    let want = reference::softmax_minus_onehot(z64.view(), y);
    let want_loss = reference::cross_entropy_rows(z64.view(), y);
    let (m, k) = z.dim();
    // −log P can be ~1e4 when the label's logit is far below the maximum; ε·|z| rounding of
    // the f32 logits is then the floor.
    let zmax = z.iter().fold(1.0f32, |a, v| a.max(v.abs())) as f64;
    for ctx in gpus() {
        let (got, got_loss) = single::softmax(ctx, z.view(), Some(y), None).unwrap();
        assert_close(
            &format!("P − Y m={m} K={k} on {}", ctx.describe()),
            &f64s(&got),
            &want.iter().copied().collect::<Vec<_>>(),
            SOFTMAX_TOL.0,
            SOFTMAX_TOL.1,
        );
        assert_close(
            &format!("row loss m={m} K={k} on {}", ctx.describe()),
            &f64s(&got_loss),
            &want_loss.to_vec(),
            1e-5 + 2.0 * f64::from(f32::EPSILON) * zmax,
            1e-5,
        );
    }
}

#[test]
fn softmax_small_k_rows_not_multiple_of_workgroup() {
    check_softmax(normal(131, 7, 3.0, 10), &labels(131, 7, 11));
}

#[test]
fn softmax_two_classes_single_row() {
    check_softmax(normal(1, 2, 1.0, 12), &[1]);
}

#[test]
fn softmax_thousand_classes_one_workgroup_per_row() {
    check_softmax(normal(33, 1000, 5.0, 13), &labels(33, 1000, 14));
}

#[test]
fn softmax_logits_near_plus_minus_1e4() {
    // Rows whose logits sit near +1e4 or −1e4 overflow a naive exp; the row maximum keeps
    // them finite. Every row mixes labels at and far from the maximum.
    let mut z = normal(70, 10, 20.0, 15);
    for (i, mut row) in z.outer_iter_mut().enumerate() {
        let offset = if i % 2 == 0 { 1e4 } else { -1e4 };
        row.mapv_inplace(|v| v + offset);
    }
    check_softmax(z.clone(), &labels(70, 10, 16));
    let mut wide = normal(9, 300, 30.0, 17);
    wide.mapv_inplace(|v| v + 1e4);
    check_softmax(wide, &labels(9, 300, 18));
}

#[test]
fn softmax_with_sample_weights_scales_rows() {
    let z = normal(45, 6, 2.0, 24);
    let y = labels(45, 6, 25);
    let w = normal_vec(45, 1.0, 26).mapv(|v| v.abs() * 3.0);
    let (got, got_loss) =
        single::softmax(gpu(), z.view(), Some(&y), Some(w.as_slice().unwrap())).unwrap();
    let z64 = z.mapv(f64::from);
    let mut want = reference::softmax_minus_onehot(z64.view(), &y);
    let mut want_loss = reference::cross_entropy_rows(z64.view(), &y);
    for ((mut row, loss), &wi) in want.outer_iter_mut().zip(want_loss.iter_mut()).zip(&w) {
        row *= f64::from(wi);
        *loss *= f64::from(wi);
    }
    assert_close(
        "w·(P − Y)",
        &f64s(&got),
        &want.iter().copied().collect::<Vec<_>>(),
        3.0 * SOFTMAX_TOL.0,
        SOFTMAX_TOL.1,
    );
    assert_close(
        "w·row loss",
        &f64s(&got_loss),
        &want_loss.to_vec(),
        1e-5,
        1e-5,
    );
}

#[test]
fn softmax_without_labels_gives_probabilities() {
    let z = normal(50, 12, 2.0, 19);
    let (p, loss) = single::softmax(gpu(), z.view(), None, None).unwrap();
    let want = reference::softmax_rows(z.mapv(f64::from).view());
    assert_close(
        "P without labels",
        &f64s(&p),
        &want.iter().copied().collect::<Vec<_>>(),
        SOFTMAX_TOL.0,
        SOFTMAX_TOL.1,
    );
    assert!(
        loss.iter().all(|&l| l == 0.0),
        "row losses without labels must be 0"
    );
}

fn check_gradient(m: usize, n: usize, k: usize, rows_per_block: usize, seed: u64) {
    check_gradient_on(&gpus(), m, n, k, rows_per_block, seed);
}

fn check_gradient_on(
    contexts: &[&GpuContext],
    m: usize,
    n: usize,
    k: usize,
    rows_per_block: usize,
    seed: u64,
) {
    let x = normal(m, n, 1.0, seed);
    let d = normal(m, k, 0.5, seed + 1);
    let row_loss = normal_vec(m, 1.0, seed + 2).mapv(f32::abs);
    let blocks = m.div_ceil(rows_per_block);
    let (x64, d64) = (x.mapv(f64::from), d.mapv(f64::from));
    for &ctx in contexts {
        let got =
            single::gradient_partials(ctx, x.view(), d.view(), row_loss.view(), rows_per_block)
                .unwrap();
        assert_eq!(got.dim(), (blocks, n * k + k + 1));
        for b in 0..blocks {
            let rows = b * rows_per_block..((b + 1) * rows_per_block).min(m);
            let xb = x64.slice(s![rows.clone(), ..]);
            let db = d64.slice(s![rows.clone(), ..]);
            let mut want: Vec<f64> = xb.t().dot(&db).iter().copied().collect();
            want.extend(db.sum_axis(Axis(0)).iter());
            want.push(row_loss.slice(s![rows]).iter().map(|&v| f64::from(v)).sum());
            assert_close(
                &format!(
                    "gradient partial block {b} m={m} n={n} K={k} on {}",
                    ctx.describe()
                ),
                &f64s(got.row(b)),
                &want,
                GRADIENT_TOL.0,
                GRADIENT_TOL.1,
            );
        }
    }
}

#[test]
fn gradient_rows_not_multiple_of_workgroup() {
    check_gradient(101, 37, 10, 32, 20);
}

#[test]
fn gradient_single_row_single_feature() {
    check_gradient(1, 1, 2, 16, 21);
}

#[test]
fn gradient_thousand_classes() {
    check_gradient(40, 33, 1000, 16, 22);
}

/// Every tile shape of the tiled kernel, with features (n + 1 with the bias row), classes
/// and blocks that leave partial tiles and partial stages of 16 rows.
#[test]
fn gradient_each_tile_shape_with_ragged_edges() {
    for (n, k, seed) in [
        (255, 16, 24),
        (63, 17, 25),
        (64, 64, 26),
        (129, 65, 27),
        (40, 130, 28),
        (128, 10, 29),
        (300, 20, 30),
    ] {
        check_gradient(203, n, k, 48, seed);
    }
}

#[test]
fn gradient_one_block_over_many_rows() {
    check_gradient(3000, 20, 3, 3008, 23);
}

#[test]
fn reduce_sums_parts_in_order() {
    // One invocation per output (tiled, register) and eight (coalesced, auto), with parts
    // not a multiple of eight and outputs not a multiple of 32.
    let partials = normal(37, 1000, 1.0, 30);
    let want: Vec<f64> = partials.mapv(f64::from).sum_axis(Axis(0)).to_vec();
    let initial = normal_vec(1000, 1.0, 31);
    let want_accumulated: Vec<f64> = want
        .iter()
        .zip(&initial)
        .map(|(a, &b)| a + f64::from(b))
        .collect();
    for ctx in gpus() {
        let got = single::reduce(ctx, partials.view(), None).unwrap();
        let what = format!("reduce on {}", ctx.describe());
        assert_close(&what, &f64s(&got), &want, REDUCE_TOL.0, REDUCE_TOL.1);
        let got = single::reduce(ctx, partials.view(), Some(initial.as_slice().unwrap())).unwrap();
        assert_close(
            &format!("{what}, accumulating"),
            &f64s(&got),
            &want_accumulated,
            REDUCE_TOL.0,
            REDUCE_TOL.1,
        );
    }
}

#[test]
fn reduce_length_over_one_dispatch_row() {
    // 65535·256 + 300 outputs: over one dispatch row at 256 per workgroup (and at 32) the
    // grid must fold into two dimensions.
    let len = 65535 * 256 + 300;
    let partials = Array2::from_shape_fn((1, len), |(_, i)| (i % 97) as f32 + 0.5);
    let initial: Vec<f32> = (0..len).map(|i| (i % 13) as f32).collect();
    let want: Vec<f64> = (0..len)
        .map(|i| (i % 97) as f64 + 0.5 + (i % 13) as f64)
        .collect();
    for ctx in gpus() {
        let got = single::reduce(ctx, partials.view(), Some(&initial)).unwrap();
        let what = format!("reduce folded grid on {}", ctx.describe());
        assert_close(&what, &f64s(&got), &want, 0.0, 0.0);
    }
}

fn check_update(step: Step) {
    let (n, k) = (13, 7);
    let len = n * k + k;
    let sums = normal_vec(len + 1, 3.0, 40).to_vec();
    let w = normal_vec(len, 1.0, 41).to_vec();
    let m1 = normal_vec(len, 0.1, 42).to_vec();
    let m2 = normal_vec(len, 0.1, 43).mapv(f32::abs).to_vec();
    let (lr, l2, inv_m) = (0.05f32, 0.01f32, 1.0 / 123.0f32);
    let (gw, gg, gm1, gm2) =
        single::update(gpu(), step, lr, l2, inv_m, n * k, &sums, &w, &m1, &m2).unwrap();
    // Reference: the gradient of J, then the same step in f32.
    let g: Array1<f32> = (0..len)
        .map(|i| {
            if i < n * k {
                sums[i] * inv_m + l2 * w[i]
            } else {
                sums[i] * inv_m
            }
        })
        .collect();
    let (mut rw, mut rm1, mut rm2) = (
        Array1::from_vec(w),
        Array1::from_vec(m1),
        Array1::from_vec(m2),
    );
    reference::update(
        step,
        lr,
        rw.view_mut(),
        g.view(),
        rm1.view_mut(),
        rm2.view_mut(),
    );
    let tol = UPDATE_TOL;
    assert_close(&format!("{step:?} g"), &f64s(&gg), &f64s(&g), tol.0, tol.1);
    assert_close(&format!("{step:?} w"), &f64s(&gw), &f64s(&rw), tol.0, tol.1);
    assert_close(
        &format!("{step:?} m1"),
        &f64s(&gm1),
        &f64s(&rm1),
        tol.0,
        tol.1,
    );
    assert_close(
        &format!("{step:?} m2"),
        &f64s(&gm2),
        &f64s(&rm2),
        tol.0,
        tol.1,
    );
}

#[test]
fn update_plain_step_regularises_theta_not_bias() {
    check_update(Step::Plain);
}

#[test]
fn update_momentum_step() {
    check_update(Step::Momentum { momentum: 0.9 });
}

#[test]
fn update_adam_step() {
    let (b1, b2) = (0.9f32, 0.999f32);
    check_update(Step::Adam {
        beta1: b1,
        beta2: b2,
        eps: 1e-8,
        c1: 1.0 - b1.powi(3),
        c2: 1.0 - b2.powi(3),
    });
}

#[test]
fn gather_copies_batch_rows() {
    let x = normal(77, 19, 1.0, 50);
    let y = labels(77, 5, 51);
    let w = normal_vec(77, 1.0, 52).mapv(f32::abs).to_vec();
    let idx: Vec<u32> = vec![76, 0, 3, 3, 40, 12];
    let (bx, by, bw) = single::gather(gpu(), x.view(), &y, &w, &idx).unwrap();
    for (b, &i) in idx.iter().enumerate() {
        assert_eq!(bx.row(b), x.row(i as usize), "batch row {b}");
        assert_eq!(by[b], y[i as usize], "batch label {b}");
        assert_eq!(bw[b], w[i as usize], "batch weight {b}");
    }
}

/// The register kernels with the rows of Θ and d loaded by every invocation, and shared
/// through the subgroup (lavapipe's default), on shapes that leave the last workgroup
/// part empty (rows past m, features past n) and class tiles part empty, with four rows
/// or features per invocation (the `register` choice). An adapter
/// without subgroups of 8 or more must refuse the shared kind with a message saying so.
#[test]
fn register_kernels_with_and_without_subgroup_sharing() {
    for subgroups in [false, true] {
        let ctx = match GpuContext::new(&AdapterRequest {
            kernels: Some(KernelVariant::Register),
            subgroups: Some(subgroups),
            ..AdapterRequest::default()
        }) {
            Ok(ctx) => ctx,
            Err(e @ Error::InvalidSetting { .. }) if subgroups => {
                let text = e.to_string();
                assert!(text.contains("no subgroup operations"), "{text}");
                eprintln!("subgroup sharing refused as expected: {text}");
                continue;
            }
            Err(e) => panic!("GPU tests need an adapter: {e}"),
        };
        for (k, seed) in [(10, 61), (17, 62), (40, 63)] {
            check_logits_on(&[&ctx], 131, 37, k, 0.3, seed);
            check_gradient_on(&[&ctx], 131, 70, k, 48, seed + 10);
        }
        // K = 10: four rows (logits) or features (gradient) per invocation, the last of
        // the four partly past m, several workgroups, and the bias column in each of the
        // four. K a multiple of 4 with rows of X on groups of four words: rows of Θ and of
        // d read two at a time (tile16x2), with a partial last class tile (K = 20, 40) and
        // row blocks of odd length (131 rows in blocks of 48: the last block has 35).
        for (m, n, k, seed) in [
            (250, 60, 10, 64),
            (601, 127, 10, 65),
            (300, 45, 10, 66),
            (131, 81, 10, 67),
            (200, 80, 10, 68),
            (131, 64, 40, 71),
            (97, 36, 20, 72),
            (200, 80, 4, 73),
            (131, 48, 32, 74),
        ] {
            check_logits_on(&[&ctx], m, n, k, 0.3, seed);
            check_gradient_on(&[&ctx], m, n, k, 48, seed + 10);
        }
    }
}

/// A build without the kernel lab refuses its kernels by name rather than run others.
#[cfg(not(feature = "kernel-lab"))]
#[test]
fn the_kernel_labs_kernels_are_refused_without_it() {
    let fused = GpuContext::new(&AdapterRequest {
        fused: Some(true),
        ..AdapterRequest::default()
    });
    let message = fused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("--features kernel-lab"),
        "the fused kernel was not refused: {message:?}"
    );
}
