//! Processes that train one model together, each on its own rows: MPI ranks (the `mpi`
//! cargo feature: `ranks::mpi::MpiRanks`), or threads of one process ([`LocalRanks`], for tests
//! and examples). Every rank computes J and ∇J over its rows; [`RankOracle`] gathers every
//! rank's partials and adds them in rank order on every rank, so all ranks hold the same
//! values and take the same optimizer step, and a run with the same ranks repeats bit for
//! bit (the order does not depend on the MPI library's reductions).

use std::sync::{Arc, Barrier, Mutex};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::error::{Error, Result};
use crate::objective::sum::from_sums;
use crate::objective::{LossGrad, Oracle, PointAt};

#[cfg(feature = "mpi")]
pub mod mpi;

/// The ranks of a run, as one of them sees them.
pub trait Ranks: Send + Sync {
    /// This rank, 0-based.
    fn rank(&self) -> usize;
    /// How many ranks there are.
    fn size(&self) -> usize;
    /// Every rank's `local` (the same length on every rank), concatenated in rank order,
    /// on every rank. Every rank must call it, in the same order of calls.
    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>>;

    /// The element-wise sum of every rank's `local` (the same length on every rank), each
    /// element added in rank order starting from 0, on every rank: the same bits whatever
    /// the implementation. This default gathers every rank's values; an implementation can
    /// move fewer bytes (each rank adding one shard of the vector, then sharing the sums),
    /// as [`Ranks::all_gather`] of the sums would.
    fn sum_in_rank_order(&self, local: &[f64]) -> Result<Vec<f64>> {
        let each = gather_each(self, local)?;
        Ok(add_in_order(local.len(), each.iter().map(Vec::as_slice)))
    }
}

/// The element-wise sum of `parts` (each `len` long), in the order given, from 0.
pub(crate) fn add_in_order<'p>(len: usize, parts: impl Iterator<Item = &'p [f64]>) -> Vec<f64> {
    let mut total = vec![0.0; len];
    for part in parts {
        total.iter_mut().zip(part).for_each(|(t, v)| *t += v);
    }
    total
}

/// `ranks.all_gather` of `local`, split back into one vector per rank.
pub(crate) fn gather_each<R: Ranks + ?Sized>(ranks: &R, local: &[f64]) -> Result<Vec<Vec<f64>>> {
    let all = ranks.all_gather(local)?;
    let len = local.len();
    if all.len() != len * ranks.size() {
        return Err(Error::shape(
            "the ranks' gathered values",
            &[len * ranks.size()],
            &[all.len()],
        ));
    }
    Ok(all
        .chunks(len.max(1))
        .map(<[f64]>::to_vec)
        .take(ranks.size())
        .collect())
}

/// Whether any rank says yes: the same answer on every rank.
pub(crate) fn any(ranks: &dyn Ranks, mine: bool) -> Result<bool> {
    Ok(ranks
        .all_gather(&[f64::from(u8::from(mine))])?
        .iter()
        .any(|&v| v != 0.0))
}

/// The sum over ranks of one number, added in rank order (a collective call).
pub fn total(ranks: &dyn Ranks, mine: f64) -> Result<f64> {
    Ok(ranks.sum_in_rank_order(&[mine])?[0])
}

/// The oracle of the union of every rank's rows, seen from one rank: `local` evaluates this
/// rank's rows (one device, several, or the CPU reference), and every call adds the
/// partials of all ranks (J and ∇J without the λ term, weighted by each rank's rows) in
/// rank order ([`Ranks::sum_in_rank_order`]). Every rank must make the same calls in the same order, as ranks that
/// run the same optimizer on the same values do.
pub struct RankOracle<'a> {
    local: Box<dyn Oracle + 'a>,
    ranks: Arc<dyn Ranks>,
    rows: Vec<usize>,
    shape: (usize, usize, usize),
}

impl<'a> RankOracle<'a> {
    /// The oracle over every rank's rows; a collective call (it learns each rank's rows and
    /// checks that n and K agree).
    pub fn new(local: Box<dyn Oracle + 'a>, ranks: Arc<dyn Ranks>) -> Result<Self> {
        let (m, n, k) = local.shape();
        let each = gather_each(ranks.as_ref(), &[m as f64, n as f64, k as f64])?;
        if let Some((r, other)) = each
            .iter()
            .enumerate()
            .find(|(_, e)| (e[1], e[2]) != (n as f64, k as f64))
        {
            return Err(Error::setting(
                "ranks",
                r,
                format!(
                    "rank {r} has {} features and {} classes, rank {} has {n} and {k}; every rank needs the same",
                    other[1],
                    other[2],
                    ranks.rank()
                ),
            ));
        }
        let rows: Vec<usize> = each.iter().map(|e| e[0] as usize).collect();
        let total = rows.iter().sum();
        Ok(RankOracle {
            local,
            ranks,
            rows,
            shape: (total, n, k),
        })
    }

    /// Each rank's rows, in rank order.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// J and ∇J over every rank's rows at `points`, from this rank's values there without
    /// λ: each rank's values weighted by its rows, summed over ranks in rank order, divided
    /// by all the rows, and λ's term added once.
    fn combined(&self, local: &[LossGrad], points: &[PointAt<'_>]) -> Result<Vec<LossGrad>> {
        let (m, n, k) = self.shape;
        let per_point = 1 + n * k + k;
        let w = self.local.shape().0 as f64;
        let mut packed = Vec::with_capacity(local.len() * per_point);
        for v in local {
            packed.push(w * v.loss);
            packed.extend(v.theta.iter().map(|g| w * g));
            packed.extend(v.bias.iter().map(|g| w * g));
        }
        let started = std::time::Instant::now();
        let total = self.ranks.sum_in_rank_order(&packed)?;
        crate::objective::sum::count_combining(started);
        if total.len() != packed.len() {
            return Err(Error::shape(
                "the ranks' summed values",
                &[packed.len()],
                &[total.len()],
            ));
        }
        Ok(total
            .chunks(per_point)
            .zip(points)
            .map(|(t, p)| {
                let theta = Array2::from_shape_fn((n, k), |(j, c)| t[1 + j * k + c]);
                let bias = Array1::from_shape_fn(k, |c| t[1 + n * k + c]);
                from_sums(t[0], theta, bias, m, p.theta, p.l2)
            })
            .collect())
    }
}

impl Oracle for RankOracle<'_> {
    fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    fn loss_and_gradient(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
    ) -> Result<LossGrad> {
        let mine = self.local.loss_and_gradient(theta, bias, 0.0)?;
        let point = PointAt { theta, bias, l2 };
        Ok(self.combined(&[mine], &[point])?.remove(0))
    }

    fn losses_and_gradients(&mut self, points: &[PointAt<'_>]) -> Result<Vec<LossGrad>> {
        let unregularised: Vec<PointAt<'_>> =
            points.iter().map(|p| PointAt { l2: 0.0, ..*p }).collect();
        let mine = self.local.losses_and_gradients(&unregularised)?;
        self.combined(&mine, points)
    }
}

/// Ranks as threads of one process: [`LocalRanks::group`]`(n)` gives one handle per rank, to
/// be moved to its thread.
pub struct LocalRanks {
    rank: usize,
    shared: Arc<Exchange>,
}

struct Exchange {
    slots: Mutex<Vec<Vec<f64>>>,
    barrier: Barrier,
}

impl LocalRanks {
    /// The handles of `n` ranks (at least 1), rank 0 first.
    pub fn group(n: usize) -> Vec<Arc<dyn Ranks>> {
        let n = n.max(1);
        let shared = Arc::new(Exchange {
            slots: Mutex::new(vec![Vec::new(); n]),
            barrier: Barrier::new(n),
        });
        (0..n)
            .map(|rank| {
                Arc::new(LocalRanks {
                    rank,
                    shared: Arc::clone(&shared),
                }) as Arc<dyn Ranks>
            })
            .collect()
    }
}

impl Ranks for LocalRanks {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.slots.lock().map_or(1, |slots| slots.len())
    }

    fn all_gather(&self, local: &[f64]) -> Result<Vec<f64>> {
        let poisoned = || Error::setting("ranks", self.rank, "another rank's thread panicked");
        self.shared.slots.lock().map_err(|_| poisoned())?[self.rank] = local.to_vec();
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().map_err(|_| poisoned())?.concat();
        // Nobody writes the next round's values before everyone has read these.
        self.shared.barrier.wait();
        Ok(all)
    }
}
