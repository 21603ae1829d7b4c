//! Output safety, end to end through the binary: nothing a user owns is destroyed. A FIFO
//! is written through, a symbolic link's target is replaced and the link kept, no output
//! may be an input or another output, every output location is checked before any work,
//! a killed run's temporaries do not pile up, and the same run writes the same bytes.
#![cfg(unix)]

mod common;

use common::{BIN, run, s, stderr};

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small labelled CSV (3 separable classes, 4 features) and a model trained on it.
fn data_and_model(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("train.csv");
    let mut rng = softmax_regression::SplitMix64::new(5);
    let mut text = String::new();
    for i in 0..60 {
        let c = i % 3;
        let cells: Vec<String> = (0..4)
            .map(|j| ((if j == c { 3.0 } else { 0.0 }) + rng.normal() * 0.5).to_string())
            .collect();
        text.push_str(&format!("{},{c}\n", cells.join(",")));
    }
    std::fs::write(&data, text).unwrap();
    let model = dir.join("model.safetensors");
    let o = run(&[
        "train",
        "--data",
        s(&data),
        "--backend",
        "cpu",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (data, model)
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo {}", path.display());
}

fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_fifo()
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_symlink()
}

#[test]
fn predict_writes_through_a_fifo_and_leaves_it_a_fifo() {
    let dir = common::scratch("out-fifo");
    let (data, model) = data_and_model(&dir);
    let fifo = dir.join("predictions.fifo");
    mkfifo(&fifo);
    let reader = Command::new("cat")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = run(&[
        "predict",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--backend",
        "cpu",
        "--out",
        s(&fifo),
    ]);
    let fifo_kept = is_fifo(&fifo);
    let mut reader = reader;
    if !fifo_kept {
        // Nothing will ever open the FIFO the reader waits on.
        let _ = reader.kill();
    }
    let read = reader.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fifo_kept, "the FIFO was replaced by a regular file");
    let lines: Vec<String> = String::from_utf8(read.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 60);
    assert!(
        lines.iter().all(|l| ["0", "1", "2"].contains(&l.as_str())),
        "{lines:?}"
    );
}

#[test]
fn every_output_flag_follows_symbolic_links_and_keeps_them() {
    let dir = common::scratch("out-links");
    let (data, model) = data_and_model(&dir);
    let real = dir.join("real");
    std::fs::create_dir_all(&real).unwrap();
    let link = |name: &str| {
        let l = dir.join(format!("{name}.link"));
        std::fs::write(real.join(name), b"older").unwrap();
        std::os::unix::fs::symlink(real.join(name), &l).unwrap();
        l
    };
    let (out, ckpt, curve) = (link("m"), link("ckpt"), link("curve"));
    let (pred, confusion, sx, sy) = (link("pred"), link("confusion"), link("x"), link("y"));
    let runs: [&[&str]; 4] = [
        &[
            "train",
            "--data",
            s(&data),
            "--backend",
            "cpu",
            "--epochs",
            "3",
            "--optimizer",
            "lbfgs",
            "--out",
            s(&out),
            "--checkpoint",
            s(&ckpt),
            "--plot",
            s(&curve),
            "--quiet",
        ],
        &[
            "predict",
            "--model",
            s(&model),
            "--data",
            s(&data),
            "--backend",
            "cpu",
            "--out",
            s(&pred),
        ],
        &[
            "evaluate",
            "--model",
            s(&model),
            "--data",
            s(&data),
            "--backend",
            "cpu",
            "--plot",
            s(&confusion),
        ],
        &[
            "synth",
            "--rows",
            "20",
            "--features",
            "3",
            "--classes",
            "2",
            "--out",
            s(&sx),
            "--labels",
            s(&sy),
            "--quiet",
        ],
    ];
    for args in runs {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    for (l, name) in [
        (&out, "m"),
        (&ckpt, "ckpt"),
        (&curve, "curve"),
        (&pred, "pred"),
        (&confusion, "confusion"),
        (&sx, "x"),
        (&sy, "y"),
    ] {
        assert!(is_symlink(l), "{} is no longer a link", l.display());
        let bytes = std::fs::read(real.join(name)).unwrap();
        assert!(
            bytes != b"older" && !bytes.is_empty(),
            "the target of {} was not rewritten",
            l.display()
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&real)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}

/// Runs a command that must be refused for naming an input (or another output) as an
/// output, and checks that the file it names is unchanged.
fn refused_and_unchanged(args: &[&str], kept: &Path, needle: &str) {
    let before = std::fs::read(kept).unwrap();
    let o = run(args);
    common::assert_bad_input(&format!("{args:?}"), &o, needle);
    assert_eq!(
        std::fs::read(kept).unwrap(),
        before,
        "{args:?} changed {}",
        kept.display()
    );
}

#[test]
fn an_output_that_is_an_input_or_another_output_is_refused() {
    let dir = common::scratch("out-collide");
    let (data, model) = data_and_model(&dir);
    let via_dots = dir.join("sub/../train.csv");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let data_link = dir.join("data.link");
    std::os::unix::fs::symlink(&data, &data_link).unwrap();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "0\n1\n2\n".repeat(20)).unwrap();
    let cases: Vec<(Vec<&str>, &Path, &str)> = vec![
        (
            vec![
                "train",
                "--data",
                s(&data),
                "--backend",
                "cpu",
                "--out",
                s(&data),
            ],
            &data,
            "--out",
        ),
        (
            vec![
                "train",
                "--data",
                s(&data),
                "--backend",
                "cpu",
                "--out",
                s(&via_dots),
            ],
            &data,
            "same file as --data",
        ),
        (
            vec![
                "train",
                "--data",
                s(&data_link),
                "--backend",
                "cpu",
                "--out",
                s(&data),
            ],
            &data,
            "same file as --data",
        ),
        (
            vec![
                "train",
                "--data",
                s(&data),
                "--backend",
                "cpu",
                "--out",
                s(&model),
                "--plot",
                s(&model),
            ],
            &model,
            "--plot",
        ),
        (
            vec![
                "train",
                "--data",
                s(&data),
                "--backend",
                "cpu",
                "--out",
                s(&model),
                "--checkpoint",
                s(&model),
            ],
            &model,
            "--checkpoint",
        ),
        (
            vec![
                "train",
                "--data",
                s(&data),
                "--backend",
                "cpu",
                "--init",
                s(&model),
                "--out",
                s(&model),
            ],
            &model,
            "same file as --init",
        ),
        (
            vec![
                "predict",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--out",
                s(&model),
            ],
            &model,
            "same file as --model",
        ),
        (
            vec![
                "predict",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--labels",
                s(&labels),
                "--out",
                s(&labels),
            ],
            &labels,
            "same file as --labels",
        ),
        (
            vec![
                "evaluate",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--plot",
                s(&data),
            ],
            &data,
            "same file as --data",
        ),
        (
            vec![
                "synth",
                "--rows",
                "5",
                "--features",
                "2",
                "--classes",
                "2",
                "--out",
                s(&data),
                "--labels",
                s(&data_link),
            ],
            &data,
            "same file as --out",
        ),
    ];
    for (args, kept, needle) in cases {
        refused_and_unchanged(&args, kept, needle);
    }
}

#[test]
fn resume_keeps_writing_its_own_checkpoint() {
    let dir = common::scratch("out-resume");
    let (data, _) = data_and_model(&dir);
    let ckpt = dir.join("run.ckpt");
    let model = dir.join("m.safetensors");
    let common = [
        "--data",
        s(&data),
        "--backend",
        "cpu",
        "--out",
        s(&model),
        "--quiet",
    ];
    let first = [
        &["train", "--epochs", "2", "--checkpoint", s(&ckpt)][..],
        &common,
    ]
    .concat();
    let o = run(&first);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = [
        &["train", "--epochs", "4", "--resume", s(&ckpt)][..],
        &common,
    ]
    .concat();
    let o = run(&again);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn unwritable_outputs_are_refused_before_any_work() {
    let dir = common::scratch("out-unwritable");
    let (data, model) = data_and_model(&dir);
    let under_a_file = dir.join("train.csv/m.safetensors");
    let missing = dir.join("absent/m.safetensors");
    let synth_y = dir.join("y.npy");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", "--data", s(&data), "--out", s(&missing)],
            "--out",
        ),
        (
            vec!["train", "--data", s(&data), "--out", s(&under_a_file)],
            "is not a directory",
        ),
        (
            vec!["train", "--data", s(&data), "--out", s(&dir)],
            "is a directory",
        ),
        (
            vec![
                "train",
                "--data",
                s(&data),
                "--out",
                s(&model),
                "--checkpoint",
                s(&missing),
            ],
            "--checkpoint",
        ),
        (
            vec![
                "train",
                "--data",
                s(&data),
                "--out",
                s(&model),
                "--plot",
                s(&missing),
            ],
            "--plot",
        ),
        (
            vec![
                "predict",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--out",
                s(&missing),
            ],
            "--out",
        ),
        (
            vec![
                "evaluate",
                "--model",
                s(&model),
                "--data",
                s(&data),
                "--plot",
                s(&missing),
            ],
            "--plot",
        ),
        (
            vec![
                "synth",
                "--rows",
                "5",
                "--features",
                "2",
                "--classes",
                "2",
                "--out",
                s(&missing),
                "--labels",
                s(&synth_y),
            ],
            "--out",
        ),
    ];
    for (args, needle) in cases {
        // The training data names a file that does not exist: a run that read it before
        // checking its outputs would complain about the data instead.
        let args: Vec<&str> = args
            .iter()
            .map(|a| {
                if *a == s(&data) {
                    "/nonexistent/data.csv"
                } else {
                    a
                }
            })
            .collect();
        let o = run(&args);
        common::assert_bad_input(&format!("{args:?}"), &o, needle);
        assert!(!dir.join("absent").exists());
    }
    assert!(!synth_y.exists(), "synth wrote its labels file");
}

#[test]
fn a_killed_synth_leaves_no_temporaries_for_the_next_run() {
    let dir = common::scratch("out-killed");
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    let mut child = Command::new(BIN)
        .args([
            "synth",
            "--rows",
            "4000000",
            "--features",
            "64",
            "--classes",
            "4",
            "--out",
            s(&x),
            "--labels",
            s(&y),
            "--quiet",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let temporaries = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    };
    let started = std::time::Instant::now();
    while temporaries().len() < 2 && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        temporaries().len(),
        2,
        "the killed run had not started writing"
    );
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
        s(&y),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(temporaries().is_empty(), "left behind: {:?}", temporaries());
    assert!(x.exists() && y.exists());
}

#[test]
fn the_same_run_writes_the_same_model_and_checkpoint_bytes() {
    let dir = common::scratch("out-bytes");
    let (data, _) = data_and_model(&dir);
    // A mini-batch run and an L-BFGS run: their checkpoints hold different state.
    let files = |name: &str, optimizer: &str| {
        let (path, ckpt) = (
            dir.join(format!("{name}.safetensors")),
            dir.join(format!("{name}.ckpt")),
        );
        let o = run(&[
            "train",
            "--data",
            s(&data),
            "--backend",
            "cpu",
            "--optimizer",
            optimizer,
            "--epochs",
            "5",
            "--tol",
            "0",
            "--checkpoint",
            s(&ckpt),
            "--out",
            s(&path),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        (std::fs::read(path).unwrap(), std::fs::read(ckpt).unwrap())
    };
    for optimizer in ["lbfgs", "adam"] {
        let first = files(&format!("{optimizer}-a"), optimizer);
        for run_name in ["b", "c", "d"] {
            let again = files(&format!("{optimizer}-{run_name}"), optimizer);
            assert!(
                first.0 == again.0,
                "{optimizer} run {run_name}: the model's bytes differ"
            );
            assert!(
                first.1 == again.1,
                "{optimizer} run {run_name}: the checkpoint's bytes differ"
            );
        }
        // Still files that the library (and so Python's safetensors) reads.
        let (m, meta) = softmax_regression::Model::from_safetensors(&first.0).unwrap();
        assert_eq!((m.n_features(), m.n_classes()), (4, 3));
        assert_eq!(meta.get("optimizer").map(String::as_str), Some(optimizer));
        let ckpt = dir.join(format!("{optimizer}-a.ckpt"));
        assert!(softmax_regression::Checkpoint::load(&ckpt).is_ok());
    }
}

#[test]
fn dev_stdout_is_written_through_into_a_pipe_or_at_the_end_of_a_redirected_file() {
    let dir = common::scratch("out-stdout");
    let (data, model) = data_and_model(&dir);
    let args = [
        "predict",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--backend",
        "cpu",
        "--out",
        "/dev/stdout",
    ];
    // Into a pipe.
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 60);
    // Into a file the shell opened with `>>`: what it held stays.
    let log = dir.join("log.txt");
    std::fs::write(&log, "kept\n").unwrap();
    let appending = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let o = Command::new(common::BIN)
        .args(args)
        .stdout(Stdio::from(appending))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("kept\n"),
        "the redirected file lost its content"
    );
    assert_eq!(text.lines().count(), 61);
}

/// `synth --density` writes into a directory only what it writes there: a directory
/// holding anything else, a file in its place, labels that would be one of its arrays or
/// a missing parent are refused before anything is written.
#[test]
fn synth_density_writes_only_its_own_directory() {
    let dir = common::scratch("out-synth-density");
    let synth = |out: &Path, labels: &Path| {
        run(&[
            "synth",
            "--rows",
            "50",
            "--features",
            "40",
            "--classes",
            "2",
            "--density",
            "0.1",
            "--out",
            s(out),
            "--labels",
            s(labels),
            "--quiet",
        ])
    };
    let y = dir.join("y.npy");
    let mine = dir.join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "keep").unwrap();
    let o = synth(&mine, &y);
    common::assert_bad_input("a directory of the user's", &o, "holds notes.txt");
    let file = dir.join("file");
    std::fs::write(&file, "older").unwrap();
    let o = synth(&file, &y);
    common::assert_bad_input("a file", &o, "is not a directory");
    let o = synth(&dir.join("absent/x"), &y);
    common::assert_bad_input("a missing parent", &o, "does not exist");
    assert_eq!(std::fs::read(&file).unwrap(), b"older");
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&mine), ["notes.txt"]);
    assert!(!y.exists(), "labels written by a refused run");

    // A directory it wrote, labels inside it: rewritten; labels over one of its arrays: no.
    let x = dir.join("x");
    let inside = x.join("y.npy");
    let o = synth(&x, &y);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = synth(&x, &inside);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = synth(&x, &inside);
    assert!(
        o.status.success(),
        "labels inside the directory: {}",
        stderr(&o)
    );
    let data = std::fs::read(x.join("data.npy")).unwrap();
    let o = synth(&x, &x.join("data.npy"));
    common::assert_bad_input("labels over data.npy", &o, "is the data.npy");
    assert_eq!(std::fs::read(x.join("data.npy")).unwrap(), data);
    assert_eq!(
        names(&x),
        [
            "data.npy",
            "indices.npy",
            "indptr.npy",
            "shape.npy",
            "y.npy"
        ]
    );
}

/// An interrupted `synth --density` removes its temporaries and the directory it made,
/// and exits 130.
#[test]
fn an_interrupted_synth_density_leaves_nothing() {
    let dir = common::scratch("out-synth-density-interrupted");
    let (x, y) = (dir.join("x"), dir.join("y.npy"));
    let child = Command::new(BIN)
        .args([
            "synth",
            "--rows",
            "4000000",
            "--features",
            "100000",
            "--classes",
            "2",
            "--density",
            "0.001",
            "--out",
            s(&x),
            "--labels",
            s(&y),
            "--quiet",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let temporaries = || {
        std::fs::read_dir(&x).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            })
            .count()
        })
    };
    while temporaries() < 4 && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(temporaries(), 4, "the run had not started writing");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(!x.exists(), "the directory it made is still there");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
