//! Training with full-batch L-BFGS: the backend's oracle, one report and possibly one
//! checkpoint per iteration.

use super::*;

impl Trainer {
    /// Full-batch L-BFGS on the backend's oracle; one epoch is one iteration.
    pub(super) fn fit_lbfgs(
        &self,
        backend: Backend<'_>,
        train: &Dataset,
        mut validator: Option<Evaluator<'_, '_>>,
        w0: Vec<f32>,
        resumed: Option<&Checkpoint>,
        mut on_epoch: impl FnMut(&EpochReport) -> ControlFlow<()>,
    ) -> Result<Fit> {
        let s = &self.settings;
        // On a GPU the training accuracy comes from the oracle's own device problem, between
        // oracle calls, so that X is on the device once.
        let gpu = match backend {
            Backend::Gpu(ctx) => Some(RefCell::new(GpuOracle::new(ctx, train, s.chunk_rows)?)),
            Backend::Cpu | Backend::Devices(_) => None,
        };
        let device = gpu.as_ref().map(|cell| {
            let oracle = cell.borrow();
            (oracle.chunk_plan(), oracle.is_streamed())
        });
        let local: Box<dyn Oracle + '_> = match &gpu {
            Some(cell) => Box::new(SharedOracle(cell)),
            None => self.local_oracle(backend, train)?,
        };
        // With ranks, every call adds every rank's partials.
        let mut oracle = self.over_ranks(local)?;
        // Without one device's oracle to measure on: the CPU reference, or the first of
        // several devices.
        let mut cpu_accuracy = (s.track_accuracy && gpu.is_none())
            .then(|| Evaluator::new(backend.primary(), train))
            .transpose()?;
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
        let start = self.lbfgs_start(resumed, &w0)?;
        let save = self.lbfgs_saver(backend, train, resumed, device)?;
        let result = crate::optim::lbfgs::minimize_from(
            oracle.as_mut(),
            start,
            s.l2,
            &settings,
            |it, state| {
                let mut report_iteration = || -> Result<ControlFlow<()>> {
                    let w32: Vec<f32> = state.w.iter().map(|&v| v as f32).collect();
                    let gpu = gpu.as_ref().filter(|_| s.track_accuracy);
                    let validation_rows = validator.as_ref().map_or(0, |v| v.rows());
                    let (train_accuracy, validation) = iteration_metrics(
                        &w32,
                        train,
                        gpu,
                        cpu_accuracy.as_mut(),
                        validator.as_mut(),
                    )?;
                    // Over every rank's rows, with ranks.
                    let validation = self.global_metrics(validation, validation_rows)?;
                    let train_accuracy = self.global_accuracy(train_accuracy, train.n_rows())?;
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
                    interrupted = self.stop_requested()? && !last;
                    if self.checkpoint_due(it.iteration, interrupted) && !last {
                        save(state)?;
                    }
                    Ok(if interrupted {
                        ControlFlow::Break(())
                    } else {
                        flow
                    })
                };
                report_iteration().unwrap_or_else(|e| {
                    failure = Some(e);
                    ControlFlow::Break(())
                })
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
            evaluations: Some(result.evaluations),
        })
    }
}

/// An oracle shared through a `RefCell`: L-BFGS borrows it for each oracle call, and the
/// per-iteration callback between calls (for the training accuracy on the same device
/// problem).
impl Trainer {
    /// Checks that a resumed run has the chunk plan and storage its checkpoint was made
    /// with, and returns what saves a checkpoint at an iterate.
    fn lbfgs_saver<'a>(
        &'a self,
        backend: Backend<'_>,
        train: &Dataset,
        resumed: Option<&Checkpoint>,
        device: Option<(ChunkPlan, bool)>,
    ) -> Result<impl Fn(&LbfgsState) -> Result<()> + 'a> {
        let s = &self.settings;
        // The chunk plan decides the order of the gradient's sums, so a resumed run must
        // have the same one (0 on the CPU, which has no chunks).
        let chunk_rows = device.map_or(0, |(plan, _)| plan.chunk_rows);
        let x_storage = x_storage_of(backend);
        self.check_device(resumed.map(Checkpoint::device), chunk_rows, x_storage)?;
        let fingerprint = self.fingerprint(train)?;
        Ok(move |state: &LbfgsState| {
            self.save_checkpoint(lbfgs_checkpoint(
                s,
                state,
                &fingerprint,
                chunk_rows,
                x_storage,
            ))
        })
    }

    /// Where L-BFGS starts: the resumed checkpoint's state, or `w0`.
    fn lbfgs_start(&self, resumed: Option<&Checkpoint>, w0: &[f32]) -> Result<Start> {
        Ok(match resumed.map(|cp| cp.lbfgs.clone()) {
            Some(Some(state)) => Start::Resume(state),
            Some(None) => return Err(self.checkpoint_error("holds no L-BFGS state".into())),
            None => Start::At(w0.iter().map(|&v| f64::from(v)).collect()),
        })
    }
}

/// An L-BFGS checkpoint at `state`: the point as the parameters, no moments.
fn lbfgs_checkpoint(
    s: &Settings,
    state: &LbfgsState,
    fingerprint: &str,
    chunk_rows: usize,
    x_storage: &str,
) -> Checkpoint {
    let w: Vec<f32> = state.w.iter().map(|&v| v as f32).collect();
    let zeros = vec![0.0; w.len()];
    Checkpoint {
        settings: trajectory_settings(s),
        data: fingerprint.to_string(),
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
    }
}

/// The training accuracy (from the GPU oracle's own chunks, or the CPU evaluator) and the
/// validation metrics at an L-BFGS iterate.
fn iteration_metrics(
    w: &[f32],
    train: &Dataset,
    gpu: Option<&RefCell<GpuOracle<'_>>>,
    cpu_accuracy: Option<&mut Evaluator<'_, '_>>,
    validator: Option<&mut Evaluator<'_, '_>>,
) -> Result<(Option<f64>, Option<Metrics>)> {
    let train_accuracy = match (gpu, cpu_accuracy) {
        (Some(cell), _) => Some(cell.borrow_mut().metrics(w, train.labels())?.accuracy),
        (None, Some(e)) => Some(e.evaluate(w)?.accuracy),
        _ => None,
    };
    let validation = validator.map(|v| v.evaluate(w)).transpose()?;
    Ok((train_accuracy, validation))
}

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
