//! A learnable classification problem of any size, written to `.npy` files as it is
//! generated (a few blocks of rows in memory at a time), for tests, benchmarks and trying
//! the out-of-core path without real data.
//!
//! Class k has a mean μ_k with entries drawn from N(0, s²/n), where s is the separation,
//! so that two class means are about s·√2 apart whatever n is; each row picks its class
//! uniformly and is μ_y plus N(0, I) noise. Rows are generated in blocks of at most
//! [`BLOCK_ROWS`] rows and [`BLOCK_VALUES`] values (a function of n only), each from its
//! own seed derived from the run's seed and the block index, so the files are the same for
//! a seed however many threads generate them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::formats::npy_header;
use crate::output::OutputPath;
use crate::output::io_error;
use crate::rng::SplitMix64;

/// Most rows per independently seeded block.
pub const BLOCK_ROWS: usize = 4096;

/// Most values per block, so that wide rows still give small blocks.
pub const BLOCK_VALUES: usize = 1 << 22;

/// Most values of the class means (K × n).
const MAX_MEAN_VALUES: usize = 1 << 28;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    /// m.
    pub rows: usize,
    /// n.
    pub features: usize,
    /// K.
    pub classes: usize,
    /// Seed of the class means and of every row.
    pub seed: u64,
    /// Distance scale between class means, in units of the noise's standard deviation
    /// (about s·√2 between two means). Default 3.
    pub separation: f64,
}

impl SynthSpec {
    /// Checks every field; the error names the flag-style setting.
    pub fn validate(&self) -> Result<()> {
        if self.rows == 0 {
            return Err(Error::setting("rows", 0, "must be at least 1"));
        }
        if self.features == 0 {
            return Err(Error::setting("features", 0, "must be at least 1"));
        }
        if self.classes < 2 {
            return Err(Error::setting(
                "classes",
                self.classes,
                "must be at least 2",
            ));
        }
        if self.classes > i32::MAX as usize {
            return Err(Error::setting("classes", self.classes, "must fit in int32"));
        }
        if self
            .classes
            .checked_mul(self.features)
            .is_none_or(|v| v > MAX_MEAN_VALUES)
        {
            return Err(Error::setting(
                "classes",
                self.classes,
                format!(
                    "classes × features must be at most {MAX_MEAN_VALUES} (the class means are held in memory)"
                ),
            ));
        }
        if !(self.separation.is_finite() && self.separation >= 0.0) {
            return Err(Error::setting(
                "separation",
                self.separation,
                "must be a finite number ≥ 0",
            ));
        }
        let bytes = (self.rows as u128) * (self.features as u128) * 4;
        if bytes > u64::MAX as u128 / 2 {
            return Err(Error::setting(
                "rows",
                self.rows,
                "rows × features is too large for one file",
            ));
        }
        Ok(())
    }

    /// Rows per block for this width.
    pub fn block_rows(&self) -> usize {
        (BLOCK_VALUES / self.features.max(1)).clamp(1, BLOCK_ROWS)
    }

    /// Bytes of the features file's data.
    pub fn x_bytes(&self) -> u64 {
        (self.rows as u64) * (self.features as u64) * 4
    }
}

/// One block: (features, labels) of rows `block·BLOCK_ROWS ..`.
fn block(spec: &SynthSpec, means: &[f32], index: usize) -> (Vec<u8>, Vec<u8>) {
    let n = spec.features;
    let per = spec.block_rows();
    let rows = per.min(spec.rows - index * per);
    let mut rng =
        SplitMix64::new(spec.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut x = Vec::with_capacity(rows * n * 4);
    let mut y = Vec::with_capacity(rows * 4);
    for _ in 0..rows {
        let class = rng.below(spec.classes);
        y.extend((class as i32).to_le_bytes());
        let mean = &means[class * n..(class + 1) * n];
        let mut j = 0;
        while j < n {
            // Box–Muller: two normals per pair of uniforms.
            let u1 = 1.0 - rng.next_f64();
            let u2 = rng.next_f64();
            let r = (-2.0 * u1.ln()).sqrt();
            let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
            for z in [r * c, r * s] {
                if j < n {
                    x.extend((mean[j] + z as f32).to_le_bytes());
                    j += 1;
                }
            }
        }
    }
    (x, y)
}

/// Writes features `x_path` (float32, (m, n)) and labels `y_path` (int32, (m,)); each file
/// appears under its name only when complete. `progress` gets the rows written so far and
/// may stop the run, which then removes what it wrote and returns `Ok(false)`.
pub fn write_problem(
    spec: &SynthSpec,
    x_path: &Path,
    y_path: &Path,
    mut progress: impl FnMut(usize) -> std::ops::ControlFlow<()>,
) -> Result<bool> {
    spec.validate()?;
    if crate::output::same_file(x_path, y_path) {
        return Err(Error::setting(
            "labels",
            y_path.display(),
            "names the same file as the features",
        ));
    }
    let check = |flag: &'static str, path: &Path| {
        OutputPath::check(path).map_err(|reason| {
            Error::setting(
                flag,
                path.display(),
                format!("cannot be written: it {reason}"),
            )
        })
    };
    let (x_out, y_out) = (check("out", x_path)?, check("labels", y_path)?);
    // Dropped without a commit (an error, a stop), each removes its temporary.
    let (mut px, mut py) = (x_out.begin()?, y_out.begin()?);
    let result = (|| {
        let (mut fx, mut fy) = (
            BufWriter::with_capacity(1 << 20, px.file()),
            BufWriter::with_capacity(1 << 20, py.file()),
        );
        let write = |w: &mut BufWriter<&mut File>, path: &Path, bytes: &[u8]| {
            w.write_all(bytes)
                .map_err(|e| io_error(path, "cannot write", e))
        };
        write(
            &mut fx,
            x_path,
            &npy_header("<f4", &[spec.rows, spec.features]),
        )?;
        write(&mut fy, y_path, &npy_header("<i4", &[spec.rows]))?;
        let n = spec.features;
        let mut rng = SplitMix64::new(spec.seed);
        let scale = spec.separation / (n as f64).sqrt();
        let means: Vec<f32> = (0..spec.classes * n)
            .map(|_| (rng.normal() * scale) as f32)
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(8);
        let per = spec.block_rows();
        let blocks = spec.rows.div_ceil(per);
        let mut next = 0;
        while next < blocks {
            let group: Vec<usize> = (next..blocks.min(next + threads)).collect();
            let made: Vec<Option<(Vec<u8>, Vec<u8>)>> = std::thread::scope(|scope| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|&b| {
                        let means = &means;
                        scope.spawn(move || block(spec, means, b))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().ok()).collect()
            });
            let Some(made) = made.into_iter().collect::<Option<Vec<_>>>() else {
                return Err(Error::Io {
                    path: x_path.display().to_string(),
                    message: "a generator thread failed".into(),
                });
            };
            for (x, y) in &made {
                write(&mut fx, x_path, x)?;
                write(&mut fy, y_path, y)?;
            }
            next += group.len();
            if progress((next * per).min(spec.rows)).is_break() {
                return Ok(false);
            }
        }
        for (w, path) in [(fx, x_path), (fy, y_path)] {
            w.into_inner()
                .map_err(|e| io_error(path, "cannot write", e.into_error()))?;
        }
        Ok(true)
    })();
    if matches!(result, Ok(true)) {
        px.commit()?;
        py.commit()?;
    }
    result
}
