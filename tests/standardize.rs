//! Standardized training (`Settings::standardize`, `train --standardize`): μ and σ are
//! learned from the training rows only, kept in the model file, applied by predict and
//! evaluate, and give the optimum of training on pre-standardized data; a run that does not
//! converge on badly scaled features says so and suggests standardizing.

mod common;

use common::run;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{clusters, gpu, weight_bits};
use ndarray::{Array1, Array2, ArrayView2};
use softmax_regression::{
    Backend, Dataset, Error, Fit, Model, Optimizer, Settings, Standardizer, Status, Trainer,
};

/// Learnable clusters whose feature 2 (1-based) is in units 10⁴ times larger than the
/// others and whose feature 4 sits at an offset of 500: badly scaled.
fn badly_scaled(m: usize, seed: u64) -> Dataset {
    let data = clusters(m, 5, 3, 1.5, seed);
    let mut x = data.x().unwrap().to_owned();
    x.column_mut(1).mapv_inplace(|v| v * 1e4);
    x.column_mut(3).mapv_inplace(|v| v + 500.0);
    Dataset::new(x, data.labels(), 3).unwrap()
}

/// μ (mean) and σ (population standard deviation, 1 for a constant feature) of every
/// column, in f64, rounded to f32: the definition, written out independently.
fn mean_and_scale(x: ArrayView2<'_, f32>) -> (Vec<f32>, Vec<f32>) {
    let m = x.nrows() as f64;
    let mut means = Vec::new();
    let mut scales = Vec::new();
    for col in x.columns() {
        let mean = col.iter().map(|&v| f64::from(v)).sum::<f64>() / m;
        let var = col
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / m;
        means.push(mean as f32);
        scales.push(if var == 0.0 { 1.0 } else { var.sqrt() as f32 });
    }
    (means, scales)
}

/// `(x − μ) / σ`, computed in f64 from the f32 μ and σ and rounded once.
fn standardized(x: ArrayView2<'_, f32>, mean: &[f32], scale: &[f32]) -> Array2<f32> {
    let mut out = x.to_owned();
    for mut row in out.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = ((f64::from(*v) - f64::from(mean[j])) / f64::from(scale[j])) as f32;
        }
    }
    out
}

fn prestandardized(data: &Dataset) -> Dataset {
    let x = data.x().unwrap();
    let (mean, scale) = mean_and_scale(x);
    Dataset::new(
        standardized(x, &mean, &scale),
        data.labels(),
        data.n_classes(),
    )
    .unwrap()
}

fn fit(backend: Backend<'_>, data: &Dataset, validation: Option<&Dataset>, s: &Settings) -> Fit {
    Trainer::new(s.clone())
        .unwrap()
        .fit(backend, data, validation, None, |_| {
            ControlFlow::Continue(())
        })
        .unwrap()
}

fn lbfgs(epochs: usize, standardize: bool) -> Settings {
    Settings {
        optimizer: Optimizer::Lbfgs,
        epochs,
        tol: 1e-5,
        l2: 1e-3,
        standardize,
        ..Settings::default()
    }
}

/// A model of 5 features and 3 classes with seeded weights.
fn some_model() -> Model {
    Model::new(
        common::normal(5, 3, 1.0, 21),
        Array1::from_vec(vec![0.1, -0.2, 0.3]),
    )
    .unwrap()
}

#[test]
fn the_standardizer_learns_the_population_mean_and_scale_with_one_for_constant_features() {
    let data = badly_scaled(300, 1);
    let mut x = data.x().unwrap().to_owned();
    x.column_mut(2).fill(7.25);
    let data = Dataset::new(x, data.labels(), 3).unwrap();
    let st = Standardizer::fit(&data).unwrap();
    let (mean, scale) = mean_and_scale(data.x().unwrap());
    assert_eq!(st.mean(), &mean[..]);
    assert_eq!(st.scale(), &scale[..]);
    assert_eq!(st.scale()[2], 1.0, "a constant feature gets σ = 1");
    let z = st.transform(data.x().unwrap()).unwrap();
    assert!(z.column(2).iter().all(|&v| v == 0.0));
    for j in [0, 1, 3, 4] {
        let col = z.column(j);
        let mean = col.iter().map(|&v| f64::from(v)).sum::<f64>() / 300.0;
        let var = col
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 300.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-5,
            "feature {j}: {mean} {var}"
        );
    }
}

#[test]
fn the_model_file_keeps_mean_and_scale_and_predictions_equal_a_plain_model_on_standardized_x() {
    let data = badly_scaled(200, 2);
    let x = data.x().unwrap();
    let (mean, scale) = mean_and_scale(x);
    let plain = some_model();
    let model = plain
        .clone()
        .with_standardizer(Some(
            Standardizer::new(mean.clone(), scale.clone()).unwrap(),
        ))
        .unwrap();
    let (loaded, _) = Model::from_safetensors(&model.to_safetensors(&[]).unwrap()).unwrap();
    assert_eq!(loaded, model);
    let st = loaded
        .standardizer()
        .expect("the standardizer survives the file");
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(st.mean()), bits(&mean));
    assert_eq!(bits(st.scale()), bits(&scale));
    // A file without the tensors is a model of the raw features, as before.
    let (old, _) = Model::from_safetensors(&plain.to_safetensors(&[]).unwrap()).unwrap();
    assert!(old.standardizer().is_none());

    let z = standardized(x, &mean, &scale);
    let ctx = gpu();
    for backend in [Backend::Cpu, Backend::Gpu(ctx)] {
        let got = loaded.predict_proba(backend, x).unwrap();
        let want = plain.predict_proba(backend, z.view()).unwrap();
        assert_eq!(got, want, "predict_proba");
        assert_eq!(
            loaded.predict(backend, x).unwrap(),
            plain.predict(backend, z.view()).unwrap()
        );
        let on_z = Dataset::new(z.clone(), data.labels(), 3).unwrap();
        assert_eq!(
            loaded.evaluate(backend, &data).unwrap(),
            plain.evaluate(backend, &on_z).unwrap(),
            "evaluate"
        );
        // And the standardizer matters: the raw features give other probabilities.
        assert_ne!(plain.predict_proba(backend, x).unwrap(), got);
    }
}

#[test]
fn standardized_training_reaches_the_optimum_of_training_on_standardized_data() {
    let data = badly_scaled(400, 3);
    let pre = prestandardized(&data);
    let reference = fit(Backend::Cpu, &pre, None, &lbfgs(200, false));
    assert_eq!(reference.status, Status::Converged);
    let j = reference.history.last().unwrap().loss;
    let cpu = fit(Backend::Cpu, &data, None, &lbfgs(200, true));
    assert_eq!(cpu.status, Status::Converged);
    assert_eq!(cpu.history.last().unwrap().loss, j, "CPU: the same J");
    assert_eq!(weight_bits(&cpu), weight_bits(&reference));
    let st = cpu.model.standardizer().expect("the fit carries μ and σ");
    let (mean, scale) = mean_and_scale(data.x().unwrap());
    assert_eq!((st.mean(), st.scale()), (&mean[..], &scale[..]));

    let on_gpu = fit(Backend::Gpu(gpu()), &data, None, &lbfgs(200, true));
    assert_eq!(on_gpu.status, Status::Converged);
    let got = on_gpu.history.last().unwrap().loss;
    assert!(
        (got - j).abs() <= 1e-5 * j.abs(),
        "GPU J {got} against CPU {j}"
    );
}

#[test]
fn a_memory_mapped_source_is_standardized_as_it_is_read() {
    let data = badly_scaled(300, 4);
    let mapped = common::mapped(&data, "standardize");
    assert!(mapped.is_streamed());
    let s = lbfgs(30, true);
    for backend in [Backend::Cpu, Backend::Gpu(gpu())] {
        let in_memory = fit(backend, &data, None, &s);
        let streamed = fit(backend, &mapped, None, &s);
        assert_eq!(weight_bits(&streamed), weight_bits(&in_memory));
        assert_eq!(
            streamed.model.standardizer(),
            in_memory.model.standardizer()
        );
    }
}

#[test]
fn validation_metrics_use_the_training_mean_and_scale() {
    let data = badly_scaled(500, 5);
    let (train, held) = data.split(0.3, 9).unwrap();
    for backend in [Backend::Cpu, Backend::Gpu(gpu())] {
        let fitted = fit(backend, &train, Some(&held), &lbfgs(15, true));
        let reported = fitted.history.last().unwrap().validation.unwrap();
        let (mean, scale) = mean_and_scale(train.x().unwrap());
        let st = fitted.model.standardizer().unwrap();
        assert_eq!((st.mean(), st.scale()), (&mean[..], &scale[..]));
        let plain = fitted.model.clone().with_standardizer(None).unwrap();
        let held_z = Dataset::new(
            standardized(held.x().unwrap(), &mean, &scale),
            held.labels(),
            3,
        )
        .unwrap();
        assert_eq!(reported, plain.evaluate(backend, &held_z).unwrap());
        assert_eq!(reported, fitted.model.evaluate(backend, &held).unwrap());
        // Standardizing the held-out rows by their own statistics gives other numbers, so
        // the comparison above can tell.
        let (own_mean, own_scale) = mean_and_scale(held.x().unwrap());
        let leaked = Dataset::new(
            standardized(held.x().unwrap(), &own_mean, &own_scale),
            held.labels(),
            3,
        )
        .unwrap();
        assert_ne!(reported, plain.evaluate(backend, &leaked).unwrap());
    }
}

#[test]
fn a_run_that_stalls_on_badly_scaled_features_suggests_standardizing() {
    let bad = badly_scaled(400, 6);
    for optimizer in [Optimizer::Lbfgs, Optimizer::Gd] {
        let s = Settings {
            optimizer,
            epochs: 5,
            tol: 0.0,
            learning_rate: 1e-9,
            ..Settings::default()
        };
        let stalled = fit(Backend::Cpu, &bad, None, &s);
        assert_eq!(stalled.status, Status::IterationLimit, "{optimizer}");
        let scaling = stalled.scaling.expect("badly scaled features are reported");
        assert_eq!(scaling.largest.map(|l| l.0), Some(1));
        assert!(scaling.ratio > 1e3);
        let text = stalled.summary(&s);
        assert!(
            text.contains("badly scaled") && text.contains("try --standardize"),
            "{optimizer}: {text}"
        );
        assert!(text.contains("in feature 2"), "{text}");
        // Standardized, the same run has nothing to suggest about scaling.
        let s = Settings {
            standardize: true,
            ..s
        };
        let standardized = fit(Backend::Cpu, &bad, None, &s);
        assert!(standardized.scaling.is_none());
        assert!(!standardized.summary(&s).contains("--standardize"));
    }
}

#[test]
fn a_run_that_stalls_on_well_scaled_features_does_not_blame_scaling() {
    let good = clusters(400, 5, 3, 1.5, 6);
    let s = Settings {
        optimizer: Optimizer::Lbfgs,
        epochs: 2,
        tol: 0.0,
        ..Settings::default()
    };
    let stalled = fit(Backend::Cpu, &good, None, &s);
    assert_eq!(stalled.status, Status::IterationLimit);
    assert!(stalled.scaling.is_none());
    let text = stalled.summary(&s);
    assert!(
        text.contains("try more") && !text.contains("standardize"),
        "{text}"
    );
    let digits = common::digits();
    let stalled = fit(Backend::Cpu, &digits, None, &s);
    assert_eq!(stalled.status, Status::IterationLimit);
    assert!(
        stalled.scaling.is_none(),
        "pixels on one scale: {:?}",
        stalled.scaling
    );
}

#[test]
fn a_failed_line_search_on_badly_scaled_features_suggests_standardizing() {
    let s = lbfgs(100, false);
    let stats = softmax_regression::standardize::FeatureStats::of(&badly_scaled(100, 7)).unwrap();
    let fit = Fit {
        model: some_model(),
        history: Vec::new(),
        status: Status::LineSearchFailed,
        device: None,
        scaling: softmax_regression::Scaling::of(&stats),
        evaluations: None,
    };
    let text = fit.summary(&s);
    assert!(
        text.contains("line search") && text.contains("try --standardize"),
        "{text}"
    );
}

/// Runs with an interrupt raised after `stop_after` epochs, then resumes.
fn interrupted_then_resumed(
    backend: Backend<'_>,
    data: &Dataset,
    s: &Settings,
    stop_after: usize,
    path: &std::path::Path,
) -> Fit {
    let flag = Arc::new(AtomicBool::new(false));
    let raise = flag.clone();
    let first = Trainer::new(s.clone())
        .unwrap()
        .with_checkpoints(path, 1000)
        .unwrap()
        .with_interrupt(flag)
        .fit(backend, data, None, None, |r| {
            if r.epoch == stop_after {
                raise.store(true, Ordering::SeqCst);
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(first.status, Status::Interrupted);
    assert!(first.model.standardizer().is_some());
    Trainer::new(s.clone())
        .unwrap()
        .resume_from(path)
        .unwrap()
        .fit(backend, data, None, None, |_| ControlFlow::Continue(()))
        .unwrap()
}

#[test]
fn a_standardized_run_resumes_bit_for_bit_and_refuses_a_run_without_it() {
    let data = badly_scaled(400, 8);
    let dir = common::scratch("standardize-resume");
    for (label, backend) in [("cpu", Backend::Cpu), ("gpu", Backend::Gpu(gpu()))] {
        for optimizer in [Optimizer::Lbfgs, Optimizer::Adam] {
            let s = Settings {
                optimizer,
                epochs: 6,
                tol: 0.0,
                learning_rate: 0.01,
                batch_size: (optimizer == Optimizer::Adam).then_some(64),
                standardize: true,
                ..Settings::default()
            };
            let full = fit(backend, &data, None, &s);
            let path = dir.join(format!("{label}-{optimizer}.ckpt"));
            let resumed = interrupted_then_resumed(backend, &data, &s, 3, &path);
            assert_eq!(
                weight_bits(&resumed),
                weight_bits(&full),
                "{label} {optimizer}"
            );
            assert_eq!(resumed.model.standardizer(), full.model.standardizer());
            let unstandardized = Settings {
                standardize: false,
                ..s.clone()
            };
            match Trainer::new(unstandardized)
                .unwrap()
                .resume_from(&path)
                .unwrap()
                .fit(backend, &data, None, None, |_| ControlFlow::Continue(()))
            {
                Err(Error::Checkpoint { message, .. }) => {
                    assert!(message.contains("standardized"), "{message}")
                }
                other => panic!("{label} {optimizer}: {other:?}"),
            }
        }
    }
}

#[test]
fn an_initial_model_is_taken_as_the_same_function_of_the_raw_features() {
    let data = badly_scaled(300, 10);
    let x = data.x().unwrap();
    let st = Standardizer::fit(&data).unwrap();
    let standardized_model = some_model().with_standardizer(Some(st.clone())).unwrap();
    let p = standardized_model.predict_proba(Backend::Cpu, x).unwrap();
    // Re-expressed for raw features, and for another standardization.
    let (other, _) = data.split(0.5, 1).unwrap();
    let other = Standardizer::fit(&other).unwrap();
    for target in [None, Some(&other)] {
        let re = standardized_model.restandardized(target).unwrap();
        assert_eq!(re.standardizer(), target);
        let q = re.predict_proba(Backend::Cpu, x).unwrap();
        common::assert_close(
            "probabilities",
            &common::f64s(q.iter()),
            &common::f64s(p.iter()),
            1e-4,
            1e-4,
        );
    }
    let same = standardized_model.restandardized(Some(&st)).unwrap();
    assert_eq!(same, standardized_model);

    // Training from it, unstandardized, starts where it is: the first (tiny) step's J is
    // its log-loss on the raw features.
    let s = Settings {
        optimizer: Optimizer::Gd,
        epochs: 1,
        learning_rate: 1e-12,
        l2: 0.0,
        tol: 0.0,
        ..Settings::default()
    };
    let first = Trainer::new(s)
        .unwrap()
        .fit(Backend::Cpu, &data, None, Some(&standardized_model), |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let want = standardized_model
        .evaluate(Backend::Cpu, &data)
        .unwrap()
        .log_loss;
    let got = first.history[0].loss;
    assert!((got - want).abs() < 1e-4 * want, "J {got} against {want}");
    assert!(first.model.standardizer().is_none());
}

#[test]
fn the_binary_standardizes_trains_predicts_and_evaluates_and_hints_when_it_should() {
    let dir = common::scratch("standardize-cli");
    let data = badly_scaled(300, 11);
    let mut text = String::new();
    for (row, y) in data.x().unwrap().rows().into_iter().zip(data.labels()) {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("{},{y}\n", cells.join(",")));
    }
    let csv = dir.join("bad.csv");
    std::fs::write(&csv, text).unwrap();
    let (csv, model) = (csv.to_str().unwrap(), dir.join("m.safetensors"));
    let model = model.to_str().unwrap();

    let common = ["--data", csv, "--optimizer", "lbfgs", "--backend", "cpu"];
    let o = run(&[&["train"], &common[..], &["--epochs", "3", "--out", model]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("badly scaled") && err.contains("try --standardize"),
        "{err}"
    );
    let o = run(&[
        &["train"],
        &common[..],
        &["--epochs", "3", "--json", "--out", model],
    ]
    .concat());
    let out = String::from_utf8_lossy(&o.stdout);
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["standardized"], false);
    assert!(
        summary["badly_scaled"]
            .as_str()
            .is_some_and(|s| s.contains("in feature 2")),
        "{out}"
    );
    assert!(
        Model::load(model.as_ref())
            .unwrap()
            .0
            .standardizer()
            .is_none()
    );

    let o = run(&[&["train"], &common[..], &["--standardize", "--out", model]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("converged:") && !err.contains("badly scaled"),
        "{err}"
    );
    let (loaded, _) = Model::load(model.as_ref()).unwrap();
    let library = fit(
        Backend::Cpu,
        &data,
        None,
        &Settings {
            optimizer: Optimizer::Lbfgs,
            learning_rate: 0.01,
            standardize: true,
            ..Settings::default()
        },
    );
    assert_eq!(loaded.theta(), library.model.theta());
    assert_eq!(loaded.standardizer(), library.model.standardizer());

    let o = run(&[
        "predict",
        "--model",
        model,
        "--data",
        csv,
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want: Vec<String> = loaded
        .predict(Backend::Cpu, data.x().unwrap())
        .unwrap()
        .iter()
        .map(u32::to_string)
        .collect();
    let got: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got, want);

    let o = run(&[
        "evaluate",
        "--model",
        model,
        "--data",
        csv,
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let metrics = loaded.evaluate(Backend::Cpu, &data).unwrap();
    assert_eq!(report["accuracy"].as_f64(), Some(metrics.accuracy));
    assert_eq!(report["log_loss"].as_f64(), Some(metrics.log_loss));
    assert!(metrics.accuracy > 0.9, "{metrics:?}");
}

#[test]
fn the_binary_standardizes_a_memory_mapped_npy_streamed_to_the_gpu() {
    let dir = common::scratch("standardize-npy");
    let data = badly_scaled(20_000, 12);
    let x = data.x().unwrap();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    let (xp, yp) = (dir.join("x.npy"), dir.join("y.npy"));
    common::write_npy(&xp, "<f4", &[x.nrows(), x.ncols()], &bytes);
    let labels: Vec<u8> = data
        .labels()
        .iter()
        .flat_map(|&l| i64::from(l).to_le_bytes())
        .collect();
    common::write_npy(&yp, "<i8", &[x.nrows()], &labels);
    let model = dir.join("m.safetensors");
    // 400 kB of X under a 256 KiB budget: the mapped file is streamed in chunks.
    let o = run(&[
        "train",
        "--data",
        xp.to_str().unwrap(),
        "--labels",
        yp.to_str().unwrap(),
        "--optimizer",
        "lbfgs",
        "--standardize",
        "--max-gpu-memory",
        "256KiB",
        "--json",
        "--out",
        model.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["status"], "converged", "{summary}");
    assert_eq!(summary["streamed"], true, "{summary}");
    assert_eq!(summary["standardized"], true, "{summary}");
    let (loaded, _) = Model::load(&model).unwrap();
    let want = Standardizer::fit(&data).unwrap();
    assert_eq!(loaded.standardizer(), Some(&want));
    // The same optimum as the CPU on the data in memory, with the binary's defaults.
    let s = Settings {
        optimizer: Optimizer::Lbfgs,
        standardize: true,
        ..Settings::default()
    };
    let cpu = fit(Backend::Cpu, &data, None, &s);
    let j = cpu.history.last().unwrap().loss;
    let got = summary["loss"].as_f64().unwrap();
    assert!((got - j).abs() <= 1e-4 * j.abs(), "J {got} against {j}");
}

#[test]
fn validation_data_of_another_width_is_named_as_such_when_standardizing() {
    let train = badly_scaled(100, 13);
    let narrow = clusters(50, 4, 3, 1.5, 13);
    match Trainer::new(lbfgs(5, true)).unwrap().fit(
        Backend::Cpu,
        &train,
        Some(&narrow),
        None,
        |_| ControlFlow::Continue(()),
    ) {
        Err(Error::ShapeMismatch { what, .. }) => assert_eq!(what, "validation data (n, K)"),
        other => panic!("{other:?}"),
    }
}
