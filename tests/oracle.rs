//! The loss-and-gradient oracle: the reference against finite differences, and the GPU
//! oracle against the reference on chunked data and awkward shapes.

mod common;

use common::{assert_close, clusters, gpu, gpus, labels, normal, normal_vec};
use ndarray::{Array1, Array2};
use proptest::prelude::*;
use softmax_regression::{CpuOracle, Dataset, GpuOracle, Oracle, reference};

/// ‖a − b‖ / ‖b‖.
fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

fn flat(g: &softmax_regression::LossGrad) -> Vec<f64> {
    g.theta.iter().chain(g.bias.iter()).copied().collect()
}

#[test]
fn reference_gradient_matches_finite_differences() {
    // Central differences of the f64 reference loss: this checks the derivation
    // ∇_Θ J = (1/m) Xᵀ(P − Y) + λΘ and ∇_b J = (1/m) Σ (P − Y) itself.
    let (m, n, k, l2) = (23, 5, 4, 0.07);
    let x = normal(m, n, 1.0, 1);
    let y = labels(m, k, 2);
    let theta = normal(n, k, 0.5, 3).mapv(f64::from);
    let bias = normal_vec(k, 0.5, 4).mapv(f64::from);
    let (gt, gb) = reference::gradient(x.view(), &y, theta.view(), bias.view(), l2);
    let h = 1e-6;
    let mut numeric = Vec::new();
    for i in 0..n * k {
        let (mut plus, mut minus) = (theta.clone(), theta.clone());
        plus[(i / k, i % k)] += h;
        minus[(i / k, i % k)] -= h;
        let jp = reference::loss(x.view(), &y, plus.view(), bias.view(), l2);
        let jm = reference::loss(x.view(), &y, minus.view(), bias.view(), l2);
        numeric.push((jp - jm) / (2.0 * h));
    }
    for c in 0..k {
        let (mut plus, mut minus) = (bias.clone(), bias.clone());
        plus[c] += h;
        minus[c] -= h;
        let jp = reference::loss(x.view(), &y, theta.view(), plus.view(), l2);
        let jm = reference::loss(x.view(), &y, theta.view(), minus.view(), l2);
        numeric.push((jp - jm) / (2.0 * h));
    }
    let analytic: Vec<f64> = gt.iter().chain(gb.iter()).copied().collect();
    assert_close(
        "analytic vs finite-difference gradient",
        &analytic,
        &numeric,
        1e-8,
        1e-6,
    );
}

/// The worst (loss, gradient) relative errors of the GPU oracle against the reference,
/// over both kernel variants.
fn check_oracle(
    data: &Dataset,
    chunk_rows: Option<usize>,
    theta_scale: f64,
    l2: f64,
    seed: u64,
) -> (f64, f64) {
    let (n, k) = (data.n_features(), data.n_classes());
    let theta = normal(n, k, theta_scale, seed);
    let bias = normal_vec(k, theta_scale, seed + 1);
    let want = CpuOracle::new(data)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), l2)
        .unwrap();
    let mut worst = (0.0f64, 0.0f64);
    for ctx in gpus() {
        let mut gpu_oracle = GpuOracle::new(ctx, data, chunk_rows).unwrap();
        if let Some(c) = chunk_rows {
            assert_eq!(gpu_oracle.chunk_plan().chunk_rows, c.min(data.n_rows()));
        }
        let got = gpu_oracle
            .loss_and_gradient(theta.view(), bias.view(), l2)
            .unwrap();
        let loss_rel = (got.loss - want.loss).abs() / want.loss.abs();
        let grad_rel = relative_error(&flat(&got), &flat(&want));
        eprintln!(
            "{}: loss relative error {loss_rel:.3e}, gradient relative error {grad_rel:.3e}",
            ctx.describe()
        );
        worst = (worst.0.max(loss_rel), worst.1.max(grad_rel));
    }
    worst
}

#[test]
fn gpu_oracle_matches_reference_over_three_chunks() {
    let data = clusters(1000, 37, 7, 1.0, 5);
    let (loss_rel, grad_rel) = check_oracle(&data, Some(333), 0.2, 1e-3, 6);
    assert!(data.n_rows().div_ceil(333) >= 3);
    assert!(loss_rel < 1e-6, "loss relative error {loss_rel:e}");
    assert!(grad_rel < 1e-5, "gradient relative error {grad_rel:e}");
}

#[test]
fn gpu_oracle_single_row_single_feature_two_classes() {
    let data = Dataset::new(Array2::from_elem((1, 1), 0.75f32), &[1], 2).unwrap();
    let (loss_rel, grad_rel) = check_oracle(&data, None, 1.0, 0.5, 7);
    assert!(
        loss_rel < 1e-6 && grad_rel < 1e-5,
        "loss {loss_rel:e}, gradient {grad_rel:e}"
    );
}

#[test]
fn gpu_oracle_thousand_classes() {
    let data = Dataset::new(normal(150, 45, 1.0, 8), &labels(150, 1000, 9), 1000).unwrap();
    let (loss_rel, grad_rel) = check_oracle(&data, Some(61), 0.1, 1e-4, 10);
    assert!(
        loss_rel < 1e-6 && grad_rel < 1e-5,
        "loss {loss_rel:e}, gradient {grad_rel:e}"
    );
}

#[test]
fn gpu_oracle_logits_near_1e4() {
    // Θ large enough that logits reach thousands: the row maximum keeps exp finite.
    let mut x = normal(200, 10, 1.0, 11);
    x.mapv_inplace(|v| v * 100.0);
    let data = Dataset::new(x, &labels(200, 5, 12), 5).unwrap();
    let (n, k) = (10, 5);
    let theta = normal(n, k, 10.0, 13);
    let bias = Array1::from_elem(k, 1e4f32);
    let got = GpuOracle::new(gpu(), &data, Some(64))
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), 0.0)
        .unwrap();
    let want = CpuOracle::new(&data)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), 0.0)
        .unwrap();
    assert!(
        got.loss.is_finite() && want.loss > 100.0,
        "loss {} / reference {}",
        got.loss,
        want.loss
    );
    assert!(
        (got.loss - want.loss).abs() / want.loss < 1e-5,
        "loss {} vs {}",
        got.loss,
        want.loss
    );
    assert!(relative_error(&flat(&got), &flat(&want)) < 1e-5);
}

#[test]
fn gpu_oracle_mnist_sized_random_theta() {
    // 60000 × 784 f32 is 188 MB, over lavapipe's 128 MiB binding limit: at least two chunks.
    let (m, n, k) = (60000, 784, 10);
    let data = Dataset::new(normal(m, n, 1.0, 20), &labels(m, k, 21), k).unwrap();
    let (loss_rel, grad_rel) = check_oracle(&data, None, 0.05, 1e-4, 22);
    eprintln!(
        "60000x784x10: loss relative error {loss_rel:.3e}, gradient relative error {grad_rel:.3e}"
    );
    assert!(loss_rel < 1e-6, "loss relative error {loss_rel:e}");
    assert!(grad_rel < 1e-5, "gradient relative error {grad_rel:e}");
}

#[test]
fn oracle_rejects_wrong_shapes_and_l2() {
    let data = clusters(10, 3, 2, 1.0, 30);
    let mut oracle = GpuOracle::new(gpu(), &data, None).unwrap();
    let theta = Array2::<f32>::zeros((4, 2));
    let bias = Array1::<f32>::zeros(2);
    assert!(matches!(
        oracle.loss_and_gradient(theta.view(), bias.view(), 0.0),
        Err(softmax_regression::Error::ShapeMismatch { .. })
    ));
    let theta = Array2::<f32>::zeros((3, 2));
    assert!(matches!(
        oracle.loss_and_gradient(theta.view(), bias.view(), -1.0),
        Err(softmax_regression::Error::InvalidSetting { .. })
    ));
    assert!(matches!(
        CpuOracle::new(&data)
            .unwrap()
            .loss_and_gradient(theta.view(), bias.view(), f64::NAN),
        Err(softmax_regression::Error::InvalidSetting { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gpu_oracle_matches_reference_on_small_shapes(
        m in 1usize..90, n in 1usize..40, k in 2usize..40, chunk in 1usize..50, seed in 0u64..1000,
    ) {
        let data = Dataset::new(normal(m, n, 1.0, seed), &labels(m, k, seed + 1), k).unwrap();
        let (loss_rel, grad_rel) = check_oracle(&data, Some(chunk), 0.3, 1e-3, seed + 2);
        prop_assert!(loss_rel < 1e-6, "loss relative error {:e}", loss_rel);
        prop_assert!(grad_rel < 1e-5, "gradient relative error {:e}", grad_rel);
    }
}

#[test]
fn the_kernel_profile_times_every_kernel() {
    for ctx in gpus() {
        let data = clusters(6000, 64, 10, 0.5, 8);
        let mut oracle = GpuOracle::new(ctx, &data, None).unwrap();
        let (theta, bias) = (normal(64, 10, 0.1, 1), normal_vec(10, 0.1, 2));
        let (times, stamped) = oracle.profile(theta.view(), bias.view(), 1e-4).unwrap();
        let names: Vec<&str> = times.iter().map(|t| t.0).collect();
        if ctx.describe().contains("fused") {
            assert_eq!(names, ["fused", "reduce", "finalize"]);
        } else {
            assert_eq!(
                names,
                ["logits", "softmax", "gradient", "reduce", "finalize"]
            );
        }
        assert!(
            times.iter().all(|t| t.1.is_finite() && t.1 >= 0.0),
            "{times:?}"
        );
        // The first kernel is a matrix product over 6000 × 64 × 10: measurable either way.
        assert!(times[0].1 > 0.0, "{times:?}");
        assert_eq!(stamped, ctx.has_timestamps());
        eprintln!(
            "{}: profile ({}): {times:?}",
            ctx.describe(),
            if stamped { "timestamps" } else { "wall clock" }
        );
    }
}

#[test]
fn a_timed_step_gives_the_same_bits_and_its_three_parts() {
    for ctx in gpus() {
        let data = clusters(6000, 64, 10, 0.5, 9);
        let mut oracle = GpuOracle::new(ctx, &data, None).unwrap();
        let (theta, bias) = (normal(64, 10, 0.1, 3), normal_vec(10, 0.1, 4));
        let plain = oracle
            .loss_and_gradient(theta.view(), bias.view(), 1e-3)
            .unwrap();
        let (timed, parts) = oracle.timed_step(theta.view(), bias.view(), 1e-3).unwrap();
        assert_eq!(timed.loss.to_bits(), plain.loss.to_bits());
        assert_eq!(flat(&timed), flat(&plain));
        let all = [parts.upload, parts.compute, parts.readback];
        assert!(all.iter().all(|t| t.is_finite() && *t >= 0.0), "{parts:?}");
        // The step runs a matrix product over 6000 × 64 × 10 and the readback maps a
        // buffer: both take measurable time.
        assert!(parts.compute > 0.0 && parts.readback > 0.0, "{parts:?}");
    }
}
