//! The crate's one error type. Every variant carries what a user needs to act on it:
//! the row and column of a bad value, the setting and the value that was refused, what
//! was tried when no adapter was found.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, from bad input to a lost GPU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The dataset has no rows.
    #[error("the dataset has no rows (m = 0)")]
    NoRows,
    /// The dataset has no feature columns.
    #[error("the dataset has no feature columns (n = 0)")]
    NoFeatures,
    /// Fewer than two classes were asked for.
    #[error("softmax regression needs at least 2 classes, got K = {n_classes}")]
    TooFewClasses {
        /// The number of classes given.
        n_classes: usize,
    },
    /// The label vector and the feature matrix disagree on the number of rows.
    #[error("{labels} labels were given for {rows} rows of features")]
    LengthMismatch {
        /// Rows of X.
        rows: usize,
        /// Entries in the label vector.
        labels: usize,
    },
    /// A feature value is NaN or infinite. Messages count rows and columns from 1.
    #[error(
        "feature value at row {}, column {} is {value}, not a finite number",
        .row + 1,
        .column + 1
    )]
    NonFinite {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        column: usize,
        /// The offending value.
        value: f32,
    },
    /// A float64 feature value is finite but beyond float32's range, so it would be read
    /// as an infinity. Messages count rows and columns from 1.
    #[error(
        "feature value {value:e} at row {}, column {} exceeds the float32 range (±3.4e38)",
        .row + 1,
        .column + 1
    )]
    BeyondFloat32 {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        column: usize,
        /// The value as stored.
        value: f64,
    },
    /// A feature value is beyond the range of the compact storage asked for. Messages
    /// count rows and columns from 1.
    #[error(
        "feature value {value} at row {}, column {} is beyond the ±{limit} range of {storage} storage; store X as f32 or u8",
        .row + 1,
        .column + 1
    )]
    OutOfStorageRange {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        column: usize,
        /// The offending value.
        value: f32,
        /// The storage, e.g. `f16`.
        storage: &'static str,
        /// The largest magnitude it holds.
        limit: f32,
    },
    /// A sample weight is negative or not finite. Messages count rows from 1.
    #[error("sample weight {value} at row {} is not a finite number ≥ 0", .row + 1)]
    InvalidWeight {
        /// Zero-based row.
        row: usize,
        /// The offending weight.
        value: f32,
    },
    /// A label is not in 0..K. Messages count rows from 1.
    #[error(
        "label {label} at row {} is outside 0..{n_classes} (K = {n_classes})",
        .row + 1
    )]
    LabelOutOfRange {
        /// Zero-based row.
        row: usize,
        /// The label found.
        label: u64,
        /// K.
        n_classes: usize,
    },
    /// An array passed in has the wrong shape.
    #[error("{what} has shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Which array.
        what: &'static str,
        /// The shape the call needs.
        expected: Vec<usize>,
        /// The shape it received.
        got: Vec<usize>,
    },
    /// A sparse matrix's arrays do not describe a valid CSR matrix.
    #[error("sparse X is malformed: {detail}")]
    InvalidSparse {
        /// What is wrong, naming the row and column where there is one.
        detail: String,
    },
    /// A training or device setting is out of range.
    #[error("setting `{name}` = {value} is invalid: {reason}")]
    InvalidSetting {
        /// Name of the setting (as in the settings type and the binary's flag).
        name: &'static str,
        /// The value given, formatted.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// No usable adapter was found.
    #[error("no GPU adapter found (tried: {tried}). {hint}")]
    NoAdapter {
        /// What was enumerated, with the filters in force.
        tried: String,
        /// How to get an adapter.
        hint: String,
    },
    /// The adapter refused to create a device.
    #[error("the adapter `{adapter}` refused to create a device: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// The device ran out of memory while allocating or running.
    #[error(
        "the GPU ran out of memory while {context}; try a smaller chunk size or batch size, or free GPU memory"
    )]
    OutOfMemory {
        /// What the crate was doing.
        context: String,
    },
    /// wgpu reported a validation or internal error. This is a bug in the crate or the driver.
    #[error("the GPU reported an error while {context}: {message}")]
    Gpu {
        /// What the crate was doing.
        context: String,
        /// wgpu's message.
        message: String,
    },
    /// The device was lost (driver reset, GPU removed).
    #[error("the GPU device was lost ({message}); restart the run, or pick another adapter")]
    DeviceLost {
        /// The driver's message.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong, as one sentence.
        message: String,
    },
    /// A model file is not a valid model.
    #[error("{path}: {message}")]
    ModelFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The device-memory budget cannot hold even the smallest plan.
    #[error(
        "the device memory budget of {} is too small: {detail}; raise it (--max-gpu-memory)",
        crate::util::human_bytes(*budget)
    )]
    BudgetTooSmall {
        /// The budget in bytes.
        budget: u64,
        /// What did not fit.
        detail: String,
    },
    /// The model and its optimizer state would not fit in the memory there is.
    #[error(
        "the model ({n} features × {k} classes) and its optimizer state need {}, more than the {} of memory available; check the number of features",
        crate::util::human_bytes(*bytes),
        crate::util::human_bytes(*available)
    )]
    ModelTooLarge {
        /// n.
        n: usize,
        /// K.
        k: usize,
        /// Bytes the run would hold for parameters and optimizer state.
        bytes: u64,
        /// Bytes of memory available.
        available: u64,
    },
    /// An operation needs X in memory but the dataset reads it from a source.
    #[error(
        "this needs the features in memory, but the dataset reads them from {from}; use the GPU backend without a hold-out split, or load the data into memory"
    )]
    NotInMemory {
        /// The source, described.
        from: String,
    },
    /// A checkpoint file cannot be read or does not fit this run.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What is wrong, as one sentence.
        message: String,
    },
    /// A wait on the device did not finish in time.
    #[error(
        "the GPU did not finish {context} within {seconds} s; the device may be hung or far too slow for this problem size"
    )]
    Timeout {
        /// What was being waited for.
        context: String,
        /// The limit in seconds.
        seconds: u64,
    },
}

impl Error {
    pub(crate) fn setting(
        name: &'static str,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidSetting {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn shape(what: &'static str, expected: &[usize], got: &[usize]) -> Self {
        Error::ShapeMismatch {
            what,
            expected: expected.to_vec(),
            got: got.to_vec(),
        }
    }
}
