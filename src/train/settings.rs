//! What a training run is asked to do: the update rule, its hyper-parameters, the
//! learning-rate schedule and the stopping rules, with their defaults, checked once
//! before any data is touched.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::step::Step;

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Optimizer {
    /// Full-batch gradient descent, `w ← w − η∇J` (refuses a batch size).
    #[default]
    Gd,
    /// The same step on mini-batches (full batch when no batch size is set).
    Sgd,
    /// Heavy-ball momentum, `v ← μv + g`, `w ← w − ηv`.
    Momentum,
    /// Adam with bias correction.
    Adam,
    /// Full-batch L-BFGS with a strong Wolfe line search (see [`crate::optim::lbfgs`]); one
    /// epoch is one iteration.
    Lbfgs,
}

impl Optimizer {
    /// Every optimizer, by name.
    pub const ALL: [Optimizer; 5] = [
        Optimizer::Gd,
        Optimizer::Sgd,
        Optimizer::Momentum,
        Optimizer::Adam,
        Optimizer::Lbfgs,
    ];

    /// The name used by the binary and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Gd => "gd",
            Optimizer::Sgd => "sgd",
            Optimizer::Momentum => "momentum",
            Optimizer::Adam => "adam",
            Optimizer::Lbfgs => "lbfgs",
        }
    }

    /// What one of its steps is called in reports: `"iterations"` for L-BFGS (one per
    /// pass over the data), `"epochs"` for the others.
    pub fn steps_name(self) -> &'static str {
        match self {
            Optimizer::Lbfgs => "iterations",
            _ => "epochs",
        }
    }
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Optimizer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Optimizer::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| {
                Error::setting(
                    "optimizer",
                    s,
                    "expected one of gd, sgd, momentum, adam, lbfgs",
                )
            })
    }
}

/// Training settings. Every field has a documented default; [`Settings::validate`] checks
/// them all before any data is touched.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Passes over the data. Default 100.
    pub epochs: usize,
    /// Step size η. Default 0.1.
    pub learning_rate: f32,
    /// λ of the objective (mean cross-entropy + λ/2‖Θ‖²). Default 1e-4.
    pub l2: f64,
    /// Rows per mini-batch; `None` (the default) is full batch.
    pub batch_size: Option<usize>,
    /// Update rule. Default [`Optimizer::Gd`].
    pub optimizer: Optimizer,
    /// Seed of the mini-batch shuffle. Default 0.
    pub seed: u64,
    /// μ of [`Optimizer::Momentum`]. Default 0.9.
    pub momentum: f32,
    /// β₁ of Adam. Default 0.9.
    pub beta1: f32,
    /// β₂ of Adam. Default 0.999.
    pub beta2: f32,
    /// ε of Adam. Default 1e-8.
    pub epsilon: f32,
    /// Upper bound on rows per device chunk; `None` (the default) lets the device's
    /// storage-binding limit decide. Mini-batches are drawn within one chunk.
    pub chunk_rows: Option<usize>,
    /// Also report training accuracy each epoch (one extra forward pass). Default false.
    pub track_accuracy: bool,
    /// Stop, converged, once the full gradient's max-norm `max |∇J|` (scikit-learn's
    /// criterion) is at most this, checked after every epoch. 0 runs every epoch.
    /// Default 1e-4.
    pub tol: f64,
    /// Correction pairs kept by [`Optimizer::Lbfgs`]. Default 10.
    pub history: usize,
    /// How the learning rate changes over epochs (first-order optimizers). Default
    /// [`Schedule::Constant`].
    pub schedule: Schedule,
    /// Stop when the validation log-loss has not improved for this many epochs, keeping
    /// the best parameters seen; needs validation data. `None` (the default) never stops
    /// early. Not used by L-BFGS, which stops on `tol`.
    pub patience: Option<usize>,
    /// Train on standardized features `(x − μ) / σ`, with μ and σ learned from the
    /// training rows ([`crate::Standardizer::fit`]) and applied to the validation rows too; the
    /// fitted model carries them, so it takes raw features. Default false.
    pub standardize: bool,
}

/// Learning-rate schedules: the rate of epoch e (1-based) out of E, from the base rate η.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Schedule {
    /// η throughout.
    #[default]
    Constant,
    /// `η · factor^⌊(e − 1) / every⌋`.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Multiplier at each decay, in (0, 1].
        factor: f32,
    },
    /// `η · ½(1 + cos(π (e − 1) / E))`.
    Cosine,
}

impl Schedule {
    /// The learning rate of `epoch` (1-based) out of `epochs`.
    pub fn rate(self, base: f32, epoch: usize, epochs: usize) -> f32 {
        let e = epoch.saturating_sub(1);
        match self {
            Schedule::Constant => base,
            Schedule::Step { every, factor } => {
                base * factor.powi((e / every.max(1)).min(i32::MAX as usize) as i32)
            }
            Schedule::Cosine => {
                let t = e as f64 / epochs.max(1) as f64;
                (f64::from(base) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
            }
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            epochs: 100,
            learning_rate: 0.1,
            l2: 1e-4,
            batch_size: None,
            optimizer: Optimizer::Gd,
            seed: 0,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            chunk_rows: None,
            track_accuracy: false,
            tol: 1e-4,
            history: 10,
            schedule: Schedule::Constant,
            patience: None,
            standardize: false,
        }
    }
}

fn unit_interval(name: &'static str, v: f32) -> Result<()> {
    if !(v.is_finite() && (0.0..1.0).contains(&v)) {
        return Err(Error::setting(name, v, "must be in [0, 1)"));
    }
    Ok(())
}

impl Settings {
    /// Checks every field; the error names the setting and the value.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::setting("epochs", 0, "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::setting(
                "learning_rate",
                self.learning_rate,
                "must be a finite number > 0",
            ));
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(Error::setting("l2", self.l2, "must be a finite number ≥ 0"));
        }
        match (self.batch_size, self.optimizer) {
            (Some(0), _) => return Err(Error::setting("batch_size", 0, "must be at least 1")),
            (Some(b), Optimizer::Gd) => {
                return Err(Error::setting(
                    "batch_size",
                    b,
                    "gd is full-batch; use sgd, momentum or adam for mini-batches",
                ));
            }
            _ => {}
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(Error::setting(
                "tol",
                self.tol,
                "must be a finite number ≥ 0",
            ));
        }
        if let Schedule::Step { every, factor } = self.schedule {
            if every == 0 {
                return Err(Error::setting("step_every", 0, "must be at least 1"));
            }
            if !(factor.is_finite() && factor > 0.0 && factor <= 1.0) {
                return Err(Error::setting("step_factor", factor, "must be in (0, 1]"));
            }
        }
        match (self.patience, self.optimizer) {
            (Some(0), _) => return Err(Error::setting("patience", 0, "must be at least 1")),
            (Some(p), Optimizer::Lbfgs) => {
                return Err(Error::setting(
                    "patience",
                    p,
                    "early stopping applies to gd, sgd, momentum and adam; lbfgs stops on tol",
                ));
            }
            _ => {}
        }
        if self.history == 0 {
            return Err(Error::setting("history", 0, "must be at least 1"));
        }
        if self.chunk_rows == Some(0) {
            return Err(Error::setting("chunk_rows", 0, "must be at least 1"));
        }
        unit_interval("momentum", self.momentum)?;
        unit_interval("beta1", self.beta1)?;
        unit_interval("beta2", self.beta2)?;
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::setting(
                "epsilon",
                self.epsilon,
                "must be a finite number > 0",
            ));
        }
        Ok(())
    }

    /// The update of step `t` (1-based).
    pub(crate) fn step(&self, t: u64) -> Step {
        match self.optimizer {
            Optimizer::Gd | Optimizer::Sgd | Optimizer::Lbfgs => Step::Plain,
            Optimizer::Momentum => Step::Momentum {
                momentum: self.momentum,
            },
            Optimizer::Adam => Step::Adam {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.epsilon,
                c1: 1.0 - self.beta1.powi(t.min(i32::MAX as u64) as i32),
                c2: 1.0 - self.beta2.powi(t.min(i32::MAX as u64) as i32),
            },
        }
    }
}
