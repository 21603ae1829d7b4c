//! The mini-batch update rules (gd, momentum, adam) and their hyper-parameters, declared
//! once: [`Step`] is what the trainer asks for, the CPU reference applies it
//! ([`crate::reference::update`]) and update.wgsl reads it as [`StepDims`].

use bytemuck::{Pod, Zeroable};

/// Which optimizer update rule a step applies, with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// `w ← w − η g`.
    Plain,
    /// Heavy ball: `v ← μ v + g`, `w ← w − η v`.
    Momentum {
        /// μ.
        momentum: f32,
    },
    /// Adam (Kingma & Ba): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `w ← w − η (m / c₁) / (√(v / c₂) + ε)` with `c₁ = 1 − β₁ᵗ`, `c₂ = 1 − β₂ᵗ`.
    Adam {
        /// β₁.
        beta1: f32,
        /// β₂.
        beta2: f32,
        /// ε.
        eps: f32,
        /// `1 − β₁ᵗ` for this step t (1-based).
        c1: f32,
        /// `1 − β₂ᵗ`.
        c2: f32,
    },
}

/// The hyper-parameters of one step in the layout update.wgsl reads them (part of its
/// `Dims` uniform); a field a rule does not use is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct StepDims {
    pub l2: f32,
    pub lr: f32,
    pub momentum: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub c1: f32,
    pub c2: f32,
}

impl StepDims {
    /// The hyper-parameters of `step` at learning rate `lr` and L2 strength `l2`.
    pub(crate) fn of_step(step: Step, lr: f32, l2: f32) -> Self {
        let base = StepDims {
            l2,
            lr,
            ..Default::default()
        };
        match step {
            Step::Plain => base,
            Step::Momentum { momentum } => StepDims { momentum, ..base },
            Step::Adam {
                beta1,
                beta2,
                eps,
                c1,
                c2,
            } => StepDims {
                beta1,
                beta2,
                eps,
                c1,
                c2,
                ..base
            },
        }
    }
}
