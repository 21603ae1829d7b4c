//! Where one full pass of the sparse kernels spends its time: the text-like data of
//! ../shared/data/sparse (40,000 × 30,000, 1.29M stored values, K = 20) on the adapter
//! that `--backend auto` would take for the GPU (`WGPU_BACKEND` picks vulkan or gl), with
//! the per-kernel times of one pass and three timed oracle calls.
//!
//! `cargo run --release --example sparse_profile [FILE.svm.gz]`

use std::path::PathBuf;

use softmax_regression::data::Csr;
use softmax_regression::formats::{LoadOptions, RawLabels, load_sparse};
use softmax_regression::{AdapterRequest, Dataset, GpuContext, GpuOracle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/sparse/text.svm.gz")
        });
    let started = std::time::Instant::now();
    let loaded = load_sparse(&path, &LoadOptions::default())?;
    let Some(RawLabels::Ints(labels)) = loaded.labels else {
        return Err(format!("{} has no integer labels", path.display()).into());
    };
    let labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    let k = labels.iter().max().map_or(1, |&l| l as usize + 1);
    let data = Dataset::from_csr(Csr::try_from(loaded.x)?, &labels, k)?;
    let read = started.elapsed();
    let ctx = GpuContext::new(&AdapterRequest::default())?;
    let opened = started.elapsed();
    println!("{}", ctx.describe());
    let mut oracle = GpuOracle::new(&ctx, &data, None)?;
    let built = started.elapsed();
    println!(
        "set-up: read {:.0} ms, adapter and kernels {:.0} ms, oracle (chunks, uploads) {:.0} ms",
        read.as_secs_f64() * 1e3,
        (opened - read).as_secs_f64() * 1e3,
        (built - opened).as_secs_f64() * 1e3
    );
    let theta = ndarray::Array2::<f32>::zeros((data.n_features(), k));
    let bias = ndarray::Array1::<f32>::zeros(k);
    let first = std::time::Instant::now();
    oracle.timed_step(theta.view(), bias.view(), 1e-4)?;
    println!(
        "first oracle call: {:.0} ms",
        first.elapsed().as_secs_f64() * 1e3
    );
    let (kernels, from_timestamps) = oracle.profile(theta.view(), bias.view(), 1e-4)?;
    let clock = if from_timestamps {
        "GPU timestamps"
    } else {
        "wall time"
    };
    for (name, seconds) in kernels {
        println!("{name:>10} {:8.2} ms ({clock})", seconds * 1e3);
    }
    for _ in 0..3 {
        let (_, t) = oracle.timed_step(theta.view(), bias.view(), 1e-4)?;
        println!(
            "oracle call: upload {:.2} ms, compute {:.2} ms, readback {:.2} ms",
            t.upload * 1e3,
            t.compute * 1e3,
            t.readback * 1e3
        );
    }
    Ok(())
}
