//! End-to-end tests of the binary: every format trains and predicts, models round-trip,
//! `--json` parses, and bad input exits 2 with one sentence and no model file.

mod common;

use common::{blobs, run, s, stderr, stdout};

use std::path::Path;
use std::process::Output;

use softmax_regression::{Backend, Model};

/// Writes `m` rows of [`blobs`] as a headerless CSV with the class number last.
fn write_blobs_csv(path: &Path, m: usize) {
    let mut text = String::new();
    for (x, c) in blobs(m, 3) {
        let cells: Vec<String> = x.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("{},{c}\n", cells.join(",")));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn csv_with_string_labels_trains_and_predicts_the_original_labels() {
    let dir = common::scratch("cli-csv");
    let data = dir.join("train.csv");
    let names = ["cat", "dog", "eel"];
    let mut text = String::from("a,b,c,d,animal\n");
    for (x, c) in blobs(150, 3) {
        let cells: Vec<String> = x.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("{},{}\n", cells.join(","), names[c]));
    }
    std::fs::write(&data, &text).unwrap();
    let model = dir.join("m.safetensors");
    let o = run(&[
        "train",
        "--data",
        s(&data),
        "--epochs",
        "30",
        "--lr",
        "0.1",
        "--backend",
        "cpu",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "predict",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let predicted: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(predicted.len(), 150);
    // Identical to the library's predictions from the same file.
    let (m, _) = Model::load(&model).unwrap();
    assert_eq!(m.labels().unwrap(), names);
    let x = ndarray::Array2::from_shape_vec(
        (150, 4),
        blobs(150, 3).into_iter().flat_map(|(x, _)| x).collect(),
    )
    .unwrap();
    let lib: Vec<String> = m
        .predict(Backend::Cpu, x.view())
        .unwrap()
        .into_iter()
        .map(|c| names[c as usize].to_string())
        .collect();
    assert_eq!(predicted, lib);
    let correct = predicted
        .iter()
        .zip(blobs(150, 3))
        .filter(|(p, (_, c))| *p == names[*c])
        .count();
    assert!(correct >= 145, "{correct}/150 correct");
    // Probabilities: K comma-separated values summing to 1.
    let o = run(&[
        "predict",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--proba",
        "--backend",
        "cpu",
    ]);
    let text = stdout(&o);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("cat,dog,eel"),
        "the header names the classes"
    );
    let first = lines.next().unwrap().to_string();
    let p: Vec<f64> = first.split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(p.len(), 3);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4);
    // Evaluate reads the string labels back by name.
    let o = run(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--json",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(v["accuracy"].as_f64().unwrap() > 0.95);
    assert_eq!(v["confusion"].as_array().unwrap().len(), 3);
}

#[test]
fn npy_idx_and_libsvm_each_train_and_predict_on_the_gpu() {
    let dir = common::scratch("cli-formats");
    let rows = blobs(120, 3);
    let labels: Vec<i64> = rows.iter().map(|(_, c)| *c as i64).collect();
    // .npy: X float32 (m, 4), labels int64 (m,)
    let x = dir.join("x.npy");
    let y = dir.join("y.npy");
    common::write_npy(
        &x,
        "<f4",
        &[120, 4],
        &rows
            .iter()
            .flat_map(|(x, _)| x.iter().flat_map(|v| v.to_le_bytes()))
            .collect::<Vec<u8>>(),
    );
    common::write_npy(
        &y,
        "<i8",
        &[120],
        &labels
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    // IDX: u8 "images" (m, 2, 2) and idx1 labels
    let images = dir.join("train-images-idx3-ubyte");
    let idx_labels = dir.join("train-labels-idx1-ubyte");
    let mut img = vec![0, 0, 0x08, 3];
    for d in [120u32, 2, 2] {
        img.extend(d.to_be_bytes());
    }
    img.extend(
        rows.iter()
            .flat_map(|(x, _)| x.iter().map(|v| (v.clamp(0.0, 5.0) * 50.0) as u8)),
    );
    std::fs::write(&images, img).unwrap();
    let mut lab = vec![0, 0, 0x08, 1];
    lab.extend(120u32.to_be_bytes());
    lab.extend(rows.iter().map(|(_, c)| *c as u8));
    std::fs::write(&idx_labels, lab).unwrap();
    // LIBSVM, 1-based, zeros left out
    let svm = dir.join("train.svm");
    let text: String = rows
        .iter()
        .map(|(x, c)| {
            let feats: Vec<String> = x
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(j, v)| format!("{}:{v}", j + 1))
                .collect();
            format!("{c} {}\n", feats.join(" "))
        })
        .collect();
    std::fs::write(&svm, text).unwrap();

    for (name, data, labels) in [
        ("npy", &x, Some(&y)),
        ("idx", &images, Some(&idx_labels)),
        ("libsvm", &svm, None),
    ] {
        let model = dir.join(format!("{name}.safetensors"));
        let mut args = vec![
            "train",
            "--data",
            s(data),
            "--epochs",
            "30",
            "--lr",
            "0.05",
            "--out",
            s(&model),
            "--quiet",
        ];
        if let Some(l) = labels {
            args.extend(["--labels", s(l)]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let mut args = vec![
            "evaluate",
            "--model",
            s(&model),
            "--data",
            s(data),
            "--json",
        ];
        if let Some(l) = labels {
            args.extend(["--labels", s(l)]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert!(v["accuracy"].as_f64().unwrap() > 0.9, "{name}: {v}");
        let o = run(&["predict", "--model", s(&model), "--data", s(data)]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 120, "{name}");
        assert!(!stderr(&o).contains("XDG_RUNTIME_DIR"));
    }
}

#[test]
fn json_output_is_one_object_per_line() {
    let dir = common::scratch("cli-json");
    let model = dir.join("m.safetensors");
    let o = run(&["train", "--epochs", "3", "--json", "--out", s(&model)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines[..3].iter().enumerate() {
        assert_eq!(l["epoch"], i + 1);
        assert!(l["loss"].as_f64().unwrap() > 0.0);
        assert!(l["validation_accuracy"].as_f64().is_some());
    }
    assert_eq!(lines[3]["summary"], true);
    assert!(stderr(&o).trim().is_empty(), "stderr: {}", stderr(&o));
}

#[test]
fn compact_storage_trains_the_digits_as_well() {
    let dir = common::scratch("cli-storage");
    for storage in ["f16", "u8"] {
        let model = dir.join(format!("{storage}.safetensors"));
        let o = run(&[
            "train",
            "--x-storage",
            storage,
            "--optimizer",
            "lbfgs",
            "--json",
            "--out",
            s(&model),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let summary: serde_json::Value =
            serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
        assert_eq!(summary["x_storage"], storage);
        assert!(
            summary["backend"]
                .as_str()
                .unwrap()
                .contains(&format!("X stored as {storage}")),
            "{summary}"
        );
        let acc = summary["validation_accuracy"].as_f64().unwrap();
        assert!(acc >= 0.95, "{storage}: validation accuracy {acc}");
        assert!(model.exists());
    }
}

#[test]
fn embedded_digits_reach_95_percent_test_accuracy_with_defaults() {
    let dir = common::scratch("cli-digits");
    let model = dir.join("model.safetensors");
    let o = run(&["train", "--out", s(&model)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let acc: f64 = out
        .split_whitespace()
        .skip_while(|w| *w != "accuracy")
        .nth(1)
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {out:?}"));
    assert!(acc >= 0.95, "test accuracy {acc}");
    assert!(!stderr(&o).contains("XDG_RUNTIME_DIR"));
    let (m, meta) = Model::load(&model).unwrap();
    assert_eq!((m.n_features(), m.n_classes()), (64, 10));
    assert_eq!(meta["format"], "softmax-regression/1");
}

#[test]
fn bad_flags_and_files_exit_2_with_one_sentence_and_no_model() {
    let dir = common::scratch("cli-bad");
    let model = dir.join("m.safetensors");
    let m = s(&model);
    let nan = dir.join("nan.csv");
    std::fs::write(&nan, "1,2,0\n3,nan,1\n").unwrap();
    let ragged = dir.join("ragged.csv");
    std::fs::write(&ragged, "1,2,0\n3,1\n").unwrap();
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let one_class = dir.join("one.csv");
    std::fs::write(&one_class, "1,2,0\n3,4,0\n").unwrap();
    let big_label = dir.join("big.csv");
    std::fs::write(&big_label, "1,2,0\n3,4,5\n").unwrap();
    let huge = dir.join("huge.csv");
    std::fs::write(&huge, "1,2,0\n3,4,1\n5,100000,0\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--lr=-1", "--out", m], "--lr"),
        (vec!["train", "--l2", "nan", "--out", m], "--l2"),
        (
            vec!["train", "--batch-size", "0", "--out", m],
            "--batch-size",
        ),
        (vec!["train", "--epochs", "0", "--out", m], "--epochs"),
        (
            vec!["train", "--validation", "1.5", "--out", m],
            "--validation",
        ),
        (vec!["train", "--data", s(&nan), "--out", m], "row 2"),
        (vec!["train", "--data", s(&ragged), "--out", m], "row 2"),
        (vec!["train", "--data", s(&empty), "--out", m], "empty.csv"),
        (
            vec!["train", "--data", s(&one_class), "--out", m],
            "at least 2 classes",
        ),
        (
            vec![
                "train",
                "--data",
                s(&one_class),
                "--classes",
                "1",
                "--out",
                m,
            ],
            "at least 2 classes",
        ),
        (
            vec![
                "train",
                "--data",
                s(&big_label),
                "--classes",
                "3",
                "--out",
                m,
            ],
            "sample 2",
        ),
        (
            vec!["train", "--data", "/nonexistent/x.csv", "--out", m],
            "/nonexistent/x.csv",
        ),
        (vec!["train", "--optimizer", "newton", "--out", m], "newton"),
        (
            vec![
                "train",
                "--data",
                s(&huge),
                "--x-storage",
                "f16",
                "--out",
                m,
            ],
            "feature 2 of sample 3 is 100000",
        ),
        (
            vec!["train", "--x-storage", "u8", "--backend", "cpu", "--out", m],
            "--x-storage u8 needs a GPU backend",
        ),
        (vec!["train", "--x-storage", "f64", "--out", m], "f64"),
    ];
    for (args, needle) in cases {
        let o = run(&args);
        common::assert_bad_input(&format!("{args:?}"), &o, needle);
        assert!(!model.exists(), "{args:?} left a model file behind");
    }
    // A model trained on the digits (64 features) refuses data with 2 features.
    let o = run(&["train", "--epochs", "1", "--out", m, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["predict", "--model", m, "--data", s(&one_class)]);
    common::assert_bad_input("", &o, "64");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a model").unwrap();
    let o = run(&["predict", "--model", s(&junk), "--data", s(&one_class)]);
    common::assert_bad_input("", &o, "junk.safetensors");
}

#[test]
fn info_lists_the_adapter_auto_picks() {
    let o = run(&["info", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let adapters = v["adapters"].as_array().unwrap();
    assert_eq!(
        adapters.iter().filter(|a| a["auto"] == true).count(),
        1,
        "{v}"
    );
    assert!(
        adapters
            .iter()
            .all(|a| a["max_storage_buffer_binding_size"].as_u64().unwrap() > 0)
    );
}

/// Needs Python with numpy and safetensors (`pip install numpy safetensors`); CI installs
/// them and runs it with `--ignored`.
#[test]
#[ignore = "needs python3 with numpy and safetensors; run with --ignored"]
fn model_file_loads_with_python_safetensors_numpy() {
    let dir = common::scratch("cli-python");
    let model = dir.join("m.safetensors");
    let o = run(&[
        "train",
        "--epochs",
        "2",
        "--out",
        s(&model),
        "--quiet",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (m, _) = Model::load(&model).unwrap();
    let script = format!(
        "from safetensors.numpy import load_file\nfrom safetensors import safe_open\nt = load_file({:?})\nprint(t['weight'].shape, t['bias'].shape, t['weight'].dtype, float(t['weight'][3, 20]), float(t['bias'][7]))\nprint(safe_open({:?}, 'np').metadata()['format'])\n",
        s(&model),
        s(&model)
    );
    let out = common::python(&script, &[]);
    let mut lines = out.lines();
    let first = lines.next().unwrap();
    assert!(first.starts_with("(10, 64) (10,) float32"), "{first}");
    let nums: Vec<f32> = first
        .rsplit(' ')
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(nums[1], m.theta()[(20, 3)]);
    assert_eq!(nums[0], m.bias()[7]);
    assert_eq!(lines.next().unwrap(), "softmax-regression/1");
}

#[test]
fn plots_are_written_as_svg() {
    let dir = common::scratch("cli-plot");
    let model = dir.join("m.safetensors");
    let curve = dir.join("curve.svg");
    let o = run(&[
        "train",
        "--epochs",
        "5",
        "--out",
        s(&model),
        "--plot",
        s(&curve),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&curve).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // Training and validation lines in both panels.
    assert_eq!(svg.matches("<polyline").count(), 4, "{svg}");
    assert!(svg.contains("validation log-loss"));
    let data = dir.join("d.csv");
    write_blobs_csv(&data, 60);
    let o = run(&[
        "train",
        "--data",
        s(&data),
        "--epochs",
        "20",
        "--lr",
        "0.1",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let heat = dir.join("confusion.svg");
    let o = run(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--plot",
        s(&heat),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&heat).unwrap();
    assert_eq!(svg.matches(r#"<rect class="cell""#).count(), 3 * 3, "{svg}");
}

#[test]
fn a_run_that_does_not_converge_says_so_and_still_writes_the_model() {
    let dir = common::scratch("cli-converge");
    let model = dir.join("m.safetensors");
    let o = run(&[
        "train",
        "--optimizer",
        "lbfgs",
        "--max-iter",
        "3",
        "--tol",
        "1e-6",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("did not converge: max |∇J| = ") && err.contains("after 3 iterations"),
        "{err}"
    );
    assert!(model.exists());
    let o = run(&[
        "train",
        "--optimizer",
        "lbfgs",
        "--max-iter",
        "500",
        "--tol",
        "1e-5",
        "--l2",
        "1e-2",
        "--out",
        s(&model),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(summary["status"], "converged", "{summary}");
    // A learning rate far too large: the run stops, says why, and keeps finite weights.
    let o = run(&[
        "train",
        "--optimizer",
        "gd",
        "--lr",
        "1e30",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("smaller learning rate"),
        "{}",
        stderr(&o)
    );
    let (m, _) = Model::load(&model).unwrap();
    assert!(m.theta().iter().all(|v| v.is_finite()));
}

#[test]
fn warm_start_weights_schedules_and_patience_flags() {
    let dir = common::scratch("cli-flags");
    let first = dir.join("first.safetensors");
    let second = dir.join("second.safetensors");
    let json_losses = |o: &Output| -> Vec<f64> {
        stdout(o)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["loss"].as_f64())
            .collect()
    };
    let o = run(&["train", "--epochs", "5", "--out", s(&first), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fresh = json_losses(&o);
    let o = run(&[
        "train",
        "--epochs",
        "1",
        "--init",
        s(&first),
        "--out",
        s(&second),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let warm = json_losses(&o);
    assert!(
        warm[0] < fresh[0] && warm[0] <= fresh[4] * 1.05,
        "warm start J {} vs fresh {:?}",
        warm[0],
        fresh
    );

    // Class and sample weights on a CSV; a bad weights file is refused before training.
    let data = dir.join("d.csv");
    write_blobs_csv(&data, 90);
    let weights = dir.join("w.txt");
    std::fs::write(
        &weights,
        (0..90)
            .map(|i| format!("{}\n", 1 + i % 2))
            .collect::<String>(),
    )
    .unwrap();
    let model = dir.join("m.safetensors");
    let o = run(&[
        "train",
        "--data",
        s(&data),
        "--class-weight",
        "balanced",
        "--sample-weights",
        s(&weights),
        "--schedule",
        "cosine",
        "--epochs",
        "10",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(&model).unwrap();
    let short = dir.join("short.txt");
    std::fs::write(&short, "1\n2\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--sample-weights", s(&short)], "has 2 weights"),
        (
            vec!["--class-weight", "1,2"],
            "2 values but there are 3 classes",
        ),
        (vec!["--class-weight", "1,x,2"], "--class-weight 1,x,2"),
        (vec!["--class-weight", "1,-2,2"], "--class-weight 1,-2,2"),
        (
            vec!["--optimizer", "adam", "--patience", "3"],
            "--validation",
        ),
        (vec!["--init", s(&first)], "64 features"),
        (
            vec!["--schedule", "step", "--step-factor", "2"],
            "--step-factor",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["train", "--data", s(&data), "--out", s(&model)];
        args.extend(extra.iter().copied());
        let o = run(&args);
        common::assert_bad_input(&format!("{args:?}"), &o, needle);
        assert!(!model.exists(), "{extra:?} left a model behind");
    }
}

#[test]
fn synth_then_train_streams_the_mapped_file_under_a_memory_budget() {
    let dir = common::scratch("cli-synth");
    let (x, y, model) = (
        dir.join("x.npy"),
        dir.join("y.npy"),
        dir.join("m.safetensors"),
    );
    // 6000 × 64, K = 5, seed 3; the second run (quiet) must write the same bytes.
    let synth = |x: &Path, y: &Path, extra: &[&str]| {
        let mut args = vec![
            "synth",
            "--rows",
            "6000",
            "--features",
            "64",
            "--classes",
            "5",
            "--seed",
            "3",
            "--out",
            s(x),
            "--labels",
            s(y),
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    synth(&x, &y, &[]);
    assert_eq!(std::fs::metadata(&x).unwrap().len(), 128 + 6000 * 64 * 4);
    let again = dir.join("x2.npy");
    synth(&again, &dir.join("y2.npy"), &["--quiet"]);
    assert_eq!(std::fs::read(&x).unwrap(), std::fs::read(&again).unwrap());

    // 1.5 MB of X under a 1 MiB budget: streamed, and the peak stays within the budget.
    let o = run(&[
        "train",
        "--data",
        s(&x),
        "--labels",
        s(&y),
        "--optimizer",
        "lbfgs",
        "--epochs",
        "50",
        "--max-gpu-memory",
        "1MiB",
        "--out",
        s(&model),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().last().expect("a summary line")).unwrap();
    assert_eq!(summary["streamed"], true, "{summary}");
    assert!(summary["chunks"].as_u64().unwrap() >= 2, "{summary}");
    assert!(
        summary["device_memory_peak"].as_u64().unwrap() <= 1 << 20,
        "{summary}"
    );
    let o = run(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&x),
        "--labels",
        s(&y),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(
        report["accuracy"].as_f64().unwrap() > 0.8,
        "a separable synthetic problem was not learned: {report}"
    );
}

#[test]
fn a_checkpoint_path_that_is_also_the_model_path_is_refused() {
    let dir = common::scratch("cli-same-path");
    let model = dir.join("m.safetensors");
    let o = run(&[
        "train",
        "--epochs",
        "1",
        "--checkpoint",
        s(&model),
        "--out",
        s(&model),
    ]);
    common::assert_bad_input("", &o, "--checkpoint");
    assert!(!model.exists());
    // synth: the same file named two ways.
    let x = dir.join("x.npy");
    let same = dir.join(".").join("x.npy");
    let o = run(&[
        "synth",
        "--rows",
        "10",
        "--features",
        "2",
        "--classes",
        "2",
        "--out",
        s(&x),
        "--labels",
        s(&same),
    ]);
    common::assert_bad_input("", &o, "--labels");
    assert!(!x.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `synth --density`: SciPy's CSR arrays in a directory, text-like (most rows hold the
/// most popular column, thousands of columns in the tail), the same bytes for a seed, read
/// back in place, and learnable.
#[test]
fn synth_density_writes_csr_arrays_that_train_reads_in_place() {
    use softmax_regression::data::Csr;
    use softmax_regression::formats::{LoadOptions, load_sparse};
    let dir = common::scratch("cli-synth-density");
    let (x, y, model) = (dir.join("x"), dir.join("y.npy"), dir.join("m.safetensors"));
    // 3000 × 4000, K = 3, about 0.005 · 4000 = 20 values a row, seed 5.
    let synth = |x: &Path, y: &Path, extra: &[&str]| {
        let mut args = vec![
            "synth",
            "--rows",
            "3000",
            "--features",
            "4000",
            "--classes",
            "3",
            "--density",
            "0.005",
            "--seed",
            "5",
            "--out",
            s(x),
            "--labels",
            s(y),
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let said = synth(&x, &y, &[]);
    assert!(said.contains("3000 × 4000 CSR arrays"), "{said}");
    let rows = load_sparse(&x, &LoadOptions::default()).unwrap().x;
    assert!(rows.values.is_mapped() && rows.indices.is_mapped() && rows.indptr.is_mapped());
    let csr = Csr::try_from(rows).unwrap();
    assert_eq!((csr.n_rows(), csr.n_cols()), (3000, 4000));
    let per_row = csr.nnz() as f64 / 3000.0;
    assert!((16.0..24.0).contains(&per_row), "{per_row} values a row");
    let mut df = vec![0usize; 4000];
    csr.indices().iter().for_each(|&c| df[c as usize] += 1);
    assert!(df[0] > 3000 / 2, "column 0 is in {} rows", df[0]);
    assert!(df.iter().filter(|&&d| d > 0).count() > 1000, "a long tail");
    assert!(csr.values().iter().all(|&v| v > 0.0 && v <= 1.0));
    let labels = softmax_regression::formats::load_labels(&y).unwrap();
    let softmax_regression::formats::RawLabels::Ints(labels) = labels else {
        panic!("integer labels")
    };
    assert!((0..3).all(|k| labels.iter().filter(|&&l| l == k).count() > 300));

    // The same seed, the same bytes: into a new directory, and again into the first.
    let (x2, y2) = (dir.join("x2"), dir.join("y2.npy"));
    synth(&x2, &y2, &["--quiet"]);
    let before: Vec<Vec<u8>> = ["data.npy", "indices.npy", "indptr.npy", "shape.npy"]
        .iter()
        .map(|f| std::fs::read(x.join(f)).unwrap())
        .collect();
    synth(&x, &y, &["--quiet"]);
    for (i, f) in ["data.npy", "indices.npy", "indptr.npy", "shape.npy"]
        .iter()
        .enumerate()
    {
        assert_eq!(std::fs::read(x2.join(f)).unwrap(), before[i], "{f}");
        assert_eq!(
            std::fs::read(x.join(f)).unwrap(),
            before[i],
            "{f} rewritten"
        );
    }
    assert_eq!(std::fs::read(&y).unwrap(), std::fs::read(&y2).unwrap());

    let o = run(&[
        "train",
        "--data",
        s(&x),
        "--labels",
        s(&y),
        "--backend",
        "cpu",
        "--optimizer",
        "lbfgs",
        "--epochs",
        "50",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&x),
        "--labels",
        s(&y),
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(
        report["accuracy"].as_f64().unwrap() > 0.9,
        "the training rows were not learned: {report}"
    );
}
