//! Replays the fuzzing regression corpus (`tests/fuzz_corpus/<target>/`: hand-written
//! seeds, the minimised corpus of the fuzzing campaigns and every input that once crashed
//! a reader) through the same checks the cargo-fuzz targets under `fuzz/` run, so CI
//! guards the readers on stable Rust.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use softmax_regression::fuzzing;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "{}: the corpus has only {} inputs",
        dir.display(),
        files.len()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let bytes = std::fs::read(file).expect("corpus file");
            catch_unwind(AssertUnwindSafe(|| check(&bytes)))
                .err()
                .map(|_| file.display().to_string())
        })
        .collect();
    assert!(failures.is_empty(), "inputs that fail: {failures:#?}");
}

#[test]
fn csv_corpus() {
    replay("csv", fuzzing::csv);
}

#[test]
fn npy_corpus() {
    replay("npy", fuzzing::npy);
}

#[test]
fn idx_corpus() {
    replay("idx", fuzzing::idx);
}

#[test]
fn libsvm_corpus() {
    replay("libsvm", fuzzing::libsvm);
}

#[test]
fn model_file_corpus() {
    replay("model_file", fuzzing::model_file);
}

#[test]
fn npz_corpus() {
    replay("npz", fuzzing::npz);
}
