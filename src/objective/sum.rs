//! An oracle over rows split between other oracles (devices, MPI ranks): each part
//! evaluates J and ∇J of its own rows without the λ term, concurrently, and the parts are
//! added in their fixed order, weighted by their rows, before λ is added once. The same
//! split therefore gives the same bits on every run, and L-BFGS above it does not know
//! how many parts there are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::{LossGrad, Oracle, PointAt, objective_value, sum_of_squares};
use crate::error::{Error, Result};

/// Nanoseconds this process has spent combining partials (adding them, and with ranks
/// exchanging them, which includes waiting for the slowest rank).
static COMBINING: AtomicU64 = AtomicU64::new(0);

/// The time this process has spent combining the partials of several devices or ranks
/// since it started: adding them in order, and with ranks gathering them (which includes
/// waiting for the slowest rank). For benchmarks: the share of a step that scaling out
/// costs.
pub fn combining_time() -> Duration {
    Duration::from_nanos(COMBINING.load(Ordering::Relaxed))
}

/// Adds the time since `started` to [`combining_time`].
pub(crate) fn count_combining(started: Instant) {
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    COMBINING.fetch_add(nanos, Ordering::Relaxed);
}

/// The oracle of the union of its parts' rows ([`crate::Dataset::row_range`] gives each
/// part its share).
pub struct SumOracle<'a> {
    parts: Vec<Box<dyn Oracle + Send + 'a>>,
    shape: (usize, usize, usize),
}

impl<'a> SumOracle<'a> {
    /// The sum of `parts`, which must agree on n and K; m is the sum of theirs.
    pub fn new(parts: Vec<Box<dyn Oracle + Send + 'a>>) -> Result<Self> {
        let Some(first) = parts.first() else {
            return Err(Error::setting(
                "parts",
                0,
                "a sum needs at least one oracle",
            ));
        };
        let (_, n, k) = first.shape();
        let mut m = 0;
        for part in &parts {
            let (rows, pn, pk) = part.shape();
            if (pn, pk) != (n, k) {
                return Err(Error::shape("a part of the sum (n, K)", &[n, k], &[pn, pk]));
            }
            m += rows;
        }
        Ok(SumOracle {
            parts,
            shape: (m, n, k),
        })
    }

    /// How many parts there are.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Runs `f` on every part at once (each on a thread of its own when there are
    /// several), and returns their results in part order with each part's rows.
    fn each<T: Send>(
        &mut self,
        f: impl Fn(&mut (dyn Oracle + Send + 'a)) -> Result<T> + Sync,
    ) -> Result<Vec<(usize, T)>> {
        if let [only] = self.parts.as_mut_slice() {
            let rows = only.shape().0;
            return Ok(vec![(rows, f(only.as_mut())?)]);
        }
        let f = &f;
        std::thread::scope(|scope| {
            let running: Vec<_> = self
                .parts
                .iter_mut()
                .map(|part| {
                    let rows = part.shape().0;
                    scope.spawn(move || f(part.as_mut()).map(|v| (rows, v)))
                })
                .collect();
            // Joined in order: the first part's error is the one returned.
            let joined: Vec<Result<(usize, T)>> = running
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Gpu {
                            context: "evaluating one part of the rows".into(),
                            message: "the thread evaluating it panicked".into(),
                        })
                    })
                })
                .collect();
            joined.into_iter().collect()
        })
    }
}

/// J and ∇J of the union of parts' rows at (Θ, λ), from each part's (rows, value without
/// the λ term), added in the order given: Σ mₚ·Jₚ and Σ mₚ·∇Jₚ, divided by m = Σ mₚ, then
/// λ's term added once.
pub(crate) fn combine(
    parts: impl IntoIterator<Item = (usize, LossGrad)>,
    theta: ArrayView2<'_, f32>,
    l2: f64,
) -> LossGrad {
    let started = Instant::now();
    let (n, k) = theta.dim();
    let mut m = 0usize;
    let mut loss_sum = 0.0f64;
    let mut gt = Array2::<f64>::zeros((n, k));
    let mut gb = Array1::<f64>::zeros(k);
    for (rows, part) in parts {
        let w = rows as f64;
        m += rows;
        loss_sum += w * part.loss;
        gt.scaled_add(w, &part.theta);
        gb.scaled_add(w, &part.bias);
    }
    let combined = from_sums(loss_sum, gt, gb, m, theta, l2);
    count_combining(started);
    combined
}

/// J and ∇J at (Θ, λ) over m rows from the sums over those rows of the (weighted)
/// cross-entropy and of the gradient's terms: each divided by m, then λ's term added once.
pub(crate) fn from_sums(
    loss_sum: f64,
    mut theta_sum: Array2<f64>,
    mut bias_sum: Array1<f64>,
    m: usize,
    theta: ArrayView2<'_, f32>,
    l2: f64,
) -> LossGrad {
    let m = m.max(1) as f64;
    theta_sum.mapv_inplace(|v| v / m);
    bias_sum.mapv_inplace(|v| v / m);
    theta_sum.zip_mut_with(&theta, |g, &t| *g += l2 * f64::from(t));
    LossGrad {
        loss: objective_value(loss_sum, m, l2, sum_of_squares(theta)),
        theta: theta_sum,
        bias: bias_sum,
    }
}

impl Oracle for SumOracle<'_> {
    fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    fn loss_and_gradient(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
    ) -> Result<LossGrad> {
        super::check_l2(l2)?;
        let parts = self.each(|part| part.loss_and_gradient(theta, bias, 0.0))?;
        Ok(combine(parts, theta, l2))
    }

    /// Every part evaluates the whole batch (in one pass over its rows where it can).
    fn losses_and_gradients(&mut self, points: &[PointAt<'_>]) -> Result<Vec<LossGrad>> {
        for p in points {
            super::check_l2(p.l2)?;
        }
        let unregularised: Vec<PointAt<'_>> =
            points.iter().map(|p| PointAt { l2: 0.0, ..*p }).collect();
        let unregularised = &unregularised;
        let parts = self.each(|part| part.losses_and_gradients(unregularised))?;
        let mut per_part: Vec<(usize, std::vec::IntoIter<LossGrad>)> = parts
            .into_iter()
            .map(|(rows, values)| (rows, values.into_iter()))
            .collect();
        points
            .iter()
            .map(|p| {
                let values = per_part
                    .iter_mut()
                    .map(|(rows, values)| {
                        values.next().map(|v| (*rows, v)).ok_or_else(|| {
                            Error::shape("a part's batch of results", &[points.len()], &[0])
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(combine(values, p.theta, p.l2))
            })
            .collect()
    }
}
