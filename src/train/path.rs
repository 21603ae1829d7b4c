//! Regularisation paths: one L-BFGS model per λ on the same training rows, trained in
//! lockstep on one oracle ([`crate::optim::path`]), or one after another from the
//! strongest λ with each model starting at its neighbour's solution (warm starts).

use super::*;
use crate::optim::lbfgs::LbfgsResult;
use crate::optim::path::{PathStart, minimize_path};

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
fn path_oracle<'c>(
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
    /// Checkpoints and resuming are not supported for paths: a trainer with either is
    /// refused.
    pub fn fit_path(
        &self,
        backend: Backend<'_>,
        train: &Dataset,
        l2s: &[f64],
        warm_start: bool,
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
        check_path(l2s)?;
        if let Some(path) = self.checkpoint_path() {
            return Err(Error::setting(
                "checkpoint",
                path.display(),
                "checkpoints are not written for a regularisation path; train one λ to checkpoint",
            ));
        }
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
        if let Backend::Gpu(ctx) = backend {
            ctx.reset_memory_peak();
        }
        let mut oracle: Box<dyn Oracle + '_> = match backend {
            Backend::Cpu => Box::new(CpuOracle::new(used)?),
            // In lockstep, every model of the path shares each pass over X.
            Backend::Gpu(ctx) => {
                let models = if warm_start { 1 } else { l2s.len() };
                Box::new(path_oracle(ctx, used, s.chunk_rows, models)?)
            }
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
        let mut report = |s: usize, it: &crate::optim::lbfgs::LbfgsIteration| {
            let flow = on_iteration(
                s,
                &EpochReport {
                    epoch: it.iteration,
                    loss: it.loss,
                    grad_max_norm: it.grad_max_norm,
                    train_accuracy: None,
                    validation: None,
                    elapsed: started.elapsed().as_secs_f64(),
                },
            );
            if self.interrupted() {
                ControlFlow::Break(())
            } else {
                flow
            }
        };
        let results: Vec<LbfgsResult> = if warm_start {
            // Strongest λ first; ties keep their order.
            let mut order: Vec<usize> = (0..l2s.len()).collect();
            order.sort_by(|&a, &b| l2s[b].total_cmp(&l2s[a]));
            let mut done: Vec<Option<LbfgsResult>> = vec![None; l2s.len()];
            let mut from = zero;
            for &i in &order {
                let start = PathStart {
                    start: Start::At(from.clone()),
                    l2: l2s[i],
                };
                let mut result =
                    minimize_path(oracle.as_mut(), vec![start], &settings, |_, it, _| {
                        report(i, it)
                    })?;
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
                .map(|&l2| PathStart {
                    start: Start::At(zero.clone()),
                    l2,
                })
                .collect();
            minimize_path(oracle.as_mut(), runs, &settings, |s, it, _| report(s, it))?
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
}
