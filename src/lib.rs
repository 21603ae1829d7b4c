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

pub mod checkpoint;
mod dataset;
pub mod datasets;
mod error;
pub mod formats;
pub mod fuzzing;
pub mod gpu;
pub mod lbfgs;
mod metrics;
mod model;
pub mod model_file;
mod oracle;
pub mod output;
pub(crate) mod params;
pub mod reference;
mod rng;
mod settings;
pub mod source;
pub mod standardize;
pub mod synth;
mod train;
pub(crate) mod util;
mod vectors;

pub use checkpoint::Checkpoint;
pub use dataset::Dataset;
pub use error::{Error, Result};
pub use gpu::{AdapterRequest, GpuContext};
pub use lbfgs::Status;
pub use metrics::{Backend, Metrics};
pub use model::Model;
pub use oracle::{CpuOracle, GpuOracle, LossGrad, Oracle, StepTimes};
pub use rng::SplitMix64;
pub use standardize::{Scaling, Standardizer};
pub use train::{DeviceUse, EpochReport, Fit, Optimizer, Schedule, Settings, Trainer};
