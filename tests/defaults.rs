//! What a user gets without asking: the engine `auto` picks (and says why), L-BFGS to
//! convergence by default, iterations called iterations, probabilities that read back
//! exactly with a header, a quiet `--quiet`, progress from `synth` off a terminal, and
//! refusals for labels a model cannot know and for resuming past the asked end.

mod common;

use common::{BIN, run, s, stderr, stdout};

use std::path::Path;
use std::process::{Command, Output};

use softmax_regression::AdapterRequest;

/// Runs the binary with `WGPU_BACKEND` and `WGPU_ADAPTER_NAME` removed, as a user who set
/// neither would.
fn run_plain(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("WGPU_BACKEND")
        .env_remove("WGPU_ADAPTER_NAME")
        .output()
        .expect("the binary runs")
}

/// The adapter `auto` would open, as the library ranks them: `Some(true)` for a software
/// rasteriser, `Some(false)` for hardware, `None` when there is none.
fn auto_adapter_is_software() -> Option<bool> {
    let request = AdapterRequest {
        backends: Some(wgpu::Backends::all()),
        ..AdapterRequest::default()
    };
    let (adapters, pick) = softmax_regression::gpu::list_adapters(&request);
    pick.map(|i| adapters[i].device_type == wgpu::DeviceType::Cpu)
}

#[test]
fn the_demo_trains_with_lbfgs_to_convergence_and_names_its_engine() {
    let dir = common::scratch("defaults-demo");
    let model = dir.join("m.safetensors");
    let o = run_plain(&["train", "--out", s(&model)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let first = err.lines().next().unwrap();
    assert!(first.contains("lbfgs on"), "{first}");
    match auto_adapter_is_software() {
        Some(false) => assert!(!first.contains("CPU reference"), "{first}"),
        Some(true) => assert!(
            first.contains("CPU reference") && first.contains("software rasteriser"),
            "auto trained on a software adapter without saying why: {first}"
        ),
        None => assert!(
            first.contains("CPU reference") && first.contains("no GPU adapter"),
            "{first}"
        ),
    }
    assert!(err.contains("converged: "), "{err}");
    assert!(
        err.contains(" iterations"),
        "L-BFGS steps are iterations: {err}"
    );
    assert!(!err.contains("epoch"), "L-BFGS steps called epochs: {err}");
    let accuracy: f64 = stdout(&o)
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no test accuracy in {:?}", stdout(&o)));
    assert!(accuracy >= 0.97, "test accuracy {accuracy}");
}

#[test]
fn auto_uses_a_software_adapter_when_the_run_needs_one_and_says_why() {
    let dir = common::scratch("defaults-needs");
    let model = dir.join("m.safetensors");
    let o = run_plain(&[
        "train",
        "--out",
        s(&model),
        "--x-storage",
        "f16",
        "--epochs",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let first = err.lines().next().unwrap();
    match auto_adapter_is_software() {
        Some(true) => assert!(
            !first.contains("CPU reference") && first.contains("--x-storage f16"),
            "{first}"
        ),
        Some(false) => assert!(!first.contains("CPU reference"), "{first}"),
        None => panic!("--x-storage f16 trained without an adapter: {first}"),
    }
}

#[test]
fn quiet_prints_nothing_when_training_converges() {
    let dir = common::scratch("defaults-quiet");
    let model = dir.join("m.safetensors");
    let o = run(&["train", "--backend", "cpu", "--out", s(&model), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "stderr under --quiet");
    assert_eq!(stdout(&o), "", "stdout under --quiet");
    // A run that stops short still says so.
    let o = run(&[
        "train",
        "--backend",
        "cpu",
        "--out",
        s(&model),
        "--quiet",
        "--epochs",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("did not converge"), "{}", stderr(&o));
}

#[test]
fn synth_reports_progress_off_a_terminal() {
    let dir = common::scratch("defaults-synth");
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    let o = run(&[
        "synth",
        "--rows",
        "50000",
        "--features",
        "8",
        "--classes",
        "3",
        "--out",
        s(&x),
        "--labels",
        s(&y),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let progress = err
        .lines()
        .filter(|l| l.starts_with("synth: ") && l.contains("%,"))
        .count();
    assert!(progress >= 3, "no progress lines off a terminal: {err}");
    let o = run(&[
        "synth",
        "--rows",
        "50000",
        "--features",
        "8",
        "--classes",
        "3",
        "--out",
        s(&x),
        "--labels",
        s(&y),
        "--quiet",
    ]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
}

#[test]
fn probabilities_have_a_header_and_read_back_exactly() {
    let dir = common::scratch("defaults-proba");
    let model = dir.join("m.safetensors");
    // Little regularisation on digits: many probabilities far below 1e-6.
    let o = run(&[
        "train",
        "--backend",
        "cpu",
        "--l2",
        "1e-5",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.code() == Some(0), "{}", stderr(&o));
    let digits = dir.join("digits.csv");
    let d = softmax_regression::datasets::digits().unwrap();
    let x = d.x().unwrap();
    let mut text = String::new();
    for row in x.outer_iter().take(200) {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    std::fs::write(&digits, text).unwrap();
    let o = run(&[
        "predict",
        "--model",
        s(&model),
        "--data",
        s(&digits),
        "--proba",
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0,1,2,3,4,5,6,7,8,9"));
    let (m, _) = softmax_regression::Model::load(&model).unwrap();
    let want = m
        .predict_proba(
            softmax_regression::Backend::Cpu,
            x.slice(ndarray::s![..200, ..]),
        )
        .unwrap();
    let mut tiny = 0;
    for (line, row) in lines.zip(want.outer_iter()) {
        let got: Vec<f32> = line.split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(got, row.to_vec(), "{line}");
        tiny += got.iter().filter(|&&p| p > 0.0 && p < 1e-6).count();
    }
    assert!(
        tiny > 100,
        "only {tiny} probabilities below 1e-6: the check proves little"
    );
}

#[test]
fn evaluate_refuses_names_against_a_model_of_class_numbers() {
    let dir = common::scratch("defaults-names");
    let model = dir.join("m.safetensors");
    let data = dir.join("d.csv");
    std::fs::write(&data, "0,1,0\n1,0,1\n0.9,0.1,1\n0.1,0.9,0\n").unwrap();
    let o = run(&[
        "train",
        "--backend",
        "cpu",
        "--data",
        s(&data),
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let named = dir.join("named.csv");
    std::fs::write(&named, "0.5,1,cat\n1,0,dog\n").unwrap();
    let o = run(&[
        "evaluate",
        "--backend",
        "cpu",
        "--model",
        s(&model),
        "--data",
        s(&named),
    ]);
    common::assert_bad_input("evaluate with names", &o, "\"cat\"");
}

#[test]
fn resume_with_no_more_epochs_than_the_checkpoint_is_refused() {
    let dir = common::scratch("defaults-resume");
    let model = dir.join("m.safetensors");
    let ckpt = dir.join("c.ckpt");
    let o = run(&[
        "train",
        "--backend",
        "cpu",
        "--optimizer",
        "adam",
        "--epochs",
        "4",
        "--checkpoint",
        s(&ckpt),
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(&model).unwrap();
    // The last checkpoint of a 4-epoch run is from before its last epoch.
    for epochs in ["1", "3"] {
        let o = run(&[
            "train",
            "--backend",
            "cpu",
            "--optimizer",
            "adam",
            "--epochs",
            epochs,
            "--resume",
            s(&ckpt),
            "--out",
            s(&model),
            "--quiet",
        ]);
        common::assert_bad_input("resume", &o, &format!("--epochs {epochs}"));
        assert!(
            stderr(&o).contains("already run 3 epochs"),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(std::fs::read(&model).unwrap(), before);
}

#[test]
fn predict_and_evaluate_read_the_label_column_the_model_was_trained_with() {
    let dir = common::scratch("defaults-label-column");
    let mut rng = softmax_regression::SplitMix64::new(11);
    let (mut first, mut features, mut wide) = (String::new(), String::new(), String::new());
    for i in 0..90 {
        let c = i % 3;
        let x: Vec<String> = (0..4)
            .map(|j| ((if j == c { 3.0 } else { 0.0 }) + rng.normal() * 0.5).to_string())
            .collect();
        first.push_str(&format!("{c},{}\n", x.join(",")));
        features.push_str(&format!("{}\n", x.join(",")));
        wide.push_str(&format!("{c},{},7,8\n", x.join(",")));
    }
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (first, features, wide) = (
        write("first.csv", &first),
        write("features.csv", &features),
        write("wide.csv", &wide),
    );
    let model = dir.join("m.safetensors");
    let o = run(&[
        "train",
        "--backend",
        "cpu",
        "--data",
        s(&first),
        "--label-column",
        "first",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let predict = |data: &Path| {
        let o = run(&[
            "predict",
            "--backend",
            "cpu",
            "--model",
            s(&model),
            "--data",
            s(data),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let from_features = predict(&features);
    assert_eq!(from_features.lines().count(), 90);
    assert_eq!(
        predict(&first),
        from_features,
        "the labelled file's label was read as a feature"
    );
    let o = run(&[
        "evaluate",
        "--backend",
        "cpu",
        "--model",
        s(&model),
        "--data",
        s(&first),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(v["accuracy"].as_f64().unwrap() > 0.95, "{v}");
    let o = run(&[
        "predict",
        "--backend",
        "cpu",
        "--model",
        s(&model),
        "--data",
        s(&wide),
    ]);
    common::assert_bad_input("too wide", &o, "or 5 with the label column");
    let o = run(&[
        "evaluate",
        "--backend",
        "cpu",
        "--model",
        s(&model),
        "--data",
        s(&features),
    ]);
    common::assert_bad_input("no label column", &o, "no labels");
}
