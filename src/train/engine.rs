//! The engines of gradient-descent runs (gd, sgd, momentum, adam): one step, the
//! epoch's evaluation and the optimizer state, on the CPU reference or on the device.

use super::*;

/// One backend's state during training.
pub(super) trait Engine {
    fn chunk_plan(&self) -> ChunkPlan;
    /// One full-batch step.
    fn step_full(&mut self, step: Step, lr: f32) -> Result<()>;
    /// One step on rows `local` of chunk `chunk`.
    fn step_batch(&mut self, chunk: usize, local: &[u32], step: Step, lr: f32) -> Result<()>;
    /// (J, max-norm of ∇J, w) at the current parameters.
    fn evaluate(&mut self) -> Result<(f64, f64, Vec<f32>)>;
    /// (w, m1, m2): the parameters and the optimizer moments.
    fn state(&mut self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)>;
    /// Sets what [`Engine::state`] returns.
    fn restore(&mut self, w: &[f32], m1: &[f32], m2: &[f32]);
    /// Training accuracy at the current parameters.
    fn accuracy(&mut self) -> Result<f64>;
    /// The rows it trains on.
    fn rows(&self) -> usize;
    /// (chunks, streamed) on a GPU.
    fn device(&self) -> Option<(ChunkPlan, bool)> {
        None
    }
}

/// Where a host-side engine gets its gradients: the CPU reference, or several devices'
/// summed partials (full batches only).
enum HostGradient<'d> {
    Cpu(CpuOracle),
    /// Several devices' or several ranks' oracle, and where this process evaluates.
    Oracle(Box<dyn Oracle + 'd>, Backend<'d>),
}

struct CpuEngine<'d> {
    oracle: HostGradient<'d>,
    data: &'d Dataset,
    plan: ChunkPlan,
    l2: f64,
    w: Array1<f32>,
    m1: Array1<f32>,
    m2: Array1<f32>,
    /// ∇J at the current w, when known.
    fresh: Option<Array1<f32>>,
}

impl CpuEngine<'_> {
    fn gradient(&mut self, rows: Option<&[usize]>) -> Result<(f64, Array1<f32>)> {
        let (n, k) = (self.data.n_features(), self.data.n_classes());
        let (theta, bias) = unflatten(self.w.as_slice().unwrap_or(&[]), n, k);
        let (loss, gt, gb) = match &mut self.oracle {
            HostGradient::Cpu(oracle) => {
                let (t64, b64) = (theta.mapv(f64::from), bias.mapv(f64::from));
                match rows {
                    None => oracle.eval_f64(t64.view(), b64.view(), self.l2),
                    Some(rows) => oracle.eval_rows(rows, t64.view(), b64.view(), self.l2),
                }
            }
            HostGradient::Oracle(oracle, _) => {
                if rows.is_some() {
                    return Err(Error::setting(
                        "batch_size",
                        "set",
                        "several devices train with full batches (lbfgs or gd)",
                    ));
                }
                let g = oracle.loss_and_gradient(theta.view(), bias.view(), self.l2)?;
                (g.loss, g.theta, g.bias)
            }
        };
        Ok((
            loss,
            gt.iter().chain(gb.iter()).map(|&g| g as f32).collect(),
        ))
    }

    fn apply(&mut self, step: Step, lr: f32, g: Array1<f32>) {
        crate::objective::reference::update(
            step,
            lr,
            self.w.view_mut(),
            g.view(),
            self.m1.view_mut(),
            self.m2.view_mut(),
        );
        self.fresh = None;
    }
}

impl Engine for CpuEngine<'_> {
    fn chunk_plan(&self) -> ChunkPlan {
        self.plan
    }

    fn step_full(&mut self, step: Step, lr: f32) -> Result<()> {
        let g = match self.fresh.take() {
            Some(g) => g,
            None => self.gradient(None)?.1,
        };
        self.apply(step, lr, g);
        Ok(())
    }

    fn step_batch(&mut self, chunk: usize, local: &[u32], step: Step, lr: f32) -> Result<()> {
        let start = chunk * self.plan.chunk_rows;
        let rows: Vec<usize> = local.iter().map(|&r| start + r as usize).collect();
        let g = self.gradient(Some(&rows))?.1;
        self.apply(step, lr, g);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<(f64, f64, Vec<f32>)> {
        let (loss, g) = self.gradient(None)?;
        let norm = g.iter().fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
        self.fresh = Some(g);
        Ok((loss, norm, self.w.to_vec()))
    }

    fn state(&mut self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        Ok((self.w.to_vec(), self.m1.to_vec(), self.m2.to_vec()))
    }

    fn restore(&mut self, w: &[f32], m1: &[f32], m2: &[f32]) {
        self.w = Array1::from_vec(w.to_vec());
        self.m1 = Array1::from_vec(m1.to_vec());
        self.m2 = Array1::from_vec(m2.to_vec());
        self.fresh = None;
    }

    fn accuracy(&mut self) -> Result<f64> {
        let backend = match &self.oracle {
            HostGradient::Cpu(_) => Backend::Cpu,
            HostGradient::Oracle(_, backend) => backend.primary(),
        };
        Ok(Evaluator::new(backend, self.data)?
            .evaluate(self.w.as_slice().unwrap_or(&[]))?
            .accuracy)
    }

    fn rows(&self) -> usize {
        self.data.n_rows()
    }
}

struct GpuEngine<'c, 'd> {
    problem: DeviceChunks<'c>,
    data: &'d Dataset,
    l2: f32,
    /// Whether g holds ∇J at the current w.
    fresh: bool,
}

impl GpuEngine<'_, '_> {
    fn dims(&self, step: Step, lr: f32) -> (StepDims, UpdateEntry) {
        (
            StepDims::of_step(step, lr, self.l2),
            UpdateEntry::of_step(step),
        )
    }
}

impl Engine for GpuEngine<'_, '_> {
    fn chunk_plan(&self) -> ChunkPlan {
        self.problem.plan
    }

    fn step_full(&mut self, step: Step, lr: f32) -> Result<()> {
        let (dims, entry) = self.dims(step, lr);
        self.problem.configure_full(dims);
        self.problem.full_step(Some(entry), self.fresh)?;
        self.fresh = false;
        Ok(())
    }

    fn step_batch(&mut self, chunk: usize, local: &[u32], step: Step, lr: f32) -> Result<()> {
        let (dims, entry) = self.dims(step, lr);
        self.problem.batch_step(chunk, local, dims, entry)?;
        self.fresh = false;
        Ok(())
    }

    fn evaluate(&mut self) -> Result<(f64, f64, Vec<f32>)> {
        self.problem.configure_full(StepDims {
            l2: self.l2,
            ..Default::default()
        });
        self.problem.full_step(None, self.fresh)?;
        self.fresh = true;
        let (loss_sum, g, w) = self.problem.read_loss_gradient_params()?;
        let nk = self.problem.n * self.problem.k;
        let reg = crate::vectors::sum_of_squares(&w[..nk]);
        let loss = objective_value(loss_sum, self.problem.m as f64, f64::from(self.l2), reg);
        let norm = g.iter().fold(0.0f64, |a, &v| a.max(f64::from(v).abs()));
        Ok((loss, norm, w))
    }

    fn state(&mut self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        self.problem.read_state()
    }

    fn restore(&mut self, w: &[f32], m1: &[f32], m2: &[f32]) {
        self.problem.write_state(w, m1, m2);
        self.fresh = false;
    }

    fn accuracy(&mut self) -> Result<f64> {
        Ok(gpu_metrics(&self.problem, self.data.labels())?.accuracy)
    }

    fn rows(&self) -> usize {
        self.data.n_rows()
    }

    fn device(&self) -> Option<(ChunkPlan, bool)> {
        Some((self.problem.plan, self.problem.is_streamed()))
    }
}

/// The storage of X a backend computes with, as checkpoints record it.
pub(super) fn x_storage_of(backend: Backend<'_>) -> &'static str {
    match backend {
        Backend::Gpu(ctx) => ctx.x_storage().name(),
        Backend::Devices(all) => all
            .first()
            .map_or(crate::gpu::XStorage::F32, GpuContext::x_storage)
            .name(),
        Backend::Cpu => crate::gpu::XStorage::F32.name(),
    }
}

/// Mini-batches of one epoch: chunks in shuffled order, rows shuffled within each chunk,
/// then cut into batches of `batch` rows (a chunk's last batch may be shorter). When the
/// data fits in one chunk this is a full shuffle.
pub(crate) fn epoch_batches(
    rng: &mut SplitMix64,
    plan: ChunkPlan,
    m: usize,
    batch: usize,
) -> Vec<(usize, Vec<u32>)> {
    let mut order: Vec<usize> = (0..plan.chunks).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::new();
    for c in order {
        let mut rows: Vec<u32> = (0..plan.rows_in(c, m) as u32).collect();
        rng.shuffle(&mut rows);
        batches.extend(rows.chunks(batch).map(|b| (c, b.to_vec())));
    }
    batches
}

impl Trainer {
    /// The engine of a mini-batch or full-batch gradient run on `backend`, at `w0`.
    pub(super) fn engine<'a>(
        &self,
        backend: Backend<'a>,
        train: &'a Dataset,
        w0: &[f32],
    ) -> Result<Box<dyn Engine + 'a>> {
        let s = &self.settings;
        let (m, n, k) = (train.n_rows(), train.n_features(), train.n_classes());
        let host = |oracle: HostGradient<'a>| {
            let chunk_rows = s.chunk_rows.unwrap_or(m).min(m);
            CpuEngine {
                oracle,
                data: train,
                plan: ChunkPlan {
                    chunk_rows,
                    chunks: m.div_ceil(chunk_rows),
                },
                l2: s.l2,
                w: Array1::from_vec(w0.to_vec()),
                m1: Array1::zeros(n * k + k),
                m2: Array1::zeros(n * k + k),
                fresh: None,
            }
        };
        let shared = self.ranks().is_some() || matches!(backend, Backend::Devices(_));
        if shared && s.batch_size.is_some() {
            return Err(Error::setting(
                "optimizer",
                s.optimizer,
                "several devices or ranks train with full batches (lbfgs, or gd without a batch size)",
            ));
        }
        // Several devices or ranks: gd's steps on the host from the summed gradient.
        if shared {
            let oracle = self.over_ranks(self.local_oracle(backend, train)?)?;
            return Ok(Box::new(host(HostGradient::Oracle(oracle, backend))));
        }
        Ok(match backend {
            // (Several devices were taken above.)
            Backend::Cpu | Backend::Devices(_) => {
                Box::new(host(HostGradient::Cpu(CpuOracle::new(train)?)))
            }
            Backend::Gpu(ctx) => {
                let problem = DeviceChunks::new(
                    ctx,
                    Rows::of(train),
                    Some(train.labels()),
                    train.weights(),
                    k,
                    s.chunk_rows,
                    s.batch_size,
                )?;
                problem.set_params(w0);
                problem.reset_state();
                Box::new(GpuEngine {
                    problem,
                    data: train,
                    l2: s.l2 as f32,
                    fresh: false,
                })
            }
        })
    }
}
