//! The CPU reference: plain ndarray with f64 accumulation and the row maximum subtracted.
//! It is the definition of correct. Every GPU kernel is compared against the function of
//! the same name here, and the CPU backend trains with it.
//!
//! Shapes: x (m, n) · theta (n, K) · bias (K) · z and p (m, K) · labels (m).

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis, Zip};

use crate::data::Dataset;
use crate::data::csr::Csr;
use crate::error::Result;

/// Logits `Z = XΘ + 1bᵀ`, shape (m, K).
pub fn logits(
    x: ArrayView2<'_, f32>,
    theta: ArrayView2<'_, f64>,
    bias: ArrayView1<'_, f64>,
) -> Array2<f64> {
    let x64 = x.mapv(f64::from);
    logits_f64(x64.view(), theta, bias)
}

pub(crate) fn logits_f64(
    x: ArrayView2<'_, f64>,
    theta: ArrayView2<'_, f64>,
    bias: ArrayView1<'_, f64>,
) -> Array2<f64> {
    let mut z = x.dot(&theta);
    z += &bias;
    z
}

/// Row-wise stable softmax:
/// `P[i,k] = exp(Z[i,k] − M_i) / Σ_j exp(Z[i,j] − M_i)` with `M_i = max_j Z[i,j]`.
pub fn softmax_rows(z: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut p = z.to_owned();
    for mut row in p.outer_iter_mut() {
        let max = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    p
}

/// Per-row cross-entropy `−log P[i, y⁽ⁱ⁾] = log Σ_j exp(Z[i,j] − M_i) − (Z[i,y] − M_i)`,
/// computed from the logits (never the log of a rounded probability).
pub fn cross_entropy_rows(z: ArrayView2<'_, f64>, labels: &[u32]) -> Array1<f64> {
    Array1::from_iter(z.outer_iter().zip(labels).map(|(row, &y)| {
        let max = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f64 = row.iter().map(|&v| (v - max).exp()).sum();
        sum.ln() - (row[y as usize] - max)
    }))
}

/// `P − Y`, the softmax minus the one-hot labels: what the softmax kernel writes in place of Z.
pub fn softmax_minus_onehot(z: ArrayView2<'_, f64>, labels: &[u32]) -> Array2<f64> {
    let mut d = softmax_rows(z);
    for (mut row, &y) in d.outer_iter_mut().zip(labels) {
        row[y as usize] -= 1.0;
    }
    d
}

/// The objective `J(Θ,b) = (1/m) Σ_i −log P[i, y⁽ⁱ⁾] + (λ/2)‖Θ‖²_F` (bias not regularised).
pub fn loss(
    x: ArrayView2<'_, f32>,
    labels: &[u32],
    theta: ArrayView2<'_, f64>,
    bias: ArrayView1<'_, f64>,
    l2: f64,
) -> f64 {
    let z = logits(x, theta, bias);
    let m = x.nrows().max(1) as f64;
    let ce_sum = cross_entropy_rows(z.view(), labels).sum();
    super::objective_value(ce_sum, m, l2, theta.iter().map(|t| t * t).sum())
}

/// The gradient `∇_Θ J = (1/m) Xᵀ(P − Y) + λΘ` (n, K) and `∇_b J = (1/m) Σ_i (P − Y)[i,:]` (K).
///
/// Column k of Xᵀ(P − Y) is `−Σ_i x⁽ⁱ⁾(1{y⁽ⁱ⁾=k} − P(y⁽ⁱ⁾=k | x⁽ⁱ⁾))`.
pub fn gradient(
    x: ArrayView2<'_, f32>,
    labels: &[u32],
    theta: ArrayView2<'_, f64>,
    bias: ArrayView1<'_, f64>,
    l2: f64,
) -> (Array2<f64>, Array1<f64>) {
    let x64 = HostX::Dense(x.mapv(f64::from));
    let (_, gt, gb) = loss_and_gradient_host(&x64, labels, None, theta, bias, l2);
    (gt, gb)
}

/// The weighted objective and its gradient, with sample weights w (m):
/// `J = (1/m) Σ_i w_i·(−log P[i, y⁽ⁱ⁾]) + (λ/2)‖Θ‖²`,
/// `∇_Θ J = (1/m) Xᵀ W (P − Y) + λΘ`, `∇_b J = (1/m) Σ_i w_i (P − Y)[i,:]`, W = diag(w).
pub fn weighted_loss_and_gradient(
    x: ArrayView2<'_, f32>,
    labels: &[u32],
    weights: &[f64],
    theta: ArrayView2<'_, f64>,
    bias: ArrayView1<'_, f64>,
    l2: f64,
) -> (f64, Array2<f64>, Array1<f64>) {
    let x64 = HostX::Dense(x.mapv(f64::from));
    loss_and_gradient_host(&x64, labels, Some(weights), theta, bias, l2)
}

/// X as the reference computes with it: an f64 copy of a dense X, or the stored values
/// of a sparse one (never expanded).
#[derive(Debug, Clone)]
pub(crate) enum HostX {
    Dense(Array2<f64>),
    Sparse(Arc<Csr>),
}

impl HostX {
    /// The dataset's X for the reference: CSR as it is, dense X copied to f64 once (read
    /// from its source when the dataset streams it).
    pub(crate) fn of(data: &Dataset) -> Result<Self> {
        Ok(match data.shared_csr() {
            Some(csr) => HostX::Sparse(csr),
            None => HostX::Dense(data.x_f64()?),
        })
    }

    pub(crate) fn n_rows(&self) -> usize {
        match self {
            HostX::Dense(x) => x.nrows(),
            HostX::Sparse(c) => c.n_rows(),
        }
    }

    pub(crate) fn n_cols(&self) -> usize {
        match self {
            HostX::Dense(x) => x.ncols(),
            HostX::Sparse(c) => c.n_cols(),
        }
    }

    /// The given rows only.
    pub(crate) fn select_rows(&self, rows: &[usize]) -> HostX {
        match self {
            HostX::Dense(x) => HostX::Dense(x.select(Axis(0), rows)),
            HostX::Sparse(c) => HostX::Sparse(Arc::new(c.select_rows(rows))),
        }
    }

    /// Z = XΘ + 1bᵀ in f64.
    pub(crate) fn logits(
        &self,
        theta: ArrayView2<'_, f64>,
        bias: ArrayView1<'_, f64>,
    ) -> Array2<f64> {
        match self {
            HostX::Dense(x) => logits_f64(x.view(), theta, bias),
            HostX::Sparse(c) => c.logits_f64(theta, bias),
        }
    }

    /// XᵀD in f64.
    fn transpose_times(&self, d: ArrayView2<'_, f64>) -> Array2<f64> {
        match self {
            HostX::Dense(x) => x.t().dot(&d),
            HostX::Sparse(c) => c.transpose_times_f64(d),
        }
    }
}

/// J, ∇_Θ J and ∇_b J in one pass over X (an f64 copy of a dense X, or CSR), with
/// optional sample weights.
pub(crate) fn loss_and_gradient_host(
    x: &HostX,
    labels: &[u32],
    weights: Option<&[f64]>,
    theta: ArrayView2<'_, f64>,
    bias: ArrayView1<'_, f64>,
    l2: f64,
) -> (f64, Array2<f64>, Array1<f64>) {
    losses_and_gradients_host(x, labels, weights, &[(theta, bias, l2)]).remove(0)
}

/// [`loss_and_gradient_host`] at several points (Θₛ, bₛ, λₛ) of the same shape in one pass
/// over X: the logits of all of them are one product X·[Θ₁ … Θ_S] and their gradients one
/// product Xᵀ[D₁ … D_S], with the softmax taken per point.
pub(crate) fn losses_and_gradients_host(
    x: &HostX,
    labels: &[u32],
    weights: Option<&[f64]>,
    points: &[(ArrayView2<'_, f64>, ArrayView1<'_, f64>, f64)],
) -> Vec<(f64, Array2<f64>, Array1<f64>)> {
    let Some(&(first, _, _)) = points.first() else {
        return Vec::new();
    };
    let (n, k) = first.dim();
    let m = x.n_rows() as f64;
    let columns = |s: usize| ndarray::s![.., s * k..(s + 1) * k];
    let mut theta_all = Array2::<f64>::zeros((n, points.len() * k));
    let mut bias_all = Array1::<f64>::zeros(points.len() * k);
    for (s, (theta, bias, _)) in points.iter().enumerate() {
        theta_all.slice_mut(columns(s)).assign(theta);
        bias_all
            .slice_mut(ndarray::s![s * k..(s + 1) * k])
            .assign(bias);
    }
    let z = x.logits(theta_all.view(), bias_all.view());
    let mut d_all = Array2::<f64>::zeros(z.dim());
    let mut ce_sums = Vec::with_capacity(points.len());
    for s in 0..points.len() {
        let zs = z.slice(columns(s));
        let mut ce_rows = cross_entropy_rows(zs, labels);
        let mut d = softmax_minus_onehot(zs, labels);
        if let Some(w) = weights {
            ce_rows.iter_mut().zip(w).for_each(|(c, w)| *c *= w);
            d.outer_iter_mut().zip(w).for_each(|(mut row, &w)| row *= w);
        }
        ce_sums.push(ce_rows.sum());
        d_all.slice_mut(columns(s)).assign(&d);
    }
    let gt_all = x.transpose_times(d_all.view()) / m;
    points
        .iter()
        .enumerate()
        .map(|(s, &(theta, _, l2))| {
            let mut gt = gt_all.slice(columns(s)).to_owned();
            gt.scaled_add(l2, &theta);
            let gb = d_all.slice(columns(s)).sum_axis(Axis(0)) / m;
            let theta_sq = theta.iter().map(|t| t * t).sum();
            (super::objective_value(ce_sums[s], m, l2, theta_sq), gt, gb)
        })
        .collect()
}

pub use crate::step::Step;

/// One optimizer step on a flat parameter vector w (Θ row-major, then b) with its full
/// gradient g (λΘ already included). Elementwise in f32, the same arithmetic as
/// `shaders/update.wgsl`. `m1` and `m2` are the optimizer's state (unused by `Plain`).
pub fn update(
    step: Step,
    lr: f32,
    mut w: ArrayViewMut1<'_, f32>,
    g: ArrayView1<'_, f32>,
    mut m1: ArrayViewMut1<'_, f32>,
    mut m2: ArrayViewMut1<'_, f32>,
) {
    match step {
        Step::Plain => Zip::from(&mut w).and(&g).for_each(|w, &g| *w -= lr * g),
        Step::Momentum { momentum } => {
            Zip::from(&mut w).and(&g).and(&mut m1).for_each(|w, &g, v| {
                *v = momentum * *v + g;
                *w -= lr * *v;
            })
        }
        Step::Adam {
            beta1,
            beta2,
            eps,
            c1,
            c2,
        } => Zip::from(&mut w)
            .and(&g)
            .and(&mut m1)
            .and(&mut m2)
            .for_each(|w, &g, m, v| {
                *m = beta1 * *m + (1.0 - beta1) * g;
                *v = beta2 * *v + (1.0 - beta2) * g * g;
                *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }),
    }
}
