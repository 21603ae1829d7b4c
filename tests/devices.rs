//! Several devices in one process: lavapipe (Vulkan) and llvmpipe (GL) at once, X's rows
//! split between them. L-BFGS reaches the digits optima of ../shared/data; on a 200,000 ×
//! 256 × 10 problem it ends within 1e-6 of the single-device fit in the same number of
//! iterations ± 2; repeated runs are bit-identical; gd on both devices follows gd on one.
//! The summing oracle adds its parts' partials in order (checked on the CPU reference).
//! These tests need both software adapters; a missing one fails them.

mod common;

use std::ops::ControlFlow;
use std::sync::OnceLock;

use common::digits;
use softmax_regression::{
    AdapterRequest, Backend, CpuOracle, Dataset, Fit, GpuContext, Optimizer, Oracle, Settings,
    Status, SumOracle, Trainer,
};

/// lavapipe through Vulkan, then llvmpipe through GL.
fn two_devices() -> &'static [GpuContext] {
    static BOTH: OnceLock<Vec<GpuContext>> = OnceLock::new();
    BOTH.get_or_init(|| {
        ["vulkan", "gl"]
            .iter()
            .map(|b| {
                GpuContext::new(&AdapterRequest::backend(b).unwrap())
                    .unwrap_or_else(|e| panic!("the {b} adapter is needed: {e}"))
            })
            .collect()
    })
}

fn lbfgs(l2: f64, tol: f64) -> Trainer {
    Trainer::new(Settings {
        optimizer: Optimizer::Lbfgs,
        epochs: 1000,
        tol,
        l2,
        ..Settings::default()
    })
    .unwrap()
}

use common::{final_loss as loss, fit};

#[test]
fn two_devices_reach_the_digits_optima() {
    let data = digits();
    let optima = [
        (1e-2, 0.738514081875),
        (1e-3, 0.261864547218),
        (1e-4, 0.087345742989),
    ];
    for (l2, optimum) in optima {
        let f = fit(&lbfgs(l2, 1e-6), Backend::Devices(two_devices()), &data);
        let rel = (loss(&f) - optimum) / optimum;
        eprintln!(
            "two devices, λ = {l2:e}: J = {:.12}, relative {rel:.2e}, {} iterations",
            loss(&f),
            f.history.len()
        );
        assert_eq!(f.status, Status::Converged);
        assert!(rel.abs() <= 1e-6, "λ = {l2}: relative {rel:e}");
    }
}

/// Gaussian clusters of 200,000 rows, 256 features, 10 classes.
fn large() -> Dataset {
    common::clusters(200_000, 256, 10, 0.4, 11)
}

#[test]
fn two_devices_end_where_one_ends_and_repeat_bit_for_bit() {
    let data = large();
    let trainer = lbfgs(1e-4, 1e-5);
    let one = fit(&trainer, Backend::Gpu(&two_devices()[0]), &data);
    let two = fit(&trainer, Backend::Devices(two_devices()), &data);
    let again = fit(&trainer, Backend::Devices(two_devices()), &data);
    let (j1, j2) = (loss(&one), loss(&two));
    eprintln!(
        "one device: J = {j1:.12} after {} iterations; two: J = {j2:.12} after {}",
        one.history.len(),
        two.history.len()
    );
    assert_eq!(one.status, Status::Converged);
    assert_eq!(two.status, Status::Converged);
    assert!(
        ((j1 - j2) / j1).abs() <= 1e-6,
        "J {j1} on one device, {j2} on two"
    );
    assert!(one.history.len().abs_diff(two.history.len()) <= 2);
    assert_eq!(
        common::weight_bits(&two),
        common::weight_bits(&again),
        "repeated runs differ"
    );
    let losses = |f: &Fit| {
        f.history
            .iter()
            .map(|r| r.loss.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&two), losses(&again));
}

#[test]
fn gd_on_two_devices_follows_gd_on_one() {
    let data = digits();
    let trainer = Trainer::new(Settings {
        optimizer: Optimizer::Gd,
        learning_rate: 0.5,
        epochs: 20,
        tol: 0.0,
        l2: 1e-3,
        ..Settings::default()
    })
    .unwrap();
    let one = fit(&trainer, Backend::Gpu(&two_devices()[0]), &data);
    let two = fit(&trainer, Backend::Devices(two_devices()), &data);
    let again = fit(&trainer, Backend::Devices(two_devices()), &data);
    assert_eq!(common::weight_bits(&two), common::weight_bits(&again));
    for (a, b) in one.history.iter().zip(&two.history) {
        assert!(
            ((a.loss - b.loss) / a.loss).abs() <= 1e-5,
            "epoch {}: {} vs {}",
            a.epoch,
            a.loss,
            b.loss
        );
    }
    assert!(loss(&two) < two.history[0].loss);
}

#[test]
fn several_devices_refuse_mini_batches() {
    let trainer = Trainer::new(Settings {
        optimizer: Optimizer::Adam,
        batch_size: Some(32),
        learning_rate: 0.01,
        epochs: 2,
        ..Settings::default()
    })
    .unwrap();
    let err = trainer
        .fit(
            Backend::Devices(two_devices()),
            &digits(),
            None,
            None,
            |_| ControlFlow::Continue(()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("full batches"), "{err}");
}

/// The sum of three CPU oracles over consecutive rows equals the CPU oracle over all of
/// them (to rounding), at several λ.
#[test]
fn the_sum_of_parts_is_the_whole() {
    let data = digits();
    let (m, n, k) = (data.n_rows(), data.n_features(), data.n_classes());
    let ranges = softmax_regression::train::even_row_ranges(m, 3);
    assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), m);
    let parts: Vec<Box<dyn Oracle + Send>> = ranges
        .iter()
        .map(|r| {
            let rows: Vec<usize> = r.clone().collect();
            Box::new(CpuOracle::new(&data.select_rows(&rows).unwrap()).unwrap())
                as Box<dyn Oracle + Send>
        })
        .collect();
    let mut sum = SumOracle::new(parts).unwrap();
    assert_eq!(sum.shape(), (m, n, k));
    let mut whole = CpuOracle::new(&data).unwrap();
    let theta = common::normal(n, k, 0.1, 3);
    let bias = common::normal_vec(k, 0.1, 4);
    for l2 in [0.0, 1e-3] {
        let a = sum
            .loss_and_gradient(theta.view(), bias.view(), l2)
            .unwrap();
        let b = whole
            .loss_and_gradient(theta.view(), bias.view(), l2)
            .unwrap();
        assert!(
            ((a.loss - b.loss) / b.loss).abs() < 1e-12,
            "{} vs {}",
            a.loss,
            b.loss
        );
        let flat = |g: &softmax_regression::LossGrad| {
            g.theta
                .iter()
                .chain(g.bias.iter())
                .copied()
                .collect::<Vec<f64>>()
        };
        common::assert_close("∇J", &flat(&a), &flat(&b), 1e-12, 1e-10);
    }
}

/// Each device under a memory budget smaller than its share of X streams its share, and
/// the two devices still reach what they reach without budgets.
#[test]
fn two_devices_stream_their_shares_under_a_budget() {
    let data = common::clusters(20_000, 256, 10, 0.5, 8);
    let budget = 4u64 << 20;
    let open = |backend: &str, memory_budget: Option<u64>| {
        GpuContext::new(&AdapterRequest {
            memory_budget,
            ..AdapterRequest::backend(backend).unwrap()
        })
        .unwrap()
    };
    let tight = [open("vulkan", Some(budget)), open("gl", Some(budget))];
    let trainer = lbfgs(1e-3, 1e-5);
    let free = fit(&trainer, Backend::Devices(two_devices()), &data);
    let streamed = fit(&trainer, Backend::Devices(&tight), &data);
    // Each share of X is 10,000 × 256 × 4 bytes, 9.8 MiB: more than the budget holds.
    for ctx in &tight {
        assert!(
            ctx.memory_peak() > 0 && ctx.memory_peak() <= budget,
            "peak {}",
            ctx.memory_peak()
        );
    }
    let (a, b) = (loss(&free), loss(&streamed));
    assert_eq!(streamed.status, Status::Converged);
    assert!(
        ((a - b) / a).abs() <= 1e-6,
        "J {a} without budgets, {b} under them"
    );
}
