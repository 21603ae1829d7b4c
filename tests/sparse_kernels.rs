//! The sparse kernels (shaders/sparse_pieces.wgsl, sparse_segments.wgsl) against the f64
//! CPU reference on awkward shapes: empty rows and columns, one row holding most values, a
//! feature in every row, 2,000,000 features, 1000 classes, more than three chunks with a
//! boundary beside a skewed row; gradient relative error < 1e-5, loss < 1e-6. Also:
//! repeated passes are bit-identical, a sparse X streamed under a memory budget gives the
//! resident result bit for bit, and the forward pass (prediction) matches the reference.
//! CI runs this file once per software backend (WGPU_BACKEND=vulkan, then gl).

mod common;

use common::{gpus, normal, normal_vec};
use ndarray::{Array1, Array2};
use softmax_regression::data::Csr;
use softmax_regression::{
    AdapterRequest, Backend, CpuOracle, Dataset, GpuContext, GpuOracle, LossGrad, Model, Oracle,
    SplitMix64,
};

/// Rows of (column, value) entries with the row lengths `len(r)`: columns drawn uniformly
/// from 1..n (column 0 is in every row, the last column in none), values in [0.1, 1.1).
fn sparse(m: usize, n: usize, len: impl Fn(usize) -> usize, seed: u64) -> Csr {
    let mut rng = SplitMix64::new(seed);
    let mut entries = Vec::new();
    for r in 0..m {
        entries.push((r, 0u32, 0.5 + rng.next_f64() as f32));
        for _ in 0..len(r) {
            let c = 1 + rng.below(n - 2) as u32;
            entries.push((r, c, 0.1 + rng.next_f64() as f32));
        }
    }
    Csr::from_entries(m, n, entries).unwrap()
}

fn labelled(csr: Csr, k: usize, seed: u64) -> Dataset {
    let mut rng = SplitMix64::new(seed);
    let labels: Vec<u32> = (0..csr.n_rows()).map(|_| rng.below(k) as u32).collect();
    Dataset::from_csr(csr, &labels, k).unwrap()
}

fn flat(r: &LossGrad) -> Vec<f64> {
    r.theta.iter().chain(r.bias.iter()).copied().collect()
}

fn relative_error(got: &[f64], want: &[f64]) -> f64 {
    let diff: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let norm: f64 = want.iter().map(|b| b * b).sum();
    (diff / norm).sqrt()
}

/// Checks the GPU oracle (every kernel variant) against the reference with `chunk_rows`
/// rows per chunk, at least `min_chunks` chunks, and that a second pass repeats the first
/// bit for bit.
fn check(data: &Dataset, chunk_rows: usize, min_chunks: usize, seed: u64) {
    let (n, k) = (data.n_features(), data.n_classes());
    let theta = normal(n, k, 0.3, seed);
    let bias = normal_vec(k, 0.3, seed + 1);
    let l2 = 1e-3;
    let want = CpuOracle::new(data)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), l2)
        .unwrap();
    for ctx in gpus() {
        let mut oracle = GpuOracle::new(ctx, data, Some(chunk_rows)).unwrap();
        let plan = oracle.chunk_plan();
        assert!(plan.chunks >= min_chunks, "{plan:?}");
        let got = oracle
            .loss_and_gradient(theta.view(), bias.view(), l2)
            .unwrap();
        let loss_rel = (got.loss - want.loss).abs() / want.loss.abs();
        let grad_rel = relative_error(&flat(&got), &flat(&want));
        eprintln!(
            "{} ({plan:?}): loss {loss_rel:.2e}, gradient {grad_rel:.2e}",
            ctx.describe()
        );
        assert!(loss_rel < 1e-6, "loss relative error {loss_rel:e}");
        assert!(grad_rel < 1e-5, "gradient relative error {grad_rel:e}");
        let again = oracle
            .loss_and_gradient(theta.view(), bias.view(), l2)
            .unwrap();
        assert_eq!(again.loss.to_bits(), got.loss.to_bits());
        assert_eq!(flat(&again), flat(&got), "a second pass differs");
    }
}

#[test]
fn empty_rows_empty_columns_and_a_skewed_row_at_a_chunk_boundary() {
    // Rows 290 and 291 hold every column and sit either side of the boundary of chunks
    // of 97 rows; every 7th row is empty but for column 0, and column n − 1 is empty.
    let (m, n) = (700, 300);
    let csr = sparse(
        m,
        n,
        |r| match r {
            290 | 291 => 2000,
            r if r % 7 == 0 => 0,
            r => r % 5,
        },
        1,
    );
    assert!(csr.row(290).0.len() > n / 2);
    check(&labelled(csr, 7, 2), 97, 4, 3);
}

#[test]
fn one_row_holds_most_values() {
    // About 11,000 values in one row among rows of four: the row is cut into pieces.
    let (m, n) = (2000, 12_000);
    let csr = sparse(m, n, |r| if r == 1000 { 30_000 } else { 3 }, 4);
    let big = csr.row(1000).0.len();
    assert!(big > csr.nnz() / 2, "{big} of {}", csr.nnz());
    check(&labelled(csr, 3, 5), 300, 4, 6);
}

#[test]
fn two_million_features_two_classes() {
    let (m, n) = (3000, 2_000_000);
    let csr = sparse(m, n, |_| 20, 7);
    check(&labelled(csr, 2, 8), 700, 4, 9);
}

#[test]
fn a_thousand_classes() {
    let (m, n) = (400, 500);
    let csr = sparse(m, n, |r| 3 + r % 17, 10);
    check(&labelled(csr, 1000, 11), 90, 4, 12);
}

#[test]
fn sample_weights_and_a_single_chunk() {
    let (m, n, k) = (333, 64, 5);
    let mut rng = SplitMix64::new(13);
    let weights: Vec<f32> = (0..m).map(|_| rng.below(4) as f32 * 0.5).collect();
    let data = labelled(sparse(m, n, |r| r % 9, 14), k, 15)
        .with_sample_weights(&weights)
        .unwrap();
    check(&data, m, 1, 16);
}

#[test]
fn streamed_sparse_x_equals_resident_bit_for_bit() {
    let (m, n, k) = (12_000, 5000, 4);
    let data = labelled(sparse(m, n, |r| 10 + r % 30, 17), k, 18);
    let (theta, bias) = (normal(n, k, 0.2, 19), normal_vec(k, 0.2, 20));
    let context = |budget| {
        GpuContext::new(&AdapterRequest {
            memory_budget: budget,
            ..AdapterRequest::default()
        })
        .unwrap_or_else(|e| panic!("no GPU adapter: {e}"))
    };
    let chunk_rows = 1000;
    let roomy = context(None);
    let mut resident = GpuOracle::new(&roomy, &data, Some(chunk_rows)).unwrap();
    assert!(!resident.is_streamed());
    let want = resident
        .loss_and_gradient(theta.view(), bias.view(), 1e-3)
        .unwrap();
    // About 5 MB of chunk arrays on the device: a budget of 3 MiB streams them.
    let tight = context(Some(3 << 20));
    let mut streamed = GpuOracle::new(&tight, &data, Some(chunk_rows)).unwrap();
    assert!(streamed.is_streamed(), "the sparse X fit the budget?");
    assert_eq!(streamed.chunk_plan(), resident.chunk_plan());
    assert!(streamed.chunk_plan().chunks >= 4);
    let got = streamed
        .loss_and_gradient(theta.view(), bias.view(), 1e-3)
        .unwrap();
    assert_eq!(got.loss.to_bits(), want.loss.to_bits());
    assert_eq!(flat(&got), flat(&want));
    let cpu = CpuOracle::new(&data)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), 1e-3)
        .unwrap();
    assert!(relative_error(&flat(&got), &flat(&cpu)) < 1e-5);
}

#[test]
fn the_forward_pass_matches_the_reference() {
    let (m, n, k) = (900, 4000, 6);
    let csr = sparse(m, n, |r| if r == 450 { 3000 } else { r % 13 }, 21);
    let mut rng = SplitMix64::new(22);
    let model = Model::new(
        Array2::from_shape_simple_fn((n, k), || 0.3 * rng.normal() as f32),
        Array1::from_shape_simple_fn(k, || 0.2 * rng.normal() as f32),
    )
    .unwrap();
    let want = model.predict_proba_csr(Backend::Cpu, &csr).unwrap();
    for ctx in gpus() {
        let got = model.predict_proba_csr(Backend::Gpu(ctx), &csr).unwrap();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-5,
            "{}: worst probability error {worst:e}",
            ctx.describe()
        );
    }
}

/// Mini-batches of a sparse X are gathered on the host and run through the sparse
/// kernels: every optimizer agrees with the CPU engine on the same batches, a skewed row
/// and sample weights included, and a second run repeats the first bit for bit.
#[test]
fn sparse_mini_batches_agree_with_the_cpu_engine() {
    use softmax_regression::{Fit, Optimizer, Settings, Trainer};
    use std::ops::ControlFlow;
    let (m, n, k) = (500, 700, 4);
    let mut rng = SplitMix64::new(30);
    let weights: Vec<f32> = (0..m).map(|_| 0.5 + rng.below(3) as f32 * 0.5).collect();
    let data = labelled(
        sparse(m, n, |r| if r == 123 { 900 } else { 2 + r % 11 }, 31),
        k,
        32,
    )
    .with_sample_weights(&weights)
    .unwrap();
    let fit = |backend: Backend<'_>, settings: &Settings| -> Fit {
        Trainer::new(settings.clone())
            .unwrap()
            .fit(backend, &data, None, None, |_| ControlFlow::Continue(()))
            .unwrap()
    };
    let params = |f: &Fit| -> Vec<f32> {
        f.model
            .theta()
            .iter()
            .chain(f.model.bias().iter())
            .copied()
            .collect()
    };
    for optimizer in [Optimizer::Sgd, Optimizer::Momentum, Optimizer::Adam] {
        let settings = Settings {
            epochs: 3,
            learning_rate: 0.05,
            optimizer,
            batch_size: Some(37),
            chunk_rows: Some(200),
            seed: 9,
            ..Settings::default()
        };
        let want = params(&fit(Backend::Cpu, &settings));
        for ctx in gpus() {
            let got = params(&fit(Backend::Gpu(ctx), &settings));
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() / (1e-3 + b.abs()))
                .fold(0f32, f32::max);
            assert!(worst < 1e-3, "{optimizer} on {}: {worst:e}", ctx.describe());
            let again = params(&fit(Backend::Gpu(ctx), &settings));
            assert!(
                again
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{optimizer}: a second run differs"
            );
        }
    }
}
