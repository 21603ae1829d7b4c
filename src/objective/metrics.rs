//! Where a forward pass runs ([`Backend`]: the CPU reference or a GPU) and what it gives:
//! class probabilities for prediction, and accuracy and mean cross-entropy on labelled
//! data. The model and the trainer ask here rather than match on the backend themselves.

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::data::dataset::Dataset;
use std::sync::Arc;

use crate::data::csr::Csr;
use crate::error::Result;
use crate::gpu::GpuContext;
use crate::gpu::chunks::{DeviceChunks, Rows};
use crate::objective::reference::HostX;

/// Where computation runs.
#[derive(Debug, Clone, Copy)]
pub enum Backend<'c> {
    /// The f64 ndarray reference.
    Cpu,
    /// The WGSL kernels on a wgpu device.
    Gpu(&'c GpuContext),
    /// The WGSL kernels on several devices at once, X's rows split evenly between them in
    /// this order (full-batch training: lbfgs and gd). Evaluation and prediction run on
    /// the first.
    Devices(&'c [GpuContext]),
}

impl<'c> Backend<'c> {
    /// The backend of opened devices: the CPU reference for none, one device, or several
    /// with X's rows split between them.
    pub fn of(devices: &'c [GpuContext]) -> Backend<'c> {
        match devices {
            [] => Backend::Cpu,
            [one] => Backend::Gpu(one),
            all => Backend::Devices(all),
        }
    }

    /// The backend in words: the CPU reference, the adapter, or each of several adapters.
    pub fn describe(self) -> String {
        match self {
            Backend::Cpu => "CPU reference (f64)".to_string(),
            Backend::Gpu(one) => one.describe(),
            Backend::Devices(all) => format!(
                "{} devices, the rows split evenly between them in this order: {}",
                all.len(),
                all.iter()
                    .map(GpuContext::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }

    /// Where a single forward pass runs: the first of several devices, else this backend.
    pub fn primary(self) -> Backend<'c> {
        match self {
            Backend::Devices(all) => all.first().map_or(Backend::Cpu, Backend::Gpu),
            other => other,
        }
    }

    /// The devices this backend computes on (none for the CPU).
    pub fn devices(self) -> &'c [GpuContext] {
        match self {
            Backend::Cpu => &[],
            Backend::Gpu(ctx) => std::slice::from_ref(ctx),
            Backend::Devices(all) => all,
        }
    }
}

/// Accuracy and mean cross-entropy of a model on labelled data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// `(1/m) Σ_i −log P[i, y⁽ⁱ⁾]` (no regularisation term).
    pub log_loss: f64,
    /// Fraction of rows whose most probable class is the label.
    pub accuracy: f64,
}

/// Index of the largest value (the first one on ties).
pub(crate) fn argmax(values: impl Iterator<Item = f32>) -> u32 {
    let mut best = (0u32, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i as u32, v);
        }
    }
    best.0
}

/// Metrics for one labelled dataset at changing parameters, with the data kept on the
/// device between calls.
pub(crate) enum Evaluator<'c, 'd> {
    Cpu {
        x: HostX,
        data: &'d Dataset,
    },
    Gpu {
        problem: Box<DeviceChunks<'c>>,
        data: &'d Dataset,
    },
}

impl<'c, 'd> Evaluator<'c, 'd> {
    pub(crate) fn new(backend: Backend<'c>, data: &'d Dataset) -> Result<Self> {
        Ok(match backend.primary() {
            // primary() is one device, or the CPU when there is none.
            Backend::Cpu | Backend::Devices(_) => Evaluator::Cpu {
                x: HostX::of(data)?,
                data,
            },
            Backend::Gpu(ctx) => Evaluator::Gpu {
                problem: Box::new(DeviceChunks::new(
                    ctx,
                    Rows::of(data),
                    Some(data.labels()),
                    None,
                    data.n_classes(),
                    None,
                    None,
                )?),
                data,
            },
        })
    }

    /// The rows it measures.
    pub(crate) fn rows(&self) -> usize {
        match self {
            Evaluator::Cpu { data, .. } | Evaluator::Gpu { data, .. } => data.n_rows(),
        }
    }

    /// Metrics at w = (Θ row-major, b).
    pub(crate) fn evaluate(&mut self, w: &[f32]) -> Result<Metrics> {
        match self {
            Evaluator::Cpu { x, data } => {
                let (n, k) = (data.n_features(), data.n_classes());
                let (theta, bias) = crate::params::unflatten(w, n, k);
                let z = x.logits(theta.mapv(f64::from).view(), bias.mapv(f64::from).view());
                let loss = crate::objective::reference::cross_entropy_rows(z.view(), data.labels())
                    .mean()
                    .unwrap_or(f64::NAN);
                let correct = z
                    .outer_iter()
                    .zip(data.labels())
                    .filter(|(row, y)| argmax(row.iter().map(|&v| v as f32)) == **y)
                    .count();
                Ok(Metrics {
                    log_loss: loss,
                    accuracy: correct as f64 / data.n_rows() as f64,
                })
            }
            Evaluator::Gpu { problem, data } => {
                problem.set_params(w);
                gpu_metrics(problem, data.labels())
            }
        }
    }
}

/// Accuracy and mean cross-entropy from the forward pass over a problem whose parameters
/// are already set. The kernel writes P − Y, so 1 is added back at the label column.
pub(crate) fn gpu_metrics(problem: &DeviceChunks<'_>, labels: &[u32]) -> Result<Metrics> {
    let k = problem.k;
    let mut loss_sum = 0.0f64;
    let mut correct = 0usize;
    problem.forward_chunks(|start, z, row_loss| {
        for (r, (row, &loss)) in z.chunks_exact(k).zip(row_loss).enumerate() {
            let y = labels[start + r];
            let pred = argmax(
                row.iter()
                    .enumerate()
                    .map(|(c, &v)| if c as u32 == y { v + 1.0 } else { v }),
            );
            correct += usize::from(pred == y);
            loss_sum += f64::from(loss);
        }
    })?;
    let m = labels.len() as f64;
    Ok(Metrics {
        log_loss: loss_sum / m,
        accuracy: correct as f64 / m,
    })
}

/// Rows to predict: a dense array, or a sparse matrix.
#[derive(Clone, Copy)]
pub(crate) enum RowsIn<'a> {
    Dense(ArrayView2<'a, f32>),
    Sparse(&'a Csr),
}

impl RowsIn<'_> {
    fn n_rows(&self) -> usize {
        match self {
            RowsIn::Dense(x) => x.nrows(),
            RowsIn::Sparse(c) => c.n_rows(),
        }
    }
}

/// The class probabilities P (rows, K) of the rows of `x` under (Θ, b): the f64 reference on
/// the CPU (with the stored values only, for sparse rows), the device's forward pass
/// (logits and softmax per chunk, sparse rows read as dense chunks) on a GPU.
pub(crate) fn probabilities(
    backend: Backend<'_>,
    theta: ArrayView2<'_, f32>,
    bias: ArrayView1<'_, f32>,
    x: RowsIn<'_>,
) -> Result<Array2<f32>> {
    match backend.primary() {
        Backend::Cpu | Backend::Devices(_) => {
            let (theta, bias) = (theta.mapv(f64::from), bias.mapv(f64::from));
            let z = match x {
                RowsIn::Dense(x) => {
                    crate::objective::reference::logits(x, theta.view(), bias.view())
                }
                RowsIn::Sparse(c) => c.logits_f64(theta.view(), bias.view()),
            };
            Ok(crate::objective::reference::softmax_rows(z.view()).mapv(|p| p as f32))
        }
        Backend::Gpu(ctx) => {
            let k = theta.ncols();
            let rows = match x {
                RowsIn::Dense(x) => Rows::View(x),
                RowsIn::Sparse(c) => Rows::Sparse(Arc::new(c.clone())),
            };
            let problem = DeviceChunks::new(ctx, rows, None, None, k, None, None)?;
            problem.set_params_from(theta, bias);
            let mut p = Array2::zeros((x.n_rows(), k));
            problem.forward_chunks(|start, z, _| {
                let rows = z.len() / k;
                let mut block = p.slice_mut(ndarray::s![start..start + rows, ..]);
                for (dst, &src) in block.iter_mut().zip(z) {
                    *dst = src;
                }
            })?;
            Ok(p)
        }
    }
}
