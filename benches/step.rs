//! Throughput of the loss-and-gradient step (the oracle: every kernel of one full-batch
//! pass plus the readback of J and ∇J) at the shapes of BENCHMARKS.md, on the adapter the
//! environment selects. Each shape is checked against the f64 CPU reference before it is
//! timed. The upload of X, the whole step, the step's parts (Θ up, compute, readback,
//! from `GpuOracle::timed_step`) and each kernel (GPU timestamps where the adapter has
//! them) are reported separately.
//!
//! `BENCH_SHAPES=small,S1` picks shapes (default: all); `BENCH_VARIANTS=tiled,register,fused`
//! (or `coalesced`, or `gpu-auto`, the kernels GPUs get by default, or `register-plain`, the
//! register kernels without subgroup sharing)
//! times several kernel sets side by side in one run (default: the adapter's own choice);
//! `BENCH_X_STORAGE=f32,f16,u8` does the same for the storage of X (default: f32), each
//! compact storage checked against the reference on the values it stores.
//! Run with `cargo bench --bench step`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ndarray::{Array1, Array2};
use softmax_regression::gpu::{KernelVariant, XStorage};
use softmax_regression::{
    AdapterRequest, CpuOracle, Dataset, GpuContext, GpuOracle, LossGrad, Oracle, SplitMix64,
    StepTimes,
};

struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
}

const SHAPES: [Shape; 4] = [
    Shape {
        name: "small",
        m: 1797,
        n: 64,
        k: 10,
    },
    Shape {
        name: "S1",
        m: 60000,
        n: 784,
        k: 10,
    },
    Shape {
        name: "S2",
        m: 100000,
        n: 256,
        k: 100,
    },
    Shape {
        name: "S3",
        m: 20000,
        n: 1024,
        k: 1000,
    },
];

fn problem(s: &Shape) -> (Dataset, Array2<f32>, Array1<f32>) {
    let mut rng = SplitMix64::new(7);
    let x = Array2::from_shape_simple_fn((s.m, s.n), || rng.normal() as f32);
    let y: Vec<u32> = (0..s.m).map(|_| rng.below(s.k) as u32).collect();
    let theta = Array2::from_shape_simple_fn((s.n, s.k), || (0.01 * rng.normal()) as f32);
    let bias = Array1::zeros(s.k);
    (Dataset::new(x, &y, s.k).expect("valid"), theta, bias)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The storages of X to time: `BENCH_X_STORAGE=f32,f16,u8` (any of them), else f32.
fn storages() -> Vec<XStorage> {
    std::env::var("BENCH_X_STORAGE")
        .unwrap_or_else(|_| "f32".into())
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| XStorage::parse(v).unwrap_or_else(|e| panic!("BENCH_X_STORAGE: {e}")))
        .collect()
}

/// The kernel sets to time: `BENCH_VARIANTS=tiled,register,fused` (any of them), else the
/// one the adapter gets by default (`auto`), each with every storage of [`storages`];
/// labelled `auto`, `auto+u8`, ….
fn variants() -> Vec<(String, XStorage, GpuContext)> {
    let wanted = std::env::var("BENCH_VARIANTS").unwrap_or_else(|_| "auto".into());
    let storages = storages();
    wanted
        .split(',')
        .filter(|v| !v.is_empty())
        .flat_map(|v| storages.iter().map(move |&x| (v, x)))
        .map(|(v, x_storage)| {
            let (kernels, fused, subgroups) = match v {
                "auto" => (None, None, None),
                #[cfg(feature = "kernel-lab")]
                "tiled" => (Some(KernelVariant::Tiled), Some(false), None),
                "register" => (Some(KernelVariant::Register), Some(false), None),
                "coalesced" => (Some(KernelVariant::Coalesced), Some(false), None),
                "register-plain" => (Some(KernelVariant::Register), Some(false), Some(false)),
                "gpu-auto" => (Some(KernelVariant::Auto), Some(false), None),
                "fused" => (None, Some(true), None),
                other => panic!(
                    "BENCH_VARIANTS: unknown kernel set {other:?} (auto, register, register-plain, coalesced, gpu-auto; tiled and fused with --features kernel-lab)"
                ),
            };
            let ctx = GpuContext::new(&AdapterRequest {
                kernels,
                fused,
                subgroups,
                x_storage,
                ..AdapterRequest::default()
            })
            .unwrap_or_else(|e| panic!("benchmarks need an adapter: {e}"));
            let label = match x_storage {
                XStorage::F32 => v.to_string(),
                other => format!("{v}+{}", other.name()),
            };
            (label, x_storage, ctx)
        })
        .collect()
}

/// Relative errors of J and of ∇J = (∇Θ, ∇b) against the reference.
fn errors(got: &LossGrad, want: &LossGrad) -> (f64, f64) {
    let loss_rel = (got.loss - want.loss).abs() / want.loss;
    let num: f64 = got
        .theta
        .iter()
        .chain(&got.bias)
        .zip(want.theta.iter().chain(&want.bias))
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let den: f64 = want.theta.iter().chain(&want.bias).map(|b| b * b).sum();
    (loss_rel, (num / den).sqrt())
}

fn main() {
    let contexts = variants();
    let wanted = std::env::var("BENCH_SHAPES").ok();
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut table = Vec::new();
    for s in SHAPES.iter().filter(|s| {
        wanted
            .as_ref()
            .is_none_or(|w| w.split(',').any(|n| n == s.name))
    }) {
        let (data, theta, bias) = problem(s);
        // The reference for each storage: J and ∇J on the values the device stores.
        let mut wants: Vec<(XStorage, LossGrad)> = Vec::new();
        for (variant, x_storage, ctx) in &contexts {
            let label = format!("{}/{variant}", s.name);
            if !wants.iter().any(|(x, _)| x == x_storage) {
                let stored = x_storage.as_stored(data.x().unwrap()).expect("storable");
                let stored = Dataset::new(stored, data.labels(), s.k).expect("valid");
                let want = CpuOracle::new(&stored)
                    .unwrap()
                    .loss_and_gradient(theta.view(), bias.view(), 1e-4)
                    .expect("reference");
                wants.push((*x_storage, want));
            }
            let want = &wants.iter().find(|(x, _)| x == x_storage).unwrap().1;
            let upload_started = Instant::now();
            let mut oracle = GpuOracle::new(ctx, &data, None).expect("upload");
            let upload = upload_started.elapsed().as_secs_f64();

            // Correct first: J and ∇J against the f64 reference.
            let got = oracle
                .loss_and_gradient(theta.view(), bias.view(), 1e-4)
                .expect("step");
            let (loss_rel, grad_rel) = errors(&got, want);
            assert!(
                loss_rel < 1e-5 && grad_rel < 1e-4,
                "{label}: loss error {loss_rel:e}, gradient error {grad_rel:e}"
            );
            println!(
                "{label}: J = {:.6} (ln K = {:.6}); matches the reference (loss {loss_rel:.1e}, gradient {grad_rel:.1e})",
                got.loss,
                (s.k as f64).ln()
            );

            // criterion needs at least 10 samples; on a software adapter the large shapes
            // take seconds per step, so those are timed by the median below only.
            let first = Instant::now();
            oracle
                .loss_and_gradient(theta.view(), bias.view(), 1e-4)
                .expect("step");
            let once = first.elapsed().as_secs_f64();
            if once < 1.0 {
                let mut group = criterion.benchmark_group("oracle_step");
                group.throughput(Throughput::Elements(s.m as u64));
                group.bench_function(&label, |b| {
                    b.iter(|| {
                        oracle
                            .loss_and_gradient(theta.view(), bias.view(), 1e-4)
                            .expect("step")
                    })
                });
                group.finish();
            }

            // Our own median for the table (criterion prints its estimate above where it
            // ran): at least 5 steps, more while they take under 2 s in all.
            let runs = ((2.0 / once.max(1e-6)) as usize).clamp(5, 200);
            let times: Vec<f64> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    oracle
                        .loss_and_gradient(theta.view(), bias.view(), 1e-4)
                        .expect("step");
                    t.elapsed().as_secs_f64()
                })
                .collect();
            // The host's view of a step in three parts, with a wait between the step
            // and the readback.
            let parts: Vec<StepTimes> = (0..runs.min(9))
                .map(|_| {
                    oracle
                        .timed_step(theta.view(), bias.view(), 1e-4)
                        .expect("timed step")
                        .1
                })
                .collect();
            let part = |f: fn(&StepTimes) -> f64| median(parts.iter().map(f).collect()) * 1e3;
            println!(
                "{label}: step parts (medians of {}, host clock, a wait after the step): Θ up {:.3} ms, compute {:.3} ms, readback {:.3} ms",
                parts.len(),
                part(|t| t.upload),
                part(|t| t.compute),
                part(|t| t.readback)
            );
            // Per kernel, one submission each with a wait after it.
            let profiles: Vec<(Vec<(&str, f64)>, bool)> = (0..runs.min(9))
                .map(|_| {
                    oracle
                        .profile(theta.view(), bias.view(), 1e-4)
                        .expect("profile")
                })
                .collect();
            let stamped = profiles[0].1;
            let kernels: Vec<String> = profiles[0]
                .0
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    format!(
                        "{name} {:.3} ms",
                        median(profiles.iter().map(|p| p.0[i].1).collect()) * 1e3
                    )
                })
                .collect();
            println!(
                "{label}: per kernel (medians of {}, one submission each, {}): {}",
                profiles.len(),
                if stamped {
                    "GPU timestamps"
                } else {
                    "wall clock: the adapter has no timestamp queries"
                },
                kernels.join(", ")
            );
            table.push((s, label, *x_storage, upload, median(times), runs));
        }
    }
    for (variant, _, ctx) in &contexts {
        println!("\n{variant}: {}", ctx.describe());
    }
    println!(
        "{:<20} {:>8} {:>6} {:>6} {:>10} {:>11} {:>6} {:>13} {:>9} {:>9}",
        "shape/kernels",
        "m",
        "n",
        "K",
        "upload s",
        "step ms",
        "runs",
        "samples/s",
        "GFLOP/s",
        "GB/s"
    );
    for (s, label, x_storage, upload, step, runs) in table {
        let flops = 4.0 * (s.m * s.n * s.k) as f64;
        let bytes = x_storage.bytes(s.m * s.n) as f64;
        println!(
            "{:<20} {:>8} {:>6} {:>6} {:>10.3} {:>11.3} {:>6} {:>13.0} {:>9.1} {:>9.1}",
            label,
            s.m,
            s.n,
            s.k,
            upload,
            step * 1e3,
            runs,
            s.m as f64 / step,
            flops / step / 1e9,
            bytes / step / 1e9
        );
    }
    criterion.final_summary();
}
