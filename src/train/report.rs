//! What a run reports: one [`EpochReport`] per epoch, and the [`Fit`] it ends with.

use super::*;

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
    /// Oracle calls (passes over X) L-BFGS made, line searches included; `None` for the
    /// other optimizers, whose passes are their epochs.
    pub evaluations: Option<usize>,
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
    pub(super) fn of(backend: Backend<'_>, device: Option<(ChunkPlan, bool)>) -> Option<Self> {
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
    pub(super) fn of(
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
            evaluations: None,
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
