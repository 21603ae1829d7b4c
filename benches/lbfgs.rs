//! Time to the optimum: full-batch L-BFGS on the GPU oracle (and the CPU reference)
//! against scikit-learn's `LogisticRegression(solver="lbfgs")` in the same run.
//!
//! - digits (1797 × 64, K = 10, features / 16, λ = 1e-4): wall time until J ≤ J*(1 + 1e-6),
//!   J* = 0.087345742989 from ../shared/data/README.md.
//! - synthetic Gaussian clusters, 100000 × 256, K = 20, λ = 1e-4: wall time to converge
//!   at max|∇J| ≤ 1e-5 for both, with the final J of each.
//!
//! - host: L-BFGS's own work per iteration (two-loop recursion, line search, conversions)
//!   at n·K = 1024 × 1000, the size of a 1000-class probe on 1024-dim embeddings, against a
//!   cheap separable quadratic oracle whose time is measured and left out; on rayon's
//!   whole pool and on one thread, in the same run.
//!
//! scikit-learn runs through `python3 benches/sklearn_lbfgs.py` with
//! OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 (its fastest setting on 2 cores); its column
//! is left out when Python with scikit-learn is not installed. Run with
//! `cargo bench --bench lbfgs`; `LBFGS_SHAPES=digits` (or `synthetic`, `host`, comma-separated) picks problems.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ndarray::{Array1, Array2};
use softmax_regression::lbfgs::{LbfgsSettings, minimize};
use softmax_regression::{CpuOracle, Dataset, GpuContext, GpuOracle, LossGrad, Oracle, SplitMix64};

fn clusters(m: usize, n: usize, k: usize, seed: u64) -> Dataset {
    let mut rng = SplitMix64::new(seed);
    let means = Array2::from_shape_simple_fn((k, n), || (rng.normal() * 0.3) as f32);
    let y: Vec<u32> = (0..m).map(|_| rng.below(k) as u32).collect();
    let mut x = Array2::from_shape_simple_fn((m, n), || rng.normal() as f32);
    for (mut row, &c) in x.outer_iter_mut().zip(&y) {
        row += &means.row(c as usize);
    }
    Dataset::new(x, &y, k).expect("valid")
}

/// Writes a little-endian .npy (f4 2-D or i8 1-D) for the Python side.
fn npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let mut bytes = softmax_regression::formats::npy_header(descr, shape);
    bytes.extend(data);
    std::fs::write(path, bytes).expect("write npy");
}

/// (seconds, J, max|∇J|, iterations) from scikit-learn, or None without it.
fn sklearn(data: &Dataset, l2: f64, tol: f64, tag: &str) -> Option<(f64, f64, f64, usize)> {
    let dir = std::env::temp_dir();
    let (xp, yp) = (
        dir.join(format!("sr-bench-{tag}-x.npy")),
        dir.join(format!("sr-bench-{tag}-y.npy")),
    );
    let (m, n) = (data.n_rows(), data.n_features());
    npy(
        &xp,
        "<f4",
        &[m, n],
        &data
            .x()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    npy(
        &yp,
        "<i8",
        &[m],
        &data
            .labels()
            .iter()
            .flat_map(|&v| i64::from(v).to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let c = 1.0 / (l2 * m as f64);
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/sklearn_lbfgs.py"
        ))
        .args([xp.to_str()?, yp.to_str()?, &c.to_string(), &tol.to_string()])
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "scikit-learn column skipped: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = text.split_whitespace().collect();
    Some((
        v.first()?.parse().ok()?,
        v.get(1)?.parse().ok()?,
        v.get(2)?.parse().ok()?,
        v.get(3)?.parse().ok()?,
    ))
}

/// (seconds to reach `target` (or to converge), final J, iterations, evaluations).
fn ours(
    oracle: &mut dyn Oracle,
    l2: f64,
    tol: f64,
    target: Option<f64>,
) -> (f64, f64, usize, usize) {
    let (_, n, k) = oracle.shape();
    let started = Instant::now();
    let mut reached = None;
    let settings = LbfgsSettings {
        tol,
        max_iter: 5000,
        ..LbfgsSettings::default()
    };
    let r = minimize(
        oracle,
        Array2::zeros((n, k)),
        Array1::zeros(k),
        l2,
        &settings,
        |it, _| {
            if let (Some(t), None) = (target, reached)
                && it.loss <= t
            {
                reached = Some((
                    started.elapsed().as_secs_f64(),
                    it.iteration,
                    it.evaluations,
                ));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
    )
    .expect("L-BFGS runs");
    let (secs, iters, evals) =
        reached.unwrap_or((started.elapsed().as_secs_f64(), r.iterations, r.evaluations));
    (secs, r.loss, iters, evals)
}

/// J = Σ cᵢ (wᵢ − 1)² / 2 over w = (Θ, b), cᵢ in 1..=100: one pass over w per call, timed.
struct Quadratic {
    n: usize,
    k: usize,
    seconds: f64,
}

impl Oracle for Quadratic {
    fn shape(&self) -> (usize, usize, usize) {
        (1, self.n, self.k)
    }

    fn loss_and_gradient(
        &mut self,
        theta: ndarray::ArrayView2<'_, f32>,
        bias: ndarray::ArrayView1<'_, f32>,
        _l2: f64,
    ) -> softmax_regression::Result<LossGrad> {
        let started = Instant::now();
        let mut loss = 0.0;
        let g = Array2::from_shape_fn((self.n, self.k), |(i, j)| {
            let c = 1.0 + ((7 * i + 13 * j) % 100) as f64;
            let d = f64::from(theta[(i, j)]) - 1.0;
            loss += 0.5 * c * d * d;
            c * d
        });
        let gb = bias.mapv(|b| f64::from(b) - 1.0);
        loss += gb.iter().map(|d| 0.5 * d * d).sum::<f64>();
        self.seconds += started.elapsed().as_secs_f64();
        Ok(LossGrad {
            loss,
            theta: g,
            bias: gb,
        })
    }
}

/// (ms of L-BFGS host work per iteration, oracle excluded; J after 30 iterations).
fn host_overhead(n: usize, k: usize) -> (f64, f64) {
    let mut oracle = Quadratic { n, k, seconds: 0.0 };
    let settings = LbfgsSettings {
        max_iter: 30,
        tol: 0.0,
        ..LbfgsSettings::default()
    };
    let started = Instant::now();
    let r = minimize(
        &mut oracle,
        Array2::zeros((n, k)),
        Array1::zeros(k),
        0.0,
        &settings,
        |_, _| ControlFlow::Continue(()),
    )
    .expect("L-BFGS runs");
    let host = started.elapsed().as_secs_f64() - oracle.seconds;
    (1e3 * host / r.iterations as f64, r.loss)
}

fn main() {
    let only = std::env::var("LBFGS_SHAPES").ok();
    let wanted = |name: &str| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|s| s == name))
    };
    // The host problem runs on the CPU alone; the others need an adapter.
    let ctx = (wanted("digits") || wanted("synthetic")).then(|| {
        let ctx = GpuContext::from_env()
            .unwrap_or_else(|e| panic!("the benchmark needs an adapter: {e}"));
        println!("adapter: {}", ctx.describe());
        ctx
    });
    println!(
        "{:<10} {:<22} {:>10} {:>16} {:>7} {:>7}",
        "problem", "solver", "seconds", "final J", "iters", "evals"
    );

    if let Some(ctx) = ctx.as_ref().filter(|_| wanted("digits")) {
        let data = softmax_regression::datasets::digits().expect("embedded digits");
        let (l2, optimum) = (1e-4, 0.087345742989);
        let target = optimum * (1.0 + 1e-6);
        let mut gpu = GpuOracle::new(ctx, &data, None).expect("upload");
        ours(&mut gpu, l2, 1e-7, Some(target)); // warm-up: shader caches, allocations
        let g = ours(&mut gpu, l2, 1e-7, Some(target));
        println!(
            "{:<10} {:<22} {:>10.3} {:>16.12} {:>7} {:>7}",
            "digits", "ours, GPU oracle", g.0, g.1, g.2, g.3
        );
        let c = ours(&mut CpuOracle::new(&data).unwrap(), l2, 1e-7, Some(target));
        println!(
            "{:<10} {:<22} {:>10.3} {:>16.12} {:>7} {:>7}",
            "digits", "ours, CPU reference", c.0, c.1, c.2, c.3
        );
        if let Some(s) = sklearn(&data, l2, 1e-12, "digits") {
            println!(
                "{:<10} {:<22} {:>10.3} {:>16.12} {:>7} {:>7}",
                "digits", "scikit-learn lbfgs", s.0, s.1, s.3, "-"
            );
            println!(
                "digits: target J*(1+1e-6) = {target:.12}; GPU/scikit-learn time ratio {:.2}",
                g.0 / s.0
            );
        }
    }
    if let Some(ctx) = ctx.as_ref().filter(|_| wanted("synthetic")) {
        let data = clusters(100_000, 256, 20, 5);
        let l2 = 1e-4;
        let tol = 1e-5;
        let mut gpu = GpuOracle::new(ctx, &data, None).expect("upload");
        let g = ours(&mut gpu, l2, tol, None);
        println!(
            "{:<10} {:<22} {:>10.3} {:>16.12} {:>7} {:>7}",
            "synthetic", "ours, GPU oracle", g.0, g.1, g.2, g.3
        );
        if let Some(s) = sklearn(&data, l2, tol, "synthetic") {
            println!(
                "{:<10} {:<22} {:>10.3} {:>16.12} {:>7} {:>7}",
                "synthetic", "scikit-learn lbfgs", s.0, s.1, s.3, "-"
            );
            println!(
                "synthetic: GPU/scikit-learn time ratio {:.2}, J difference {:.2e} (relative)",
                g.0 / s.0,
                (g.1 - s.1) / s.1
            );
        }
    }
    if wanted("host") {
        let (n, k) = (1024, 1000);
        let threads = rayon::current_num_threads();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a one-thread pool");
        for round in 1..=3 {
            let all = host_overhead(n, k);
            let single = one.install(|| host_overhead(n, k));
            assert_eq!(
                all.1.to_bits(),
                single.1.to_bits(),
                "same J on any thread count"
            );
            println!(
                "host (n·K = {n} × {k}), round {round}: {:.2} ms per iteration on {threads} threads, {:.2} ms on one (oracle excluded, J = {:.6e} after 30 iterations)",
                all.0, single.0, all.1
            );
        }
    }
}
