//! Shared test helpers: one GPU context per test binary, seeded data, and the one
//! comparison helper every GPU-vs-reference test uses.
#![allow(dead_code)]

use std::sync::OnceLock;

use ndarray::{Array1, Array2};
use softmax_regression::{Dataset, GpuContext, SplitMix64};

/// The adapter the environment selects (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`). A missing
/// adapter fails the test: GPU tests never pass by not running.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::from_env() {
        Ok(ctx) => {
            eprintln!("adapter: {}", ctx.describe());
            ctx
        }
        Err(e) => panic!(
            "GPU tests need an adapter (REQUIRE_GPU={}): {e}",
            std::env::var("REQUIRE_GPU").unwrap_or_default()
        ),
    })
}

/// One context per kernel set on the selected adapter: register and coalesced (the kernels
/// the library chooses on CPU adapters and on GPUs) and, in a build with the kernel lab
/// (`--features kernel-lab`), tiled and the GPU default `auto` with the fused single-pass
/// kernel for K ≤ 16; every test that takes them runs on each.
pub fn gpus() -> Vec<&'static GpuContext> {
    use softmax_regression::AdapterRequest;
    use softmax_regression::gpu::KernelVariant;
    static REGISTER: OnceLock<GpuContext> = OnceLock::new();
    static COALESCED: OnceLock<GpuContext> = OnceLock::new();
    let open = |v: KernelVariant, fused: bool| {
        GpuContext::new(&AdapterRequest {
            kernels: Some(v),
            fused: Some(fused),
            ..AdapterRequest::default()
        })
        .unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"))
    };
    #[allow(unused_mut)]
    let mut contexts = vec![
        REGISTER.get_or_init(|| open(KernelVariant::Register, false)),
        COALESCED.get_or_init(|| open(KernelVariant::Coalesced, false)),
    ];
    #[cfg(feature = "kernel-lab")]
    {
        static TILED: OnceLock<GpuContext> = OnceLock::new();
        static FUSED: OnceLock<GpuContext> = OnceLock::new();
        contexts.push(TILED.get_or_init(|| open(KernelVariant::Tiled, false)));
        contexts.push(FUSED.get_or_init(|| open(KernelVariant::Auto, true)));
    }
    contexts
}

/// Asserts `|got − want| ≤ atol + rtol·|want|` elementwise; on failure reports how many
/// elements failed, the worst error and where.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, expected {}",
        got.len(),
        want.len()
    );
    let mut failed = 0usize;
    let mut worst = (0usize, 0.0f64, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        let excess = err - (atol + rtol * w.abs());
        if excess.is_nan() || excess > 0.0 {
            failed += 1;
            if err.is_nan() || err > worst.1 {
                worst = (i, err, w);
            }
        }
    }
    assert!(
        failed == 0,
        "{what}: {failed} of {} values differ by more than {atol:e} + {rtol:e}·|ref|; worst at index {}: got {}, want {} (error {:e})",
        got.len(),
        worst.0,
        got[worst.0],
        worst.2,
        worst.1
    );
}

/// f32 values as f64 for [`assert_close`].
pub fn f64s<'a>(v: impl IntoIterator<Item = &'a f32>) -> Vec<f64> {
    v.into_iter().map(|&x| f64::from(x)).collect()
}

/// Seeded N(0, scale²) matrix.
pub fn normal(rows: usize, cols: usize, scale: f64, seed: u64) -> Array2<f32> {
    let mut rng = SplitMix64::new(seed);
    Array2::from_shape_simple_fn((rows, cols), || (rng.normal() * scale) as f32)
}

/// Seeded N(0, scale²) vector.
pub fn normal_vec(len: usize, scale: f64, seed: u64) -> Array1<f32> {
    let mut rng = SplitMix64::new(seed);
    Array1::from_shape_simple_fn(len, || (rng.normal() * scale) as f32)
}

/// Seeded labels in 0..k.
pub fn labels(rows: usize, k: usize, seed: u64) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    (0..rows).map(|_| rng.below(k) as u32).collect()
}

/// A learnable problem: Gaussian clusters around random class means.
pub fn clusters(m: usize, n: usize, k: usize, separation: f64, seed: u64) -> Dataset {
    let means = normal(k, n, separation, seed ^ 0xA5A5);
    let y = labels(m, k, seed ^ 0x5A5A);
    let mut x = normal(m, n, 1.0, seed);
    for (mut row, &c) in x.outer_iter_mut().zip(&y) {
        row += &means.row(c as usize);
    }
    Dataset::new(x, &y, k).expect("generated data is valid")
}

/// The digits data (1797 × 64, labels 0–9), features divided by 16: the copy of
/// ../shared/data/digits.csv.gz embedded in the crate.
pub fn digits() -> Dataset {
    softmax_regression::datasets::digits().expect("the embedded digits data parses")
}

/// Writes a version-1 `.npy` file with the given dtype descriptor, shape and raw data.
pub fn write_npy(path: &std::path::Path, descr: &str, shape: &[usize], data: &[u8]) {
    let mut bytes = softmax_regression::formats::npy_header(descr, shape);
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// The same data read through a memory-mapped float32 `.npy` file written to a scratch
/// folder named after `name`.
pub fn mapped(data: &Dataset, name: &str) -> Dataset {
    let path = scratch(&format!("mapped-{name}")).join("x.npy");
    let x = data.x().unwrap();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&path, "<f4", &[x.nrows(), x.ncols()], &bytes);
    let source = softmax_regression::source::NpySource::open(&path).unwrap();
    Dataset::from_source(std::sync::Arc::new(source), data.labels(), data.n_classes()).unwrap()
}

/// The bits of a fit's parameters (Θ row-major, then b), for bit-for-bit comparisons.
pub fn weight_bits(fit: &softmax_regression::Fit) -> Vec<u32> {
    fit.model
        .theta()
        .iter()
        .chain(fit.model.bias().iter())
        .map(|v| v.to_bits())
        .collect()
}

/// A fresh, empty directory for one test: `<tmp>/softmax-regression-<name>-<pid>`.
/// Runs `python3 -c script args…` and returns its stdout; fails the test, with Python's
/// stderr, when the script does.
pub fn python(script: &str, args: &[&str]) -> String {
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "python: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("softmax-regression-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts the binary refused bad input as promised: exit code 2 and exactly one line on
/// stderr, an `error:` that mentions `needle`, with no driver noise. `what` names the case
/// in failure messages.
pub fn assert_bad_input(what: &str, o: &std::process::Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{what}: expected exit 2, got {:?}; stderr: {err}",
        o.status.code()
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one line on stderr, got: {err:?}"
    );
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{what}: {:?} does not name {needle:?}",
        lines[0]
    );
    assert!(
        !err.contains("XDG_RUNTIME_DIR"),
        "{what}: driver noise on stderr: {err}"
    );
}

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_softmax-regression");

/// Runs the binary with `args`, capturing its output.
pub fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// What the run wrote to stderr, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What the run wrote to stdout, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A path as a command-line argument.
pub fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// `m` rows of three separable clusters in 4 features, as (features, class); class `i % 3`
/// sits at 3 in feature `i % 3` with N(0, 0.25) noise, seeded by `seed`.
pub fn blobs(m: usize, seed: u64) -> Vec<(Vec<f32>, usize)> {
    let mut rng = SplitMix64::new(seed);
    (0..m)
        .map(|i| {
            let c = i % 3;
            let x = (0..4)
                .map(|j| (if j == c { 3.0 } else { 0.0 }) + rng.normal() as f32 * 0.5)
                .collect();
            (x, c)
        })
        .collect()
}

/// One `.npy` member: the header for `descr` and `shape`, then `data`.
pub fn npy_member(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let mut bytes = softmax_regression::formats::npy_header(descr, shape);
    bytes.extend_from_slice(data);
    bytes
}

/// An `.npz` as scipy.sparse.save_npz writes it: `format` a 0-d bytes array, `shape`
/// int64, the rest as given; `deflate` compresses the members.
pub fn npz(path: &std::path::Path, format: &str, members: &[(&str, Vec<u8>)], deflate: bool) {
    use std::io::Write;
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let descr = format!("|S{}", format.len());
    let mut all = vec![("format", npy_member(&descr, &[], format.as_bytes()))];
    all.extend(members.iter().cloned());
    for (name, bytes) in all {
        zip.start_file(format!("{name}.npy"), options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// `trainer.fit` on `data` without validation, an initial model or a callback.
pub fn fit(
    trainer: &softmax_regression::Trainer,
    backend: softmax_regression::Backend<'_>,
    data: &Dataset,
) -> softmax_regression::Fit {
    trainer
        .fit(backend, data, None, None, |_| {
            std::ops::ControlFlow::Continue(())
        })
        .unwrap()
}

/// J at a fit's last epoch.
pub fn final_loss(f: &softmax_regression::Fit) -> f64 {
    f.history.last().unwrap().loss
}

/// Runs the binary with `resume` (a command that resumes a checkpoint), then checks that
/// the model it writes to `part` equals, bit for bit, the uninterrupted run's `full`.
pub fn resumes_to(resume: &[String], part: &std::path::Path, full: &std::path::Path, what: &str) {
    let out = std::process::Command::new(BIN)
        .args(resume)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bits = |path: &std::path::Path| {
        let (model, _) = softmax_regression::Model::load(path).unwrap();
        model
            .theta()
            .iter()
            .chain(model.bias().iter())
            .map(|v| v.to_bits())
            .collect::<Vec<u32>>()
    };
    assert_eq!(
        bits(part),
        bits(full),
        "{what}'s model differs from the uninterrupted run's"
    );
}
