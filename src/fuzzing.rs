//! Entry points for the fuzz targets under `fuzz/` and for `tests/fuzz_corpus.rs`, which
//! replays their regression corpus on stable Rust. Each function parses arbitrary bytes
//! with one reader and panics only when the reader breaks its contract: it must return
//! either an error whose message names the file, or data that is whole (at least one row
//! and one feature, every value finite, one label per row).
#![doc(hidden)]

use std::path::Path;

use crate::data::Csr;
use crate::formats::{
    Format, LoadOptions, Loaded, RawLabels, labels_from_bytes, load_bytes, load_sparse_bytes,
};
use crate::model::Model;

const PATH: &str = "fuzz-input";

fn check_error(message: &str) {
    assert!(
        message.starts_with(PATH),
        "error does not name the file: {message}"
    );
    assert!(!message.contains('\n'), "error is not one line: {message}");
}

fn check_loaded(result: Result<Loaded, crate::formats::FormatError>) {
    match result {
        Ok(Loaded { x, labels, .. }) => {
            assert!(x.nrows() > 0 && x.ncols() > 0, "empty matrix accepted");
            assert!(x.iter().all(|v| v.is_finite()), "non-finite value accepted");
            if let Some(labels) = labels {
                assert_eq!(labels.len(), x.nrows(), "label count differs from rows");
                check_labels(&labels);
            }
        }
        Err(e) => check_error(&e.message),
    }
}

fn check_labels(labels: &RawLabels) {
    if let RawLabels::Strings(names) = labels {
        assert!(names.iter().all(|s| !s.is_empty()), "empty label accepted");
    }
}

fn load(format: Format, bytes: &[u8], options: LoadOptions) {
    check_loaded(load_bytes(format, Path::new(PATH), bytes, &options));
}

/// CSV with a label column (detected header, last column) and without one.
pub fn csv(bytes: &[u8]) {
    let with_labels = LoadOptions {
        csv_has_labels: true,
        ..LoadOptions::default()
    };
    load(Format::Csv, bytes, with_labels);
    load(Format::Csv, bytes, LoadOptions::default());
}

/// `.npy` as features and as a labels file.
pub fn npy(bytes: &[u8]) {
    load(Format::Npy, bytes, LoadOptions::default());
    match labels_from_bytes(Some(Format::Npy), Path::new(PATH), bytes) {
        Ok(labels) => check_labels(&labels),
        Err(e) => check_error(&e.message),
    }
}

/// IDX as features and as a labels file.
pub fn idx(bytes: &[u8]) {
    load(Format::Idx, bytes, LoadOptions::default());
    match labels_from_bytes(Some(Format::Idx), Path::new(PATH), bytes) {
        Ok(labels) => check_labels(&labels),
        Err(e) => check_error(&e.message),
    }
}

/// LIBSVM with 1-based and 0-based indices, as sparse rows, and expanded to a fixed width.
pub fn libsvm(bytes: &[u8]) {
    load(Format::Libsvm, bytes, LoadOptions::default());
    load_sparse(Format::Libsvm, bytes, LoadOptions::default());
    load(
        Format::Libsvm,
        bytes,
        LoadOptions {
            zero_based: true,
            n_features: Some(8),
            ..LoadOptions::default()
        },
    );
}

/// Sparse rows as [`crate::formats::load_sparse`] reads them: on success they are a valid
/// CSR matrix, whole.
fn load_sparse(format: Format, bytes: &[u8], options: LoadOptions) {
    match load_sparse_bytes(format, Path::new(PATH), bytes, &options) {
        Ok(loaded) => {
            let m = loaded.x.n_rows;
            assert!(m > 0 && loaded.x.n_cols > 0, "empty matrix accepted");
            if let Err(e) = Csr::try_from(loaded.x) {
                panic!("the reader's rows are not a valid CSR matrix: {e}");
            }
            if let Some(labels) = loaded.labels {
                assert_eq!(labels.len(), m, "label count differs from rows");
                check_labels(&labels);
            }
        }
        Err(e) => check_error(&e.message),
    }
}

/// SciPy's sparse `.npz` as sparse rows and, when the matrix is small, as a dense one.
pub fn npz(bytes: &[u8]) {
    load_sparse(Format::Npz, bytes, LoadOptions::default());
    let small = load_sparse_bytes(Format::Npz, Path::new(PATH), bytes, &LoadOptions::default())
        .is_ok_and(|l| l.x.n_rows.saturating_mul(l.x.n_cols) <= 1 << 16);
    if small {
        load(Format::Npz, bytes, LoadOptions::default());
    }
}

/// A model file: on success the model is finite and its shapes agree.
pub fn model_file(bytes: &[u8]) {
    match Model::from_safetensors(bytes) {
        Ok((model, _)) => {
            let (n, k) = (model.n_features(), model.n_classes());
            assert_eq!(model.theta().dim(), (n, k));
            assert_eq!(model.bias().len(), k);
            assert!(model.theta().iter().all(|v| v.is_finite()));
            assert!(model.bias().iter().all(|v| v.is_finite()));
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "error is not one line: {message}");
        }
    }
}
