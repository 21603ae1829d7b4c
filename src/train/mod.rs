//! The optimizer loop: validated settings, full-batch or mini-batch steps on the CPU
//! reference or the GPU, and a report per epoch.

pub mod checkpoint;
pub(crate) mod settings;

use std::cell::RefCell;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ndarray::{Array1, ArrayView1, ArrayView2};

use crate::data::dataset::Dataset;
use crate::data::standardize::{FeatureStats, Scaling, Standardizer};
use crate::error::{Error, Result};
use crate::gpu::ChunkPlan;
use crate::gpu::chunks::{DeviceChunks, Rows};
use crate::gpu::kernels::UpdateEntry;
use crate::model::Model;
use crate::objective::CpuOracle;
use crate::objective::metrics::{Backend, Evaluator, Metrics, gpu_metrics};
use crate::objective::{GpuOracle, LossGrad, Oracle};
use crate::optim::lbfgs::{LbfgsSettings, LbfgsState, Start, Status};
use crate::params::{flatten, unflatten};
use crate::rng::SplitMix64;
use crate::step::Step;
use crate::step::StepDims;
use crate::train::checkpoint::{Checkpoint, data_fingerprint, trajectory_settings};
pub use crate::train::settings::{Optimizer, Schedule, Settings};

/// What the trainer reports after each epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// The objective J (with the λ term) over all training rows at the end of the epoch.
    pub loss: f64,
    /// Max-norm of ∇J at the end of the epoch.
    pub grad_max_norm: f64,
    /// Training accuracy, when [`Settings::track_accuracy`] is set.
    pub train_accuracy: Option<f64>,
    /// Metrics on the validation data, when given.
    pub validation: Option<Metrics>,
    /// Wall time since training started, in seconds.
    pub elapsed: f64,
}

/// The result of [`Trainer::fit`].
#[derive(Debug, Clone)]
pub struct Fit {
    /// The final parameters.
    pub model: Model,
    /// One report per epoch run.
    pub history: Vec<EpochReport>,
    /// How training ended. On [`Status::Diverged`] the model holds the last parameters
    /// with a finite loss.
    pub status: Status,
    /// How the GPU backend held the data, `None` on the CPU.
    pub device: Option<DeviceUse>,
    /// Set when the run ended without converging ([`Status::IterationLimit`] or
    /// [`Status::LineSearchFailed`]) on features that were not standardized and whose
    /// scales differ widely: the likely reason, which [`Fit::summary`] reports.
    pub scaling: Option<Scaling>,
}

/// How the training data sat on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceUse {
    /// The row chunks.
    pub chunk_plan: ChunkPlan,
    /// X was streamed chunk by chunk (it did not fit the device or the memory budget)
    /// rather than resident.
    pub streamed: bool,
    /// The most bytes the context's buffers held at once during the fit (see
    /// [`crate::GpuContext::memory_peak`]; the fit starts a new measurement).
    pub memory_peak: u64,
}

impl DeviceUse {
    /// The use of a GPU backend's problem laid out as (chunks, streamed), with the
    /// context's peak so far; `None` on the CPU.
    fn of(backend: Backend<'_>, device: Option<(ChunkPlan, bool)>) -> Option<Self> {
        match (backend, device) {
            (Backend::Gpu(ctx), Some((chunk_plan, streamed))) => Some(DeviceUse {
                chunk_plan,
                streamed,
                memory_peak: ctx.memory_peak(),
            }),
            _ => None,
        }
    }
}

impl Fit {
    /// A fit holding the parameters w = (Θ row-major, b) of an (n, K) problem.
    fn of(
        w: &[f32],
        (n, k): (usize, usize),
        history: Vec<EpochReport>,
        status: Status,
        device: Option<DeviceUse>,
    ) -> Result<Self> {
        let (theta, bias) = unflatten(w, n, k);
        Ok(Fit {
            model: Model::new(theta, bias)?,
            history,
            status,
            device,
            scaling: None,
        })
    }

    /// One sentence on how training ended, with what to try when it did not converge.
    pub fn summary(&self, settings: &Settings) -> String {
        let last = self.history.iter().rev().find(|r| r.loss.is_finite());
        let norm = last.map_or(f64::NAN, |r| r.grad_max_norm);
        let steps = settings.optimizer.steps_name();
        match self.status {
            Status::Converged => format!(
                "converged: max |∇J| = {norm:.2e} ≤ tol {:.1e} after {} {steps}",
                settings.tol,
                self.history.len()
            ),
            Status::IterationLimit if self.scaling.is_some() => format!(
                "did not converge: max |∇J| = {norm:.2e} is above tol {:.1e} after {} {steps}; the features look badly scaled ({}), which slows convergence: try --standardize, or more {steps}",
                settings.tol,
                self.history.len(),
                self.scaling.map(|s| s.to_string()).unwrap_or_default()
            ),
            Status::IterationLimit => format!(
                "did not converge: max |∇J| = {norm:.2e} is above tol {:.1e} after {} {steps}; try more {steps}{}",
                settings.tol,
                self.history.len(),
                match (settings.optimizer, settings.batch_size) {
                    (Optimizer::Lbfgs, _) => "",
                    (_, Some(_)) => {
                        " (mini-batch noise keeps max |∇J| from shrinking far; for the exact optimum use --optimizer lbfgs)"
                    }
                    _ => ", a larger learning rate, or --optimizer lbfgs",
                }
            ),
            Status::LineSearchFailed if self.scaling.is_some() => format!(
                "did not converge: the line search found no decrease at max |∇J| = {norm:.2e} (tol {:.1e}); the features look badly scaled ({}), which leaves J flat to f32 precision along some directions: try --standardize",
                settings.tol,
                self.scaling.map(|s| s.to_string()).unwrap_or_default()
            ),
            Status::LineSearchFailed => format!(
                "did not converge: the line search found no decrease at max |∇J| = {norm:.2e} (tol {:.1e}); J is flat to f32 precision there, so a larger tol is as good as it gets",
                settings.tol
            ),
            Status::Diverged => format!(
                "diverged: the loss became non-finite at epoch {}; the model keeps the last finite weights; try a smaller learning rate than {}",
                self.history.len(),
                settings.learning_rate
            ),
            Status::Stopped => format!(
                "stopped after {} {steps} at max |∇J| = {norm:.2e}",
                self.history.len()
            ),
            Status::Interrupted => format!(
                "interrupted after {} {steps} at max |∇J| = {norm:.2e}; the model holds the weights reached",
                self.history.len()
            ),
            Status::EarlyStopped => {
                let best = self
                    .history
                    .iter()
                    .filter_map(|r| r.validation.map(|v| (r.epoch, v.log_loss)))
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                format!(
                    "early stopped after {} {steps}: the validation log-loss last improved at epoch {} ({:.5}); the model holds that epoch's weights",
                    self.history.len(),
                    best.map_or(0, |b| b.0),
                    best.map_or(f64::NAN, |b| b.1)
                )
            }
        }
    }
}

/// Trains softmax regression with validated settings, optionally writing checkpoints,
/// resuming from one, and stopping cleanly on an interrupt flag.
#[derive(Debug, Clone)]
pub struct Trainer {
    settings: Settings,
    checkpoints: Option<(PathBuf, usize)>,
    resume: Option<(PathBuf, Box<Checkpoint>)>,
    interrupt: Option<Arc<AtomicBool>>,
}

/// One backend's state during training.
trait Engine {
    fn chunk_plan(&self) -> ChunkPlan;
    /// One full-batch step.
    fn step_full(&mut self, step: Step, lr: f32) -> Result<()>;
    /// One step on rows `local` of chunk `chunk`.
    fn step_batch(&mut self, chunk: usize, local: &[u32], step: Step, lr: f32) -> Result<()>;
    /// (J, max-norm of ∇J, w) at the current parameters.
    fn evaluate(&mut self) -> Result<(f64, f64, Vec<f32>)>;
    /// (w, m1, m2): the parameters and the optimizer moments.
    fn state(&mut self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)>;
    /// Sets what [`Engine::state`] returns.
    fn restore(&mut self, w: &[f32], m1: &[f32], m2: &[f32]);
    /// Training accuracy at the current parameters.
    fn accuracy(&mut self) -> Result<f64>;
    /// (chunks, streamed) on a GPU.
    fn device(&self) -> Option<(ChunkPlan, bool)> {
        None
    }
}

struct CpuEngine<'d> {
    oracle: CpuOracle,
    data: &'d Dataset,
    plan: ChunkPlan,
    l2: f64,
    w: Array1<f32>,
    m1: Array1<f32>,
    m2: Array1<f32>,
    /// ∇J at the current w, when known.
    fresh: Option<Array1<f32>>,
}

impl CpuEngine<'_> {
    fn gradient(&self, rows: Option<&[usize]>) -> (f64, Array1<f32>) {
        let (n, k) = (self.data.n_features(), self.data.n_classes());
        let (theta, bias) = unflatten(self.w.as_slice().unwrap_or(&[]), n, k);
        let (t64, b64) = (theta.mapv(f64::from), bias.mapv(f64::from));
        let (loss, gt, gb) = match rows {
            None => self.oracle.eval_f64(t64.view(), b64.view(), self.l2),
            Some(rows) => self.oracle.eval_rows(rows, t64.view(), b64.view(), self.l2),
        };
        (
            loss,
            gt.iter().chain(gb.iter()).map(|&g| g as f32).collect(),
        )
    }

    fn apply(&mut self, step: Step, lr: f32, g: Array1<f32>) {
        crate::objective::reference::update(
            step,
            lr,
            self.w.view_mut(),
            g.view(),
            self.m1.view_mut(),
            self.m2.view_mut(),
        );
        self.fresh = None;
    }
}

impl Engine for CpuEngine<'_> {
    fn chunk_plan(&self) -> ChunkPlan {
        self.plan
    }

    fn step_full(&mut self, step: Step, lr: f32) -> Result<()> {
        let g = match self.fresh.take() {
            Some(g) => g,
            None => self.gradient(None).1,
        };
        self.apply(step, lr, g);
        Ok(())
    }

    fn step_batch(&mut self, chunk: usize, local: &[u32], step: Step, lr: f32) -> Result<()> {
        let start = chunk * self.plan.chunk_rows;
        let rows: Vec<usize> = local.iter().map(|&r| start + r as usize).collect();
        let g = self.gradient(Some(&rows)).1;
        self.apply(step, lr, g);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<(f64, f64, Vec<f32>)> {
        let (loss, g) = self.gradient(None);
        let norm = g.iter().fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
        self.fresh = Some(g);
        Ok((loss, norm, self.w.to_vec()))
    }

    fn state(&mut self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        Ok((self.w.to_vec(), self.m1.to_vec(), self.m2.to_vec()))
    }

    fn restore(&mut self, w: &[f32], m1: &[f32], m2: &[f32]) {
        self.w = Array1::from_vec(w.to_vec());
        self.m1 = Array1::from_vec(m1.to_vec());
        self.m2 = Array1::from_vec(m2.to_vec());
        self.fresh = None;
    }

    fn accuracy(&mut self) -> Result<f64> {
        Ok(Evaluator::new(Backend::Cpu, self.data)?
            .evaluate(self.w.as_slice().unwrap_or(&[]))?
            .accuracy)
    }
}

struct GpuEngine<'c, 'd> {
    problem: DeviceChunks<'c>,
    data: &'d Dataset,
    l2: f32,
    /// Whether g holds ∇J at the current w.
    fresh: bool,
}

impl GpuEngine<'_, '_> {
    fn dims(&self, step: Step, lr: f32) -> (StepDims, UpdateEntry) {
        (
            StepDims::of_step(step, lr, self.l2),
            UpdateEntry::of_step(step),
        )
    }
}

impl Engine for GpuEngine<'_, '_> {
    fn chunk_plan(&self) -> ChunkPlan {
        self.problem.plan
    }

    fn step_full(&mut self, step: Step, lr: f32) -> Result<()> {
        let (dims, entry) = self.dims(step, lr);
        self.problem.configure_full(dims);
        self.problem.full_step(Some(entry), self.fresh)?;
        self.fresh = false;
        Ok(())
    }

    fn step_batch(&mut self, chunk: usize, local: &[u32], step: Step, lr: f32) -> Result<()> {
        let (dims, entry) = self.dims(step, lr);
        self.problem.batch_step(chunk, local, dims, entry)?;
        self.fresh = false;
        Ok(())
    }

    fn evaluate(&mut self) -> Result<(f64, f64, Vec<f32>)> {
        self.problem.configure_full(StepDims {
            l2: self.l2,
            ..Default::default()
        });
        self.problem.full_step(None, self.fresh)?;
        self.fresh = true;
        let (loss_sum, g, w) = self.problem.read_loss_gradient_params()?;
        let nk = self.problem.n * self.problem.k;
        let reg: f64 = w[..nk].iter().map(|&t| f64::from(t) * f64::from(t)).sum();
        let loss = loss_sum / self.problem.m as f64 + 0.5 * f64::from(self.l2) * reg;
        let norm = g.iter().fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
        Ok((loss, norm, w))
    }

    fn state(&mut self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        self.problem.read_state()
    }

    fn restore(&mut self, w: &[f32], m1: &[f32], m2: &[f32]) {
        self.problem.write_state(w, m1, m2);
        self.fresh = false;
    }

    fn accuracy(&mut self) -> Result<f64> {
        Ok(gpu_metrics(&self.problem, self.data.labels())?.accuracy)
    }

    fn device(&self) -> Option<(ChunkPlan, bool)> {
        Some((self.problem.plan, self.problem.is_streamed()))
    }
}

/// The storage of X a backend computes with, as checkpoints record it.
fn x_storage_of(backend: Backend<'_>) -> &'static str {
    match backend {
        Backend::Gpu(ctx) => ctx.x_storage().name(),
        Backend::Cpu => crate::gpu::XStorage::F32.name(),
    }
}

/// Mini-batches of one epoch: chunks in shuffled order, rows shuffled within each chunk,
/// then cut into batches of `batch` rows (a chunk's last batch may be shorter). When the
/// data fits in one chunk this is a full shuffle.
pub(crate) fn epoch_batches(
    rng: &mut SplitMix64,
    plan: ChunkPlan,
    m: usize,
    batch: usize,
) -> Vec<(usize, Vec<u32>)> {
    let mut order: Vec<usize> = (0..plan.chunks).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::new();
    for c in order {
        let mut rows: Vec<u32> = (0..plan.rows_in(c, m) as u32).collect();
        rng.shuffle(&mut rows);
        batches.extend(rows.chunks(batch).map(|b| (c, b.to_vec())));
    }
    batches
}

impl Trainer {
    /// Validates the settings.
    pub fn new(settings: Settings) -> Result<Self> {
        settings.validate()?;
        Ok(Trainer {
            settings,
            checkpoints: None,
            resume: None,
            interrupt: None,
        })
    }

    /// Writes a [`Checkpoint`] to `path` (atomically) after every `every` epochs (L-BFGS
    /// iterations), and when an interrupt stops the run.
    pub fn with_checkpoints(mut self, path: impl Into<PathBuf>, every: usize) -> Result<Self> {
        if every == 0 {
            return Err(Error::setting("checkpoint_every", 0, "must be at least 1"));
        }
        self.checkpoints = Some((path.into(), every));
        Ok(self)
    }

    /// Continues the run saved in the checkpoint at `path`. [`Trainer::fit`] then checks
    /// that the data and the trajectory-shaping settings are the ones it was written with
    /// (`epochs`, `tol` and `patience` may change) and continues from its epoch, mini-batch,
    /// optimizer state and shuffle state: on the same adapter the final parameters equal
    /// those of the uninterrupted run bit for bit. [`Fit::history`] then starts at the
    /// resumed epoch.
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let checkpoint = Checkpoint::load(&path)?;
        // A run asked to stop where the checkpoint already is would train nothing and
        // report no objective.
        if self.settings.epochs <= checkpoint.epochs_done {
            return Err(Error::setting(
                "epochs",
                self.settings.epochs,
                format!(
                    "the checkpoint {} has already run {} {}; ask for more to continue it",
                    path.display(),
                    checkpoint.epochs_done,
                    self.settings.optimizer.steps_name()
                ),
            ));
        }
        self.resume = Some((path, Box::new(checkpoint)));
        Ok(self)
    }

    /// Stops training after the current step once `flag` is set (by a signal handler, say),
    /// writing a checkpoint when [`Trainer::with_checkpoints`] is set; the fit ends with
    /// [`Status::Interrupted`] and the current parameters.
    pub fn with_interrupt(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// The checkpoint to continue, checked against this run.
    fn resumed(&self, train: &Dataset, init: Option<&Model>) -> Result<Option<&Checkpoint>> {
        let Some((path, checkpoint)) = &self.resume else {
            return Ok(None);
        };
        if init.is_some() {
            return Err(Error::setting(
                "init",
                "a model",
                "a resumed run continues from its checkpoint; drop the initial model",
            ));
        }
        checkpoint.check_compatible(path, &self.settings, train)?;
        Ok(Some(checkpoint))
    }

    fn save_checkpoint(&self, checkpoint: Checkpoint) -> Result<()> {
        match &self.checkpoints {
            Some((path, _)) => checkpoint.save(path),
            None => Ok(()),
        }
    }

    /// An error about the checkpoint being resumed.
    fn checkpoint_error(&self, message: String) -> Error {
        Error::Checkpoint {
            path: self
                .resume
                .as_ref()
                .map_or(String::new(), |r| r.0.display().to_string()),
            message,
        }
    }

    /// Fails unless the resumed checkpoint was written with the same device chunks (they
    /// decide the order of the sums, and mini-batches are drawn within a chunk) and the same
    /// storage of X (it decides the values).
    fn check_device(
        &self,
        resumed: Option<&Checkpoint>,
        chunk_rows: usize,
        x_storage: &str,
    ) -> Result<()> {
        match resumed {
            Some(cp) if cp.chunk_rows != chunk_rows => Err(self.checkpoint_error(format!(
                "was written with device chunks of {} rows, this run has {chunk_rows}; resume on the same adapter with the same settings and memory budget",
                cp.chunk_rows
            ))),
            Some(cp) if cp.x_storage != x_storage => Err(self.checkpoint_error(format!(
                "was written with X stored as {}, this run stores it as {x_storage}; resume with the same storage (--x-storage {})",
                cp.x_storage, cp.x_storage
            ))),
            _ => Ok(()),
        }
    }

    /// The data's fingerprint when checkpoints are written (a pass over X), else nothing.
    fn fingerprint(&self, train: &Dataset) -> Result<String> {
        match self.checkpoints {
            Some(_) => data_fingerprint(train),
            None => Ok(String::new()),
        }
    }

    /// Whether a checkpoint is due after `epoch` (or an interrupt).
    fn checkpoint_due(&self, epoch: usize, interrupted: bool) -> bool {
        self.checkpoints
            .as_ref()
            .is_some_and(|(_, every)| interrupted || epoch.is_multiple_of(*every))
    }

    /// Where checkpoints go, if anywhere.
    pub fn checkpoint_path(&self) -> Option<&Path> {
        self.checkpoints.as_ref().map(|(p, _)| p.as_path())
    }

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Trains from Θ = 0, b = 0 (or from `init`), calling `on_epoch` after every epoch;
    /// returning `ControlFlow::Break` from it stops training with the current parameters.
    ///
    /// With [`Settings::standardize`], μ and σ are learned from `train` (two passes over
    /// it), the optimizer sees `(x − μ) / σ` for the training and the validation rows, and
    /// the fitted model carries μ and σ. `init` is taken as the function of the raw
    /// features it computes ([`Model::restandardized`]), whichever standardization it was
    /// trained with. A resumed run learns μ and σ again from the same data, which gives
    /// the same bits (the checkpoint's data fingerprint is of the standardized rows, so it
    /// would refuse anything else).
    pub fn fit(
        &self,
        backend: Backend<'_>,
        train: &Dataset,
        validation: Option<&Dataset>,
        init: Option<&Model>,
        on_epoch: impl FnMut(&EpochReport) -> ControlFlow<()>,
    ) -> Result<Fit> {
        if let Some((_, cp)) = &self.resume {
            let theirs = cp.settings.split(' ').any(|kv| kv == "standardize=true");
            if theirs != self.settings.standardize {
                let with = |on: bool| if on { "with" } else { "without" };
                return Err(self.checkpoint_error(format!(
                    "was written {} standardized features, this run is {} them; resume with the same settings",
                    with(theirs),
                    with(self.settings.standardize)
                )));
            }
        }
        let standardizer = if self.settings.standardize {
            Some(Standardizer::fit(train)?)
        } else {
            None
        };
        let (train_s, validation_s) = match &standardizer {
            Some(st) => (
                Some(st.apply(train)?),
                // Validation data of another width is passed on as it is, for the shape
                // error that names it.
                validation
                    .filter(|v| v.n_features() == train.n_features())
                    .map(|v| st.apply(v))
                    .transpose()?,
            ),
            None => (None, None),
        };
        let train_used = train_s.as_ref().unwrap_or(train);
        let validation_used = validation_s.as_ref().or(validation);
        // A model of the wrong width is passed on as it is, for the shape error.
        let restandardized = match init {
            Some(model)
                if model.n_features() == train.n_features()
                    && model.standardizer() != standardizer.as_ref() =>
            {
                Some(model.restandardized(standardizer.as_ref())?)
            }
            _ => None,
        };
        let init = restandardized.as_ref().or(init);
        let mut fit = self.fit_prepared(backend, train_used, validation_used, init, on_epoch)?;
        fit.model = fit.model.with_standardizer(standardizer)?;
        if fit.model.standardizer().is_none()
            && matches!(
                fit.status,
                Status::IterationLimit | Status::LineSearchFailed
            )
        {
            fit.scaling = Scaling::of(&FeatureStats::of(train)?);
        }
        Ok(fit)
    }

    /// [`Trainer::fit`] on data as the optimizer sees it (standardized or not).
    fn fit_prepared(
        &self,
        backend: Backend<'_>,
        train: &Dataset,
        validation: Option<&Dataset>,
        init: Option<&Model>,
        mut on_epoch: impl FnMut(&EpochReport) -> ControlFlow<()>,
    ) -> Result<Fit> {
        let s = &self.settings;
        let (m, n, k) = (train.n_rows(), train.n_features(), train.n_classes());
        let w0 = self.starting_weights(train, validation, init)?;
        let resumed = self.resumed(train, init)?;
        if let Backend::Gpu(ctx) = backend {
            ctx.reset_memory_peak();
        }
        let mut validator = validation.map(|v| Evaluator::new(backend, v)).transpose()?;
        if s.optimizer == Optimizer::Lbfgs {
            return self.fit_lbfgs(backend, train, validator, w0, resumed, on_epoch);
        }
        let mut engine = self.engine(backend, train, &w0)?;
        let started = Instant::now();
        let mut rng = SplitMix64::new(s.seed);
        let mut t = 0u64;
        let mut history = Vec::with_capacity(s.epochs);
        let mut status = Status::IterationLimit;
        // The parameters of the last epoch whose loss was finite.
        let mut w = w0;
        // Early stopping: (best validation log-loss, its epoch, its parameters).
        let mut best: Option<(f64, usize, Vec<f32>)> = None;
        let (mut first_epoch, mut skip) = (1, 0);
        let chunk_rows = engine.chunk_plan().chunk_rows;
        let x_storage = x_storage_of(backend);
        self.check_device(resumed, chunk_rows, x_storage)?;
        if let Some(cp) = resumed {
            engine.restore(&cp.w, &cp.m1, &cp.m2);
            rng = SplitMix64::from_state(cp.rng_state);
            t = cp.steps;
            (first_epoch, skip) = (cp.epochs_done.saturating_add(1), cp.batches_done);
            w.clone_from(&cp.finite_w);
            best.clone_from(&cp.best);
        }
        let fingerprint = self.fingerprint(train)?;
        let checkpoint =
            |epochs_done: usize,
             batches_done: usize,
             rng_state: u64,
             steps: u64,
             (w, m1, m2): (Vec<f32>, Vec<f32>, Vec<f32>),
             finite_w: &[f32],
             best: &Option<(f64, usize, Vec<f32>)>| Checkpoint {
                settings: trajectory_settings(s),
                data: fingerprint.clone(),
                chunk_rows,
                x_storage: x_storage.into(),
                epochs_done,
                batches_done,
                steps,
                rng_state,
                w,
                m1,
                m2,
                finite_w: finite_w.to_vec(),
                best: best.clone(),
                lbfgs: None,
            };
        for epoch in first_epoch..=s.epochs {
            let lr = s.schedule.rate(s.learning_rate, epoch, s.epochs);
            let rng_at_start = rng.state();
            match s.batch_size {
                None => {
                    if skip == 0 {
                        t = t.saturating_add(1);
                        engine.step_full(s.step(t), lr)?;
                    }
                }
                Some(b) => {
                    let plan = engine.chunk_plan();
                    let batches = epoch_batches(&mut rng, plan, m, b.min(plan.chunk_rows));
                    let total = batches.len();
                    for (i, (chunk, rows)) in batches.into_iter().enumerate().skip(skip) {
                        t = t.saturating_add(1);
                        engine.step_batch(chunk, &rows, s.step(t), lr)?;
                        if i + 1 < total && self.interrupted() {
                            // Stop between two mini-batches of this epoch.
                            let state = engine.state()?;
                            let w_now = state.0.clone();
                            if self.checkpoint_due(epoch, true) {
                                self.save_checkpoint(checkpoint(
                                    epoch - 1,
                                    i + 1,
                                    rng_at_start,
                                    t,
                                    state,
                                    &w,
                                    &best,
                                ))?;
                            }
                            return Fit::of(
                                &w_now,
                                (n, k),
                                history,
                                Status::Interrupted,
                                DeviceUse::of(backend, engine.device()),
                            );
                        }
                    }
                }
            }
            skip = 0;
            let (loss, grad_max_norm, w_now) = engine.evaluate()?;
            let finite = loss.is_finite() && grad_max_norm.is_finite();
            if finite {
                w = w_now;
            }
            let train_accuracy = if s.track_accuracy && finite {
                Some(engine.accuracy()?)
            } else {
                None
            };
            let validation = if finite {
                validator.as_mut().map(|v| v.evaluate(&w)).transpose()?
            } else {
                None
            };
            let report = EpochReport {
                epoch,
                loss,
                grad_max_norm,
                train_accuracy,
                validation,
                elapsed: started.elapsed().as_secs_f64(),
            };
            let flow = on_epoch(&report);
            history.push(report);
            if !finite {
                status = Status::Diverged;
                break;
            }
            if grad_max_norm <= s.tol {
                status = Status::Converged;
                break;
            }
            if flow.is_break() {
                status = Status::Stopped;
                break;
            }
            if let (Some(patience), Some(v)) =
                (s.patience, history.last().and_then(|r| r.validation))
            {
                if best.as_ref().is_none_or(|b| v.log_loss < b.0) {
                    best = Some((v.log_loss, epoch, w.clone()));
                } else if best
                    .as_ref()
                    .is_some_and(|b| epoch.saturating_sub(b.1) >= patience)
                {
                    status = Status::EarlyStopped;
                    break;
                }
            }
            let interrupted = self.interrupted();
            if self.checkpoint_due(epoch, interrupted) && epoch < s.epochs {
                let state = engine.state()?;
                self.save_checkpoint(checkpoint(epoch, 0, rng.state(), t, state, &w, &best))?;
            }
            if interrupted && epoch < s.epochs {
                status = Status::Interrupted;
                break;
            }
        }
        if let (Status::EarlyStopped, Some((_, _, best_w))) = (status, best) {
            w = best_w;
        }
        Fit::of(
            &w,
            (n, k),
            history,
            status,
            DeviceUse::of(backend, engine.device()),
        )
    }

    /// The parameters a run starts from: the initial model's, or zeros; checks that the
    /// validation data and the initial model have the training data's (n, K), and that
    /// early stopping has validation data to watch.
    fn starting_weights(
        &self,
        train: &Dataset,
        validation: Option<&Dataset>,
        init: Option<&Model>,
    ) -> Result<Vec<f32>> {
        let (n, k) = (train.n_features(), train.n_classes());
        if let Some(v) = validation
            && (v.n_features() != n || v.n_classes() != k)
        {
            return Err(Error::shape(
                "validation data (n, K)",
                &[n, k],
                &[v.n_features(), v.n_classes()],
            ));
        }
        let w0 = match init {
            Some(model) => {
                if model.n_features() != n || model.n_classes() != k {
                    return Err(Error::shape(
                        "initial model (n, K)",
                        &[n, k],
                        &[model.n_features(), model.n_classes()],
                    ));
                }
                flatten(model.theta(), model.bias())
            }
            None => vec![0.0; n * k + k],
        };
        if let (Some(p), None) = (self.settings.patience, validation) {
            return Err(Error::setting(
                "patience",
                p,
                "early stopping needs validation data",
            ));
        }
        Ok(w0)
    }

    /// The engine of a mini-batch or full-batch gradient run on `backend`, at `w0`.
    fn engine<'a>(
        &self,
        backend: Backend<'a>,
        train: &'a Dataset,
        w0: &[f32],
    ) -> Result<Box<dyn Engine + 'a>> {
        let s = &self.settings;
        let (m, n, k) = (train.n_rows(), train.n_features(), train.n_classes());
        Ok(match backend {
            Backend::Cpu => {
                let chunk_rows = s.chunk_rows.unwrap_or(m).min(m);
                Box::new(CpuEngine {
                    oracle: CpuOracle::new(train)?,
                    data: train,
                    plan: ChunkPlan {
                        chunk_rows,
                        chunks: m.div_ceil(chunk_rows),
                    },
                    l2: s.l2,
                    w: Array1::from_vec(w0.to_vec()),
                    m1: Array1::zeros(n * k + k),
                    m2: Array1::zeros(n * k + k),
                    fresh: None,
                })
            }
            Backend::Gpu(ctx) => {
                let problem = DeviceChunks::new(
                    ctx,
                    Rows::Shared(train.source()),
                    Some(train.labels()),
                    train.weights(),
                    k,
                    s.chunk_rows,
                    s.batch_size,
                )?;
                problem.set_params(w0);
                problem.reset_state();
                Box::new(GpuEngine {
                    problem,
                    data: train,
                    l2: s.l2 as f32,
                    fresh: false,
                })
            }
        })
    }

    /// Full-batch L-BFGS on the backend's oracle; one epoch is one iteration.
    fn fit_lbfgs(
        &self,
        backend: Backend<'_>,
        train: &Dataset,
        mut validator: Option<Evaluator<'_, '_>>,
        w0: Vec<f32>,
        resumed: Option<&Checkpoint>,
        mut on_epoch: impl FnMut(&EpochReport) -> ControlFlow<()>,
    ) -> Result<Fit> {
        let s = &self.settings;
        let mut device = None;
        // On a GPU the training accuracy comes from the oracle's own device problem, between
        // oracle calls, so that X is on the device once.
        let gpu = match backend {
            Backend::Cpu => None,
            Backend::Gpu(ctx) => {
                let oracle = GpuOracle::new(ctx, train, s.chunk_rows)?;
                device = Some((oracle.chunk_plan(), oracle.is_streamed()));
                Some(RefCell::new(oracle))
            }
        };
        let mut oracle: Box<dyn Oracle + '_> = match &gpu {
            Some(cell) => Box::new(SharedOracle(cell)),
            None => Box::new(CpuOracle::new(train)?),
        };
        let mut cpu_accuracy = if s.track_accuracy && gpu.is_none() {
            Some(Evaluator::new(Backend::Cpu, train)?)
        } else {
            None
        };
        let settings = LbfgsSettings {
            max_iter: s.epochs,
            tol: s.tol,
            history: s.history,
            ..LbfgsSettings::default()
        };
        let started = Instant::now();
        let mut history = Vec::new();
        let mut failure = None;
        let mut interrupted = false;
        let start = match resumed.map(|cp| cp.lbfgs.clone()) {
            Some(Some(state)) => Start::Resume(state),
            Some(None) => return Err(self.checkpoint_error("holds no L-BFGS state".into())),
            None => Start::At(w0.iter().map(|&v| f64::from(v)).collect()),
        };
        // The chunk plan decides the order of the gradient's sums, so a resumed run must
        // have the same one (0 on the CPU, which has no chunks).
        let chunk_rows = device.map_or(0, |(plan, _)| plan.chunk_rows);
        let x_storage = x_storage_of(backend);
        self.check_device(resumed, chunk_rows, x_storage)?;
        let fingerprint = self.fingerprint(train)?;
        let save = |state: &LbfgsState| {
            let w: Vec<f32> = state.w.iter().map(|&v| v as f32).collect();
            let zeros = vec![0.0; w.len()];
            self.save_checkpoint(Checkpoint {
                settings: trajectory_settings(s),
                data: fingerprint.clone(),
                chunk_rows,
                x_storage: x_storage.into(),
                epochs_done: state.iteration,
                batches_done: 0,
                steps: state.iteration as u64,
                rng_state: s.seed,
                finite_w: w.clone(),
                w,
                m1: zeros.clone(),
                m2: zeros,
                best: None,
                lbfgs: Some(state.clone()),
            })
        };
        let result = crate::optim::lbfgs::minimize_from(
            oracle.as_mut(),
            start,
            s.l2,
            &settings,
            |it, state| {
                let w32: Vec<f32> = state.w.iter().map(|&v| v as f32).collect();
                let metrics = (|| -> Result<_> {
                    let train_accuracy = match (&gpu, cpu_accuracy.as_mut()) {
                        (Some(cell), _) if s.track_accuracy => {
                            Some(cell.borrow_mut().metrics(&w32, train.labels())?.accuracy)
                        }
                        (None, Some(e)) => Some(e.evaluate(&w32)?.accuracy),
                        _ => None,
                    };
                    let validation = validator.as_mut().map(|v| v.evaluate(&w32)).transpose()?;
                    Ok((train_accuracy, validation))
                })();
                match metrics {
                    Ok((train_accuracy, validation)) => {
                        let report = EpochReport {
                            epoch: it.iteration,
                            loss: it.loss,
                            grad_max_norm: it.grad_max_norm,
                            train_accuracy,
                            validation,
                            elapsed: started.elapsed().as_secs_f64(),
                        };
                        let flow = on_epoch(&report);
                        history.push(report);
                        let last = it.iteration >= settings.max_iter || it.grad_max_norm <= s.tol;
                        // An interrupt on the last iteration changes nothing: the run is over.
                        interrupted = self.interrupted() && !last;
                        if self.checkpoint_due(it.iteration, interrupted)
                            && !last
                            && let Err(e) = save(state)
                        {
                            failure = Some(e);
                            return ControlFlow::Break(());
                        }
                        if interrupted {
                            return ControlFlow::Break(());
                        }
                        flow
                    }
                    Err(e) => {
                        failure = Some(e);
                        ControlFlow::Break(())
                    }
                }
            },
        )?;
        if let Some(e) = failure {
            return Err(e);
        }
        let status = match result.status {
            Status::Stopped if interrupted => Status::Interrupted,
            other => other,
        };
        Ok(Fit {
            model: Model::new(result.theta, result.bias)?,
            history,
            status,
            device: DeviceUse::of(backend, device),
            scaling: None,
        })
    }
}

/// An oracle shared through a `RefCell`: L-BFGS borrows it for each oracle call, and the
/// per-iteration callback between calls (for the training accuracy on the same device
/// problem).
struct SharedOracle<'a, O>(&'a RefCell<O>);

impl<O: Oracle> Oracle for SharedOracle<'_, O> {
    fn shape(&self) -> (usize, usize, usize) {
        self.0.borrow().shape()
    }

    fn loss_and_gradient(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
    ) -> Result<LossGrad> {
        self.0.borrow_mut().loss_and_gradient(theta, bias, l2)
    }
}
