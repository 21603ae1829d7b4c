//! Sparse X (CSR): the CPU reference computes with the stored values only and agrees with
//! the dense computation; LIBSVM files load as sparse rows without expanding them; L-BFGS
//! on the CPU reaches the scikit-learn optima of ../shared/data/sparse/README.md from
//! text.svm.gz; a sparse dataset on the GPU (the sparse kernels, see tests/sparse_kernels.rs)
//! agrees with the dense dataset's results.

mod common;

use std::ops::ControlFlow;
use std::path::PathBuf;

use common::{assert_close, gpu, npy_member, npz};
use ndarray::{Array1, Array2};
use softmax_regression::data::Csr;
use softmax_regression::formats::{LoadOptions, RawLabels, load_sparse};
use softmax_regression::lbfgs::{LbfgsSettings, Status, minimize};
use softmax_regression::{
    AdapterRequest, CpuOracle, Dataset, Error, GpuContext, GpuOracle, LossGrad, Oracle, SplitMix64,
    Standardizer,
};

/// m × n with an empty row (1), an empty column (3), a row holding most values (2) and
/// about one value in eight elsewhere.
fn awkward(m: usize, n: usize, k: usize, seed: u64) -> (Array2<f32>, Vec<u32>) {
    let mut rng = SplitMix64::new(seed);
    let x = Array2::from_shape_fn((m, n), |(r, c)| {
        let keep = match r {
            1 => false,
            2 => c != 3,
            _ => c != 3 && rng.below(8) == 0,
        };
        if keep { rng.normal() as f32 } else { 0.0 }
    });
    let labels = (0..m).map(|_| rng.below(k) as u32).collect();
    (x, labels)
}

fn params(n: usize, k: usize, seed: u64) -> (Array2<f32>, Array1<f32>) {
    let mut rng = SplitMix64::new(seed);
    (
        Array2::from_shape_simple_fn((n, k), || (0.3 * rng.normal()) as f32),
        Array1::from_shape_simple_fn(k, || (0.1 * rng.normal()) as f32),
    )
}

fn flat(r: &LossGrad) -> Vec<f64> {
    let mut v = vec![r.loss];
    v.extend(r.theta.iter());
    v.extend(r.bias.iter());
    v
}

#[test]
fn the_cpu_oracle_on_sparse_x_matches_dense_x() {
    let (m, n, k) = (57, 23, 5);
    let (x, labels) = awkward(m, n, k, 11);
    let csr = Csr::from_dense(x.view()).unwrap();
    assert!(
        csr.nnz() < m * n / 4,
        "{} of {} values stored",
        csr.nnz(),
        m * n
    );
    let mut rng = SplitMix64::new(3);
    let weights: Vec<f32> = (0..m).map(|_| rng.below(4) as f32 * 0.5).collect();
    let dense = Dataset::new(x, &labels, k)
        .unwrap()
        .with_sample_weights(&weights)
        .unwrap();
    let sparse = Dataset::from_csr(csr, &labels, k)
        .unwrap()
        .with_sample_weights(&weights)
        .unwrap();
    let (theta, bias) = params(n, k, 5);
    for l2 in [0.0, 1e-2] {
        let want = CpuOracle::new(&dense)
            .unwrap()
            .loss_and_gradient(theta.view(), bias.view(), l2)
            .unwrap();
        let got = CpuOracle::new(&sparse)
            .unwrap()
            .loss_and_gradient(theta.view(), bias.view(), l2)
            .unwrap();
        assert_close("sparse oracle", &flat(&got), &flat(&want), 1e-13, 1e-12);
    }
    // Hold-out splits and metrics keep X sparse and agree with the dense ones.
    let (rest, held) = sparse.split(0.25, 7).unwrap();
    let (dense_rest, dense_held) = dense.split(0.25, 7).unwrap();
    assert!(rest.csr().is_some() && held.csr().is_some());
    assert_eq!(held.csr().unwrap().to_dense(), dense_held.x().unwrap());
    assert_eq!(rest.labels(), dense_rest.labels());
}

#[test]
fn a_sparse_dataset_on_the_gpu_gives_the_dense_results() {
    let (m, n, k) = (300, 40, 3);
    let (x, labels) = awkward(m, n, k, 21);
    let dense = Dataset::new(x.clone(), &labels, k).unwrap();
    let sparse = Dataset::from_csr(Csr::from_dense(x.view()).unwrap(), &labels, k).unwrap();
    let (theta, bias) = params(n, k, 8);
    let on = |data: &Dataset| {
        GpuOracle::new(gpu(), data, Some(64))
            .unwrap()
            .loss_and_gradient(theta.view(), bias.view(), 1e-3)
            .unwrap()
    };
    let (want, got) = (on(&dense), on(&sparse));
    assert_close(
        "sparse against dense kernels",
        &flat(&got),
        &flat(&want),
        1e-6,
        1e-5,
    );
    let cpu = CpuOracle::new(&sparse)
        .unwrap()
        .loss_and_gradient(theta.view(), bias.view(), 1e-3)
        .unwrap();
    assert_close("gpu against cpu", &flat(&got), &flat(&cpu), 1e-6, 1e-5);
}

#[test]
fn sparse_x_is_not_standardized() {
    let (x, labels) = awkward(20, 6, 2, 4);
    let data = Dataset::from_csr(Csr::from_dense(x.view()).unwrap(), &labels, 2).unwrap();
    let standardizer = Standardizer::fit(&data).unwrap();
    let refused = standardizer.apply(&data).unwrap_err();
    assert!(
        matches!(
            refused,
            Error::InvalidSetting {
                name: "standardize",
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("sparse X"), "{refused}");
}

/// The per-feature statistics behind the bad-scaling hint (computed when L-BFGS stops
/// short of convergence) come from the stored values of a sparse X, with the zeros
/// counted and never read, and equal the dense statistics.
#[test]
fn feature_statistics_of_sparse_x_count_the_zeros_without_reading_them() {
    use softmax_regression::standardize::FeatureStats;
    let (mut x, labels) = awkward(60, 9, 3, 17);
    // A feature stored in every row, with negative values, and one stored nowhere.
    for r in 0..60 {
        x[[r, 5]] = -1.5 - r as f32;
    }
    let sparse = Dataset::from_csr(Csr::from_dense(x.view()).unwrap(), &labels, 3).unwrap();
    let dense = Dataset::new(x, &labels, 3).unwrap();
    let (got, want) = (
        FeatureStats::of(&sparse).unwrap(),
        FeatureStats::of(&dense).unwrap(),
    );
    assert_eq!(
        (got.min.clone(), got.max.clone()),
        (want.min.clone(), want.max.clone())
    );
    assert_close("means", &got.mean, &want.mean, 1e-14, 1e-12);
    assert_close("variances", &got.variance, &want.variance, 1e-14, 1e-12);
    assert_eq!((got.min[3], got.max[3], got.variance[3]), (0.0, 0.0, 0.0));
}

fn shared(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/sparse")
        .join(name)
}

/// The text-like data of ../shared/data/sparse (40,000 × 30,000, 1,285,403 values,
/// K = 20) as sparse rows, from its LIBSVM copy or its SciPy `.npz` with `text-y.npy`.
fn text_data(file: &str) -> Dataset {
    let options = LoadOptions {
        labels: file.ends_with(".npz").then(|| shared("text-y.npy")),
        ..LoadOptions::default()
    };
    let loaded = load_sparse(&shared(file), &options).unwrap();
    assert_eq!(
        (loaded.x.n_rows, loaded.x.values.len()),
        (40_000, 1_285_403)
    );
    let Some(RawLabels::Ints(labels)) = loaded.labels else {
        panic!("{file} has integer labels");
    };
    let labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    Dataset::from_csr(Csr::try_from(loaded.x).unwrap(), &labels, 20).unwrap()
}

/// L-BFGS from zero on the text data of `file` through `oracle` converges to each
/// scikit-learn optimum of ../shared/data/sparse/README.md within 1e-6 relative.
fn reaches_the_scikit_learn_optima(file: &str, oracle: &mut dyn Oracle) {
    // (λ, J*) from ../shared/data/sparse/README.md (scikit-learn lbfgs, tol 1e-10).
    for (l2, optimum) in [(1e-4, 0.575904819722), (1e-5, 0.130306279981)] {
        let r = minimize(
            oracle,
            Array2::zeros((30_000, 20)),
            Array1::zeros(20),
            l2,
            &text_settings(),
            |_, _| ControlFlow::Continue(()),
        )
        .unwrap();
        let rel = (r.loss - optimum) / optimum;
        eprintln!(
            "{file} λ={l2:e}: J = {:.12}, J* = {optimum}, relative {rel:.2e}, {} after {} iterations",
            r.loss, r.status, r.iterations
        );
        assert_eq!(r.status, Status::Converged, "{file} λ={l2}");
        assert!(
            rel.abs() <= 1e-6,
            "{file} λ={l2}: J = {} vs J* = {optimum}",
            r.loss
        );
    }
}

fn text_settings() -> LbfgsSettings {
    LbfgsSettings {
        tol: 1e-7,
        max_iter: 2000,
        ..LbfgsSettings::default()
    }
}

#[test]
fn lbfgs_on_sparse_text_reaches_the_scikit_learn_optima_on_the_cpu() {
    for file in ["text.svm.gz", "text.npz"] {
        let data = text_data(file);
        assert_eq!(data.n_features(), 30_000);
        reaches_the_scikit_learn_optima(file, &mut CpuOracle::new(&data).unwrap());
    }
}

/// The same on the device, through the sparse kernels (CI runs it on both backends).
#[test]
fn lbfgs_on_sparse_text_reaches_the_scikit_learn_optima_on_the_gpu() {
    for file in ["text.svm.gz", "text.npz"] {
        let data = text_data(file);
        let mut oracle = GpuOracle::new(gpu(), &data, None).unwrap();
        reaches_the_scikit_learn_optima(file, &mut oracle);
    }
}

/// Streamed under a memory budget in more than four chunks, the text data ends with the
/// resident run's weights, bit for bit (same chunk boundaries, same sums).
#[test]
fn streamed_sparse_text_ends_with_the_resident_weights() {
    let data = text_data("text.npz");
    let chunk_rows = Some(5000);
    let context = |budget| {
        GpuContext::new(&AdapterRequest {
            memory_budget: budget,
            ..AdapterRequest::default()
        })
        .unwrap()
    };
    let fit = |oracle: &mut GpuOracle<'_>| {
        minimize(
            oracle,
            Array2::zeros((30_000, 20)),
            Array1::zeros(20),
            1e-4,
            &text_settings(),
            |_, _| ControlFlow::Continue(()),
        )
        .unwrap()
    };
    let roomy = context(None);
    let mut resident = GpuOracle::new(&roomy, &data, chunk_rows).unwrap();
    assert!(!resident.is_streamed());
    let peak = roomy.memory_peak();
    let want = fit(&mut resident);
    // A budget 8 MiB under what the resident X took: the chunks must take turns.
    let budget = peak - (8 << 20);
    let tight = context(Some(budget));
    let mut streamed = GpuOracle::new(&tight, &data, chunk_rows).unwrap();
    eprintln!(
        "resident peak {peak} bytes, budget {budget}, streamed peak {}",
        tight.memory_peak()
    );
    assert!(streamed.is_streamed(), "the text data fit {budget} bytes");
    assert_eq!(streamed.chunk_plan(), resident.chunk_plan());
    assert!(streamed.chunk_plan().chunks >= 4);
    let got = fit(&mut streamed);
    assert_eq!(got.iterations, want.iterations);
    assert_eq!(got.loss.to_bits(), want.loss.to_bits());
    let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&got.theta),
        bits(&want.theta),
        "streamed weights differ"
    );
    assert_eq!(
        got.bias.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        want.bias.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn train_keeps_a_libsvm_file_sparse() {
    let dir = common::scratch("sparse-train");
    let path = dir.join("wide.svm");
    let mut text = String::new();
    for r in 0..300usize {
        let class = r % 2;
        // Feature 1 tells the classes apart; four more spread over 300,000 columns.
        let mut cols: Vec<usize> = (1..5)
            .map(|j| 2 + (r * 7919 + j * 104_729) % 299_998)
            .collect();
        cols.sort_unstable();
        cols.dedup();
        text.push_str(&format!(
            "{class} 1:{}",
            if class == 1 { 1.0 } else { -1.0 }
        ));
        for c in cols {
            text.push_str(&format!(" {c}:0.5"));
        }
        if r == 299 {
            text.push_str(" 300000:1");
        }
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let model = dir.join("wide.safetensors");
    let o = common::run(&[
        "train",
        "--data",
        common::s(&path),
        "--backend",
        "cpu",
        "--out",
        common::s(&model),
    ]);
    let err = common::stderr(&o);
    assert!(o.status.success(), "{err}");
    let (m, _) = softmax_regression::Model::load(&model).unwrap();
    assert_eq!((m.n_features(), m.n_classes()), (300_000, 2));
    let dense = softmax_regression::formats::load(&path, &LoadOptions::default()).unwrap_err();
    assert!(dense.message.contains("largest feature index"), "{dense}");
    // predict and evaluate read the same file as sparse rows too.
    let predicted = common::run(&[
        "predict",
        "--model",
        common::s(&model),
        "--data",
        common::s(&path),
        "--backend",
        "cpu",
    ]);
    assert!(predicted.status.success(), "{}", common::stderr(&predicted));
    let classes: Vec<String> = String::from_utf8(predicted.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let want: Vec<String> = (0..300).map(|r| (r % 2).to_string()).collect();
    assert_eq!(classes, want, "feature 1 separates the classes");
    let evaluated = common::run(&[
        "evaluate",
        "--model",
        common::s(&model),
        "--data",
        common::s(&path),
        "--backend",
        "cpu",
    ]);
    let report = String::from_utf8_lossy(&evaluated.stdout).to_string();
    assert!(evaluated.status.success(), "{}", common::stderr(&evaluated));
    assert!(report.contains("accuracy    1.0000"), "{report}");
}

#[test]
fn sparse_rows_predict_as_the_dense_rows_on_both_engines() {
    let (m, n, k) = (150, 30, 4);
    let (x, labels) = awkward(m, n, k, 31);
    let csr = Csr::from_dense(x.view()).unwrap();
    let (theta, bias) = params(n, k, 2);
    let model = softmax_regression::Model::new(theta, bias).unwrap();
    for backend in [
        softmax_regression::Backend::Cpu,
        softmax_regression::Backend::Gpu(gpu()),
    ] {
        let dense = model.predict_proba(backend, x.view()).unwrap();
        let sparse = model.predict_proba_csr(backend, &csr).unwrap();
        let (d, s): (Vec<f64>, Vec<f64>) = (
            dense.iter().map(|&v| f64::from(v)).collect(),
            sparse.iter().map(|&v| f64::from(v)).collect(),
        );
        assert_close("sparse probabilities", &s, &d, 1e-7, 1e-6);
        assert_eq!(
            model.predict_csr(backend, &csr).unwrap(),
            model.predict(backend, x.view()).unwrap()
        );
        let data = Dataset::from_csr(csr.clone(), &labels, k).unwrap();
        let dense_data = Dataset::new(x.clone(), &labels, k).unwrap();
        let (a, b) = (
            model.evaluate(backend, &data).unwrap(),
            model.evaluate(backend, &dense_data).unwrap(),
        );
        assert_eq!(a.accuracy, b.accuracy);
        assert!((a.log_loss - b.log_loss).abs() < 1e-6);
    }
}

fn i32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn shape(m: i64, n: i64) -> Vec<u8> {
    npy_member("<i8", &[2], &[m.to_le_bytes(), n.to_le_bytes()].concat())
}

/// The same 3 × 4 matrix as CSR (one row's columns out of order, one column twice),
/// CSC and COO, stored and compressed: all read as the same sorted, summed CSR rows.
#[test]
fn scipy_npz_in_every_layout_reads_as_the_same_rows() {
    let dir = common::scratch("npz-layouts");
    // [[0, 2, 0, 1.5], [0, 0, 0, 0], [4, 0, -1, 0]]
    let want = (
        vec![0u64, 2, 2, 4],
        vec![1u32, 3, 0, 2],
        vec![2f32, 1.5, 4.0, -1.0],
    );
    let csr = [
        ("shape", shape(3, 4)),
        (
            "data",
            npy_member("<f4", &[5], &f32s(&[1.5, 1.5, 0.5, -1.0, 4.0])),
        ),
        ("indices", npy_member("<i4", &[5], &i32s(&[3, 1, 1, 2, 0]))),
        ("indptr", npy_member("<i4", &[4], &i32s(&[0, 3, 3, 5]))),
    ];
    let csc = [
        ("shape", shape(3, 4)),
        (
            "data",
            npy_member("<f4", &[4], &f32s(&[4.0, 2.0, -1.0, 1.5])),
        ),
        ("indices", npy_member("<i4", &[4], &i32s(&[2, 0, 2, 0]))),
        ("indptr", npy_member("<i4", &[5], &i32s(&[0, 1, 2, 3, 4]))),
    ];
    let coo = [
        ("shape", shape(3, 4)),
        (
            "data",
            npy_member(
                "<f8",
                &[4],
                &[-1f64, 2.0, 1.5, 4.0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
        ),
        ("row", npy_member("<i4", &[4], &i32s(&[2, 0, 0, 2]))),
        ("col", npy_member("<i4", &[4], &i32s(&[2, 1, 3, 0]))),
    ];
    for (layout, members) in [("csr", &csr[..]), ("csc", &csc[..]), ("coo", &coo[..])] {
        for deflate in [false, true] {
            let path = dir.join(format!("{layout}-{deflate}.npz"));
            npz(&path, layout, members, deflate);
            let x = load_sparse(&path, &LoadOptions::default()).unwrap().x;
            assert_eq!((x.n_rows, x.n_cols), (3, 4), "{layout}");
            assert_eq!(
                (x.indptr.to_vec(), x.indices.to_vec(), x.values.to_vec()),
                want.clone(),
                "{layout} {deflate}"
            );
        }
    }
}

#[test]
fn bad_npz_files_are_refused_naming_the_file_and_the_fault() {
    let dir = common::scratch("npz-bad");
    let base = |indptr: &[i32], indices: &[i32], data: &[f32]| {
        vec![
            ("shape", shape(2, 3)),
            ("data", npy_member("<f4", &[data.len()], &f32s(data))),
            (
                "indices",
                npy_member("<i4", &[indices.len()], &i32s(indices)),
            ),
            ("indptr", npy_member("<i4", &[indptr.len()], &i32s(indptr))),
        ]
    };
    type Members = Vec<(&'static str, Vec<u8>)>;
    let cases: Vec<(&str, &str, Members, &str)> = vec![
        (
            "decreasing",
            "csr",
            base(&[0, 2, 1], &[0, 1], &[1.0, 1.0]),
            "indptr.npy decreases at entry 3",
        ),
        (
            "short",
            "csr",
            base(&[0, 1, 1], &[0, 1], &[1.0, 1.0]),
            "indptr.npy ends at 1 but data.npy holds 2 values",
        ),
        (
            "nnz",
            "csr",
            base(&[0, 1, 2], &[0], &[1.0, 1.0]),
            "indices.npy holds 1 entries but data.npy holds 2",
        ),
        (
            "beyond",
            "csr",
            base(&[0, 1, 1], &[3], &[1.0]),
            "indices.npy entry 1 is 3, not a column from 0 to 2",
        ),
        (
            "nan",
            "csr",
            base(&[0, 0, 1], &[2], &[f32::NAN]),
            "row 2, column 3: value NaN is not finite",
        ),
        (
            "bsr",
            "bsr",
            base(&[0, 0, 1], &[2], &[1.0]),
            "format \"bsr\"",
        ),
    ];
    for (name, layout, members, message) in cases {
        let path = dir.join(format!("{name}.npz"));
        npz(&path, layout, &members, false);
        let err = load_sparse(&path, &LoadOptions::default())
            .unwrap_err()
            .message;
        assert!(
            err.starts_with(&path.display().to_string()),
            "{name}: {err}"
        );
        assert!(err.contains(message), "{name}: {err}");
        assert!(!err.contains('\n'), "{name}: {err}");
    }
    let not_zip = dir.join("text.npz");
    std::fs::write(&not_zip, "1 1:1\n").unwrap();
    let err = load_sparse(&not_zip, &LoadOptions::default())
        .unwrap_err()
        .message;
    assert!(err.contains("is not an .npz archive"), "{err}");
}

/// The shared text data from its `.npz` and its labels `.npy`: the same rows as the
/// LIBSVM copy, and L-BFGS reaches the same optima.
#[test]
fn the_npz_copy_of_the_text_data_is_the_libsvm_copy() {
    let options = LoadOptions {
        labels: Some(shared("text-y.npy")),
        ..LoadOptions::default()
    };
    let from_npz = load_sparse(&shared("text.npz"), &options).unwrap();
    let from_svm = load_sparse(&shared("text.svm.gz"), &LoadOptions::default()).unwrap();
    assert_eq!(from_npz.labels, from_svm.labels);
    let (a, b) = (&from_npz.x, &from_svm.x);
    assert_eq!((a.n_rows, a.n_cols), (b.n_rows, b.n_cols));
    assert_eq!((&a.indptr, &a.indices), (&b.indptr, &b.indices));
    let worst = a
        .values
        .iter()
        .zip(&b.values)
        .map(|(x, y)| ((x - y) / y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "values differ by {worst} relative");
}

/// Files written by scipy.sparse.save_npz itself (tests/fuzz_corpus/npz/seed-scipy-*: one
/// 12 × 9 float32 matrix as compressed CSR, uncompressed CSC, COO, and CSR of float64
/// values with int64 indices) all read as the same rows.
#[test]
fn files_written_by_scipy_read_as_the_same_rows() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/npz");
    let read = |name: &str| {
        load_sparse(
            &corpus.join(format!("seed-scipy-{name}.npz")),
            &LoadOptions::default(),
        )
        .unwrap()
        .x
    };
    let csr = read("csr");
    assert_eq!((csr.n_rows, csr.n_cols), (12, 9));
    assert!(!csr.values.is_empty());
    for other in ["csc-uncompressed", "coo", "csr-f64-i64"] {
        assert_eq!(read(other), csr, "{other}");
    }
}

/// A dataset as wide as column indices reach (2³² features, two stored values) is cheap
/// to hold sparse, but its model is not: training refuses it before allocating anything.
#[test]
fn a_model_too_large_for_memory_is_refused_before_training() {
    let n = 1usize << 32;
    let csr = Csr::new(2, n, vec![0, 1, 2], vec![0, u32::MAX], vec![1.0, 1.0]).unwrap();
    let data = Dataset::from_csr(csr, &[0, 1], 2).unwrap();
    let refused = softmax_regression::Trainer::new(softmax_regression::Settings::default())
        .unwrap()
        .fit(softmax_regression::Backend::Cpu, &data, None, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::ModelTooLarge {
                n: 4294967296,
                k: 2,
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("4294967296 features"),
        "{refused}"
    );
}
