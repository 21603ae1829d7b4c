//! `softmax-regression`: train, predict, evaluate and inspect adapters from the command
//! line. A thin layer over the library: argument parsing, files, progress and output.
//! Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod plot;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ndarray::Array2;
use serde_json::json;
use softmax_regression::formats::{self, Format, Header, LabelColumn, LoadOptions};
use softmax_regression::gpu::XStorage;
use softmax_regression::output::OutputPath;
use softmax_regression::source::ChunkSource;
use softmax_regression::{
    AdapterRequest, Backend, Dataset, EpochReport, Error, GpuContext, Model, Optimizer, Schedule,
    Settings, Trainer,
};

/// `println!` that ignores a closed stdout (`… | head`), as Unix tools do.
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($t:tt)*) => {{
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "softmax-regression",
    version,
    about = "Train multinomial logistic (softmax) regression on any GPU through wgpu."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model. With no --data, trains on the embedded digits data (features / 16),
    /// holds out a seeded 20% and reports its accuracy.
    #[command(allow_negative_numbers = true)]
    Train(Box<TrainArgs>),
    /// Predict the class (or, with --proba, the K probabilities) of every row.
    Predict(PredictArgs),
    /// Accuracy, mean cross-entropy and the confusion matrix on labelled data.
    Evaluate(EvaluateArgs),
    /// List the adapters wgpu finds and the one `--backend auto` picks.
    Info(InfoArgs),
    /// Write a learnable problem (Gaussian clusters around random class means) to .npy
    /// files as it is generated, so files larger than RAM can be made.
    Synth(SynthArgs),
}

#[derive(Args)]
struct SynthArgs {
    /// Rows m.
    #[arg(long, value_name = "M")]
    rows: usize,
    /// Features n.
    #[arg(long, value_name = "N")]
    features: usize,
    /// Classes K.
    #[arg(long, value_name = "K")]
    classes: usize,
    /// Features file to write: float32 (m, n).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Labels file to write: int32 (m,).
    #[arg(long, value_name = "PATH")]
    labels: PathBuf,
    /// Seed of the class means and the rows.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Distance scale between class means in noise standard deviations (two means are
    /// about F·√2 apart).
    #[arg(long, value_name = "F", default_value_t = 3.0)]
    separation: f64,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Auto,
    Vulkan,
    Gl,
    Metal,
    Dx12,
    Cpu,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum XStorageArg {
    F32,
    F16,
    U8,
}

impl XStorageArg {
    fn storage(self) -> XStorage {
        match self {
            XStorageArg::F32 => XStorage::F32,
            XStorageArg::F16 => XStorage::F16,
            XStorageArg::U8 => XStorage::U8,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Gd,
    Sgd,
    Momentum,
    Adam,
    Lbfgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScheduleArg {
    Constant,
    Step,
    Cosine,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Npy,
    Idx,
    Libsvm,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Csv => Format::Csv,
            FormatArg::Npy => Format::Npy,
            FormatArg::Idx => Format::Idx,
            FormatArg::Libsvm => Format::Libsvm,
        }
    }
}

#[derive(Args)]
struct DataArgs {
    /// Features file: .csv/.csv.gz, .npy, IDX (*-idx3-ubyte[.gz]) or LIBSVM (.svm/.libsvm).
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// Labels file: integer .npy, IDX idx1, or text with one label per line. Required for
    /// .npy and IDX data; overrides the CSV/LIBSVM label column.
    #[arg(long, value_name = "PATH")]
    labels: Option<PathBuf>,
    /// CSV label column: last, first, or a 0-based index [default: last; for predict and
    /// evaluate, the column the model was trained with].
    #[arg(long, value_name = "last|first|N")]
    label_column: Option<LabelColumn>,
    /// File format, when the extension does not tell.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// LIBSVM files use 0-based feature indices (default: 1-based, the LIBSVM convention).
    #[arg(long)]
    zero_based: bool,
    /// CSV: whether the first row is a header. auto takes it for one when a feature cell
    /// is text, when its cells are the column numbers 0, 1, 2, … (pandas' names), or when
    /// its label is a word above numeric labels.
    #[arg(long, value_name = "yes|no|auto", default_value = "auto")]
    header: Header,
    /// CSV: the delimiter: ',', ';', '|' or tab [default: from the first line: a comma,
    /// unless it has none but has tabs or semicolons].
    #[arg(long, value_name = "C", value_parser = formats::parse_delimiter)]
    delimiter: Option<char>,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Number of classes K [default: largest integer label + 1, or the number of distinct
    /// string labels]. Lets a file miss some classes.
    #[arg(long, value_name = "K")]
    classes: Option<usize>,
    /// Passes over the data (iterations for lbfgs).
    #[arg(long, visible_alias = "max-iter", default_value_t = 100)]
    epochs: usize,
    /// Stop, converged, when the gradient's max-norm max|∇J| is at most this (checked
    /// after each epoch; scikit-learn's criterion). 0 runs every epoch.
    #[arg(long, value_name = "F", default_value_t = 1e-4)]
    tol: f64,
    /// Learning rate η.
    #[arg(long, value_name = "F", default_value_t = 0.01)]
    lr: f32,
    /// λ of the objective: mean cross-entropy + λ/2‖Θ‖² (bias unregularised).
    #[arg(long, value_name = "F", default_value_t = 1e-4)]
    l2: f64,
    /// Rows per mini-batch [default: full batch for gd and lbfgs, 64 for sgd, momentum and
    /// adam].
    #[arg(long, value_name = "B")]
    batch_size: Option<usize>,
    /// Update rule.
    #[arg(long, value_enum, default_value = "lbfgs")]
    optimizer: OptimizerArg,
    /// Seed of the mini-batch shuffle and of the --validation split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hold out this fraction of the rows (seeded) and report its loss and accuracy per
    /// epoch [default: 0.2 on the embedded digits data, none otherwise].
    #[arg(long, value_name = "F")]
    validation: Option<f64>,
    /// Where to compute: a GPU backend, `auto` (the best adapter), or `cpu` (the f64
    /// reference).
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
    /// Model file to write (safetensors).
    #[arg(long, value_name = "PATH", default_value = "model.safetensors")]
    out: PathBuf,
    /// Learning-rate schedule for gd, sgd, momentum and adam.
    #[arg(long, value_enum, default_value = "constant")]
    schedule: ScheduleArg,
    /// Epochs between decays of `--schedule step`.
    #[arg(long, value_name = "N", default_value_t = 30)]
    step_every: usize,
    /// Multiplier at each decay of `--schedule step`.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    step_factor: f32,
    /// Stop when the validation log-loss has not improved for N epochs and keep the best
    /// weights (needs --validation; gd, sgd, momentum, adam).
    #[arg(long, value_name = "N")]
    patience: Option<usize>,
    /// Class weights: `balanced` (m / (K · count), as scikit-learn) or K comma-separated
    /// numbers.
    #[arg(long, value_name = "balanced|W0,W1,…")]
    class_weight: Option<String>,
    /// Per-sample weights: a float .npy of shape (m,) or a text file with one number per
    /// line. The objective becomes (1/m) Σ w_i·CE_i + λ/2‖Θ‖².
    #[arg(long, value_name = "PATH")]
    sample_weights: Option<PathBuf>,
    /// Start from this model (warm start) instead of Θ = 0, b = 0. Taken as the function
    /// of the raw features it computes, whether or not it or this run is standardized.
    #[arg(long, value_name = "PATH")]
    init: Option<PathBuf>,
    /// Train on standardized features (x − μ) / σ, with each feature's mean μ and
    /// standard deviation σ (1 for a constant feature) learned from the training rows
    /// (after the --validation split) and stored in the model file; predict and evaluate
    /// then apply them to raw features.
    #[arg(long)]
    standardize: bool,
    /// Write a checkpoint (weights, optimizer state, epoch, data position, shuffle state)
    /// here every --checkpoint-every epochs and on Ctrl-C or SIGTERM, atomically.
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,
    /// Epochs (lbfgs: iterations) between checkpoints.
    #[arg(long, value_name = "N", default_value_t = 1)]
    checkpoint_every: usize,
    /// Most device memory the trainer may allocate, e.g. 512MiB or 4GB [default: no
    /// limit beyond the device's: X stays on the device when it can be allocated there, and
    /// is streamed from host memory or the mapped file when it cannot]. X larger than the
    /// budget is streamed chunk by chunk, double-buffered.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_gpu_memory: Option<u64>,
    /// How the GPU stores the features. f16 and u8 take a half and a quarter of f32's
    /// device memory and of the bytes each step reads; arithmetic stays f32. u8 stores
    /// codes q with x ≈ lo + step·q (lo the smallest value, step 1 when the features are
    /// integers spanning at most 255, such as 8-bit pixels, which is exact, else
    /// (max − min)/255); f16 fails on values beyond ±65504.
    #[arg(long, value_enum, default_value = "f32")]
    x_storage: XStorageArg,
    /// Continue the run saved in this checkpoint, with the same data and settings (more
    /// --epochs is fine); the result equals the uninterrupted run's bit for bit on the same
    /// adapter. Checkpoints keep going to this file unless --checkpoint names another.
    #[arg(long, value_name = "PATH")]
    resume: Option<PathBuf>,
    /// Draw the training curve (training objective J − min J on a log axis, validation
    /// log-loss, training and validation accuracy, per epoch or L-BFGS iteration) as an SVG
    /// file. Adds one pass over the training data per epoch for its accuracy.
    #[arg(long, value_name = "PATH.svg")]
    plot: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// One JSON object per line on stdout: one per epoch, then a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PredictArgs {
    /// Model file written by `train`.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Print the K class probabilities, comma separated, instead of the label.
    #[arg(long)]
    proba: bool,
    /// Output file [default: stdout].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
}

#[derive(Args)]
struct EvaluateArgs {
    /// Model file written by `train`.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
    /// Draw the confusion matrix as an SVG heat map: every count written out, each row
    /// coloured by its share of the true class on a log scale.
    #[arg(long, value_name = "PATH.svg")]
    plot: Option<PathBuf>,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "auto")]
    backend: BackendArg,
}

#[derive(Args)]
struct InfoArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A failure, split by exit code: bad input or usage (2) versus a runtime failure (1).
enum Failure {
    Input(String),
    Runtime(String),
    /// Stopped by a signal after saving what there was to save (exit 130).
    Interrupted(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::NoAdapter { .. }
            | Error::RequestDevice { .. }
            | Error::OutOfMemory { .. }
            | Error::Gpu { .. }
            | Error::DeviceLost { .. }
            | Error::Timeout { .. }
            | Error::Io { .. } => Failure::Runtime(e.to_string()),
            _ => Failure::Input(e.to_string()),
        }
    }
}

impl From<formats::FormatError> for Failure {
    fn from(e: formats::FormatError) -> Self {
        Failure::Input(e.to_string())
    }
}

type CliResult<T> = Result<T, Failure>;

fn main() -> ExitCode {
    quiet_mesa();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // clap's first line is the sentence; its usage block follows on later lines.
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("error: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Train(a) => train(*a),
        Command::Predict(a) => predict(a),
        Command::Evaluate(a) => evaluate(a),
        Command::Info(a) => info(a),
        Command::Synth(a) => synth(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
        Err(Failure::Interrupted(m)) => {
            eprintln!("{m}");
            ExitCode::from(EXIT_INTERRUPTED as u8)
        }
    }
}

/// Mesa's Vulkan driver prints "XDG_RUNTIME_DIR is invalid" on headless machines when the
/// variable is unset; point it at a private directory so our stderr holds only our words.
fn quiet_mesa() {
    let valid = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).is_dir());
    if !valid {
        let dir =
            std::env::temp_dir().join(format!("softmax-regression-runtime-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            // SAFETY: called first thing in main, before any other thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}

/// Where a run computes, decided before any data is read: an adapter to open, or the CPU
/// engine (`None`), and why, when that is not what `--backend` plainly says.
struct Engine {
    request: Option<AdapterRequest>,
    why: Option<String>,
}

impl Engine {
    fn is_gpu(&self) -> bool {
        self.request.is_some()
    }
}

/// Resolves `--backend`. `auto` takes the best adapter, except that a software rasteriser
/// (Mesa's llvmpipe or lavapipe) computes more slowly than the CPU engine: when that is all
/// there is, or nothing is found, `auto` uses the CPU engine, unless the run needs an
/// adapter (`needs_adapter` says why) or `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` ask for one.
/// `--backend vulkan` or `gl` always opens the adapter.
fn choose_engine(
    arg: BackendArg,
    x_storage: XStorageArg,
    needs_adapter: Option<String>,
) -> CliResult<Engine> {
    let mut request = match arg {
        BackendArg::Cpu if x_storage != XStorageArg::F32 => {
            return Err(Failure::Input(format!(
                "--x-storage {} needs a GPU backend; the CPU reference (--backend cpu) computes in f64 on the values as read",
                x_storage.storage().name()
            )));
        }
        BackendArg::Cpu => {
            return Ok(Engine {
                request: None,
                why: None,
            });
        }
        BackendArg::Auto => AdapterRequest::default(),
        BackendArg::Vulkan => AdapterRequest::backend("vulkan")?,
        BackendArg::Gl => AdapterRequest::backend("gl")?,
        BackendArg::Metal => AdapterRequest::backend("metal")?,
        BackendArg::Dx12 => AdapterRequest::backend("dx12")?,
    };
    request.x_storage = x_storage.storage();
    let asked_by_env = ["WGPU_BACKEND", "WGPU_ADAPTER_NAME"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    if arg != BackendArg::Auto || asked_by_env {
        return Ok(Engine {
            request: Some(request),
            why: None,
        });
    }
    let (adapters, pick) = softmax_regression::gpu::list_adapters(&request);
    let software = match pick.map(|i| &adapters[i]) {
        Some(a) if a.device_type != wgpu::DeviceType::Cpu => {
            return Ok(Engine {
                request: Some(request),
                why: None,
            });
        }
        Some(a) => format!("the best adapter, {}, is a software rasteriser", a.name),
        None => "no GPU adapter was found".to_string(),
    };
    Ok(match needs_adapter {
        Some(reason) => Engine {
            request: Some(request),
            why: Some(format!("{software}, used because {reason}")),
        },
        None => Engine {
            request: None,
            why: Some(format!(
                "{software}, slower than the CPU engine (--backend vulkan or gl uses it anyway)"
            )),
        },
    })
}

/// Opens the engine's adapter; `None` for the CPU engine.
fn open_engine(engine: &Engine) -> CliResult<Option<GpuContext>> {
    Ok(match &engine.request {
        Some(request) => Some(GpuContext::new(request)?),
        None => None,
    })
}

fn backend_of(ctx: &Option<GpuContext>) -> Backend<'_> {
    ctx.as_ref().map_or(Backend::Cpu, Backend::Gpu)
}

/// Checks, before any work starts, that each output (flag, path) can be written and that
/// none is the same file as an input or another output; returns the outputs in order.
/// A checkpoint continued in place (`--resume` with no other `--checkpoint`) is the one
/// output allowed to be an input.
fn check_outputs(
    outputs: &[(&str, &Path)],
    inputs: &[(&str, Option<&Path>)],
) -> CliResult<Vec<OutputPath>> {
    let mut checked: Vec<OutputPath> = Vec::with_capacity(outputs.len());
    for (i, &(flag, path)) in outputs.iter().enumerate() {
        let out = OutputPath::check(path)
            .map_err(|reason| Failure::Input(format!("{flag} {} {reason}", path.display())))?;
        let resumed_in_place = |input_flag: &str| {
            input_flag == "--resume" && (flag == "--resume" || flag == "--checkpoint")
        };
        let clash = inputs
            .iter()
            .filter_map(|&(f, p)| p.map(|p| (f, p)))
            .filter(|&(f, p)| p != Path::new("-") && !resumed_in_place(f))
            .chain(outputs[..i].iter().copied())
            .find(|&(_, other)| out.is_same_file(other));
        if let Some((other_flag, other)) = clash {
            return Err(Failure::Input(format!(
                "{flag} {} is the same file as {other_flag} {}; writing it would destroy that file, so name another path",
                path.display(),
                other.display()
            )));
        }
        checked.push(out);
    }
    Ok(checked)
}

fn describe_backend(ctx: &Option<GpuContext>) -> String {
    ctx.as_ref()
        .map_or_else(|| "CPU reference (f64)".to_string(), GpuContext::describe)
}

/// The engine in words, with why it was chosen when `--backend` did not say it plainly.
fn describe_engine(ctx: &Option<GpuContext>, engine: &Engine) -> String {
    match &engine.why {
        Some(why) => format!("{}, chosen by --backend auto: {why}", describe_backend(ctx)),
        None => describe_backend(ctx),
    }
}

/// What the labels were read as, for the first line: `K = 3 (integer labels 0…2)` or
/// `K = 3 (string labels: cat, dog, eel)`, with how many of the K classes the data holds
/// (`present`) when some are missing.
fn describe_classes(k: usize, present: usize, names: Option<&[String]>) -> String {
    match names {
        Some(names) => {
            let shown = match names {
                [first @ .., last] if names.len() > 6 => {
                    format!("{}, …, {last}", first[..3].join(", "))
                }
                _ => names.join(", "),
            };
            let unnamed = match k.saturating_sub(names.len()) {
                0 => String::new(),
                u => format!(", and {u} unnamed"),
            };
            format!("K = {k} (string labels: {shown}{unnamed})")
        }
        None => {
            let missing = if present < k {
                format!(", {present} of them present")
            } else {
                String::new()
            };
            format!(
                "K = {k} (integer labels 0…{}{missing})",
                k.saturating_sub(1)
            )
        }
    }
}

fn load_options(
    d: &DataArgs,
    require_labels: bool,
    csv_has_labels: bool,
    n_features: Option<usize>,
) -> LoadOptions {
    LoadOptions {
        format: d.format.map(Format::from),
        labels: d.labels.clone(),
        label_column: d.label_column.unwrap_or_default(),
        zero_based: d.zero_based,
        n_features,
        require_labels,
        // With a labels file, a CSV holds features only unless --label-column says which
        // of its columns is a label.
        csv_has_labels: csv_has_labels && (d.labels.is_none() || d.label_column.is_some()),
        header: d.header,
        delimiter: d.delimiter,
    }
}

fn settings_from(a: &TrainArgs) -> Settings {
    let optimizer = match a.optimizer {
        OptimizerArg::Gd => Optimizer::Gd,
        OptimizerArg::Sgd => Optimizer::Sgd,
        OptimizerArg::Momentum => Optimizer::Momentum,
        OptimizerArg::Adam => Optimizer::Adam,
        OptimizerArg::Lbfgs => Optimizer::Lbfgs,
    };
    let batch_size = match (a.batch_size, optimizer) {
        (Some(b), _) => Some(b),
        (None, Optimizer::Gd | Optimizer::Lbfgs) => None,
        (None, _) => Some(64),
    };
    Settings {
        epochs: a.epochs,
        learning_rate: a.lr,
        l2: a.l2,
        batch_size,
        optimizer,
        seed: a.seed,
        tol: a.tol,
        track_accuracy: a.plot.is_some(),
        patience: a.patience,
        standardize: a.standardize,
        schedule: match a.schedule {
            ScheduleArg::Constant => Schedule::Constant,
            ScheduleArg::Step => Schedule::Step {
                every: a.step_every,
                factor: a.step_factor,
            },
            ScheduleArg::Cosine => Schedule::Cosine,
        },
        ..Settings::default()
    }
}

/// Flag names for the settings the library names.
fn flag_of(setting: &str) -> &str {
    match setting {
        "learning_rate" => "--lr",
        "l2" => "--l2",
        "epochs" => "--epochs",
        "batch_size" => "--batch-size",
        "validation" => "--validation",
        "tol" => "--tol",
        "patience" => "--patience",
        "step_every" => "--step-every",
        "step_factor" => "--step-factor",
        "checkpoint_every" => "--checkpoint-every",
        "init" => "--init",
        other => other,
    }
}

/// Why a training run cannot be served by the CPU engine, if it cannot: a device budget, a
/// device storage of X, or a `.npy` X too large to read into memory, which only the
/// adapter streams from the mapped file.
fn train_needs_adapter(a: &TrainArgs) -> Option<String> {
    if a.max_gpu_memory.is_some() {
        return Some("--max-gpu-memory sets a device budget".into());
    }
    if a.x_storage != XStorageArg::F32 {
        return Some(format!(
            "--x-storage {} stores X on the device",
            a.x_storage.storage().name()
        ));
    }
    let path = a.data.data.as_deref()?;
    let format = a
        .data
        .format
        .map(Format::from)
        .or_else(|| Format::from_path(path));
    let size = std::fs::metadata(path).ok()?.len();
    let free = formats::available_memory()?;
    (format == Some(Format::Npy) && a.validation.is_none() && size > free / 2).then(|| {
        format!(
            "X ({}) is over half the free memory ({}), so it is streamed from the mapped file",
            softmax_regression::gpu::human_bytes(size),
            softmax_regression::gpu::human_bytes(free)
        )
    })
}

fn train(a: TrainArgs) -> CliResult<()> {
    // Settings first: a bad flag is reported before any file is read.
    let settings = settings_from(&a);
    let flag_error = |e: Error| match e {
        Error::InvalidSetting {
            name,
            value,
            reason,
        } => Failure::Input(format!("{} {value} is invalid: {reason}", flag_of(name))),
        other => other.into(),
    };
    let mut trainer = Trainer::new(settings.clone()).map_err(flag_error)?;
    if let Some(k) = a.classes
        && k > formats::MAX_CLASSES
    {
        return Err(Failure::Input(format!(
            "--classes {k} is invalid: at most {} classes are supported",
            formats::MAX_CLASSES
        )));
    }
    // Every output is checked before any data is read, so a run never ends unable to save.
    let checkpoint_out = a.checkpoint.as_ref().or(a.resume.as_ref());
    let checkpoint_flag = if a.checkpoint.is_some() {
        "--checkpoint"
    } else {
        "--resume"
    };
    let inputs = [
        ("--data", a.data.data.as_deref()),
        ("--labels", a.data.labels.as_deref()),
        ("--sample-weights", a.sample_weights.as_deref()),
        ("--init", a.init.as_deref()),
        ("--resume", a.resume.as_deref()),
    ];
    let mut outputs = vec![("--out", a.out.as_path())];
    if let Some(path) = checkpoint_out {
        outputs.push((checkpoint_flag, path.as_path()));
    }
    if let Some(path) = &a.plot {
        outputs.push(("--plot", path.as_path()));
    }
    let checked = check_outputs(&outputs, &inputs)?;
    let (out, plot_out) = (
        checked[0].clone(),
        a.plot.as_ref().map(|_| checked[checked.len() - 1].clone()),
    );
    if let Some(path) = checkpoint_out {
        trainer = trainer
            .with_checkpoints(path, a.checkpoint_every)
            .map_err(flag_error)?;
    }
    if let Some(path) = &a.resume {
        trainer = trainer.resume_from(path).map_err(flag_error)?;
        if a.init.is_some() {
            return Err(Failure::Input(
                "--init and --resume both set where training starts; pass one".to_string(),
            ));
        }
    }
    if let Some(v) = a.validation
        && !(v > 0.0 && v < 1.0)
    {
        return Err(Failure::Input(format!(
            "--validation {v} is invalid: must be a fraction strictly between 0 and 1"
        )));
    }

    let engine = choose_engine(a.backend, a.x_storage, train_needs_adapter(&a))?;
    let (source, mut data, k, names, notes) = match &a.data.data {
        None => {
            let digits = softmax_regression::datasets::digits()?;
            let (x, y) = (digits.x()?.to_owned(), digits.labels().to_vec());
            let k = a.classes.unwrap_or(10);
            let source = "embedded digits (1797 × 64, features / 16)".to_string();
            let data =
                Dataset::new(x, &y, k).map_err(|e| Failure::Input(format!("{source}: {e}")))?;
            (source, data, k, None, Vec::new())
        }
        Some(path) => {
            let format = a
                .data
                .format
                .map(Format::from)
                .or_else(|| Format::from_path(path));
            // A float .npy trained on a GPU without a hold-out split is memory-mapped, not
            // read: it can be larger than RAM, and is streamed to the device when it does
            // not fit there.
            let mapped = format == Some(Format::Npy)
                && a.validation.is_none()
                && engine.is_gpu()
                && !formats::is_stdin(path);
            if mapped {
                let x = softmax_regression::source::NpySource::open(path)?;
                let Some(label_path) = a.data.labels.as_deref() else {
                    return Err(Failure::Input(format!(
                        "{}: no labels; pass --labels",
                        path.display()
                    )));
                };
                let raw = formats::load_labels(label_path)?;
                if raw.len() != x.n_rows() {
                    return Err(Failure::Input(format!(
                        "{} has {} labels but {} has {} rows",
                        label_path.display(),
                        raw.len(),
                        path.display(),
                        x.n_rows()
                    )));
                }
                let (y, k, names) = formats::encode_labels(&raw, a.classes, label_path)?;
                let source = path.display().to_string();
                let data = Dataset::from_source(std::sync::Arc::new(x), &y, k)
                    .map_err(|e| Failure::Input(format!("{source}: {e}")))?;
                (source, data, k, names, Vec::new())
            } else {
                let loaded = formats::load(path, &load_options(&a.data, true, true, None))?;
                let raw = loaded.labels.ok_or_else(|| {
                    Failure::Input(format!("{}: no labels; pass --labels", path.display()))
                })?;
                let label_path = a.data.labels.as_deref().unwrap_or(path);
                let (y, k, names) = formats::encode_labels(&raw, a.classes, label_path)?;
                let source = if formats::is_stdin(path) {
                    "stdin".to_string()
                } else {
                    path.display().to_string()
                };
                let data = Dataset::new(loaded.x, &y, k)
                    .map_err(|e| Failure::Input(format!("{source}: {e}")))?;
                (source, data, k, names, loaded.notes)
            }
        }
    };
    if let Some(path) = &a.sample_weights {
        let data_path = a
            .data
            .data
            .clone()
            .unwrap_or_else(|| PathBuf::from("the embedded digits data"));
        let w = formats::load_weights(path, data.n_rows(), &data_path)?;
        data = data
            .with_sample_weights(&w)
            .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
    }
    if let Some(spec) = &a.class_weight {
        let weights = if spec == "balanced" {
            data.balanced_class_weights()
        } else {
            spec.split(',')
                .map(|v| v.trim().parse::<f32>())
                .collect::<Result<Vec<f32>, _>>()
                .map_err(|_| Failure::Input(format!("--class-weight {spec} is invalid: expected `balanced` or {k} comma-separated numbers")))?
        };
        if weights.len() != k {
            return Err(Failure::Input(format!(
                "--class-weight has {} values but there are {k} classes",
                weights.len()
            )));
        }
        data = data.with_class_weights(&weights).map_err(|e| match e {
            Error::InvalidSetting { reason, .. } => {
                Failure::Input(format!("--class-weight {spec} is invalid: {reason}"))
            }
            other => other.into(),
        })?;
    }
    let init = match &a.init {
        Some(path) => {
            let (model, _) = Model::load(path)?;
            if model.n_features() != data.n_features() || model.n_classes() != k {
                return Err(Failure::Input(format!(
                    "--init {} has {} features and {} classes but the data has {} and {k}",
                    path.display(),
                    model.n_features(),
                    model.n_classes(),
                    data.n_features()
                )));
            }
            Some(model)
        }
        None => None,
    };
    if a.patience.is_some() && a.validation.is_none() && a.data.data.is_some() {
        return Err(Failure::Input(
            "--patience needs a validation split; add --validation F".to_string(),
        ));
    }
    let validation = match (&a.data.data, a.validation) {
        (None, v) => Some(v.unwrap_or(0.2)),
        (Some(_), v) => v,
    };
    // Before the split shuffles the rows, so that an error names the file's sample.
    // Standardized values lie within ±√m, inside every storage's range for any practical m.
    let unchecked = if a.standardize {
        Ok(())
    } else {
        a.x_storage.storage().check(&data)
    };
    unchecked.map_err(|e| match e {
        Error::OutOfStorageRange {
            row,
            column,
            value,
            storage,
            limit,
        } => Failure::Input(format!(
            "{source}: feature {} of sample {} is {value}, beyond the ±{limit} range of --x-storage {storage}; use --x-storage f32 or u8",
            column + 1,
            row + 1
        )),
        other => other.into(),
    })?;
    // The classes the data holds, for the first line (k is bounded by MAX_CLASSES here).
    let mut seen = vec![false; k];
    for &class in data.labels() {
        if let Some(slot) = seen.get_mut(class as usize) {
            *slot = true;
        }
    }
    let present = seen.iter().filter(|&&s| s).count();
    let (train_data, held) = match validation {
        Some(f) => {
            let (t, h) = data.split(f, a.seed)?;
            (t, Some(h))
        }
        None => (data, None),
    };

    let ctx = open_engine(&engine)?;
    if let Some(ctx) = &ctx {
        ctx.set_memory_budget(a.max_gpu_memory);
    }
    let backend = backend_of(&ctx);
    if !a.quiet && !a.json {
        eprintln!(
            "training on {source}: {} rows × {} features, {}{}; {} on {}",
            train_data.n_rows(),
            train_data.n_features(),
            describe_classes(k, present, names.as_deref()),
            held.as_ref()
                .map(|h| format!(", {} held out", h.n_rows()))
                .unwrap_or_default(),
            settings.optimizer,
            describe_engine(&ctx, &engine)
        );
        // What the reader decided that the file did not say, for the user to check.
        if !notes.is_empty() {
            eprintln!("{source}: {}", notes.join("; "));
        }
    }
    let progress = Progress::new(
        settings.epochs,
        settings.optimizer.steps_name(),
        a.quiet || a.json,
    );
    let json = a.json;
    // From here on the first Ctrl-C or SIGTERM finishes the current step, checkpoints and
    // writes the model; a second one exits at once.
    let trainer = trainer.with_interrupt(interrupt_flag()?);
    let fit = trainer.fit(backend, &train_data, held.as_ref(), init.as_ref(), |r| {
        if json {
            outln!("{}", epoch_json(r));
        }
        progress.epoch(r);
        ControlFlow::Continue(())
    })?;
    progress.finish();

    let mut model = fit.model.clone();
    if let Some(names) = names.clone() {
        model = model.with_labels(names)?;
    }
    let mut meta = vec![
        ("optimizer".to_string(), settings.optimizer.to_string()),
        ("epochs".to_string(), settings.epochs.to_string()),
        (
            "learning_rate".to_string(),
            settings.learning_rate.to_string(),
        ),
        ("l2".to_string(), settings.l2.to_string()),
        (
            "batch_size".to_string(),
            settings
                .batch_size
                .map_or("full".to_string(), |b| b.to_string()),
        ),
        ("seed".to_string(), settings.seed.to_string()),
        ("data".to_string(), source.clone()),
    ];
    // predict and evaluate find the label in the same column of a CSV.
    let csv_labels = a.data.data.as_deref().is_some_and(|p| {
        a.data
            .format
            .map(Format::from)
            .or_else(|| Format::from_path(p))
            == Some(Format::Csv)
    }) && (a.data.labels.is_none() || a.data.label_column.is_some());
    if csv_labels {
        meta.push((
            "label_column".to_string(),
            a.data.label_column.unwrap_or_default().to_string(),
        ));
    }
    out.write(&model.to_safetensors(&meta)?)?;
    if let Some(plot_out) = &plot_out {
        let steps = match settings.optimizer {
            Optimizer::Lbfgs => String::new(),
            _ => format!(
                ", learning rate {}, batch {}",
                settings.learning_rate,
                settings
                    .batch_size
                    .map_or("full".to_string(), |b| b.to_string())
            ),
        };
        let title = [
            format!("Training curve: {source}"),
            format!(
                "{}{steps}, λ = {}; {} training rows{}, K = {k}",
                settings.optimizer,
                settings.l2,
                train_data.n_rows(),
                held.as_ref()
                    .map(|h| format!(", {} validation", h.n_rows()))
                    .unwrap_or_default()
            ),
        ];
        plot_out.write(training_curve(&fit.history, &title, settings.optimizer).as_bytes())?;
    }

    let last = fit.history.last();
    let held_metrics = last.and_then(|r| r.validation);
    if json {
        outln!(
            "{}",
            json!({
                "summary": true,
                "epochs": fit.history.len(),
                "loss": last.map(|r| r.loss),
                "grad_max_norm": last.map(|r| r.grad_max_norm),
                "status": fit.status.name(),
                "validation_loss": held_metrics.map(|m| m.log_loss),
                "validation_accuracy": held_metrics.map(|m| m.accuracy),
                "model": a.out.display().to_string(),
                "backend": describe_backend(&ctx),
                "seconds": last.map(|r| r.elapsed),
                "device_memory_peak": fit.device.map(|d| d.memory_peak),
                "device_memory_budget": a.max_gpu_memory,
                "streamed": fit.device.map(|d| d.streamed),
                "chunks": fit.device.map(|d| d.chunk_plan.chunks),
                "x_storage": a.x_storage.storage().name(),
                "standardized": settings.standardize,
                "badly_scaled": fit.scaling.map(|s| s.to_string()),
            })
        );
    } else {
        // A run that did not converge must not look like one that did, so that is said
        // even with --quiet; a converged run is quiet.
        if !a.quiet || fit.status != softmax_regression::Status::Converged {
            eprintln!("{}", fit.summary(&settings));
        }
    }
    if !json && !a.quiet {
        if let Some(r) = last {
            eprintln!(
                "final objective J = {:.6} after {} {} ({:.1} s)",
                r.loss,
                r.epoch,
                settings.optimizer.steps_name(),
                r.elapsed
            );
        }
        if let Some(m) = held_metrics {
            let what = if a.data.data.is_none() {
                "test"
            } else {
                "validation"
            };
            outln!(
                "{what} accuracy {:.4}, {what} log-loss {:.4} on {} held-out rows",
                m.accuracy,
                m.log_loss,
                held.as_ref().map_or(0, Dataset::n_rows)
            );
        }
        if let Some(d) = fit.device {
            eprintln!(
                "device memory: peak {}{}; X {} in {} chunk{} of up to {} rows",
                softmax_regression::gpu::human_bytes(d.memory_peak),
                a.max_gpu_memory
                    .map(|b| format!(" of a {} budget", softmax_regression::gpu::human_bytes(b)))
                    .unwrap_or_default(),
                if d.streamed { "streamed" } else { "resident" },
                d.chunk_plan.chunks,
                if d.chunk_plan.chunks == 1 { "" } else { "s" },
                d.chunk_plan.chunk_rows
            );
        }
        eprintln!("model written to {}", a.out.display());
    }
    match fit.status {
        softmax_regression::Status::Diverged => Err(Failure::Runtime(format!(
            "training diverged; {} holds the last finite weights",
            a.out.display()
        ))),
        softmax_regression::Status::Interrupted => {
            Err(Failure::Interrupted(match trainer.checkpoint_path() {
                Some(path) => format!(
                    "interrupted; {} holds the weights reached and {} the checkpoint: add --resume {} to the same command to continue",
                    a.out.display(),
                    path.display(),
                    path.display()
                ),
                None => format!(
                    "interrupted; {} holds the weights reached (pass --checkpoint PATH to be able to resume)",
                    a.out.display()
                ),
            }))
        }
        _ => Ok(()),
    }
}

/// A synth setting error as the flag that carries it (the settings are named as the flags).
fn synth_flag_error(e: Error) -> Failure {
    match e {
        Error::InvalidSetting {
            name,
            value,
            reason,
        } => Failure::Input(format!("--{name} {value} is invalid: {reason}")),
        other => other.into(),
    }
}

fn synth(a: SynthArgs) -> CliResult<()> {
    use softmax_regression::synth::{SynthSpec, write_problem};
    let spec = SynthSpec {
        rows: a.rows,
        features: a.features,
        classes: a.classes,
        seed: a.seed,
        separation: a.separation,
    };
    spec.validate().map_err(synth_flag_error)?;
    check_outputs(&[("--out", &a.out), ("--labels", &a.labels)], &[])?;
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(spec.rows as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows, {eta} left")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    // Off a terminal (a log file, CI), a plain line at each further tenth of the rows.
    let plain = !a.quiet && bar.is_none();
    let mut tenths_said = 0;
    let started = std::time::Instant::now();
    // Ctrl-C or SIGTERM stops between blocks and removes the partial files.
    let stop = interrupt_flag()?;
    let finished = write_problem(&spec, &a.out, &a.labels, |rows| {
        if let Some(bar) = &bar {
            bar.set_position(rows as u64);
        }
        let tenths = rows * 10 / spec.rows.max(1);
        if plain && tenths > tenths_said && rows < spec.rows {
            tenths_said = tenths;
            eprintln!(
                "synth: {rows} of {} rows ({}%, {:.1} s)",
                spec.rows,
                tenths * 10,
                started.elapsed().as_secs_f64()
            );
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .map_err(synth_flag_error)?;
    if !finished {
        return Err(Failure::Interrupted(
            "interrupted; nothing was written".to_string(),
        ));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !a.quiet {
        eprintln!(
            "wrote {} ({} × {} float32, {}) and {} ({} int32 labels in 0..{}) in {:.1} s",
            a.out.display(),
            spec.rows,
            spec.features,
            softmax_regression::gpu::human_bytes(spec.x_bytes()),
            a.labels.display(),
            spec.rows,
            spec.classes,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Parses a size such as `512MiB`, `4GB`, `1.5GiB` or `1000000` (bytes).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err("expected a size such as 512MiB, 4GB or a number of bytes".into()),
    };
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale < u64::MAX as f64 => Ok((v * scale) as u64),
        _ => Err("expected a size such as 512MiB, 4GB or a number of bytes".into()),
    }
}

/// Exit status of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: i32 = 130;

/// A flag set by the first SIGINT or SIGTERM, which also says on stderr that the run will
/// stop after the current step; a second signal exits at once with status 130.
fn interrupt_flag() -> CliResult<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::sync::atomic::Ordering;
    let raised = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure::Runtime(format!("cannot install the signal handler: {e}")))?;
    let flag = raised.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("interrupted again: exiting at once");
                std::process::exit(EXIT_INTERRUPTED);
            }
            eprintln!(
                "interrupt: stopping after the current step (interrupt again to quit at once)"
            );
        }
    });
    Ok(raised)
}

/// The figure of `train --plot`. The training objective J (cross-entropy plus λ/2‖Θ‖²) is
/// drawn as J − min J on a log axis, where the approach to the optimum stays visible long
/// after J itself looks flat; the validation log-loss has no λ term, so it gets its own
/// panel rather than sharing J's axis. `x_label` counts epochs or L-BFGS iterations.
fn training_curve(history: &[EpochReport], title: &[String], optimizer: Optimizer) -> String {
    use plot::{Panel, Scale, Series};
    let x_label = if optimizer == Optimizer::Lbfgs {
        "iteration"
    } else {
        "epoch"
    };
    let points = |f: &dyn Fn(&EpochReport) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let (blue, orange) = ("#1f77b4", "#ff7f0e");
    let mut panels = Vec::new();

    let objective = points(&|r| Some(r.loss).filter(|j| j.is_finite()));
    let (at, min) =
        objective.iter().copied().fold(
            (0.0, f64::INFINITY),
            |best, p| if p.1 < best.1 { p } else { best },
        );
    let gaps: Vec<(f64, f64)> = objective.iter().map(|&(x, j)| (x, j - min)).collect();
    // Six significant digits.
    let decimals = (5 - min.abs().max(1e-300).log10().floor() as i32).clamp(0, 12) as usize;
    let (y_label, shown) = if gaps.iter().filter(|p| p.1 > 0.0).count() >= 2 {
        (
            format!("J − min J (min J = {min:.decimals$} at {x_label} {at})"),
            gaps,
        )
    } else {
        // Too few points above the minimum for a line: J itself.
        ("J".to_string(), objective)
    };
    panels.push(Panel {
        title: "training objective J (cross-entropy + λ/2‖Θ‖²)".to_string(),
        y_label,
        scale: Scale::Log,
        series: vec![Series {
            name: "training",
            colour: blue,
            points: shown,
        }],
    });

    let validated = history.iter().any(|r| r.validation.is_some());
    if validated {
        panels.push(Panel {
            title: "validation log-loss (no λ term)".to_string(),
            y_label: "log-loss".to_string(),
            scale: Scale::Log,
            series: vec![Series {
                name: "validation",
                colour: orange,
                points: points(&|r| r.validation.map(|m| m.log_loss)),
            }],
        });
    }
    let mut accuracy = Vec::new();
    if history.iter().any(|r| r.train_accuracy.is_some()) {
        accuracy.push(Series {
            name: "training",
            colour: blue,
            points: points(&|r| r.train_accuracy),
        });
    }
    if validated {
        accuracy.push(Series {
            name: "validation",
            colour: orange,
            points: points(&|r| r.validation.map(|m| m.accuracy)),
        });
    }
    if !accuracy.is_empty() {
        panels.push(Panel {
            title: match accuracy.as_slice() {
                [one] => format!("{} accuracy", one.name),
                _ => "accuracy".to_string(),
            },
            y_label: "accuracy".to_string(),
            scale: Scale::Linear,
            series: accuracy,
        });
    }
    plot::training_curve(title, x_label, &panels)
}

fn epoch_json(r: &EpochReport) -> serde_json::Value {
    json!({
        "epoch": r.epoch,
        "loss": r.loss,
        "grad_max_norm": r.grad_max_norm,
        "train_accuracy": r.train_accuracy,
        "validation_loss": r.validation.map(|m| m.log_loss),
        "validation_accuracy": r.validation.map(|m| m.accuracy),
        "seconds": r.elapsed,
    })
}

/// A progress bar on a terminal, a plain line every tenth of the run otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    every: usize,
    /// "epochs" or "iterations".
    steps: &'static str,
}

impl Progress {
    fn new(epochs: usize, steps: &'static str, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(epochs as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{bar:30}} {{pos}}/{{len}} {steps}  {{msg}}  [{{elapsed_precise}}, {{per_sec}}]"
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            quiet,
            every: epochs.div_ceil(10).max(1),
            steps,
        }
    }

    fn line(r: &EpochReport) -> String {
        let mut s = format!("J = {:.5}", r.loss);
        if let Some(v) = r.validation {
            s.push_str(&format!(
                "  validation loss {:.4} accuracy {:.4}",
                v.log_loss, v.accuracy
            ));
        }
        s
    }

    fn epoch(&self, r: &EpochReport) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => {
                bar.set_message(Self::line(r));
                bar.inc(1);
            }
            None if r.epoch.is_multiple_of(self.every) || r.epoch == 1 => {
                eprintln!(
                    "{} {:>5}  {}  ({:.1} s)",
                    self.steps.trim_end_matches('s'),
                    r.epoch,
                    Self::line(r),
                    r.elapsed
                )
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Loads data for a model and checks its width. A CSV's label column is the one
/// `--label-column` names, else the one the model was trained with (its `label_column`
/// metadata), else the last; a CSV as wide as the model has features has none.
fn load_for_model(
    d: &DataArgs,
    model: &Model,
    meta: &HashMap<String, String>,
    model_path: &Path,
    need_labels: bool,
) -> CliResult<(Array2<f32>, Option<formats::RawLabels>, PathBuf)> {
    let path = d
        .data
        .clone()
        .ok_or_else(|| Failure::Input("--data PATH is required".to_string()))?;
    let n = model.n_features();
    let has_label_column = d.labels.is_none() || d.label_column.is_some();
    let mut options = load_options(d, need_labels, has_label_column, Some(n));
    options.label_column = d
        .label_column
        .or_else(|| meta.get("label_column").and_then(|c| c.parse().ok()))
        .unwrap_or_default();
    let loaded = formats::load(&path, &options)?;
    if loaded.x.ncols() != n {
        return Err(Failure::Input(format!(
            "{} has {} feature columns but the model {} was trained on {n}",
            path.display(),
            loaded.x.ncols(),
            model_path.display()
        )));
    }
    Ok((loaded.x, loaded.labels, path))
}

/// A probability as the shortest text that reads back as the same f32: plain decimals
/// from 1e-4 up, scientific notation below, so a small probability never prints as 0.
fn probability_text(v: f32) -> String {
    if v == 0.0 || v.abs() >= 1e-4 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The files `predict` and `evaluate` read.
fn model_inputs<'a>(model: &'a Path, d: &'a DataArgs) -> [(&'static str, Option<&'a Path>); 3] {
    [
        ("--model", Some(model)),
        ("--data", d.data.as_deref()),
        ("--labels", d.labels.as_deref()),
    ]
}

fn predict(a: PredictArgs) -> CliResult<()> {
    let out_path = match &a.out {
        Some(path) => {
            Some(check_outputs(&[("--out", path)], &model_inputs(&a.model, &a.data))?.remove(0))
        }
        None => None,
    };
    let (model, meta) = Model::load(&a.model)?;
    let (x, _, _) = load_for_model(&a.data, &model, &meta, &a.model, false)?;
    let ctx = open_engine(&choose_engine(a.backend, XStorageArg::F32, None)?)?;
    let mut out = String::new();
    if a.proba {
        let p = model.predict_proba(backend_of(&ctx), x.view())?;
        // A header naming each class, as pandas' read_csv expects.
        let header: Vec<String> = (0..model.n_classes())
            .map(|c| match model.labels() {
                Some(names) => csv_cell(&names[c]),
                None => c.to_string(),
            })
            .collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for row in p.outer_iter() {
            let cells: Vec<String> = row.iter().map(|&v| probability_text(v)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    } else {
        for class in model.predict(backend_of(&ctx), x.view())? {
            match model.labels() {
                Some(names) => out.push_str(&names[class as usize]),
                None => out.push_str(&class.to_string()),
            }
            out.push('\n');
        }
    }
    match &out_path {
        Some(path) => path.write(out.as_bytes())?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(out.as_bytes())
                .map_err(|e| Failure::Runtime(format!("cannot write to stdout: {e}")))?;
        }
    }
    Ok(())
}

fn evaluate(a: EvaluateArgs) -> CliResult<()> {
    let plot_out = match &a.plot {
        Some(path) => {
            Some(check_outputs(&[("--plot", path)], &model_inputs(&a.model, &a.data))?.remove(0))
        }
        None => None,
    };
    let (model, meta) = Model::load(&a.model)?;
    let (x, raw, path) = load_for_model(&a.data, &model, &meta, &a.model, true)?;
    let raw =
        raw.ok_or_else(|| Failure::Input(format!("{}: no labels; pass --labels", path.display())))?;
    let k = model.n_classes();
    // Labels are matched by name when the model has names, else read as class numbers.
    let y: Vec<u32> = match (model.labels(), &raw) {
        (Some(names), formats::RawLabels::Strings(s)) => s
            .iter()
            .enumerate()
            .map(|(row, l)| {
                names
                    .iter()
                    .position(|n| n == l)
                    .map(|c| c as u32)
                    .ok_or_else(|| {
                        Failure::Input(format!(
                            "{}: label {l:?} in row {} is not one of the model's classes",
                            path.display(),
                            row + 1
                        ))
                    })
            })
            .collect::<CliResult<_>>()?,
        (Some(names), formats::RawLabels::Ints(v)) => v
            .iter()
            .enumerate()
            .map(|(row, l)| {
                names
                    .iter()
                    .position(|n| *n == l.to_string())
                    .map(|c| c as u32)
                    .ok_or_else(|| {
                        Failure::Input(format!(
                            "{}: label {l} in row {} is not one of the model's classes",
                            path.display(),
                            row + 1
                        ))
                    })
            })
            .collect::<CliResult<_>>()?,
        // A model of class numbers knows no names: a name would be mapped to a class by
        // its sort order, and the accuracy would be that of a guess.
        (None, formats::RawLabels::Strings(s)) => {
            let label_path = a.data.labels.as_deref().unwrap_or(&path);
            return Err(Failure::Input(format!(
                "{}: label {:?} of sample 1 is not a class of the model {}, which was trained on class numbers 0 to {}",
                label_path.display(),
                s.first().map_or("", String::as_str),
                a.model.display(),
                k - 1
            )));
        }
        (None, raw) => {
            formats::encode_labels(raw, Some(k), a.data.labels.as_deref().unwrap_or(&path))?.0
        }
    };
    let data =
        Dataset::new(x, &y, k).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
    let ctx = open_engine(&choose_engine(a.backend, XStorageArg::F32, None)?)?;
    let metrics = model.evaluate(backend_of(&ctx), &data)?;
    let predicted = model.predict(backend_of(&ctx), data.x()?)?;
    let mut confusion = vec![vec![0usize; k]; k];
    for (&t, &p) in y.iter().zip(&predicted) {
        confusion[t as usize][p as usize] += 1;
    }
    let names: Vec<String> = model.labels().map_or_else(
        || (0..k).map(|c| c.to_string()).collect(),
        <[String]>::to_vec,
    );
    let precision: Vec<Option<f64>> = (0..k)
        .map(|c| {
            let col: usize = (0..k).map(|t| confusion[t][c]).sum();
            (col > 0).then(|| confusion[c][c] as f64 / col as f64)
        })
        .collect();
    let recall: Vec<Option<f64>> = (0..k)
        .map(|c| {
            let row: usize = confusion[c].iter().sum();
            (row > 0).then(|| confusion[c][c] as f64 / row as f64)
        })
        .collect();
    if let Some(plot_out) = &plot_out {
        let title = [
            format!(
                "Confusion matrix: accuracy {:.4} on {} rows",
                metrics.accuracy,
                y.len()
            ),
            format!("data {}, model {}", path.display(), a.model.display()),
        ];
        plot_out.write(plot::confusion_heat_map(&names, &confusion, &title).as_bytes())?;
    }
    if a.json {
        outln!(
            "{}",
            json!({
                "rows": y.len(),
                "accuracy": metrics.accuracy,
                "log_loss": metrics.log_loss,
                "classes": names,
                "confusion": confusion,
                "precision": precision,
                "recall": recall,
            })
        );
        return Ok(());
    }
    outln!("rows        {}", y.len());
    outln!("accuracy    {:.4}", metrics.accuracy);
    outln!("log-loss    {:.4}  (mean cross-entropy)", metrics.log_loss);
    outln!("\nconfusion matrix (rows: true class, columns: predicted)");
    let width = names.iter().map(String::len).max().unwrap_or(1).max(5);
    out!("{:>width$} ", "");
    for n in &names {
        out!("{n:>width$} ");
    }
    outln!(" precision  recall");
    let fmt = |v: Option<f64>| v.map_or_else(|| "     -".to_string(), |v| format!("{v:>6.3}"));
    for c in 0..k {
        out!("{:>width$} ", names[c]);
        for count in &confusion[c] {
            out!("{count:>width$} ");
        }
        outln!("    {}  {}", fmt(precision[c]), fmt(recall[c]));
    }
    Ok(())
}

fn info(a: InfoArgs) -> CliResult<()> {
    let (adapters, pick) = softmax_regression::gpu::list_adapters(&AdapterRequest::default());
    if a.json {
        let list: Vec<serde_json::Value> = adapters
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "name": s.name,
                    "backend": format!("{:?}", s.backend),
                    "device_type": format!("{:?}", s.device_type),
                    "driver": s.driver,
                    "compute": s.compute,
                    "auto": pick == Some(i),
                    "max_storage_buffer_binding_size": s.limits.max_storage_buffer_binding_size,
                    "max_buffer_size": s.limits.max_buffer_size,
                    "max_compute_workgroups_per_dimension": s.limits.max_compute_workgroups_per_dimension,
                    "max_compute_invocations_per_workgroup": s.limits.max_compute_invocations_per_workgroup,
                    "max_compute_workgroup_storage_size": s.limits.max_compute_workgroup_storage_size,
                })
            })
            .collect();
        outln!("{}", json!({ "adapters": list }));
        return Ok(());
    }
    if adapters.is_empty() {
        outln!(
            "no adapters found; on Linux without a GPU install mesa-vulkan-drivers, or use WGPU_BACKEND=gl"
        );
    }
    for (i, s) in adapters.iter().enumerate() {
        let l = &s.limits;
        outln!(
            "{}{} ({:?}, {:?}){}",
            if pick == Some(i) { "* " } else { "  " },
            s.name,
            s.backend,
            s.device_type,
            if s.compute {
                ""
            } else {
                " — no compute shaders"
            }
        );
        outln!("    driver: {}", s.driver);
        outln!(
            "    max storage binding {} MiB, max buffer {} MiB, workgroups ≤ {} per dimension, ≤ {} invocations, {} KiB workgroup memory",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroups_per_dimension,
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_storage_size >> 10
        );
    }
    let engine = choose_engine(BackendArg::Auto, XStorageArg::F32, None)?;
    match (&engine.why, pick.is_some()) {
        (Some(why), _) if !engine.is_gpu() => {
            outln!("--backend auto trains on the CPU engine here: {why}")
        }
        (_, true) => outln!("* = picked by --backend auto"),
        _ => {}
    }
    Ok(())
}
