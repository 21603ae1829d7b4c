//! The optimizer loop: validated settings, full-batch or mini-batch steps on the CPU
//! reference or the GPU, and a report per epoch.

pub mod checkpoint;
mod devices;
mod engine;
mod lbfgs_run;
mod path;
mod report;
mod select;
pub(crate) mod settings;
mod strength;

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
use crate::gpu::chunks::{DeviceChunks, Rows};
use crate::gpu::kernels::UpdateEntry;
use crate::gpu::{ChunkPlan, GpuContext};
use crate::model::Model;
use crate::objective::CpuOracle;
use crate::objective::metrics::{Backend, Evaluator, Metrics, gpu_metrics};
use crate::objective::sum::SumOracle;
use crate::objective::{GpuOracle, LossGrad, Oracle, objective_value};
use crate::optim::lbfgs::{LbfgsSettings, LbfgsState, Start, Status};
use crate::params::{flatten, unflatten};
use crate::ranks::{RankOracle, Ranks};
use crate::rng::SplitMix64;
use crate::step::Step;
use crate::step::StepDims;
use crate::train::checkpoint::{
    Checkpoint, PATH_CHECKPOINT_FORMAT, PathCheckpoint, data_fingerprint, trajectory_settings,
};
pub use crate::train::settings::{Optimizer, Schedule, Settings};

use devices::device_oracle;
pub use devices::even_row_ranges;
use engine::{Engine, epoch_batches, x_storage_of};
pub use path::PathModel;
pub use report::{DeviceUse, EpochReport, Fit};
pub use select::{
    Candidate, Choice, Folds, Score, Selection, SelectionStep, Strength, check_strengths,
};

/// Trains softmax regression with validated settings, optionally writing checkpoints,
/// resuming from one, and stopping cleanly on an interrupt flag.
#[derive(Debug, Clone)]
pub struct Trainer {
    settings: Settings,
    checkpoints: Option<(PathBuf, usize)>,
    resume: Option<(PathBuf, Resume)>,
    interrupt: Option<Arc<AtomicBool>>,
    ranks: Option<RanksHandle>,
}

/// The ranks a trainer shares its run with.
#[derive(Clone)]
struct RanksHandle(Arc<dyn Ranks>);

impl std::fmt::Debug for RanksHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rank {} of {}", self.0.rank(), self.0.size())
    }
}

/// The checkpoint a trainer continues: of one run, or of a regularisation path (or a
/// selection over one).
#[derive(Debug, Clone)]
enum Resume {
    One(Box<Checkpoint>),
    Path(Box<PathCheckpoint>),
}

/// What a mini-batch or full-batch gradient run carries from one epoch to the next, and
/// what its checkpoints record.
struct GradientRun {
    rng: SplitMix64,
    /// Optimizer steps taken.
    t: u64,
    /// The parameters of the last epoch whose loss was finite.
    w: Vec<f32>,
    /// Early stopping: (best validation log-loss, its epoch, its parameters).
    best: Option<(f64, usize, Vec<f32>)>,
    history: Vec<EpochReport>,
    fingerprint: String,
    chunk_rows: usize,
    x_storage: &'static str,
}

impl GradientRun {
    /// A checkpoint after `(epochs, batches)` done, with the shuffle generator at
    /// `rng_state` and the engine's `(w, m1, m2)`.
    fn checkpoint(
        &self,
        settings: &Settings,
        (epochs_done, batches_done): (usize, usize),
        rng_state: u64,
        (w, m1, m2): (Vec<f32>, Vec<f32>, Vec<f32>),
    ) -> Checkpoint {
        Checkpoint {
            settings: trajectory_settings(settings),
            data: self.fingerprint.clone(),
            chunk_rows: self.chunk_rows,
            x_storage: self.x_storage.into(),
            epochs_done,
            batches_done,
            steps: self.t,
            rng_state,
            w,
            m1,
            m2,
            finite_w: self.w.clone(),
            best: self.best.clone(),
            lbfgs: None,
        }
    }
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
            ranks: None,
        })
    }

    /// Trains together with the other ranks of `ranks` (MPI ranks, [`crate::ranks`]): the
    /// data given to [`Trainer::fit`] is this rank's share of the rows, every oracle call
    /// adds every rank's partials in rank order ([`RankOracle`]), the reported accuracy and
    /// validation metrics are over every rank's rows, an interrupt on any rank stops every
    /// rank after the same iteration, and only rank 0 writes checkpoints. Full-batch
    /// optimizers only (lbfgs, gd); every rank must call `fit` with the same settings.
    pub fn with_ranks(mut self, ranks: Arc<dyn Ranks>) -> Self {
        self.ranks = Some(RanksHandle(ranks));
        self
    }

    /// The ranks this trainer shares its run with, if any.
    fn ranks(&self) -> Option<&Arc<dyn Ranks>> {
        self.ranks.as_ref().map(|r| &r.0)
    }

    /// Whether the run stops here on an interrupt: on any rank, with ranks (a collective
    /// call, so every rank stops after the same step).
    fn stop_requested(&self) -> Result<bool> {
        match self.ranks() {
            Some(ranks) => crate::ranks::any(ranks.as_ref(), self.interrupted()),
            None => Ok(self.interrupted()),
        }
    }

    /// A training accuracy measured on this rank's `rows` as one over every rank's rows;
    /// unchanged without ranks. A collective call.
    fn global_accuracy(&self, local: Option<f64>, rows: usize) -> Result<Option<f64>> {
        let local = local.map(|accuracy| Metrics {
            log_loss: 0.0,
            accuracy,
        });
        Ok(self.global_metrics(local, rows)?.map(|m| m.accuracy))
    }

    /// Metrics measured on this rank's rows (`rows` of them) as metrics over every rank's
    /// rows; unchanged without ranks. A collective call.
    fn global_metrics(&self, local: Option<Metrics>, rows: usize) -> Result<Option<Metrics>> {
        let Some(ranks) = self.ranks() else {
            return Ok(local);
        };
        let w = rows as f64;
        let mine = local.map_or([0.0; 3], |m| [m.log_loss * w, m.accuracy * w, w]);
        let total = ranks.sum_in_rank_order(&mine)?;
        Ok(local.map(|_| Metrics {
            log_loss: total[0] / total[2],
            accuracy: total[1] / total[2],
        }))
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
    ///
    /// The checkpoint of a regularisation path is continued by [`Trainer::fit_path`],
    /// [`Trainer::cross_validate`] or [`Trainer::select_on_validation`], whichever wrote it.
    pub fn resume_from(mut self, path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let bytes = checkpoint::read_checkpoint(&path)?;
        if checkpoint::format_of(&bytes).as_deref() == Some(PATH_CHECKPOINT_FORMAT) {
            let checkpoint = PathCheckpoint::from_bytes(&path, &bytes)?;
            self.resume = Some((path, Resume::Path(Box::new(checkpoint))));
            return Ok(self);
        }
        let checkpoint = Checkpoint::from_bytes(&path, &bytes)?;
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
        self.resume = Some((path, Resume::One(Box::new(checkpoint))));
        Ok(self)
    }

    /// The same trainer with λ = `l2` (for a strength known only once the training rows
    /// are, as scikit-learn's C: λ = 1/(C·m)).
    pub fn with_l2(mut self, l2: f64) -> Result<Self> {
        let settings = Settings {
            l2,
            ..self.settings.clone()
        };
        settings.validate()?;
        self.settings = settings;
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

    /// The checkpoint of one run to continue, checked against this run.
    fn resumed(&self, train: &Dataset, init: Option<&Model>) -> Result<Option<&Checkpoint>> {
        let (path, checkpoint) = match &self.resume {
            None => return Ok(None),
            Some((path, Resume::One(checkpoint))) => (path, checkpoint),
            Some((_, Resume::Path(_))) => {
                return Err(self.checkpoint_error(
                    "is the checkpoint of a regularisation path; resume it with the same strengths and selection flags".into(),
                ));
            }
        };
        if init.is_some() {
            return Err(Error::setting(
                "init",
                "a model",
                "a resumed run continues from its checkpoint; drop the initial model",
            ));
        }
        checkpoint.check_compatible(path, &self.settings, train, &self.data_key(train)?)?;
        Ok(Some(checkpoint))
    }

    /// Where this process writes checkpoints: nowhere without them, and with ranks only
    /// on rank 0, which writes for every rank (they hold the same state).
    fn checkpoint_target(&self) -> Option<&Path> {
        match &self.checkpoints {
            Some(_) if self.ranks().is_some_and(|r| r.rank() != 0) => None,
            other => other.as_ref().map(|(path, _)| path.as_path()),
        }
    }

    fn save_checkpoint(&self, checkpoint: Checkpoint) -> Result<()> {
        self.checkpoint_target()
            .map_or(Ok(()), |path| checkpoint.save(path))
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

    /// Fails unless the resumed checkpoint, which recorded `written` = (rows per device
    /// chunk, storage of X), was written with the same device chunks (they decide the order
    /// of the sums, and mini-batches are drawn within a chunk) and the same storage of X
    /// (it decides the values).
    fn check_device(
        &self,
        written: Option<(usize, &str)>,
        chunk_rows: usize,
        x_storage: &str,
    ) -> Result<()> {
        match written {
            Some((rows, _)) if rows != chunk_rows => Err(self.checkpoint_error(format!(
                "was written with device chunks of {rows} rows, this run has {chunk_rows}; resume on the same adapter with the same settings and memory budget"
            ))),
            Some((_, storage)) if storage != x_storage => Err(self.checkpoint_error(format!(
                "was written with X stored as {storage}, this run stores it as {x_storage}; resume with the same storage (--x-storage {storage})"
            ))),
            _ => Ok(()),
        }
    }

    /// The data's fingerprint when checkpoints are written (a pass over X), else nothing.
    fn fingerprint(&self, train: &Dataset) -> Result<String> {
        match self.checkpoints {
            Some(_) => self.data_key(train),
            None => Ok(String::new()),
        }
    }

    /// `m n K hash` of the data, over every rank's rows with ranks (a collective call).
    fn data_key(&self, data: &Dataset) -> Result<String> {
        let local = data_fingerprint(data)?;
        let Some(ranks) = self.ranks() else {
            return Ok(local);
        };
        let hash = local
            .rsplit(' ')
            .next()
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or(0);
        let mine = [
            data.n_rows() as f64,
            (hash >> 32) as f64,
            (hash & 0xffff_ffff) as f64,
        ];
        let each = crate::ranks::gather_each(ranks.as_ref(), &mine)?;
        let rows: usize = each.iter().map(|e| e[0] as usize).sum();
        let words = each
            .iter()
            .flat_map(|e| [e[0] as u32, e[1] as u32, e[2] as u32]);
        Ok(format!(
            "{rows} {} {} {:016x}",
            data.n_features(),
            data.n_classes(),
            checkpoint::hash_words(words)
        ))
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
        if self.ranks().is_some() && self.settings.standardize {
            return Err(Error::setting(
                "standardize",
                true,
                "is not supported across ranks (μ and σ would be each rank's own); standardize the data beforehand",
            ));
        }
        if let Some((_, Resume::One(cp))) = &self.resume {
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
        backend
            .devices()
            .iter()
            .for_each(GpuContext::reset_memory_peak);
        let mut validator = validation.map(|v| Evaluator::new(backend, v)).transpose()?;
        if s.optimizer == Optimizer::Lbfgs {
            return self.fit_lbfgs(backend, train, validator, w0, resumed, on_epoch);
        }
        let mut engine = self.engine(backend, train, &w0)?;
        let started = Instant::now();
        let chunk_rows = engine.chunk_plan().chunk_rows;
        let x_storage = x_storage_of(backend);
        self.check_device(resumed.map(Checkpoint::device), chunk_rows, x_storage)?;
        let mut run = GradientRun {
            rng: SplitMix64::new(s.seed),
            t: 0,
            w: w0,
            best: None,
            history: Vec::with_capacity(s.epochs),
            fingerprint: String::new(),
            chunk_rows,
            x_storage,
        };
        let (mut first_epoch, mut skip) = (1, 0);
        if let Some(cp) = resumed {
            engine.restore(&cp.w, &cp.m1, &cp.m2);
            run.rng = SplitMix64::from_state(cp.rng_state);
            run.t = cp.steps;
            (first_epoch, skip) = (cp.epochs_done.saturating_add(1), cp.batches_done);
            run.w.clone_from(&cp.finite_w);
            run.best.clone_from(&cp.best);
        }
        run.fingerprint = self.fingerprint(train)?;
        let mut status = Status::IterationLimit;
        for epoch in first_epoch..=s.epochs {
            let lr = s.schedule.rate(s.learning_rate, epoch, s.epochs);
            let rng_at_start = run.rng.state();
            if let Some(done) = self.epoch_steps(engine.as_mut(), &mut run, m, skip, lr)? {
                // Interrupted between two mini-batches of this epoch.
                let state = engine.state()?;
                let w_now = state.0.clone();
                if self.checkpoint_due(epoch, true) {
                    let cp = run.checkpoint(s, (epoch - 1, done), rng_at_start, state);
                    self.save_checkpoint(cp)?;
                }
                let device = DeviceUse::of(backend, engine.device());
                return Fit::of(&w_now, (n, k), run.history, Status::Interrupted, device);
            }
            skip = 0;
            let validator = validator.as_mut();
            if let Some(stop) = self.end_epoch(
                engine.as_mut(),
                &mut run,
                validator,
                epoch,
                started,
                &mut on_epoch,
            )? {
                status = stop;
                break;
            }
            let interrupted = self.stop_requested()?;
            if self.checkpoint_due(epoch, interrupted) && epoch < s.epochs {
                let state = engine.state()?;
                self.save_checkpoint(run.checkpoint(s, (epoch, 0), run.rng.state(), state))?;
            }
            if interrupted && epoch < s.epochs {
                status = Status::Interrupted;
                break;
            }
        }
        let mut w = run.w;
        if let (Status::EarlyStopped, Some((_, _, best_w))) = (status, run.best) {
            w = best_w;
        }
        let device = DeviceUse::of(backend, engine.device());
        Fit::of(&w, (n, k), run.history, status, device)
    }

    /// The optimizer steps of one epoch: one full-batch step, or the epoch's mini-batches
    /// from the `skip`-th on. Returns how many mini-batches were done when an interrupt
    /// stopped the epoch between two of them.
    fn epoch_steps(
        &self,
        engine: &mut dyn Engine,
        run: &mut GradientRun,
        m: usize,
        skip: usize,
        lr: f32,
    ) -> Result<Option<usize>> {
        let s = &self.settings;
        match s.batch_size {
            None => {
                if skip == 0 {
                    run.t = run.t.saturating_add(1);
                    engine.step_full(s.step(run.t), lr)?;
                }
            }
            Some(b) => {
                let plan = engine.chunk_plan();
                let batches = epoch_batches(&mut run.rng, plan, m, b.min(plan.chunk_rows));
                let total = batches.len();
                for (i, (chunk, rows)) in batches.into_iter().enumerate().skip(skip) {
                    run.t = run.t.saturating_add(1);
                    engine.step_batch(chunk, &rows, s.step(run.t), lr)?;
                    if i + 1 < total && self.interrupted() {
                        return Ok(Some(i + 1));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Evaluates the epoch's parameters (kept when finite), reports the epoch, and says
    /// whether the run stops after it and why.
    fn end_epoch(
        &self,
        engine: &mut dyn Engine,
        run: &mut GradientRun,
        validator: Option<&mut Evaluator<'_, '_>>,
        epoch: usize,
        started: Instant,
        on_epoch: &mut impl FnMut(&EpochReport) -> ControlFlow<()>,
    ) -> Result<Option<Status>> {
        let s = &self.settings;
        let (loss, grad_max_norm, w_now) = engine.evaluate()?;
        let finite = loss.is_finite() && grad_max_norm.is_finite();
        if finite {
            run.w = w_now;
        }
        let train_accuracy = if s.track_accuracy && finite {
            Some(engine.accuracy()?)
        } else {
            None
        };
        let validation = if finite {
            let rows = validator.as_ref().map_or(0, |v| v.rows());
            let local = validator.map(|v| v.evaluate(&run.w)).transpose()?;
            self.global_metrics(local, rows)?
        } else {
            None
        };
        let train_accuracy = self.global_accuracy(train_accuracy, engine.rows())?;
        let report = EpochReport {
            epoch,
            loss,
            grad_max_norm,
            train_accuracy,
            validation,
            elapsed: started.elapsed().as_secs_f64(),
        };
        let flow = on_epoch(&report);
        run.history.push(report);
        if !finite {
            return Ok(Some(Status::Diverged));
        }
        if grad_max_norm <= s.tol {
            return Ok(Some(Status::Converged));
        }
        if flow.is_break() {
            return Ok(Some(Status::Stopped));
        }
        if let (Some(patience), Some(v)) = (s.patience, validation) {
            if run.best.as_ref().is_none_or(|b| v.log_loss < b.0) {
                run.best = Some((v.log_loss, epoch, run.w.clone()));
            } else if run
                .best
                .as_ref()
                .is_some_and(|b| epoch.saturating_sub(b.1) >= patience)
            {
                return Ok(Some(Status::EarlyStopped));
            }
        }
        Ok(None)
    }

    /// Refuses, with [`Error::ModelTooLarge`], a model of n features and K classes whose
    /// parameters and optimizer state would not fit in memory (a wide sparse dataset makes
    /// n cheap to state and costly to train), rather than let an allocation abort the
    /// process. [`Trainer::fit`] checks it first. L-BFGS holds about 2·history + 6 vectors of n·K + K
    /// values in f64; the gradient optimizers about six in f32 and f64.
    pub fn check_state_fits(&self, n: usize, k: usize) -> Result<()> {
        let s = &self.settings;
        let vectors = match s.optimizer {
            Optimizer::Lbfgs => 2 * s.history as u64 + 6,
            _ => 6,
        };
        let params = (n as u64).saturating_add(1).saturating_mul(k as u64);
        let bytes = params.saturating_mul(8).saturating_mul(vectors);
        match crate::formats::available_memory() {
            Some(available) if bytes > available => Err(Error::ModelTooLarge {
                n,
                k,
                bytes,
                available,
            }),
            _ => Ok(()),
        }
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
        self.check_state_fits(n, k)?;
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
}
