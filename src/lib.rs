//! Multinomial logistic (softmax) regression trained on any GPU through wgpu, with WGSL
//! compute shaders doing the heavy work and an f64 CPU reference checking every result.
//!
//! With m samples, n features and K classes, X (m, n), Θ (n, K), b (K) and one-hot Y:
//!
//! ```text
//! Z = XΘ + 1bᵀ
//! P[i,k] = exp(Z[i,k] − M_i) / Σ_j exp(Z[i,j] − M_i),   M_i = max_j Z[i,j]
//! J(Θ,b) = (1/m) Σ_i −log P[i, y⁽ⁱ⁾] + (λ/2)‖Θ‖²_F
//! ∇_Θ J = (1/m) Xᵀ(P − Y) + λΘ        ∇_b J = (1/m) Σ_i (P − Y)[i,:]
//! ```
//!
//! The pieces: [`Dataset`] (validated once), the [`Oracle`] (`(Θ, b) → (J, ∇J)`, on the
//! GPU or the CPU reference), [`Trainer`] with [`Settings`], and [`Model`].
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

// The stages in the order data flows through them; a module uses only those above it.
mod error;
pub(crate) mod params;
mod rng;
pub(crate) mod step;
pub(crate) mod util;
mod vectors;

pub mod data;
pub mod formats;
pub mod fuzzing;
pub mod gpu;
pub mod model;
pub mod objective;
pub mod optim;
pub mod output;
pub mod ranks;
pub mod train;

// Paths that predate the stage directories, kept so existing code keeps compiling.
pub use data::builtin as datasets;
pub use data::{source, standardize, synth};
pub use model::file as model_file;
pub use objective::reference;
pub use optim::lbfgs;
pub use train::checkpoint;

pub use data::Dataset;
pub use data::standardize::{Scaling, Standardizer};
pub use error::{Error, Result};
pub use gpu::{AdapterRequest, GpuContext};
pub use model::Model;
pub use objective::metrics::{Backend, Metrics};
pub use objective::sum::SumOracle;
pub use objective::{CpuOracle, GpuOracle, LossGrad, Oracle, PointAt, StepTimes};
pub use optim::Status;
pub use rng::SplitMix64;
pub use train::checkpoint::{Checkpoint, PathCheckpoint};
pub use train::{
    Candidate, Choice, DeviceUse, EpochReport, Fit, Folds, Optimizer, PathModel, Schedule, Score,
    Selection, SelectionStep, Settings, Strength, Trainer,
};
