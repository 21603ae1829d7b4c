//! Interrupting the real binary: the first SIGINT or SIGTERM finishes the current step,
//! writes the checkpoint and the model and exits 130; resuming gives the model of the run
//! that was never interrupted, bit for bit; a second signal exits at once.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use softmax_regression::Model;

const BIN: &str = env!("CARGO_BIN_EXE_softmax-regression");

/// The tests here time signals against running training, so they run one at a time rather
/// than compete for the cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}

/// Starts `args` with `--json`, waits for `epochs` epoch lines, sends `signals` one at a
/// time, each once the binary has said on stderr that it saw the one before, and returns
/// (exit code, stderr, seconds from the first signal to the exit).
fn interrupt(args: &[String], epochs: usize, signals: &[&str]) -> (i32, String, f64) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            // The acknowledgements of the first and of a second signal.
            if line.starts_with("interrupt: stopping") || line.starts_with("interrupted again") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    for _ in 0..epochs {
        let line = lines.next().expect("an epoch line").unwrap();
        assert!(line.contains("\"epoch\""), "{line}");
    }
    let sent = Instant::now();
    for name in signals {
        signal(&child, name);
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the binary acknowledges the signal");
    }
    lines.for_each(drop);
    let status = child.wait().unwrap();
    let seconds = sent.elapsed().as_secs_f64();
    (status.code().unwrap_or(-1), reader.join().unwrap(), seconds)
}

fn train_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--optimizer",
        "adam",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--epochs",
        "60",
        "--tol",
        "0",
        "--seed",
        "5",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn ctrl_c_half_way_then_resume_gives_the_uninterrupted_model() {
    let _serial = serial();
    let dir = common::scratch("interrupt-resume");
    let p = |name: &str| dir.join(name).display().to_string();
    let full = Command::new(BIN)
        .args(train_args(&["--quiet", "--out", &p("full.safetensors")]))
        .output()
        .unwrap();
    assert!(
        full.status.success(),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );

    let args = train_args(&[
        "--out",
        &p("part.safetensors"),
        "--checkpoint",
        &p("run.ckpt"),
        "--checkpoint-every",
        "5",
    ]);
    let (code, stderr, _) = interrupt(&args, 2, &["INT"]);
    assert_eq!(code, 130, "stderr: {stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains(&format!("--resume {}", p("run.ckpt"))),
        "{stderr}"
    );
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    assert!(Path::new(&p("part.safetensors")).exists());
    let checkpoint = softmax_regression::Checkpoint::load(Path::new(&p("run.ckpt"))).unwrap();
    assert!(
        checkpoint.epochs_done >= 2 && checkpoint.epochs_done < 60,
        "checkpoint at epoch {}",
        checkpoint.epochs_done
    );

    let mut resume = args.clone();
    resume.extend(["--resume".to_string(), p("run.ckpt"), "--quiet".to_string()]);
    common::resumes_to(
        &resume,
        Path::new(&p("part.safetensors")),
        Path::new(&p("full.safetensors")),
        "the resumed run",
    );
}

#[test]
fn sigterm_writes_the_model_and_exits_130() {
    let _serial = serial();
    let dir = common::scratch("interrupt-term");
    let model = dir.join("m.safetensors");
    let args = train_args(&["--out", model.to_str().unwrap()]);
    let (code, stderr, _) = interrupt(&args, 1, &["TERM"]);
    assert_eq!(code, 130, "stderr: {stderr}");
    assert!(stderr.contains("--checkpoint PATH"), "{stderr}");
    Model::load(&model).expect("the model written on SIGTERM loads");
}

#[test]
fn a_second_signal_exits_at_once() {
    let _serial = serial();
    // A full-batch gradient of the CPU reference over 40000 × 250 with K = 400 takes about
    // two seconds, so the second signal, sent as soon as the binary acknowledges the first,
    // arrives while it waits for the step to end.
    let dir = common::scratch("interrupt-twice");
    let (m, n, k) = (40_000, 250, 400);
    let mut rng = softmax_regression::SplitMix64::new(1);
    let x: Vec<u8> = (0..m * n)
        .flat_map(|_| (rng.normal() as f32).to_le_bytes())
        .collect();
    let y: Vec<u8> = (0..m)
        .flat_map(|_| (rng.below(k) as i64).to_le_bytes())
        .collect();
    common::write_npy(&dir.join("x.npy"), "<f4", &[m, n], &x);
    common::write_npy(&dir.join("y.npy"), "<i8", &[m], &y);
    let model = dir.join("m.safetensors");
    let p = |name: &str| dir.join(name).display().to_string();
    let args: Vec<String> = [
        "train",
        "--data",
        &p("x.npy"),
        "--labels",
        &p("y.npy"),
        "--backend",
        "cpu",
        "--optimizer",
        "gd",
        "--epochs",
        "1000",
        "--tol",
        "0",
        "--out",
        &p("m.safetensors"),
    ]
    .map(String::from)
    .to_vec();
    let (code, stderr, seconds) = interrupt(&args, 1, &["INT", "INT"]);
    assert_eq!(code, 130, "stderr: {stderr}");
    assert!(stderr.contains("exiting at once"), "{stderr}");
    assert!(
        !model.exists(),
        "the second signal should exit before the model is written"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "left {leftovers:?}");
    assert!(seconds < 10.0, "took {seconds} s to exit");
}

/// A cross-validated path interrupted in its second fold writes its checkpoint and exits
/// 130; the same command with --resume trains the remaining folds and the refit and writes
/// the model of the run that was never interrupted, bit for bit.
#[test]
fn a_cross_validation_interrupted_in_a_fold_resumes_to_the_same_model() {
    let _serial = serial();
    let dir = common::scratch("interrupt-path");
    let p = |name: &str| dir.join(name).display().to_string();
    let args = |out: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "train",
            "--l2",
            "1e-2,1e-3,1e-4",
            "--cv",
            "3",
            "--tol",
            "1e-6",
            "--out",
            out,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let full = Command::new(BIN)
        .args(args(&p("full.safetensors"), &["--quiet"]))
        .output()
        .unwrap();
    assert!(
        full.status.success(),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    let part = args(&p("part.safetensors"), &["--checkpoint", &p("path.ckpt")]);
    let mut child = Command::new(BIN)
        .args(&part)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in stderr.by_ref().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("fold 2/3") {
            break;
        }
    }
    assert!(seen.contains("fold 2/3"), "{seen}");
    // The line comes with the fold's first iteration.
    signal(&child, "INT");
    stderr.map_while(Result::ok).for_each(|line| {
        seen.push_str(&line);
        seen.push('\n');
    });
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{seen}");
    assert!(
        seen.contains(&format!("--resume {}", p("path.ckpt"))),
        "{seen}"
    );
    let checkpoint = softmax_regression::PathCheckpoint::load(Path::new(&p("path.ckpt"))).unwrap();
    assert_eq!(checkpoint.stage, 1, "interrupted in the second fold");
    let mut resume = part.clone();
    resume.extend([
        "--resume".to_string(),
        p("path.ckpt"),
        "--quiet".to_string(),
    ]);
    common::resumes_to(
        &resume,
        Path::new(&p("part.safetensors")),
        Path::new(&p("full.safetensors")),
        "the resumed cross-validation",
    );
}
