//! `train` with a regularisation path, through the binary: `--C … --cv K --json --plot`
//! writes the chosen model, one JSON line per strength and the validation curve; folds
//! given as a file score as the same folds drawn by `--cv`.

mod common;

use std::process::Command;

use common::digits;
use softmax_regression::Folds;

const BIN: &str = env!("CARGO_BIN_EXE_softmax-regression");

/// `train --C … --cv K --json --plot`: one JSON line per strength and a summary, the
/// chosen model written with its λ, and the validation curve drawn.
#[test]
fn the_binary_cross_validates_a_path_and_writes_the_chosen_model() {
    let dir = common::scratch("path-cli");
    let (model, plot) = (dir.join("m.safetensors"), dir.join("curve.svg"));
    let o = Command::new(BIN)
        .args([
            "train",
            "--C",
            "0.1,10",
            "--cv",
            "3",
            "--json",
            "--backend",
            "cpu",
        ])
        .args([
            "--tol",
            "1e-6",
            "--epochs",
            "1000",
            "--out",
            model.to_str().unwrap(),
        ])
        .args(["--plot", plot.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (line, c) in lines.iter().zip([0.1, 10.0]) {
        assert_eq!(line["C"], c);
        assert_eq!(line["scores"].as_array().unwrap().len(), 3);
        assert_eq!(line["status"], "converged");
    }
    // On the digits, C = 10 fits the held-out rows far better than C = 0.1.
    assert!(lines[1]["score_mean"].as_f64() < lines[0]["score_mean"].as_f64());
    assert_eq!(lines[1]["chosen"], true);
    let summary = &lines[2];
    assert_eq!(summary["summary"], true);
    assert_eq!(summary["C"], 10.0);
    let l2 = summary["l2"].as_f64().unwrap();
    assert_eq!(l2, 1.0 / (10.0 * 1797.0));
    let (written, meta) = softmax_regression::Model::load(&model).unwrap();
    assert_eq!(written.n_classes(), 10);
    assert_eq!(meta["l2"].parse::<f64>().unwrap(), l2);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("Validation curve"),
        "{svg:.200}"
    );
    assert!(svg.contains("3-fold cross-validation, chosen C = 10"));
}

/// `--folds` reads another tool's folds; the same folds given as a file and drawn by
/// `--cv` with the same seed score the same.
#[test]
fn folds_from_a_file_score_as_the_same_folds_drawn_by_cv() {
    let dir = common::scratch("path-folds");
    let data = digits();
    let folds = Folds::stratified(data.labels(), 10, 3, 9).unwrap();
    let text: String = folds.fold_of().iter().map(|f| format!("{f}\n")).collect();
    std::fs::write(dir.join("folds.txt"), text).unwrap();
    let run = |extra: &[&str]| -> Vec<serde_json::Value> {
        let o = Command::new(BIN)
            .args([
                "train",
                "--l2",
                "1e-2,1e-3",
                "--json",
                "--backend",
                "cpu",
                "--seed",
                "9",
            ])
            .args(["--out", dir.join("m.safetensors").to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                // The clock differs run to run.
                v.as_object_mut().unwrap().remove("seconds");
                v
            })
            .collect()
    };
    let from_file = run(&["--folds", dir.join("folds.txt").to_str().unwrap()]);
    let drawn = run(&["--cv", "3"]);
    assert_eq!(from_file, drawn);
    assert_eq!(from_file[0]["l2"], 1e-2);
}

/// Cross-validation on a float .npy (which a run on a GPU without held-out rows would
/// memory-map) reads the file, as a --validation split does.
#[test]
fn cross_validation_reads_an_npy_file() {
    let dir = common::scratch("path-npy");
    let data = digits();
    let x = data.x().unwrap();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    common::write_npy(&dir.join("x.npy"), "<f4", &[1797, 64], &bytes);
    let y: Vec<u8> = data
        .labels()
        .iter()
        .flat_map(|&l| i64::from(l).to_le_bytes())
        .collect();
    common::write_npy(&dir.join("y.npy"), "<i8", &[1797], &y);
    let o = Command::new(BIN)
        .args(["train", "--l2", "1e-2,1e-3", "--cv", "2", "--quiet"])
        .args(["--data", dir.join("x.npy").to_str().unwrap()])
        .args(["--labels", dir.join("y.npy").to_str().unwrap()])
        .args(["--out", dir.join("m.safetensors").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("m.safetensors").exists());
}
