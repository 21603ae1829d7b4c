//! The strengths of regularisation a selection compares, and what each one scored: plain
//! values shared by the selection ([`super::select`]) and its checkpoints.

use crate::error::{Error, Result};
use crate::optim::Status;

/// A regularisation strength as the user gives it: λ of the crate's objective, or C as
/// scikit-learn defines it (C·Σᵢ CEᵢ + ½‖Θ‖², so λ = 1/(C·m) for m training rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strength {
    /// λ of mean cross-entropy + λ/2‖Θ‖², the same for any number of rows.
    L2(f64),
    /// scikit-learn's C: λ = 1/(C·m) on m training rows, so it depends on the rows a fold
    /// trains on.
    C(f64),
}

impl Strength {
    /// λ for a training set of `m` rows.
    pub fn l2(self, m: usize) -> f64 {
        match self {
            Strength::L2(l2) => l2,
            Strength::C(c) => 1.0 / (c * m as f64),
        }
    }

    /// The number the user gave.
    pub fn value(self) -> f64 {
        match self {
            Strength::L2(v) | Strength::C(v) => v,
        }
    }

    /// "l2" or "C": the setting (and flag) that gives it.
    pub fn setting(self) -> &'static str {
        match self {
            Strength::L2(_) => "l2",
            Strength::C(_) => "C",
        }
    }

    /// "λ" or "C".
    pub fn symbol(self) -> &'static str {
        match self {
            Strength::L2(_) => "λ",
            Strength::C(_) => "C",
        }
    }

    /// `n` values log-spaced from `high` down to `low` (both included), as λ.
    pub fn log_spaced(high: f64, low: f64, n: usize) -> Result<Vec<Strength>> {
        if !(high.is_finite() && low.is_finite() && high > 0.0 && low > 0.0) {
            return Err(Error::setting(
                "l2_path",
                format!("{high}:{low}:{n}"),
                "HIGH and LOW must be finite numbers > 0",
            ));
        }
        if n < 2 {
            return Err(Error::setting(
                "l2_path",
                format!("{high}:{low}:{n}"),
                "COUNT must be at least 2",
            ));
        }
        let (a, b) = (high.log10(), low.log10());
        Ok((0..n)
            .map(|i| Strength::L2(10f64.powf(a + (b - a) * i as f64 / (n - 1) as f64)))
            .collect())
    }
}

/// One strength's results over the folds (or the one validation set).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The strength as given.
    pub strength: Strength,
    /// The held-out score of each fold's model.
    pub scores: Vec<f64>,
    /// The training objective J each fold's model ended at.
    pub train_loss: Vec<f64>,
    /// L-BFGS iterations of each fold's model.
    pub iterations: Vec<usize>,
    /// Oracle calls of each fold's model (its share of the passes over X).
    pub evaluations: Vec<usize>,
    /// How each fold's model ended.
    pub statuses: Vec<Status>,
}

impl Candidate {
    /// A strength with no results yet.
    pub(crate) fn new(strength: Strength) -> Candidate {
        Candidate {
            strength,
            scores: Vec::new(),
            train_loss: Vec::new(),
            iterations: Vec::new(),
            evaluations: Vec::new(),
            statuses: Vec::new(),
        }
    }

    /// Mean score over the folds.
    pub fn mean(&self) -> f64 {
        self.scores.iter().sum::<f64>() / self.scores.len() as f64
    }

    /// Standard deviation of the scores over the folds (population form, as numpy's
    /// default).
    pub fn std(&self) -> f64 {
        let mean = self.mean();
        let var = self
            .scores
            .iter()
            .map(|s| (s - mean) * (s - mean))
            .sum::<f64>()
            / self.scores.len() as f64;
        var.sqrt()
    }

    /// Mean training J over the folds.
    pub fn mean_train_loss(&self) -> f64 {
        self.train_loss.iter().sum::<f64>() / self.train_loss.len() as f64
    }

    /// The status to report: converged when every fold converged, else the first other.
    pub fn status(&self) -> Status {
        self.statuses
            .iter()
            .copied()
            .find(|s| *s != Status::Converged)
            .unwrap_or(Status::Converged)
    }
}
