//! Stage ①, the rows of X and their labels: where rows come from ([`source`]), sparse X
//! in CSR form ([`csr`]), the validated [`Dataset`], generated problems ([`synth`]), the
//! built-in digits data ([`builtin`]) and per-feature standardization ([`standardize`]).
//! Nothing here touches the device.

pub mod builtin;
pub mod csr;
pub(crate) mod dataset;
pub mod source;
pub mod standardize;
pub mod synth;

pub use csr::Csr;
pub use dataset::Dataset;
