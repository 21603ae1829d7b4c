//! Stage ④, optimizers over an [`Oracle`](crate::Oracle): full-batch L-BFGS ([`lbfgs`]), and
//! several L-BFGS runs sharing each oracle call, one per λ of a regularisation path ([`path`]).
//! The mini-batch update rules (gd, momentum, adam) are applied by the trainer's engines,
//! on the device by update.wgsl and on the CPU by [`crate::reference::update`].

pub mod lbfgs;
pub mod path;

/// How a run of an optimizer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The gradient's max-norm fell to the tolerance.
    Converged,
    /// The iteration (epoch) limit was reached first.
    IterationLimit,
    /// No step along the search direction satisfied the Wolfe conditions: the objective
    /// is flat to the oracle's precision there.
    LineSearchFailed,
    /// The loss became NaN or infinite; the parameters are the last finite ones.
    Diverged,
    /// The caller's callback stopped the run.
    Stopped,
    /// The validation loss did not improve for `patience` epochs; the model holds the
    /// parameters of the best validation epoch.
    EarlyStopped,
    /// An interrupt (Ctrl-C, SIGTERM) stopped the run after a whole step.
    Interrupted,
}

impl Status {
    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Status::Converged => "converged",
            Status::IterationLimit => "iteration limit",
            Status::LineSearchFailed => "line search failed",
            Status::Diverged => "diverged",
            Status::Stopped => "stopped",
            Status::EarlyStopped => "early stopped",
            Status::Interrupted => "interrupted",
        }
    }

    /// The status of a [`Status::name`].
    pub fn from_name(name: &str) -> Option<Status> {
        [
            Status::Converged,
            Status::IterationLimit,
            Status::LineSearchFailed,
            Status::Diverged,
            Status::Stopped,
            Status::EarlyStopped,
            Status::Interrupted,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
