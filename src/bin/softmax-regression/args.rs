//! The command line as clap reads it: the subcommands, their flags and defaults, and the
//! small parsers and conversions from flag values to the library's types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use softmax_regression::formats::{self, Format, Header, LabelColumn, LoadOptions};
use softmax_regression::gpu::{XStorage, parse_size};

#[derive(Parser)]
#[command(
    name = "softmax-regression",
    version,
    about = "Train multinomial logistic (softmax) regression on any GPU through wgpu."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub struct SynthArgs {
    /// Rows m.
    #[arg(long, value_name = "M")]
    pub rows: usize,
    /// Features n.
    #[arg(long, value_name = "N")]
    pub features: usize,
    /// Classes K.
    #[arg(long, value_name = "K")]
    pub classes: usize,
    /// Features file to write: float32 (m, n). With --density, a directory to write SciPy's
    /// CSR arrays into: data.npy, indices.npy, indptr.npy and shape.npy.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Labels file to write: int32 (m,).
    #[arg(long, value_name = "PATH")]
    pub labels: PathBuf,
    /// Seed of the class means and the rows.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Distance scale between class means in noise standard deviations (two means are
    /// about F·√2 apart).
    #[arg(long, value_name = "F", default_value_t = 3.0)]
    pub separation: f64,
    /// Write sparse, text-like rows instead, each storing about D·N values (D in (0, 1]):
    /// Zipf-distributed columns, tf-idf values, labels from a linear teacher whose logits
    /// --separation scales.
    #[arg(long, value_name = "D")]
    pub density: Option<f64>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Auto,
    Vulkan,
    Gl,
    Metal,
    Dx12,
    Cpu,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XStorageArg {
    F32,
    F16,
    U8,
}

impl XStorageArg {
    pub fn storage(self) -> XStorage {
        match self {
            XStorageArg::F32 => XStorage::F32,
            XStorageArg::F16 => XStorage::F16,
            XStorageArg::U8 => XStorage::U8,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    Gd,
    Sgd,
    Momentum,
    Adam,
    Lbfgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CvScoreArg {
    /// Mean cross-entropy of the held-out rows (lower is better).
    LogLoss,
    /// Fraction of held-out rows classified right (higher is better).
    Accuracy,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScheduleArg {
    Constant,
    Step,
    Cosine,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Csv,
    Npy,
    Idx,
    Libsvm,
    Npz,
    /// A directory of CSR arrays: data.npy, indices.npy, indptr.npy [, shape.npy].
    CsrDir,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Csv => Format::Csv,
            FormatArg::Npy => Format::Npy,
            FormatArg::Idx => Format::Idx,
            FormatArg::Libsvm => Format::Libsvm,
            FormatArg::Npz => Format::Npz,
            FormatArg::CsrDir => Format::CsrDir,
        }
    }
}

#[derive(Args)]
pub struct DataArgs {
    /// Features file: .csv/.csv.gz, .npy, IDX (*-idx3-ubyte[.gz]), LIBSVM (.svm/.libsvm),
    /// SciPy sparse .npz (with --labels), or a directory of CSR arrays (data.npy,
    /// indices.npy, indptr.npy and optionally shape.npy, with --labels).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Labels file: integer .npy, IDX idx1, or text with one label per line. Required for
    /// .npy and IDX data; overrides the CSV/LIBSVM label column.
    #[arg(long, value_name = "PATH")]
    pub labels: Option<PathBuf>,
    /// CSV label column: last, first, or a 0-based index [default: last; for predict and
    /// evaluate, the column the model was trained with].
    #[arg(long, value_name = "last|first|N")]
    pub label_column: Option<LabelColumn>,
    /// File format, when the extension does not tell.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// LIBSVM files use 0-based feature indices (default: 1-based, the LIBSVM convention).
    #[arg(long)]
    pub zero_based: bool,
    /// CSV: whether the first row is a header. auto takes it for one when a feature cell
    /// is text, when its cells are the column numbers 0, 1, 2, … (pandas' names), or when
    /// its label is a word above numeric labels.
    #[arg(long, value_name = "yes|no|auto", default_value = "auto")]
    pub header: Header,
    /// CSV: the delimiter: ',', ';', '|' or tab [default: from the first line: a comma,
    /// unless it has none but has tabs or semicolons].
    #[arg(long, value_name = "C", value_parser = formats::parse_delimiter)]
    pub delimiter: Option<char>,
}

impl DataArgs {
    /// The format of the `--data` file: `--format`, else what its name says; `None` when
    /// there is no `--data` or neither tells.
    pub fn data_format(&self) -> Option<Format> {
        let path = self.data.as_deref()?;
        self.format
            .map(Format::from)
            .or_else(|| Format::from_path(path))
    }
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of classes K [default: largest integer label + 1, or the number of distinct
    /// string labels]. Lets a file miss some classes.
    #[arg(long, value_name = "K")]
    pub classes: Option<usize>,
    /// Passes over the data (iterations for lbfgs).
    #[arg(long, visible_alias = "max-iter", default_value_t = 100)]
    pub epochs: usize,
    /// Stop, converged, when the gradient's max-norm max|∇J| is at most this (checked
    /// after each epoch; scikit-learn's criterion). 0 runs every epoch.
    #[arg(long, value_name = "F", default_value_t = 1e-4)]
    pub tol: f64,
    /// Learning rate η.
    #[arg(long, value_name = "F", default_value_t = 0.01)]
    pub lr: f32,
    /// λ of the objective: mean cross-entropy + λ/2‖Θ‖² (bias unregularised). Several
    /// comma-separated values train a regularisation path, one lbfgs model per λ, and
    /// --cv, --folds or --validation chooses the model to write.
    #[arg(
        long,
        value_name = "F[,F…]",
        value_delimiter = ',',
        default_value = "1e-4"
    )]
    pub l2: Vec<f64>,
    /// A regularisation path of COUNT values of λ, log-spaced from HIGH down to LOW (both
    /// included), e.g. 1e-1:1e-5:9.
    #[arg(long, value_name = "HIGH:LOW:COUNT", conflicts_with_all = ["l2", "c"])]
    pub l2_path: Option<String>,
    /// The strength as scikit-learn's C instead of λ: C·Σ cross-entropy + ½‖Θ‖², that is
    /// λ = 1/(C·m) on m training rows (each fold's own m under --cv). One value, or a
    /// comma-separated path.
    #[arg(
        long = "C",
        id = "c",
        value_name = "C[,C…]",
        value_delimiter = ',',
        conflicts_with = "l2"
    )]
    pub c: Option<Vec<f64>>,
    /// Choose among the strengths by K-fold cross-validation (folds stratified by class,
    /// seeded by --seed), then refit on every row at the chosen one and write that model.
    #[arg(long, value_name = "K", conflicts_with_all = ["validation", "folds"])]
    pub cv: Option<usize>,
    /// Cross-validation folds given row by row: integers 0…K−1 in a .npy file or a text
    /// file with one per line (the same folds as another tool's).
    #[arg(long, value_name = "PATH", conflicts_with = "validation")]
    pub folds: Option<PathBuf>,
    /// How the held-out rows score the strengths of a path.
    #[arg(long, value_enum, default_value = "log-loss")]
    pub cv_score: CvScoreArg,
    /// Train a path one λ after another from the strongest, each model starting from the
    /// previous one's solution, instead of all of them at once from zero.
    #[arg(long)]
    pub warm_start: bool,
    /// Rows per mini-batch [default: full batch for gd and lbfgs, 64 for sgd, momentum and
    /// adam].
    #[arg(long, value_name = "B")]
    pub batch_size: Option<usize>,
    /// Update rule.
    #[arg(long, value_enum, default_value = "lbfgs")]
    pub optimizer: OptimizerArg,
    /// Seed of the mini-batch shuffle, of the --validation split and of the --cv folds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hold out this fraction of the rows (seeded) and report its loss and accuracy per
    /// epoch; with several strengths, the held-out rows choose among them [default: 0.2
    /// on the embedded digits data without --cv or --folds, none otherwise].
    #[arg(long, value_name = "F")]
    pub validation: Option<f64>,
    /// Where to compute: a GPU backend, `auto` (the best adapter), or `cpu` (the f64
    /// reference).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
    /// Model file to write (safetensors).
    #[arg(long, value_name = "PATH", default_value = "model.safetensors")]
    pub out: PathBuf,
    /// Learning-rate schedule for gd, sgd, momentum and adam.
    #[arg(long, value_enum, default_value = "constant")]
    pub schedule: ScheduleArg,
    /// Epochs between decays of `--schedule step`.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub step_every: usize,
    /// Multiplier at each decay of `--schedule step`.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub step_factor: f32,
    /// Stop when the validation log-loss has not improved for N epochs and keep the best
    /// weights (needs --validation; gd, sgd, momentum, adam).
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Class weights: `balanced` (m / (K · count), as scikit-learn) or K comma-separated
    /// numbers.
    #[arg(long, value_name = "balanced|W0,W1,…")]
    pub class_weight: Option<String>,
    /// Per-sample weights: a float .npy of shape (m,) or a text file with one number per
    /// line. The objective becomes (1/m) Σ w_i·CE_i + λ/2‖Θ‖².
    #[arg(long, value_name = "PATH")]
    pub sample_weights: Option<PathBuf>,
    /// Start from this model (warm start) instead of Θ = 0, b = 0. Taken as the function
    /// of the raw features it computes, whether or not it or this run is standardized.
    #[arg(long, value_name = "PATH")]
    pub init: Option<PathBuf>,
    /// Train on standardized features (x − μ) / σ, with each feature's mean μ and
    /// standard deviation σ (1 for a constant feature) learned from the training rows
    /// (after the --validation split) and stored in the model file; predict and evaluate
    /// then apply them to raw features.
    #[arg(long)]
    pub standardize: bool,
    /// Write a checkpoint (weights, optimizer state, epoch, data position, shuffle state)
    /// here every --checkpoint-every epochs and on Ctrl-C or SIGTERM, atomically.
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
    /// Epochs (lbfgs: iterations) between checkpoints.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub checkpoint_every: usize,
    /// Most device memory the trainer may allocate, e.g. 512MiB or 4GB [default: no
    /// limit beyond the device's: X stays on the device when it can be allocated there, and
    /// is streamed from host memory or the mapped file when it cannot]. X larger than the
    /// budget is streamed chunk by chunk, double-buffered.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_gpu_memory: Option<u64>,
    /// Train on several adapters at once, X's rows split evenly between them in the order
    /// given: `all`, or adapter numbers and fragments of names or backends as `info` lists them
    /// (`0,1`, `vulkan,gl`). Full batches only (lbfgs, or gd without --batch-size); the
    /// partials are added in this order, so a run repeats bit for bit. --max-gpu-memory
    /// holds on each device.
    #[arg(long, value_name = "all|I,J,…")]
    pub devices: Option<String>,
    /// How the GPU stores the features. f16 and u8 take a half and a quarter of f32's
    /// device memory and of the bytes each step reads; arithmetic stays f32. u8 stores
    /// codes q with x ≈ lo + step·q (lo the smallest value, step 1 when the features are
    /// integers spanning at most 255, such as 8-bit pixels, which is exact, else
    /// (max − min)/255); f16 fails on values beyond ±65504.
    #[arg(long, value_enum, default_value = "f32")]
    pub x_storage: XStorageArg,
    /// Continue the run saved in this checkpoint, with the same data and settings (more
    /// --epochs is fine); the result equals the uninterrupted run's bit for bit on the same
    /// adapter. Checkpoints keep going to this file unless --checkpoint names another.
    #[arg(long, value_name = "PATH")]
    pub resume: Option<PathBuf>,
    /// Draw the training curve (training objective J − min J on a log axis, validation
    /// log-loss, training and validation accuracy, per epoch or L-BFGS iteration) as an SVG
    /// file. Adds one pass over the training data per epoch for its accuracy.
    #[arg(long, value_name = "PATH.svg")]
    pub plot: Option<PathBuf>,
    /// No progress output on stderr (a path's table of results, on stdout, stays).
    #[arg(long)]
    pub quiet: bool,
    /// One JSON object per line on stdout: one per epoch, then a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PredictArgs {
    /// Model file written by `train`.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print the K class probabilities, comma separated, instead of the label.
    #[arg(long)]
    pub proba: bool,
    /// Output file [default: stdout].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// Model file written by `train`.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Draw the confusion matrix as an SVG heat map: every count written out, each row
    /// coloured by its share of the true class on a log scale.
    #[arg(long, value_name = "PATH.svg")]
    pub plot: Option<PathBuf>,
    /// Where to compute.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendArg,
}

#[derive(Args)]
pub struct InfoArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// How the library should read the files the data flags name.
pub fn load_options(
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
