//! `softmax_regression._native`: the crate's training, selection and model files for the
//! Python package. The estimators in `softmax_regression/_estimator.py` check every
//! argument and hand each array over as its address, length and element type; nothing
//! here is meant to be called directly.
//!
//! Training runs on a worker thread with the GIL released. The calling thread wakes every
//! 50 ms to deliver progress lines to Python and to run Python's signal handlers: Ctrl-C
//! raises `KeyboardInterrupt` there, which stops the worker after its current step.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ndarray::{Array1, Array2};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use softmax_regression as sr;
use softmax_regression::gpu::{XStorage, choose_adapters, list_adapters, software_only};
use softmax_regression::train::Choice;
use softmax_regression::{
    AdapterRequest, Backend, Dataset, EpochReport, Error, Folds, GpuContext, Model, Optimizer,
    Score, SelectionStep, Settings, Status, Strength, Trainer,
};

/// An array handed over by the Python layer: its address, number of elements and numpy
/// element type (`float32`, `float64`, `int32`, `int64`, `uint32`). The caller keeps the
/// array alive, C-contiguous and aligned for the whole call.
#[derive(FromPyObject)]
struct Buffer(usize, usize, String);

/// Raw buffer contents; `Send` because the Python caller keeps the memory alive and
/// unmodified by this module for the whole call, during which the worker reads it.
#[derive(Clone, Copy)]
struct Raw {
    address: usize,
    len: usize,
    dtype: Dtype,
}

#[derive(Clone, Copy, PartialEq)]
enum Dtype {
    F32,
    F64,
    I32,
    I64,
    U32,
}

impl Raw {
    fn new(b: Buffer) -> PyResult<Raw> {
        let dtype = match b.2.as_str() {
            "float32" => Dtype::F32,
            "float64" => Dtype::F64,
            "int32" => Dtype::I32,
            "int64" => Dtype::I64,
            "uint32" => Dtype::U32,
            other => {
                return Err(PyValueError::new_err(format!(
                    "internal: unsupported element type {other}"
                )));
            }
        };
        let size = match dtype {
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        };
        if b.1 > 0 && (b.0 == 0 || !b.0.is_multiple_of(size)) {
            return Err(PyValueError::new_err(
                "internal: an array's address is null or misaligned",
            ));
        }
        Ok(Raw {
            address: b.0,
            len: b.1,
            dtype,
        })
    }

    /// The elements as `T`.
    ///
    /// # Safety
    /// `T` must be the buffer's element type, and the Python caller must keep the array
    /// alive and unchanged while the slice is used.
    unsafe fn slice<T>(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller's contract; the address is non-null and aligned (checked in new).
        unsafe { std::slice::from_raw_parts(self.address as *const T, self.len) }
    }

    /// The values as f32 (floats only).
    fn to_f32(self) -> Vec<f32> {
        // SAFETY: the element type is checked by the match; the caller keeps the memory.
        unsafe {
            match self.dtype {
                Dtype::F32 => self.slice::<f32>().to_vec(),
                Dtype::F64 => self.slice::<f64>().iter().map(|&v| v as f32).collect(),
                _ => Vec::new(),
            }
        }
    }

    /// The values as u64 (integers only; a negative one wraps to a huge index, which the
    /// CSR checks refuse).
    fn to_u64(self) -> Vec<u64> {
        // SAFETY: as in to_f32.
        unsafe {
            match self.dtype {
                Dtype::I32 => self.slice::<i32>().iter().map(|&v| v as u64).collect(),
                Dtype::I64 => self.slice::<i64>().iter().map(|&v| v as u64).collect(),
                Dtype::U32 => self.slice::<u32>().iter().map(|&v| v as u64).collect(),
                _ => Vec::new(),
            }
        }
    }

    fn to_u32(self) -> Vec<u32> {
        self.to_u64().into_iter().map(|v| v as u32).collect()
    }
}

/// A float32 array used in place: the dataset built over it lives only within the call,
/// while the Python caller keeps the array referenced.
struct BorrowedF32(Raw);

impl AsRef<[f32]> for BorrowedF32 {
    fn as_ref(&self) -> &[f32] {
        // SAFETY: Features::dataset makes it for float32 buffers only; the caller keeps
        // the array alive and unchanged for the whole call.
        unsafe { self.0.slice::<f32>() }
    }
}

/// X as the Python layer hands it over: dense (rows, cols, values) or CSR (rows, cols,
/// indptr, indices, values).
#[derive(Clone, Copy)]
enum Features {
    Dense {
        rows: usize,
        cols: usize,
        values: Raw,
    },
    Csr {
        rows: usize,
        cols: usize,
        indptr: Raw,
        indices: Raw,
        values: Raw,
    },
}

impl Features {
    fn from_py(x: &Bound<'_, PyAny>) -> PyResult<Features> {
        if let Ok((rows, cols, values)) = x.extract::<(usize, usize, Buffer)>() {
            return Ok(Features::Dense {
                rows,
                cols,
                values: Raw::new(values)?,
            });
        }
        let (rows, cols, indptr, indices, values) =
            x.extract::<(usize, usize, Buffer, Buffer, Buffer)>()?;
        Ok(Features::Csr {
            rows,
            cols,
            indptr: Raw::new(indptr)?,
            indices: Raw::new(indices)?,
            values: Raw::new(values)?,
        })
    }

    /// The dataset: dense float32 X used in place, float64 X converted to f32 (one copy),
    /// sparse X as the crate's CSR; labels in 0..K and the sample weights.
    fn dataset(self, labels: Raw, n_classes: usize, weights: Option<Raw>) -> sr::Result<Dataset> {
        let labels = labels.to_u32();
        let data = match self {
            Features::Dense { rows, cols, values } => {
                if values.len != rows * cols {
                    return Err(shape("X", &[rows * cols], &[values.len]));
                }
                if values.dtype == Dtype::F32 {
                    let shared = Arc::new(BorrowedF32(values));
                    Dataset::from_shared(shared, rows, cols, &labels, n_classes)?
                } else {
                    let x = Array2::from_shape_vec((rows, cols), values.to_f32())
                        .map_err(|_| shape("X", &[rows, cols], &[values.len]))?;
                    Dataset::new(x, &labels, n_classes)?
                }
            }
            Features::Csr {
                rows,
                cols,
                indptr,
                indices,
                values,
            } => {
                let csr = sr::data::csr::Csr::new(
                    rows,
                    cols,
                    indptr.to_u64(),
                    indices.to_u32(),
                    values.to_f32(),
                )?;
                Dataset::from_csr(csr, &labels, n_classes)?
            }
        };
        match weights {
            Some(w) => data.with_sample_weights(&w.to_f32()),
            None => Ok(data),
        }
    }
}

fn setting(name: &'static str, value: impl std::fmt::Display, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn shape(what: &'static str, expected: &[usize], got: &[usize]) -> Error {
    Error::ShapeMismatch {
        what,
        expected: expected.to_vec(),
        got: got.to_vec(),
    }
}

/// The training settings the estimators pass, as a dict.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Options {
    l2: f64,
    solver: String,
    tol: f64,
    max_iter: usize,
    device: String,
    x_storage: String,
    max_gpu_memory: Option<u64>,
    seed: u64,
    batch_size: Option<usize>,
    learning_rate: f32,
}

impl Options {
    fn settings(&self) -> sr::Result<Settings> {
        let optimizer: Optimizer = self.solver.parse()?;
        let mini_batch = matches!(
            optimizer,
            Optimizer::Sgd | Optimizer::Momentum | Optimizer::Adam
        );
        Ok(Settings {
            epochs: self.max_iter,
            learning_rate: self.learning_rate,
            l2: self.l2,
            batch_size: if mini_batch { self.batch_size } else { None },
            optimizer,
            seed: self.seed,
            tol: self.tol,
            ..Settings::default()
        })
    }

    /// Whether the run needs an adapter even where `auto` would take the CPU engine.
    fn needs_adapter(&self) -> Option<&'static str> {
        if self.max_gpu_memory.is_some() {
            Some("max_gpu_memory sets a device budget")
        } else if self.x_storage != "f32" {
            Some("x_storage stores X on the device")
        } else {
            None
        }
    }
}

/// Opened adapters (one, or several for a list), kept for the life of the process:
/// opening one takes longer than a small fit. Keyed by the device string and X's storage.
type Contexts = Mutex<HashMap<(String, String), Arc<Vec<GpuContext>>>>;

fn contexts() -> &'static Contexts {
    static CONTEXTS: OnceLock<Contexts> = OnceLock::new();
    CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The adapters a fit trains on: none for the CPU engine, one, or several with X's rows
/// split evenly between them.
type Devices = Option<Arc<Vec<GpuContext>>>;

/// Where a fit computes ([`Devices`]), and that choice in words.
fn engine(options: &Options) -> sr::Result<(Devices, String)> {
    let storage = XStorage::parse(&options.x_storage)?;
    let device = options.device.trim();
    let several = device.contains(',') || device.eq_ignore_ascii_case("all");
    let mut request = match device.to_ascii_lowercase().as_str() {
        "cpu" => {
            if let Some(why) = options.needs_adapter() {
                return Err(setting(
                    "device",
                    "cpu",
                    format!("cannot be used: {why}, which needs a GPU adapter"),
                ));
            }
            return Ok((None, "the CPU engine (f64 reference)".into()));
        }
        _ if several => AdapterRequest::default(),
        "auto" | "gpu" => AdapterRequest::default(),
        b @ ("vulkan" | "gl" | "metal" | "dx12") => AdapterRequest::backend(b)?,
        other => {
            let mut request = AdapterRequest::default();
            match other.parse::<usize>() {
                Ok(index) => request.index = Some(index),
                Err(_) => request.name = Some(device.to_string()),
            }
            request
        }
    };
    request.x_storage = storage;
    if device.eq_ignore_ascii_case("auto") && options.needs_adapter().is_none() {
        if let Some(software) = software_only(&request) {
            return Ok((
                None,
                format!(
                    "the CPU engine, as {software} (device=\"vulkan\" or \"gl\" uses it anyway)"
                ),
            ));
        }
    }
    let key = (device.to_string(), storage.name().to_string());
    let mut cache = contexts().lock().unwrap_or_else(|e| e.into_inner());
    let devices = match cache.get(&key) {
        Some(c) => c.clone(),
        None => {
            let opened = if several {
                let indices = choose_adapters(&request, device)
                    .map_err(|why| setting("device", device, why))?;
                GpuContext::open_each(&request, &indices)?
            } else {
                vec![GpuContext::new(&request)?]
            };
            let opened = Arc::new(opened);
            cache.insert(key, opened.clone());
            opened
        }
    };
    drop(cache);
    for context in devices.iter() {
        context.set_memory_budget(options.max_gpu_memory);
    }
    let description = Backend::of(&devices).describe();
    Ok((Some(devices), description))
}

fn backend(devices: &Devices) -> Backend<'_> {
    Backend::of(devices.as_deref().map_or(&[], Vec::as_slice))
}

/// The crate's error as the Python exception a user expects: OSError for files,
/// RuntimeError for the device, ValueError for everything the input decides.
fn py_error(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Io { .. } => PyOSError::new_err(message),
        Error::NoAdapter { .. }
        | Error::RequestDevice { .. }
        | Error::OutOfMemory { .. }
        | Error::Gpu { .. }
        | Error::DeviceLost { .. }
        | Error::Timeout { .. } => PyRuntimeError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// Runs `work` on a worker thread with the GIL released. Meanwhile this thread delivers
/// the lines `work` sends to `progress` and runs Python's signal handlers every 50 ms; an
/// exception from either (KeyboardInterrupt on Ctrl-C) sets the flag `work` watches and
/// is raised once the worker has stopped.
fn run_interruptible<T: Send>(
    py: Python<'_>,
    progress: Option<Py<PyAny>>,
    work: impl FnOnce(Arc<AtomicBool>, Sender<String>) -> T + Send,
) -> PyResult<T> {
    let flag = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<String>();
    let (outcome, raised) = py.detach(move || {
        let mut raised: Option<PyErr> = None;
        let outcome = std::thread::scope(|scope| {
            let worker = scope.spawn({
                let flag = flag.clone();
                move || work(flag, tx)
            });
            loop {
                let line = match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(line) => Some(line),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(Duration::from_millis(20));
                        None
                    }
                };
                let finished = worker.is_finished();
                let mut lines: Vec<String> = line.into_iter().collect();
                if finished {
                    lines.extend(rx.try_iter());
                }
                Python::attach(|py| {
                    if let Some(p) = &progress {
                        for line in &lines {
                            if raised.is_none() {
                                if let Err(e) = p.call1(py, (line.as_str(),)) {
                                    raised = Some(e);
                                    flag.store(true, Ordering::SeqCst);
                                }
                            }
                        }
                    }
                    if let Err(e) = py.check_signals() {
                        flag.store(true, Ordering::SeqCst);
                        raised.get_or_insert(e);
                    }
                });
                if finished {
                    return worker.join();
                }
            }
        });
        (outcome, raised)
    });
    if let Some(e) = raised {
        return Err(e);
    }
    outcome.map_err(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        PyRuntimeError::new_err(format!("training stopped on an internal error: {what}"))
    })
}

/// One progress line for an iteration.
fn progress_line(report: &EpochReport) -> String {
    format!(
        "iteration {:>5}  J = {:.10}  max|∇J| = {:.3e}  {:.1} s",
        report.epoch, report.loss, report.grad_max_norm, report.elapsed
    )
}

fn f32_bytes<'py>(py: Python<'py>, values: &[f32]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, bytemuck::cast_slice(values))
}

/// A dict with Θ (n, K) row-major and b (K) as f32 bytes (`theta`, `bias`).
fn model_dict<'py>(py: Python<'py>, model: &Model) -> PyResult<Bound<'py, PyDict>> {
    let theta: Vec<f32> = model.theta().iter().copied().collect();
    let out = PyDict::new(py);
    out.set_item("theta", f32_bytes(py, &theta))?;
    out.set_item("bias", f32_bytes(py, &model.bias().to_vec()))?;
    Ok(out)
}

/// [`model_dict`] with how the training ended: `status`, `n_iter`, `loss`,
/// `grad_max_norm` and `engine`.
fn trained_dict<'py>(
    py: Python<'py>,
    model: &Model,
    status: Status,
    n_iter: usize,
    loss: Option<f64>,
    grad_max_norm: Option<f64>,
    engine: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let out = model_dict(py, model)?;
    out.set_item("status", status.name())?;
    out.set_item("n_iter", n_iter)?;
    out.set_item("loss", loss)?;
    out.set_item("grad_max_norm", grad_max_norm)?;
    out.set_item("engine", engine)?;
    Ok(out)
}

/// Θ (n, K) and b (K) from the bytes of a previous fit.
fn model_from(theta: &[u8], bias: &[u8], n: usize, k: usize) -> sr::Result<Model> {
    let theta: Vec<f32> = theta
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let bias: Vec<f32> = bias
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let theta = Array2::from_shape_vec((n, k), theta)
        .map_err(|_| shape("initial coefficients", &[n, k], &[n * k]))?;
    Model::new(theta, Array1::from_vec(bias))
}

/// The data every training call takes, as one tuple: X, the labels (0..K), K and the
/// sample weights (or None).
#[derive(FromPyObject)]
struct DataArg<'py>(Bound<'py, PyAny>, Buffer, usize, Option<Buffer>);

/// The training data, checked for element types and alignment.
struct Inputs {
    features: Features,
    labels: Raw,
    n_classes: usize,
    weights: Option<Raw>,
}

impl Inputs {
    fn new(data: DataArg<'_>) -> PyResult<Inputs> {
        Ok(Inputs {
            features: Features::from_py(&data.0)?,
            labels: Raw::new(data.1)?,
            n_classes: data.2,
            weights: data.3.map(Raw::new).transpose()?,
        })
    }

    fn dataset(&self) -> sr::Result<Dataset> {
        self.features
            .dataset(self.labels, self.n_classes, self.weights)
    }
}

/// Trains one model; returns a dict with `theta` (n, K) and `bias` (K) as f32 bytes,
/// `status`, `n_iter`, `loss`, `grad_max_norm`, `evaluations` and `engine`.
#[pyfunction]
#[pyo3(signature = (data, options, init, progress))]
fn fit<'py>(
    py: Python<'py>,
    data: DataArg<'py>,
    options: Options,
    init: Option<(Vec<u8>, Vec<u8>)>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let inputs = Inputs::new(data)?;
    let n_classes = inputs.n_classes;
    let n = match inputs.features {
        Features::Dense { cols, .. } | Features::Csr { cols, .. } => cols,
    };
    let init = init
        .map(|(t, b)| model_from(&t, &b, n, n_classes))
        .transpose()
        .map_err(py_error)?;
    let settings = options.settings().map_err(py_error)?;
    let outcome = run_interruptible(py, progress, |flag, tx| {
        let data = inputs.dataset()?;
        let (context, engine) = engine(&options)?;
        let _ = tx.send(format!("training on {engine}"));
        let trainer = Trainer::new(settings.clone())?.with_interrupt(flag.clone());
        let fit = trainer.fit(backend(&context), &data, None, init.as_ref(), |report| {
            let _ = tx.send(progress_line(report));
            if flag.load(Ordering::SeqCst) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok::<_, Error>((fit, engine))
    })?;
    let (fit, engine) = outcome.map_err(py_error)?;
    let last = fit.history.last();
    let out = trained_dict(
        py,
        &fit.model,
        fit.status,
        fit.history.len(),
        last.map(|r| r.loss),
        last.map(|r| r.grad_max_norm),
        &engine,
    )?;
    out.set_item("evaluations", fit.evaluations)?;
    out.set_item("summary", fit.summary(&settings))?;
    Ok(out)
}

/// Cross-validates a path of strengths over the given folds and refits at the best;
/// returns a dict with `scores` (S × F, f64 bytes), `iterations` (S × F), `statuses`,
/// `best`, and the refitted model as in [`fit`].
#[pyfunction]
#[pyo3(signature = (data, options, strengths, kind, fold_of, score, warm_start, progress))]
#[allow(clippy::too_many_arguments)]
fn cross_validate<'py>(
    py: Python<'py>,
    data: DataArg<'py>,
    options: Options,
    strengths: Vec<f64>,
    kind: &str,
    fold_of: Buffer,
    score: &str,
    warm_start: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let inputs = Inputs::new(data)?;
    let fold_of = Raw::new(fold_of)?.to_u32();
    let strengths: Vec<Strength> = strengths
        .iter()
        .map(|&v| match kind {
            "C" => Strength::C(v),
            _ => Strength::L2(v),
        })
        .collect();
    let score = match score {
        "log_loss" => Score::LogLoss,
        "accuracy" => Score::Accuracy,
        other => {
            return Err(PyValueError::new_err(format!(
                "scoring={other:?} is not supported: use \"neg_log_loss\" or \"accuracy\""
            )));
        }
    };
    let settings = options.settings().map_err(py_error)?;
    let outcome = run_interruptible(py, progress, |flag, tx| {
        let data = inputs.dataset()?;
        let folds = Folds::from_ids(fold_of)?;
        let (context, engine) = engine(&options)?;
        let _ = tx.send(format!(
            "cross-validating {} strengths over {} folds on {engine}",
            strengths.len(),
            folds.count()
        ));
        let trainer = Trainer::new(settings)?.with_interrupt(flag.clone());
        let choice = Choice {
            strengths: &strengths,
            score,
            warm_start,
        };
        let mut last_fold = usize::MAX - 1;
        let selection = trainer.cross_validate(
            backend(&context),
            &data,
            &folds,
            choice,
            |step: SelectionStep<'_>| {
                let fold = step.fold.unwrap_or(usize::MAX);
                if fold != last_fold {
                    last_fold = fold;
                    let _ = tx.send(match step.fold {
                        Some(f) => format!("fold {} of {}", f + 1, folds.count()),
                        None => "refit on every row at the chosen strength".to_string(),
                    });
                }
                if step.report.epoch.is_multiple_of(10) {
                    let _ = tx.send(format!(
                        "  strength {}: {}",
                        step.strength + 1,
                        progress_line(step.report)
                    ));
                }
                if flag.load(Ordering::SeqCst) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )?;
        Ok::<_, Error>((selection, engine))
    })?;
    let (selection, engine) = outcome.map_err(py_error)?;
    if selection.chosen.status == Status::Interrupted {
        return Err(PyRuntimeError::new_err("cross-validation was interrupted"));
    }
    let scores: Vec<f64> = selection
        .candidates
        .iter()
        .flat_map(|c| c.scores.iter().copied())
        .collect();
    let iterations: Vec<usize> = selection
        .candidates
        .iter()
        .flat_map(|c| c.iterations.iter().copied())
        .collect();
    let statuses: Vec<Vec<&str>> = selection
        .candidates
        .iter()
        .map(|c| c.statuses.iter().map(|s| s.name()).collect())
        .collect();
    let chosen = &selection.chosen;
    let out = trained_dict(
        py,
        &chosen.model,
        chosen.status,
        chosen.iterations,
        Some(chosen.loss),
        Some(chosen.grad_max_norm),
        &engine,
    )?;
    out.set_item("scores", PyBytes::new(py, bytemuck::cast_slice(&scores)))?;
    out.set_item("iterations", iterations)?;
    out.set_item("statuses", statuses)?;
    out.set_item("best", selection.best)?;
    Ok(out)
}

/// Writes the crate's safetensors model file: Θ (n, K) and b (K) from f32 bytes, the
/// class names, and extra metadata.
#[pyfunction]
#[pyo3(signature = (path, theta, bias, n_features, n_classes, labels, metadata))]
fn save_model(
    path: std::path::PathBuf,
    theta: Vec<u8>,
    bias: Vec<u8>,
    n_features: usize,
    n_classes: usize,
    labels: Vec<String>,
    metadata: Vec<(String, String)>,
) -> PyResult<()> {
    let model = model_from(&theta, &bias, n_features, n_classes)
        .and_then(|m| m.with_labels(labels))
        .map_err(py_error)?;
    model.save(&path, &metadata).map_err(py_error)
}

/// Reads a model file (the binary's or this package's); μ and σ of a standardized model
/// are folded into Θ and b, so the result takes raw features. Returns a dict with
/// `theta`, `bias`, `n_features`, `n_classes`, `labels` (or None) and `metadata`.
#[pyfunction]
fn load_model(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Bound<'_, PyDict>> {
    let (model, metadata) = Model::load(&path).map_err(py_error)?;
    let model = model.restandardized(None).map_err(py_error)?;
    let out = model_dict(py, &model)?;
    out.set_item("n_features", model.n_features())?;
    out.set_item("n_classes", model.n_classes())?;
    out.set_item("labels", model.labels().map(|l| l.to_vec()))?;
    out.set_item("metadata", metadata)?;
    Ok(out)
}

/// One adapter: index, name, backend, type, driver.
type AdapterRow = (usize, String, String, String, String);

/// The adapters wgpu finds, and the index `device="gpu"` takes.
#[pyfunction]
fn adapters(py: Python<'_>) -> (Vec<AdapterRow>, Option<usize>) {
    py.detach(|| {
        let (list, pick) = list_adapters(&AdapterRequest::default());
        let rows = list
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                (
                    i,
                    a.name,
                    format!("{:?}", a.backend),
                    format!("{:?}", a.device_type),
                    a.driver,
                )
            })
            .collect();
        (rows, pick)
    })
}

/// Bytes of a size such as `512MiB`, `4GB` or `1000000`, as the binary's
/// `--max-gpu-memory` reads it.
#[pyfunction]
fn parse_size(text: &str) -> PyResult<u64> {
    sr::gpu::parse_size(text).map_err(PyValueError::new_err)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(cross_validate, m)?)?;
    m.add_function(wrap_pyfunction!(save_model, m)?)?;
    m.add_function(wrap_pyfunction!(load_model, m)?)?;
    m.add_function(wrap_pyfunction!(adapters, m)?)?;
    m.add_function(wrap_pyfunction!(parse_size, m)?)?;
    m.add("FORMAT", sr::model_file::FORMAT)?;
    Ok(())
}
