//! Regularisation paths: one L-BFGS model per λ on the same training rows, trained in
//! lockstep on one oracle ([`crate::optim::path`]), or one after another from the
//! strongest λ with each model starting at its neighbour's solution (warm starts).

use super::*;
use crate::optim::lbfgs::{LbfgsIteration, LbfgsResult};
use crate::optim::path::{Batching, PathStart, StateRequest, minimize_path};
use crate::train::checkpoint::{Journal, Stage};

/// One model of a regularisation path.
#[derive(Debug, Clone)]
pub struct PathModel {
    /// λ of the model's objective.
    pub l2: f64,
    /// The fitted parameters (carrying μ and σ when the settings standardize).
    pub model: Model,
    /// J at the model.
    pub loss: f64,
    /// Max-norm of ∇J there.
    pub grad_max_norm: f64,
    /// How the model's run ended.
    pub status: Status,
    /// L-BFGS iterations.
    pub iterations: usize,
    /// Oracle calls the model made (each is its share of one pass over X).
    pub evaluations: usize,
}

/// A path's λ: at least one, each finite and positive.
pub(crate) fn check_path(l2s: &[f64]) -> Result<()> {
    if l2s.is_empty() {
        return Err(Error::setting(
            "l2",
            "(none)",
            "a path needs at least one λ",
        ));
    }
    if let Some(bad) = l2s.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
        return Err(Error::setting(
            "l2",
            bad,
            "each λ of a path must be a finite number > 0",
        ));
    }
    Ok(())
}

/// A GPU oracle for up to `models` models per pass: as many as the device (or its memory
/// budget) holds side by side, halving the count until they fit. A batch of more points
/// than it holds is evaluated in groups.
pub(super) fn path_oracle<'c>(
    ctx: &'c crate::gpu::GpuContext,
    data: &Dataset,
    chunk_rows: Option<usize>,
    models: usize,
) -> Result<GpuOracle<'c>> {
    let mut models = models;
    loop {
        match GpuOracle::with_models(ctx, data, chunk_rows, models) {
            Err(Error::OutOfMemory { .. } | Error::BudgetTooSmall { .. }) if models > 1 => {
                models = models.div_ceil(2);
            }
            other => return other,
        }
    }
}

impl Trainer {
    /// The journal of a path or selection described by `what` (its strengths, its
    /// selection) on `data`, when this trainer writes checkpoints or resumes one: a
    /// checkpoint being resumed must be of the same run. `None` otherwise.
    pub(crate) fn journal(&self, data: &Dataset, what: &str) -> Result<Option<Journal>> {
        let resumed = self.resumed_path()?;
        if self.checkpoints.is_none() && resumed.is_none() {
            return Ok(None);
        }
        let settings = Settings {
            l2: 0.0,
            ..self.settings.clone()
        };
        let journal = Journal {
            settings: format!("{} {what}", trajectory_settings(&settings)),
            data: self.data_key(data)?,
        };
        if let (Some(cp), Some((path, _))) = (resumed, &self.resume) {
            let len = data.n_features() * data.n_classes() + data.n_classes();
            cp.check_compatible(path, &journal.settings, &journal.data, len)?;
        }
        Ok(Some(journal))
    }

    /// The path checkpoint being resumed; the checkpoint of one run is refused.
    pub(crate) fn resumed_path(&self) -> Result<Option<&PathCheckpoint>> {
        match &self.resume {
            None => Ok(None),
            Some((_, Resume::Path(cp))) => Ok(Some(cp)),
            Some((_, Resume::One(_))) => Err(self.checkpoint_error(
                "is the checkpoint of a one-strength run; resume it without a path of strengths"
                    .into(),
            )),
        }
    }

    /// Trains one model per λ of `l2s` with L-BFGS on the same rows, returned in the order
    /// of `l2s`; the other settings (tol, the iteration limit as `epochs`, history,
    /// standardization) are this trainer's. `on_iteration(s, report)` follows model s;
    /// returning `ControlFlow::Break` stops that model.
    ///
    /// Without `warm_start` every model starts at Θ = 0, b = 0 and all of them are
    /// trained in lockstep: each oracle call evaluates every model still running
    /// ([`Oracle::losses_and_gradients`]), and each model ends exactly where its own
    /// [`Trainer::fit`] at that λ ends. With `warm_start` the models are trained one
    /// after another from the largest λ, each starting at the previous one's solution,
    /// which usually saves iterations at the weaker λ.
    ///
    /// With [`Trainer::with_checkpoints`] a [`PathCheckpoint`] of every model is written
    /// after each round of oracle calls in which some model reached a multiple of `every`
    /// iterations, and when an interrupt stops the path; [`Trainer::resume_from`] such a
    /// file continues every model bit for bit. While checkpointing, a lockstep path keeps
    /// every model's place in each oracle call (models that have stopped are evaluated at
    /// zeros and their values dropped), which is what makes the models independent of one
    /// another's progress.
    pub fn fit_path(
        &self,
        backend: Backend<'_>,
        train: &Dataset,
        l2s: &[f64],
        warm_start: bool,
        on_iteration: impl FnMut(usize, &EpochReport) -> ControlFlow<()>,
    ) -> Result<Vec<PathModel>> {
        check_path(l2s)?;
        let list: Vec<String> = l2s.iter().map(|l| format!("{l:?}")).collect();
        let what = format!("path=l2:{} warm_start={warm_start}", list.join(","));
        let journal = self.journal(train, &what)?;
        let stage = journal.as_ref().map(|journal| Stage {
            journal,
            index: 0,
            earlier: &[],
        });
        self.path_stage(backend, train, l2s, warm_start, stage, on_iteration)
    }

    /// [`Trainer::fit_path`] as `stage` of a run that checkpoints or resumes (or neither,
    /// without a stage).
    pub(crate) fn path_stage(
        &self,
        backend: Backend<'_>,
        train: &Dataset,
        l2s: &[f64],
        warm_start: bool,
        stage: Option<Stage<'_>>,
        mut on_iteration: impl FnMut(usize, &EpochReport) -> ControlFlow<()>,
    ) -> Result<Vec<PathModel>> {
        let s = &self.settings;
        if s.optimizer != Optimizer::Lbfgs {
            return Err(Error::setting(
                "optimizer",
                s.optimizer,
                "a regularisation path is trained with lbfgs",
            ));
        }
        if self.ranks().is_some() {
            return Err(Error::setting(
                "ranks",
                "set",
                "a regularisation path is trained in one process (several devices are fine)",
            ));
        }
        check_path(l2s)?;
        let standardizer = if s.standardize {
            Some(Standardizer::fit(train)?)
        } else {
            None
        };
        let standardized = standardizer
            .as_ref()
            .map(|st| st.apply(train))
            .transpose()?;
        let used = standardized.as_ref().unwrap_or(train);
        backend
            .devices()
            .iter()
            .for_each(GpuContext::reset_memory_peak);
        let (mut oracle, device): (Box<dyn Oracle + '_>, _) = match backend {
            Backend::Cpu => (Box::new(CpuOracle::new(used)?), (0, 1)),
            // Each device its share of the rows, as many models per pass as it holds.
            Backend::Devices(all) => {
                let models = if warm_start { 1 } else { l2s.len() };
                let oracle = device_oracle(all, used, s.chunk_rows, models)?;
                (Box::new(oracle), (0, 0))
            }
            // In lockstep, every model of the path shares each pass over X.
            Backend::Gpu(ctx) => {
                let models = if warm_start { 1 } else { l2s.len() };
                let oracle = path_oracle(ctx, used, s.chunk_rows, models)?;
                let device = (oracle.chunk_plan().chunk_rows, oracle.models_per_pass());
                (Box::new(oracle), device)
            }
        };
        let resumed = match &stage {
            Some(stage) => self.resumed_stage(stage.index, l2s.len(), backend, device)?,
            None => None,
        };
        let settings = LbfgsSettings {
            max_iter: s.epochs,
            tol: s.tol,
            history: s.history,
            ..LbfgsSettings::default()
        };
        let (n, k) = (used.n_features(), used.n_classes());
        let zero = vec![0.0; n * k + k];
        let started = Instant::now();
        // Each model's latest state, for the checkpoints; `due` once a model has reached
        // an iteration that asks for one.
        let mut states: Vec<Option<LbfgsState>> = resumed.unwrap_or_else(|| vec![None; l2s.len()]);
        let starts: Vec<Option<Start>> = states
            .iter()
            .map(|st| st.clone().map(Start::Resume))
            .collect();
        let journal = RefCell::new((&mut states, false, None::<Error>));
        let mut report = |m: usize, it: &LbfgsIteration, state: &mut StateRequest<'_>| {
            let flow = on_iteration(
                m,
                &EpochReport {
                    epoch: it.iteration,
                    loss: it.loss,
                    grad_max_norm: it.grad_max_norm,
                    train_accuracy: None,
                    validation: None,
                    elapsed: started.elapsed().as_secs_f64(),
                },
            );
            let interrupted = self.interrupted();
            if stage.is_some() {
                let mut journal = journal.borrow_mut();
                match state() {
                    Ok(state) => journal.0[m] = Some(state),
                    Err(e) => {
                        journal.2.get_or_insert(e);
                        return ControlFlow::Break(());
                    }
                }
                journal.1 |= self.checkpoint_due(it.iteration, interrupted);
            }
            if interrupted {
                ControlFlow::Break(())
            } else {
                flow
            }
        };
        // After each round: the checkpoint, if one is due.
        let mut on_round = || -> Result<()> {
            let Some(stage) = &stage else {
                return Ok(());
            };
            let mut journal = journal.borrow_mut();
            if let Some(e) = journal.2.take() {
                return Err(e);
            }
            if !journal.1 {
                return Ok(());
            }
            journal.1 = false;
            let checkpoint = PathCheckpoint {
                settings: stage.journal.settings.clone(),
                data: stage.journal.data.clone(),
                stage: stage.index,
                chunk_rows: device.0,
                x_storage: x_storage_of(backend).into(),
                models_per_pass: device.1,
                models: std::mem::take(journal.0),
                earlier: stage.earlier.to_vec(),
            };
            let saved = self
                .checkpoint_target()
                .map_or(Ok(()), |path| checkpoint.save(path));
            *journal.0 = checkpoint.models;
            saved
        };
        let batching = match stage {
            Some(_) => Batching::Fixed,
            None => Batching::Shrinking,
        };
        let results: Vec<LbfgsResult> = if warm_start {
            // Strongest λ first; ties keep their order.
            let mut order: Vec<usize> = (0..l2s.len()).collect();
            order.sort_by(|&a, &b| l2s[b].total_cmp(&l2s[a]));
            let mut done: Vec<Option<LbfgsResult>> = vec![None; l2s.len()];
            let mut from = zero;
            for &i in &order {
                let start = PathStart {
                    start: starts[i].clone().unwrap_or(Start::At(from.clone())),
                    l2: l2s[i],
                };
                let mut result = minimize_path(
                    oracle.as_mut(),
                    vec![start],
                    &settings,
                    batching,
                    |_, it, state| report(i, it, state),
                    &mut on_round,
                )?;
                let result = result.remove(0);
                from = flatten(result.theta.view(), result.bias.view())
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                done[i] = Some(result);
                if self.interrupted() {
                    break;
                }
            }
            // A model the interrupt came before stays where it would have started.
            let (theta, bias) = unflatten(&vec![0.0f32; n * k + k], n, k);
            done.into_iter()
                .map(|result| {
                    result.unwrap_or_else(|| LbfgsResult {
                        theta: theta.clone(),
                        bias: bias.clone(),
                        loss: f64::NAN,
                        grad_max_norm: f64::NAN,
                        status: Status::Interrupted,
                        iterations: 0,
                        evaluations: 0,
                    })
                })
                .collect()
        } else {
            let runs = l2s
                .iter()
                .zip(starts)
                .map(|(&l2, start)| PathStart {
                    start: start.unwrap_or(Start::At(zero.clone())),
                    l2,
                })
                .collect();
            minimize_path(
                oracle.as_mut(),
                runs,
                &settings,
                batching,
                &mut report,
                &mut on_round,
            )?
        };
        let interrupted = self.interrupted();
        results
            .into_iter()
            .zip(l2s)
            .map(|(r, &l2)| {
                let status = match r.status {
                    Status::Stopped if interrupted => Status::Interrupted,
                    other => other,
                };
                Ok(PathModel {
                    l2,
                    model: Model::new(r.theta, r.bias)?.with_standardizer(standardizer.clone())?,
                    loss: r.loss,
                    grad_max_norm: r.grad_max_norm,
                    status,
                    iterations: r.iterations,
                    evaluations: r.evaluations,
                })
            })
            .collect()
    }

    /// The models' states to continue stage `index` from, when the checkpoint being
    /// resumed is of that stage (checked against this stage's device use); `None` when
    /// the stage starts afresh.
    fn resumed_stage(
        &self,
        index: usize,
        models: usize,
        backend: Backend<'_>,
        (chunk_rows, per_pass): (usize, usize),
    ) -> Result<Option<Vec<Option<LbfgsState>>>> {
        let Some(cp) = self.resumed_path()?.filter(|cp| cp.stage == index) else {
            return Ok(None);
        };
        if cp.models.len() != models {
            return Err(self.checkpoint_error(format!(
                "holds {} models, this path has {models}; resume with the same strengths",
                cp.models.len()
            )));
        }
        let written = (cp.chunk_rows, cp.x_storage.as_str());
        self.check_device(Some(written), chunk_rows, x_storage_of(backend))?;
        if cp.models_per_pass != per_pass {
            return Err(self.checkpoint_error(format!(
                "was written with {} models per pass over X, this run holds {per_pass}; resume on the same adapter with the same memory budget",
                cp.models_per_pass
            )));
        }
        Ok(Some(cp.models.clone()))
    }
}
