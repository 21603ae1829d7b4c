//! The loss-and-gradient oracle `(Θ, b) → (J, ∇_Θ J, ∇_b J)`, the primitive every
//! optimizer in the crate is built on. [`GpuOracle`] runs it with the WGSL kernels over
//! the device-resident row chunks; [`CpuOracle`] runs the f64 reference. Both have the
//! same signature, so any optimizer, the crate's or a user's, can drive either.

pub mod metrics;
pub mod reference;
pub mod sum;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::gpu::GpuContext;
use crate::gpu::chunks::{DeviceChunks, Rows};
use crate::params::{check_params, unflatten_vec};
use crate::step::StepDims;

/// J and its gradient at one point.
#[derive(Debug, Clone)]
pub struct LossGrad {
    /// `J(Θ,b) = (1/m) Σ_i −log P[i, y⁽ⁱ⁾] + (λ/2)‖Θ‖²_F`.
    pub loss: f64,
    /// `∇_Θ J = (1/m) Xᵀ(P − Y) + λΘ`, shape (n, K).
    pub theta: Array2<f64>,
    /// `∇_b J = (1/m) Σ_i (P − Y)[i,:]`, shape (K).
    pub bias: Array1<f64>,
}

impl LossGrad {
    /// The gradient's max-norm, `max(|∇_Θ J|, |∇_b J|)`: the convergence criterion.
    pub fn max_norm(&self) -> f64 {
        let max_abs = crate::vectors::max_abs;
        row_major(self.theta.view(), max_abs).max(row_major(self.bias.view(), max_abs))
    }
}

/// One point of a batch of oracle calls: (Θ, b) and the λ of its objective.
#[derive(Debug, Clone, Copy)]
pub struct PointAt<'a> {
    /// Θ, shape (n, K).
    pub theta: ArrayView2<'a, f32>,
    /// b, shape (K).
    pub bias: ArrayView1<'a, f32>,
    /// λ of the objective at this point.
    pub l2: f64,
}

/// Anything that evaluates J and ∇J for a fixed dataset.
pub trait Oracle {
    /// (m, n, K) of the dataset behind the oracle.
    fn shape(&self) -> (usize, usize, usize);

    /// J, ∇_Θ J and ∇_b J at (Θ, b) with L2 strength λ = `l2`.
    fn loss_and_gradient(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
    ) -> Result<LossGrad>;

    /// J and ∇J at several points, each with its own λ (the models of a regularisation
    /// path, [`crate::optim::path`]), in the points' order. Each result is the one
    /// [`Oracle::loss_and_gradient`] gives at that point. This default evaluates the
    /// points one after another; an oracle that can evaluate them in one pass over X
    /// overrides it.
    fn losses_and_gradients(&mut self, points: &[PointAt<'_>]) -> Result<Vec<LossGrad>> {
        points
            .iter()
            .map(|p| self.loss_and_gradient(p.theta, p.bias, p.l2))
            .collect()
    }
}

/// `J = loss_sum / m + (λ/2)‖Θ‖²_F`, from the summed (weighted) row losses and ‖Θ‖²_F:
/// the one place the objective is assembled, for the CPU reference, the GPU oracle and the
/// trainer's epoch reports alike.
pub(crate) fn objective_value(loss_sum: f64, m: f64, l2: f64, theta_sq: f64) -> f64 {
    loss_sum / m + 0.5 * l2 * theta_sq
}

pub(crate) fn check_l2(l2: f64) -> Result<()> {
    if !(l2.is_finite() && l2 >= 0.0) {
        return Err(Error::setting("l2", l2, "must be a finite number ≥ 0"));
    }
    Ok(())
}

/// Runs `f` on `a`'s values in row-major order, copying them first only when `a` is not in
/// standard layout.
fn row_major<A: Clone, D: ndarray::Dimension, R>(
    a: ndarray::ArrayView<'_, A, D>,
    f: impl FnOnce(&[A]) -> R,
) -> R {
    let standard = a.as_standard_layout();
    match standard.as_slice() {
        Some(values) => f(values),
        None => unreachable!("a standard-layout array is one slice"),
    }
}

/// ‖Θ‖²_F in f64, summed in Θ's row-major order whatever its memory layout (so the same
/// Θ always gives the same bits).
pub(crate) fn sum_of_squares(theta: ArrayView2<'_, f32>) -> f64 {
    row_major(theta, crate::vectors::sum_of_squares)
}

/// The reference oracle: ndarray, f64 throughout.
#[derive(Debug, Clone)]
pub struct CpuOracle {
    x: reference::HostX,
    labels: Vec<u32>,
    weights: Option<Vec<f64>>,
    k: usize,
}

impl CpuOracle {
    /// Copies a dense X to f64 once (reading it from its source when the dataset streams
    /// it); a sparse X is used as it is.
    pub fn new(data: &Dataset) -> Result<Self> {
        Ok(CpuOracle {
            x: reference::HostX::of(data)?,
            labels: data.labels().to_vec(),
            weights: data
                .weights()
                .map(|w| w.iter().map(|&v| f64::from(v)).collect()),
            k: data.n_classes(),
        })
    }

    pub(crate) fn eval_f64(
        &self,
        theta: ArrayView2<'_, f64>,
        bias: ArrayView1<'_, f64>,
        l2: f64,
    ) -> (f64, Array2<f64>, Array1<f64>) {
        reference::loss_and_gradient_host(
            &self.x,
            &self.labels,
            self.weights.as_deref(),
            theta,
            bias,
            l2,
        )
    }

    pub(crate) fn eval_rows(
        &self,
        rows: &[usize],
        theta: ArrayView2<'_, f64>,
        bias: ArrayView1<'_, f64>,
        l2: f64,
    ) -> (f64, Array2<f64>, Array1<f64>) {
        let x = self.x.select_rows(rows);
        let labels: Vec<u32> = rows.iter().map(|&r| self.labels[r]).collect();
        let weights: Option<Vec<f64>> = self
            .weights
            .as_ref()
            .map(|w| rows.iter().map(|&r| w[r]).collect());
        reference::loss_and_gradient_host(&x, &labels, weights.as_deref(), theta, bias, l2)
    }
}

impl Oracle for CpuOracle {
    fn shape(&self) -> (usize, usize, usize) {
        (self.x.n_rows(), self.x.n_cols(), self.k)
    }

    /// All points in one pass over X: one product X·[Θ₁ … Θ_S] for the logits and one
    /// Xᵀ[D₁ … D_S] for the gradients.
    fn losses_and_gradients(&mut self, points: &[PointAt<'_>]) -> Result<Vec<LossGrad>> {
        for p in points {
            check_params(p.theta, p.bias, self.x.n_cols(), self.k)?;
            check_l2(p.l2)?;
        }
        let wide: Vec<(Array2<f64>, Array1<f64>, f64)> = points
            .iter()
            .map(|p| (p.theta.mapv(f64::from), p.bias.mapv(f64::from), p.l2))
            .collect();
        let views: Vec<_> = wide
            .iter()
            .map(|(t, b, l2)| (t.view(), b.view(), *l2))
            .collect();
        Ok(reference::losses_and_gradients_host(
            &self.x,
            &self.labels,
            self.weights.as_deref(),
            &views,
        )
        .into_iter()
        .map(|(loss, theta, bias)| LossGrad { loss, theta, bias })
        .collect())
    }

    fn loss_and_gradient(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
    ) -> Result<LossGrad> {
        check_params(theta, bias, self.x.n_cols(), self.k)?;
        check_l2(l2)?;
        let (loss, theta, bias) = self.eval_f64(
            theta.mapv(f64::from).view(),
            bias.mapv(f64::from).view(),
            l2,
        );
        Ok(LossGrad { loss, theta, bias })
    }
}

/// The GPU oracle: the dataset uploaded once as row chunks, one submission per call.
pub struct GpuOracle<'c> {
    problem: DeviceChunks<'c>,
}

impl<'c> GpuOracle<'c> {
    /// Uploads the dataset. `chunk_rows` caps the rows per device chunk (the device's
    /// storage-binding limit always applies).
    pub fn new(ctx: &'c GpuContext, data: &Dataset, chunk_rows: Option<usize>) -> Result<Self> {
        let problem = DeviceChunks::new(
            ctx,
            Rows::of(data),
            Some(data.labels()),
            data.weights(),
            data.n_classes(),
            chunk_rows,
            None,
        )?;
        Ok(GpuOracle { problem })
    }

    /// Seconds each kernel of one full-batch pass at (Θ, b) takes, run one submission per
    /// kernel with a wait after each: from GPU timestamps where the adapter has them (the
    /// returned flag), else the wall time of each submission and its wait (so the sum
    /// exceeds one fused submission's time). For benchmarks and profiling.
    pub fn profile(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
    ) -> Result<(Vec<(&'static str, f64)>, bool)> {
        let (_, n, k) = self.shape();
        self.single_model("profiling")?;
        check_params(theta, bias, n, k)?;
        self.problem.set_params_from(theta, bias);
        self.problem.configure_full(StepDims {
            l2: l2 as f32,
            ..Default::default()
        });
        self.problem.profile_full()
    }

    /// Mean cross-entropy and accuracy of w = (Θ row-major, b) on the uploaded rows, whose
    /// labels are `labels`, computed on this oracle's device problem (no second copy of X).
    pub(crate) fn metrics(
        &mut self,
        w: &[f32],
        labels: &[u32],
    ) -> Result<crate::objective::metrics::Metrics> {
        self.problem.set_params(w);
        crate::objective::metrics::gpu_metrics(&self.problem, labels)
    }

    /// How the rows were split into device chunks.
    pub fn chunk_plan(&self) -> crate::gpu::ChunkPlan {
        self.problem.plan
    }

    /// How many models one pass over X evaluates (1 but for [`GpuOracle::with_models`]).
    pub fn models_per_pass(&self) -> usize {
        self.problem.slots()
    }

    /// Whether X is streamed to the device chunk by chunk (it did not fit the device or
    /// the context's memory budget) rather than resident.
    pub fn is_streamed(&self) -> bool {
        self.problem.is_streamed()
    }
}

/// Where the host's time of one GPU oracle call goes (seconds), from
/// [`GpuOracle::timed_step`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    /// Θ and b handed to the queue (copied into wgpu's staging memory; the copy to the
    /// device runs at the start of the step's submission, so it counts in `compute`).
    pub upload: f64,
    /// From the step's submission until the device has finished it.
    pub compute: f64,
    /// J and ∇J back: the copy into the staging buffer, its map and the widening to f64;
    /// and ‖Θ‖² for the λ term, which an untimed call computes while the device works.
    pub readback: f64,
}

impl GpuOracle<'_> {
    /// [`Oracle::loss_and_gradient`], with a wait between the step and the readback so
    /// that the three parts of its time can be told apart (which costs the overlap of
    /// ‖Θ‖² with the device's work). For benchmarks and profiling.
    pub fn timed_step(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
    ) -> Result<(LossGrad, StepTimes)> {
        let mut times = StepTimes::default();
        let lg = self.step(theta, bias, l2, Some(&mut times))?;
        Ok((lg, times))
    }

    /// One oracle call; with `times`, waits for the device after the step and records
    /// the parts of the call's time there.
    fn step(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
        mut times: Option<&mut StepTimes>,
    ) -> Result<LossGrad> {
        let (m, n, k) = self.shape();
        self.single_model("an oracle call with timings")?;
        check_params(theta, bias, n, k)?;
        check_l2(l2)?;
        let started = std::time::Instant::now();
        self.problem.set_params_from(theta, bias);
        self.problem.configure_full(StepDims {
            l2: l2 as f32,
            ..Default::default()
        });
        let uploaded = started.elapsed().as_secs_f64();
        self.problem.full_step(None, false)?;
        if let Some(t) = times.as_deref_mut() {
            self.problem.wait_idle("a full-batch step")?;
            t.upload = uploaded;
            t.compute = started.elapsed().as_secs_f64() - uploaded;
        }
        let reading = std::time::Instant::now();
        // ‖Θ‖² on the host while the device runs the step.
        let reg = sum_of_squares(theta);
        let (loss_sum, g) = self.problem.read_loss_gradient()?;
        let (theta_grad, bias) = unflatten_vec(g, n, k);
        if let Some(t) = times {
            t.readback = reading.elapsed().as_secs_f64();
        }
        Ok(LossGrad {
            loss: objective_value(loss_sum, m as f64, l2, reg),
            theta: theta_grad,
            bias,
        })
    }
}

impl<'c> GpuOracle<'c> {
    /// An oracle that evaluates up to `models` points in one pass over X (the models of a
    /// regularisation path): their parameters sit side by side, so the logits are one
    /// product X·[Θ₁ … Θ_S] and the gradients one product Xᵀ[D₁ … D_S] with models·K
    /// columns, while the softmax and the loss are taken per model. `models` ≤ 1 is
    /// [`GpuOracle::new`].
    pub fn with_models(
        ctx: &'c GpuContext,
        data: &Dataset,
        chunk_rows: Option<usize>,
        models: usize,
    ) -> Result<Self> {
        if models <= 1 {
            return Self::new(ctx, data, chunk_rows);
        }
        let problem = DeviceChunks::for_models(
            ctx,
            Rows::of(data),
            data.labels(),
            data.weights(),
            (data.n_classes(), models),
            chunk_rows,
        )?;
        Ok(GpuOracle { problem })
    }

    /// Fails for an oracle of several models, which `what` does not support.
    fn single_model(&self, what: &str) -> Result<()> {
        if self.problem.slots() > 1 {
            return Err(Error::setting(
                "models",
                self.problem.slots(),
                format!("{what} needs an oracle of one model (GpuOracle::new)"),
            ));
        }
        Ok(())
    }

    /// Up to `models` points in one pass, the products as wide as the points. λ is added
    /// on the host, per model.
    fn batch_step(&mut self, points: &[PointAt<'_>]) -> Result<Vec<LossGrad>> {
        let (m, n, k) = self.shape();
        // The products shrink to the points given: models that have left a path cost
        // nothing.
        self.problem.set_models(points.len());
        let wide = self.problem.k;
        let mut w = vec![0f32; n * wide + wide];
        for (s, p) in points.iter().enumerate() {
            check_params(p.theta, p.bias, n, k)?;
            check_l2(p.l2)?;
            for ((j, c), &v) in p.theta.indexed_iter() {
                w[j * wide + s * k + c] = v;
            }
            for (c, &v) in p.bias.iter().enumerate() {
                w[n * wide + s * k + c] = v;
            }
        }
        self.problem.set_params(&w);
        self.problem.configure_full(StepDims::default());
        self.problem.full_step(None, false)?;
        // ‖Θ‖² on the host while the device runs the step.
        let regs: Vec<f64> = points.iter().map(|p| sum_of_squares(p.theta)).collect();
        let (losses, g) = self.problem.read_model_losses_gradient()?;
        Ok(points
            .iter()
            .enumerate()
            .map(|(s, p)| {
                let theta = Array2::from_shape_fn((n, k), |(j, c)| {
                    g[j * wide + s * k + c] + p.l2 * f64::from(p.theta[(j, c)])
                });
                let bias = Array1::from_shape_fn(k, |c| g[n * wide + s * k + c]);
                LossGrad {
                    loss: objective_value(losses[s], m as f64, p.l2, regs[s]),
                    theta,
                    bias,
                }
            })
            .collect())
    }
}

impl Oracle for GpuOracle<'_> {
    fn shape(&self) -> (usize, usize, usize) {
        let p = &self.problem;
        (p.m, p.n, p.k / p.models)
    }

    fn loss_and_gradient(
        &mut self,
        theta: ArrayView2<'_, f32>,
        bias: ArrayView1<'_, f32>,
        l2: f64,
    ) -> Result<LossGrad> {
        if self.problem.slots() > 1 {
            let point = PointAt { theta, bias, l2 };
            return Ok(self.batch_step(&[point])?.remove(0));
        }
        self.step(theta, bias, l2, None)
    }

    /// With [`GpuOracle::with_models`], up to that many points per pass over X (more are
    /// taken in groups); otherwise one call per point.
    fn losses_and_gradients(&mut self, points: &[PointAt<'_>]) -> Result<Vec<LossGrad>> {
        // Decided by the models allocated, not by those of the last call, which a smaller
        // batch may have shrunk.
        let slots = self.problem.slots();
        if slots <= 1 {
            return points
                .iter()
                .map(|p| self.step(p.theta, p.bias, p.l2, None))
                .collect();
        }
        let mut out = Vec::with_capacity(points.len());
        for group in points.chunks(slots) {
            out.extend(self.batch_step(group)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn sum_of_squares_matches_a_plain_sum_in_any_layout() {
        // 7 × 13 = 91 values: eleven blocks of eight and a tail of three.
        let mut rng = SplitMix64::new(5);
        let theta = Array2::from_shape_fn((7, 13), |_| (3.0 * rng.normal()) as f32);
        let plain: f64 = theta.iter().map(|&t| f64::from(t) * f64::from(t)).sum();
        let got = sum_of_squares(theta.view());
        assert!(
            (got - plain).abs() <= 1e-12 * plain,
            "{got} against {plain}"
        );
        // The same values held column-major: the same bits.
        let columns = theta.t().as_standard_layout().into_owned().reversed_axes();
        assert!(!columns.is_standard_layout());
        assert_eq!(sum_of_squares(columns.view()).to_bits(), got.to_bits());
        assert_eq!(sum_of_squares(Array2::<f32>::zeros((0, 4)).view()), 0.0);
    }
}
