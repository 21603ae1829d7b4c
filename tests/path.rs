//! Regularisation paths and choosing the strength: on the digits data of ../shared/data
//! (features / 16, all 1797 rows) a path over the three λ with reference optima ends each
//! model within 1e-6 of its J*, on the GPU and the CPU; each model of a path equals its
//! single fit; warm starts reach the same optima; cross-validation with explicit folds
//! agrees with scikit-learn's LogisticRegressionCV (an ignored test CI runs where Python
//! has scikit-learn).

mod common;

use std::ops::ControlFlow;

use common::{digits, gpu};
use softmax_regression::{
    Backend, Choice, Dataset, Folds, Optimizer, Score, Settings, Status, Strength, Trainer,
};

/// (λ, J*) from scikit-learn's newton-cholesky fit (../shared/data/README.md).
const OPTIMA: [(f64, f64); 3] = [
    (1e-2, 0.738514081875),
    (1e-3, 0.261864547218),
    (1e-4, 0.087345742989),
];

fn trainer(tol: f64) -> Trainer {
    Trainer::new(Settings {
        optimizer: Optimizer::Lbfgs,
        epochs: 1000,
        tol,
        ..Settings::default()
    })
    .unwrap()
}

fn path_reaches_optima(backend: Backend<'_>, name: &str, warm_start: bool) {
    let data = digits();
    let l2s: Vec<f64> = OPTIMA.iter().map(|o| o.0).collect();
    let mut iterations = vec![0usize; l2s.len()];
    let path = trainer(1e-6)
        .fit_path(backend, &data, &l2s, warm_start, |s, r| {
            iterations[s] = r.epoch;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(path.len(), OPTIMA.len());
    for (fitted, (l2, optimum)) in path.iter().zip(OPTIMA) {
        let rel = (fitted.loss - optimum) / optimum;
        eprintln!(
            "{name} warm={warm_start} λ={l2:e}: J = {:.12}, relative {rel:.2e}, {} after {} iterations, {} evaluations",
            fitted.loss, fitted.status, fitted.iterations, fitted.evaluations
        );
        assert_eq!(fitted.l2, l2);
        assert_eq!(fitted.status, Status::Converged, "{name} λ={l2}");
        assert!(rel.abs() <= 1e-6, "{name} λ={l2}: relative {rel:e}");
    }
    let reported: Vec<usize> = path.iter().map(|p| p.iterations).collect();
    assert_eq!(iterations, reported, "the callback saw every iteration");
}

#[test]
fn a_path_reaches_the_digits_optima_on_the_gpu() {
    path_reaches_optima(Backend::Gpu(gpu()), "gpu", false);
}

#[test]
fn a_path_reaches_the_digits_optima_on_the_cpu() {
    path_reaches_optima(Backend::Cpu, "cpu", false);
}

#[test]
fn a_warm_started_path_reaches_the_same_optima() {
    path_reaches_optima(Backend::Gpu(gpu()), "gpu", true);
}

/// Each model of a path ends where the single fit at its λ ends: J to 1e-6.
#[test]
fn each_model_of_a_path_equals_its_single_fit() {
    let data = digits();
    let backend = Backend::Gpu(gpu());
    let l2s = [3e-3, 3e-4];
    let path = trainer(1e-6)
        .fit_path(
            backend,
            &data,
            &l2s,
            false,
            |_, _| ControlFlow::Continue(()),
        )
        .unwrap();
    for (fitted, &l2) in path.iter().zip(&l2s) {
        let single = Trainer::new(Settings {
            optimizer: Optimizer::Lbfgs,
            epochs: 1000,
            tol: 1e-6,
            l2,
            ..Settings::default()
        })
        .unwrap()
        .fit(backend, &data, None, None, |_| ControlFlow::Continue(()))
        .unwrap();
        let last = single.history.last().unwrap();
        // On the GPU the path's products have models·K columns, which may add in another
        // order than K columns do: near the optimum the two runs take different steps,
        // so only J and the status are compared.
        eprintln!(
            "λ = {l2}: {} iterations in the path, {} alone",
            fitted.iterations,
            single.history.len()
        );
        assert!(
            ((fitted.loss - last.loss) / last.loss).abs() <= 1e-6,
            "λ = {l2}: path J = {}, single J = {}",
            fitted.loss,
            last.loss
        );
        assert_eq!(fitted.status, single.status);
    }
}

/// `count` random (Θ, b, λ) of an (n, K) problem, λ = 1e-1, 1e-2, ….
fn random_params(
    rng: &mut softmax_regression::SplitMix64,
    (n, k): (usize, usize),
    count: i32,
) -> Vec<(ndarray::Array2<f32>, ndarray::Array1<f32>, f64)> {
    (0..count)
        .map(|s| {
            let theta = ndarray::Array2::from_shape_fn((n, k), |_| rng.next_f64() as f32 - 0.5);
            let bias = ndarray::Array1::from_shape_fn(k, |_| rng.next_f64() as f32 - 0.5);
            (theta, bias, 10f64.powi(-s - 1))
        })
        .collect()
}

/// The oracle's points for `params`.
fn points_of(
    params: &[(ndarray::Array2<f32>, ndarray::Array1<f32>, f64)],
) -> Vec<softmax_regression::PointAt<'_>> {
    params
        .iter()
        .map(|(theta, bias, l2)| softmax_regression::PointAt {
            theta: theta.view(),
            bias: bias.view(),
            l2: *l2,
        })
        .collect()
}

/// ∇_Θ J then ∇_b J as one vector.
fn flat(g: &softmax_regression::LossGrad) -> Vec<f64> {
    g.theta.iter().chain(g.bias.iter()).copied().collect()
}

/// The CPU oracle answers a batch of points in one pass over X with what it gives for
/// each point alone, for dense and for sparse X.
#[test]
fn the_cpu_oracle_evaluates_a_batch_as_its_points() {
    use ndarray::Array2;
    use softmax_regression::{CpuOracle, Oracle, SplitMix64};
    let dense = digits();
    let mut rng = SplitMix64::new(4);
    let mut sparse_x = Array2::<f32>::zeros((300, 40));
    for v in sparse_x.iter_mut() {
        if rng.next_f64() < 0.1 {
            *v = rng.next_f64() as f32;
        }
    }
    let labels: Vec<u32> = (0..300).map(|i| (i % 4) as u32).collect();
    let csr = softmax_regression::data::Csr::from_dense(sparse_x.view()).unwrap();
    let sparse = Dataset::from_csr(csr, &labels, 4).unwrap();
    for data in [dense, sparse] {
        let (n, k) = (data.n_features(), data.n_classes());
        let params = random_params(&mut rng, (n, k), 3);
        let points = points_of(&params);
        let mut oracle = CpuOracle::new(&data).unwrap();
        let batch = oracle.losses_and_gradients(&points).unwrap();
        assert_eq!(batch.len(), 3);
        for (p, got) in points.iter().zip(&batch) {
            let want = oracle.loss_and_gradient(p.theta, p.bias, p.l2).unwrap();
            assert!((got.loss - want.loss).abs() <= 1e-13 * want.loss.abs());
            common::assert_close("batched gradient", &flat(got), &flat(&want), 1e-15, 1e-12);
        }
    }
}

/// A GPU oracle of several models evaluates a batch in one pass over X and gives each
/// point what a one-model oracle gives it: dense and sparse X, resident and cut into
/// several chunks, with a batch smaller than its models (empty slots) and larger (taken
/// in groups).
#[test]
fn the_gpu_oracle_evaluates_a_batch_of_models_as_its_points() {
    use ndarray::Array2;
    use softmax_regression::{GpuOracle, Oracle, SplitMix64};
    let mut rng = SplitMix64::new(8);
    let dense = digits()
        .with_sample_weights(
            &(0..1797)
                .map(|i| 0.5 + (i % 3) as f32 * 0.25)
                .collect::<Vec<f32>>(),
        )
        .unwrap();
    let mut sparse_x = Array2::<f32>::zeros((700, 90));
    for v in sparse_x.iter_mut() {
        if rng.next_f64() < 0.08 {
            *v = rng.next_f64() as f32 * 2.0;
        }
    }
    let labels: Vec<u32> = (0..700).map(|i| (i * 7 % 5) as u32).collect();
    let csr = softmax_regression::data::Csr::from_dense(sparse_x.view()).unwrap();
    let sparse = Dataset::from_csr(csr, &labels, 5).unwrap();
    for (name, data) in [("dense", dense), ("sparse", sparse)] {
        let (n, k) = (data.n_features(), data.n_classes());
        let params = random_params(&mut rng, (n, k), 5);
        let points = points_of(&params);
        let mut single = GpuOracle::new(gpu(), &data, None).unwrap();
        let want: Vec<_> = points
            .iter()
            .map(|p| single.loss_and_gradient(p.theta, p.bias, p.l2).unwrap())
            .collect();
        for (models, chunk_rows) in [(3, None), (3, Some(250)), (8, Some(600))] {
            let mut batched = GpuOracle::with_models(gpu(), &data, chunk_rows, models).unwrap();
            assert_eq!(batched.shape(), single.shape());
            let got = batched.losses_and_gradients(&points).unwrap();
            assert_eq!(got.len(), points.len());
            for (s, (got, want)) in got.iter().zip(&want).enumerate() {
                let what = format!("{name}, {models} models, chunks of {chunk_rows:?}, point {s}");
                let rel = (got.loss - want.loss).abs() / want.loss.abs();
                assert!(rel <= 1e-6, "{what}: J {} against {}", got.loss, want.loss);
                let scale = flat(want).iter().fold(0.0f64, |a, v| a.max(v.abs()));
                common::assert_close(&what, &flat(got), &flat(want), 1e-5 * scale, 1e-5);
            }
            // One point alone through the one-point call.
            let one = batched
                .loss_and_gradient(points[1].theta, points[1].bias, points[1].l2)
                .unwrap();
            assert!((one.loss - want[1].loss).abs() <= 1e-6 * want[1].loss.abs());
            // After that one-model pass, the whole batch again: the products grow back.
            let again = batched.losses_and_gradients(&points).unwrap();
            for (s, (got, want)) in again.iter().zip(&want).enumerate() {
                let rel = (got.loss - want.loss).abs() / want.loss.abs();
                assert!(
                    rel <= 1e-6,
                    "{name}, {models} models, again, point {s}: {rel:e}"
                );
            }
        }
    }
}

/// Cross-validation scores each strength on every fold, picks the best mean log-loss and
/// refits on all rows at it; with C, each fold's λ is 1/(C·m_fold).
#[test]
fn cross_validation_picks_the_best_mean_score_and_refits() {
    let data = digits();
    let folds = Folds::stratified(data.labels(), 10, 3, 5).unwrap();
    let strengths = [Strength::C(0.01), Strength::C(1.0), Strength::C(100.0)];
    let mut refit_iterations = 0;
    let selection = trainer(1e-6)
        .cross_validate(
            Backend::Gpu(gpu()),
            &data,
            &folds,
            Choice {
                strengths: &strengths,
                score: Score::LogLoss,
                warm_start: false,
            },
            |step| {
                if step.fold.is_none() {
                    refit_iterations = step.report.epoch;
                }
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(selection.candidates.len(), 3);
    for c in &selection.candidates {
        assert_eq!(c.scores.len(), 3);
        assert!(c.mean().is_finite() && c.std() >= 0.0);
    }
    let means: Vec<f64> = selection.candidates.iter().map(|c| c.mean()).collect();
    let best = (0..3)
        .min_by(|&a, &b| means[a].total_cmp(&means[b]))
        .unwrap();
    assert_eq!(selection.best, best, "{means:?}");
    // The strongest regularisation underfits the digits badly.
    assert!(means[0] > 2.0 * means[best], "{means:?}");
    let chosen = &selection.chosen;
    let c = strengths[best].value();
    assert_eq!(chosen.l2, 1.0 / (c * data.n_rows() as f64));
    assert_eq!(chosen.status, Status::Converged);
    assert_eq!(chosen.iterations, refit_iterations);
    // The refit is the single fit on every row at that λ.
    let single = Trainer::new(Settings {
        optimizer: Optimizer::Lbfgs,
        epochs: 1000,
        tol: 1e-6,
        l2: chosen.l2,
        ..Settings::default()
    })
    .unwrap()
    .fit(Backend::Gpu(gpu()), &data, None, None, |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    let last = single.history.last().unwrap().loss;
    assert!(((chosen.loss - last) / last).abs() <= 1e-6);
}

/// Writes X (f32) and the labels and folds (i64) as .npy files for Python.
fn write_problem(dir: &std::path::Path, data: &Dataset, folds: &Folds) {
    let x = data.x().unwrap();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    common::write_npy(
        &dir.join("x.npy"),
        "<f4",
        &[data.n_rows(), data.n_features()],
        &bytes,
    );
    let ints =
        |v: &mut dyn Iterator<Item = i64>| -> Vec<u8> { v.flat_map(|i| i.to_le_bytes()).collect() };
    let y = ints(&mut data.labels().iter().map(|&l| i64::from(l)));
    common::write_npy(&dir.join("y.npy"), "<i8", &[data.n_rows()], &y);
    let f = ints(&mut folds.fold_of().iter().map(|&f| i64::from(f)));
    common::write_npy(&dir.join("folds.npy"), "<i8", &[data.n_rows()], &f);
}

/// scikit-learn's LogisticRegressionCV on the same rows, strengths and folds: the mean
/// held-out log-loss per C and the chosen C, printed as one line of numbers.
const SKLEARN_CV: &str = r#"
import sys, warnings
import numpy as np
from sklearn.linear_model import LogisticRegressionCV
d = sys.argv[1]
X = np.load(d + "/x.npy").astype(np.float64)
y = np.load(d + "/y.npy")
folds = np.load(d + "/folds.npy")
Cs = [float(c) for c in sys.argv[2].split(",")]
splits = [(np.where(folds != f)[0], np.where(folds == f)[0]) for f in range(folds.max() + 1)]
kwargs = dict(Cs=Cs, cv=splits, scoring="neg_log_loss", tol=1e-10, max_iter=100000)
try:
    clf = LogisticRegressionCV(l1_ratios=(0.0,), use_legacy_attributes=False, **kwargs).fit(X, y)
    scores = np.asarray(clf.scores_).reshape(len(splits), -1)
    C = float(np.ravel(clf.C_)[0])
except TypeError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegressionCV(**kwargs).fit(X, y)
    scores = next(iter(clf.scores_.values()))
    C = float(clf.C_[0])
print(" ".join(repr(float(v)) for v in -scores.mean(axis=0)), C)
"#;

/// Needs Python with numpy and scikit-learn; CI installs them and runs it with `--ignored`.
#[test]
#[ignore = "needs python3 with numpy and scikit-learn; run with --ignored"]
fn cross_validation_agrees_with_scikit_learn() {
    let data = digits();
    let folds = Folds::stratified(data.labels(), 10, 4, 3).unwrap();
    let cs = [0.05, 0.5, 5.0, 50.0];
    let dir = common::scratch("path-sklearn");
    write_problem(&dir, &data, &folds);
    let list = cs.map(|c| c.to_string()).join(",");
    let out = common::python(SKLEARN_CV, &[dir.to_str().unwrap(), &list]);
    let numbers: Vec<f64> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
    let (theirs, their_c) = numbers.split_at(cs.len());
    for (backend, name) in [(Backend::Cpu, "cpu"), (Backend::Gpu(gpu()), "gpu")] {
        let strengths: Vec<Strength> = cs.iter().map(|&c| Strength::C(c)).collect();
        // As tight as f32 parameters allow: the held-out log-loss at the weakest C moves
        // by 1e-5 between max|∇J| = 1e-7 and the optimum.
        let selection = trainer(1e-9)
            .cross_validate(
                backend,
                &data,
                &folds,
                Choice {
                    strengths: &strengths,
                    score: Score::LogLoss,
                    warm_start: false,
                },
                |_| ControlFlow::Continue(()),
            )
            .unwrap();
        for (c, want) in selection.candidates.iter().zip(theirs) {
            let rel = (c.mean() - want) / want;
            eprintln!(
                "{name} C = {}: ours {:.9}, scikit-learn {want:.9}, relative {rel:.1e}",
                c.strength.value(),
                c.mean()
            );
            assert!(
                rel.abs() <= 1e-5,
                "{name} C = {}: relative {rel:e}",
                c.strength.value()
            );
        }
        assert_eq!(
            selection.candidates[selection.best].strength.value(),
            their_c[0],
            "{name}: the chosen C"
        );
    }
}

/// When the device's memory budget holds fewer models side by side than the path has,
/// the path still trains (fewer models per pass, the rest in groups) and reaches what it
/// reaches without a budget.
#[test]
fn a_path_wider_than_the_memory_budget_trains_in_groups() {
    use softmax_regression::{AdapterRequest, GpuContext, GpuOracle, SplitMix64};
    let (m, n, k) = (300, 5000, 10);
    let mut rng = SplitMix64::new(6);
    let x = ndarray::Array2::from_shape_fn((m, n), |_| {
        if rng.next_f64() < 0.01 {
            rng.next_f64() as f32
        } else {
            0.0
        }
    });
    let labels: Vec<u32> = (0..m).map(|i| (i % k) as u32).collect();
    let data = Dataset::new(x, &labels, k).unwrap();
    let ctx = GpuContext::new(&AdapterRequest::default()).unwrap();
    let l2s = [1e-1, 1e-2, 1e-3, 1e-4];
    let fit = |budget: Option<u64>| {
        ctx.set_memory_budget(budget);
        trainer(1e-6)
            .fit_path(Backend::Gpu(&ctx), &data, &l2s, false, |_, _| {
                ControlFlow::Continue(())
            })
            .unwrap()
    };
    let free = fit(None);
    // Four models side by side (parameters, gradient, optimizer state and their staging,
    // 200,040 values each) do not fit in 6 MiB; two do, so the path runs in pairs.
    let budget = 6 << 20;
    ctx.set_memory_budget(Some(budget));
    assert!(GpuOracle::with_models(&ctx, &data, None, 4).is_err());
    assert!(GpuOracle::with_models(&ctx, &data, None, 2).is_ok());
    let tight = fit(Some(budget));
    for ((a, b), l2) in free.iter().zip(&tight).zip(l2s) {
        assert_eq!(b.status, Status::Converged, "λ = {l2}");
        assert!(
            ((a.loss - b.loss) / a.loss).abs() <= 1e-6,
            "λ = {l2}: {} without a budget, {} under it",
            a.loss,
            b.loss
        );
    }
}
