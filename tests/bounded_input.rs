//! Input read no further than its format allows and as the user meant: a device that never
//! ends, a model or checkpoint file whose header promises more than it holds, uint8
//! `.npy` features (read and streamed), 3-D `.npy` refused, float64 values beyond
//! float32's range named, and rows and columns counted from 1 in every message.

mod common;

use common::{BIN, s};

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::write_npy;
use ndarray::Array2;
use softmax_regression::source::{ChunkSource, NpySource};
use softmax_regression::{Backend, Checkpoint, Dataset, Error, Model};

/// Runs the binary, killing it after `limit`: a read that never ends fails the test
/// instead of filling memory.
fn run_within(args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    (child.wait_with_output().unwrap(), elapsed)
}

#[test]
fn dev_zero_as_csv_exits_2_within_a_second() {
    let dir = common::scratch("bounded-dev-zero");
    let out = dir.join("m.safetensors");
    let (o, elapsed) = run_within(
        &[
            "train",
            "--data",
            "/dev/zero",
            "--format",
            "csv",
            "--backend",
            "cpu",
            "--out",
            s(&out),
        ],
        Duration::from_secs(20),
    );
    common::assert_bad_input("csv /dev/zero", &o, "/dev/zero: is not a text file");
    // The run is refused after one 64 KiB block; a second leaves room for a loaded machine.
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert!(!out.exists());
}

#[test]
fn dev_zero_as_a_model_exits_2_at_once() {
    let dir = common::scratch("bounded-model-zero");
    let x = dir.join("x.npy");
    write_npy(&x, "<f4", &[1, 2], &[0u8; 8]);
    let out = dir.join("p.csv");
    let (o, elapsed) = run_within(
        &[
            "predict",
            "--model",
            "/dev/zero",
            "--data",
            s(&x),
            "--out",
            s(&out),
        ],
        Duration::from_secs(20),
    );
    common::assert_bad_input(
        "model /dev/zero",
        &o,
        "/dev/zero: not a safetensors model file (its first 8 bytes declare a header of 0 bytes",
    );
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[test]
fn model_and_checkpoint_files_are_read_no_further_than_their_header() {
    let zero = Path::new("/dev/zero");
    match Model::load(zero) {
        Err(Error::ModelFile { message, .. }) => {
            assert!(message.contains("declare a header of 0 bytes"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match Checkpoint::load(zero) {
        Err(Error::Checkpoint { message, .. }) => {
            assert!(message.contains("is not a checkpoint file"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // A valid model with bytes after what its header accounts for.
    let dir = common::scratch("bounded-model-tail");
    let model = Model::zeros(2, 3);
    let mut bytes = model.to_safetensors(&[]).unwrap();
    let total = bytes.len();
    bytes.extend([0u8; 100]);
    let path = dir.join("tail.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    match Model::load(&path) {
        Err(Error::ModelFile { message, .. }) => assert!(
            message.contains(&format!(
                "goes on past the {total} bytes its header accounts for"
            )),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    // A header length beyond the format's limit is refused before anything else is read.
    let mut huge = (1u64 << 40).to_le_bytes().to_vec();
    huge.extend(b"{}");
    let path = dir.join("huge.safetensors");
    std::fs::write(&path, &huge).unwrap();
    match Model::load(&path) {
        Err(Error::ModelFile { message, .. }) => {
            assert!(
                message.contains("declare a header of 1099511627776 bytes"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// uint8 pixels, learnable: class c lights feature c.
fn pixels(m: usize, n: usize, k: usize) -> (Vec<u8>, Vec<u8>) {
    let mut rng = softmax_regression::SplitMix64::new(17);
    let mut x = Vec::with_capacity(m * n);
    let mut y = Vec::with_capacity(8 * m);
    for i in 0..m {
        let c = i % k;
        for j in 0..n {
            let base = if j == c { 180.0 } else { 40.0 };
            x.push((base + rng.normal() * 30.0).clamp(0.0, 255.0) as u8);
        }
        y.extend((c as i64).to_le_bytes());
    }
    (x, y)
}

#[test]
fn uint8_npy_streams_as_its_values() {
    let dir = common::scratch("bounded-u8-source");
    let (m, n) = (50, 6);
    let (x, _) = pixels(m, n, 3);
    let path = dir.join("x.npy");
    write_npy(&path, "|u1", &[m, n], &x);
    let source = NpySource::open(&path).unwrap();
    assert_eq!((source.n_rows(), source.n_features()), (m, n));
    assert_eq!(source.data_bytes(), m * n);
    assert!(source.describe().contains("uint8"), "{}", source.describe());
    let mut rows = vec![0f32; 7 * n];
    source.read_rows(11, &mut rows).unwrap();
    let want: Vec<f32> = x[11 * n..18 * n].iter().map(|&v| f32::from(v)).collect();
    assert_eq!(rows, want);
}

#[test]
fn streamed_npy_refuses_three_dimensions_and_names_values_beyond_float32() {
    let dir = common::scratch("bounded-streamed-checks");
    let path = dir.join("img.npy");
    write_npy(&path, "<f4", &[2, 2, 2], &[0u8; 32]);
    let err = NpySource::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("has shape (2, 2, 2) but X must be 2-D (m, n)"),
        "{err}"
    );

    let values = [0.5f64, 1.0, 2.0, 3.0, 4.0, -1e300];
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = dir.join("wide.npy");
    write_npy(&path, "<f8", &[3, 2], &bytes);
    let source = Arc::new(NpySource::open(&path).unwrap());
    let err = Dataset::from_source(source, &[0, 1, 0], 2)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "feature value -1e300 at row 3, column 2 exceeds the float32 range (±3.4e38)"
    );
}

#[test]
fn dataset_messages_count_rows_and_columns_from_1() {
    let mut x = Array2::<f32>::ones((4, 3));
    x[(2, 1)] = f32::NAN;
    let err = Dataset::new(x, &[0, 1, 0, 1], 2).unwrap_err().to_string();
    assert_eq!(
        err,
        "feature value at row 3, column 2 is NaN, not a finite number"
    );
    let err = Dataset::new(Array2::<f32>::ones((3, 2)), &[0, 3, 1], 3)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "label 3 at row 2 is outside 0..3 (K = 3)");
    let data = Dataset::new(Array2::<f32>::ones((3, 2)), &[0, 1, 0], 2).unwrap();
    let err = data
        .with_sample_weights(&[1.0, 1.0, -2.0])
        .unwrap_err()
        .to_string();
    assert_eq!(err, "sample weight -2 at row 3 is not a finite number ≥ 0");
}

/// Trains on uint8 pixels from a `.npy`, with `extra` flags; returns the run's JSON
/// summary and the model's accuracy on the pixels (as their values 0 to 255).
fn train_on_pixels(name: &str, extra: &[&str]) -> (serde_json::Value, f64) {
    let dir = common::scratch(name);
    let (m, n, k) = (90, 5, 3);
    let (x, y) = pixels(m, n, k);
    let (xp, yp, out) = (
        dir.join("x.npy"),
        dir.join("y.npy"),
        dir.join("m.safetensors"),
    );
    write_npy(&xp, "|u1", &[m, n], &x);
    write_npy(&yp, "<i8", &[m], &y);
    let mut args = vec![
        "train",
        "--data",
        s(&xp),
        "--labels",
        s(&yp),
        "--optimizer",
        "lbfgs",
        "--json",
        "--out",
        s(&out),
    ];
    args.extend(extra);
    let o = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        o.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let summary = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let (model, _) = Model::load(&out).unwrap();
    let x = Array2::from_shape_vec((m, n), x.iter().map(|&v| f32::from(v)).collect()).unwrap();
    let labels: Vec<u32> = (0..m).map(|i| (i % k) as u32).collect();
    let data = Dataset::new(x, &labels, k).unwrap();
    let accuracy = model.evaluate(Backend::Cpu, &data).unwrap().accuracy;
    (summary, accuracy)
}

#[test]
fn uint8_npy_trains_with_default_settings() {
    let (summary, accuracy) = train_on_pixels("bounded-u8-default", &[]);
    assert!(accuracy >= 0.9, "accuracy {accuracy}: {summary}");
}

/// uint8 pixels stored on the device as u8 codes: the data `--x-storage u8` is for. Needs
/// a GPU adapter (the test fails without one).
#[test]
fn uint8_npy_trains_with_u8_storage_on_the_gpu() {
    let (summary, accuracy) = train_on_pixels("bounded-u8-storage", &["--x-storage", "u8"]);
    assert_eq!(summary["x_storage"], "u8", "{summary}");
    assert!(
        summary["backend"]
            .as_str()
            .is_some_and(|b| b.contains("X stored as u8")),
        "{summary}"
    );
    assert!(accuracy >= 0.9, "accuracy {accuracy}: {summary}");
}
