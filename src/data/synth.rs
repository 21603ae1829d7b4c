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
//!
//! [`write_sparse_problem`] writes a sparse, text-like problem the same way: a directory
//! of SciPy's CSR arrays (see [`SparseSynthSpec`] for the model).

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

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

/// What to generate as sparse, text-like rows: documents of Zipf-distributed terms with
/// tf-idf values and labels from a linear (softmax) teacher.
///
/// - Row lengths: each row stores about ℓ = D·n values; a row's length is ℓ·e^(σz − σ²/2)
///   rounded (z standard normal, σ = 1/2), so lengths vary as documents' do, with mean ℓ.
/// - Terms: a row draws terms until it holds its length in distinct columns (at most
///   4·length + 16 draws). Column j is drawn with probability ln((j + 2)/(j + 1)) / ln(n + 1),
///   a Zipf law of exponent 1 by rank: column 0 in about one draw in ln(n + 1)/ln 2 (most
///   rows hold it), a long tail of columns seen once or never.
/// - Values: (1 + ln tf)·idf_j, tf the times the row drew column j and
///   idf_j = 1 + ln(1/df_j) with df_j = 1 − (1 − p_j)^ℓ the share of rows expected to hold
///   it; each row then scaled to unit length, as scikit-learn's `TfidfVectorizer` does.
/// - Labels: a teacher W (n, K) with N(0, 1) entries; row x's label is drawn from
///   softmax(s·xᵀW), s the separation. With unit rows, xᵀW[:, k] is about N(0, 1), so s
///   sets how learnable the labels are (s = 3: the most likely of K = 2 labels is the one
///   drawn 88 times in 100).
///
/// The teacher is drawn from the seed, each block of rows from its own seed derived from
/// the seed and the block index (see `sparse_block_rng`), so the files are the same for a
/// seed on any machine and however many threads generate them.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseSynthSpec {
    /// m, n, K, the seed and the separation s (the teacher's scale); `problem.validate`
    /// applies (the teacher, K × n values, is held in memory like the class means).
    pub problem: SynthSpec,
    /// D in (0, 1]: the share of the n columns a row stores, on average.
    pub density: f64,
}

/// The arrays a sparse problem's directory holds, in the order they are written.
pub const SPARSE_MEMBERS: [&str; 4] = ["data.npy", "indices.npy", "indptr.npy", "shape.npy"];

/// Spread of the row lengths: σ of their logarithm.
const LENGTH_SIGMA: f64 = 0.5;

impl SparseSynthSpec {
    /// Checks every field; the error names the flag-style setting.
    pub fn validate(&self) -> Result<()> {
        self.problem.validate()?;
        if !(self.density.is_finite() && self.density > 0.0 && self.density <= 1.0) {
            return Err(Error::setting(
                "density",
                self.density,
                "must be a number in (0, 1]",
            ));
        }
        Ok(())
    }

    /// ℓ = D·n: stored values per row, on average.
    pub fn row_values(&self) -> f64 {
        self.density * self.problem.features as f64
    }

    /// Rows per block, so that a block holds about [`BLOCK_VALUES`] values at most.
    pub fn block_rows(&self) -> usize {
        ((BLOCK_VALUES as f64 / self.row_values().max(1.0)) as usize).clamp(1, BLOCK_ROWS)
    }

    /// The NumPy type of the column indices: int32 when every column fits (n ≤ 2³¹), as
    /// SciPy chooses, else uint32.
    pub fn indices_descr(&self) -> &'static str {
        if self.problem.features <= 1 << 31 {
            "<i4"
        } else {
            "<u4"
        }
    }
}

/// One block of sparse rows, as bytes for the files: values (float32), columns (u32, the
/// same bytes as int32 below 2³¹), each row's length, labels (int32).
struct SparseBlock {
    values: Vec<u8>,
    indices: Vec<u8>,
    lengths: Vec<u64>,
    labels: Vec<u8>,
}

/// The generator of block `index`. Its seed is itself a SplitMix64 output (of the run's
/// seed, offset by the block index): blocks seeded with `seed + c·index` for SplitMix64's
/// own increment c would draw the same stream shifted by one value per block, so that
/// every block's rows repeated the first's.
fn sparse_block_rng(seed: u64, index: usize) -> SplitMix64 {
    const SPARSE: u64 = 0x7370_6172_7365_0000;
    let offset = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    SplitMix64::new(SplitMix64::new((seed ^ SPARSE).wrapping_add(offset)).next_u64())
}

/// Rows `index·block_rows ..` of the problem; `teacher` is W (n, K) row-major.
fn sparse_block(spec: &SparseSynthSpec, teacher: &[f32], index: usize) -> SparseBlock {
    let SynthSpec {
        rows: m,
        features: n,
        classes: k,
        ..
    } = spec.problem;
    let per = spec.block_rows();
    let rows = per.min(m - index * per);
    let mut rng = sparse_block_rng(spec.problem.seed, index);
    let ell = spec.row_values();
    let log_span = (n as f64 + 1.0).ln();
    // Column j's chance in one draw, and its idf from the rows expected to hold it.
    let idf = |j: usize| {
        let p = ((j as f64 + 2.0) / (j as f64 + 1.0)).ln() / log_span;
        let df = -(ell * (-p).ln_1p()).exp_m1();
        1.0 + (1.0 / df.max(f64::MIN_POSITIVE)).ln()
    };
    let mut block = SparseBlock {
        values: Vec::with_capacity((rows as f64 * ell * 4.0) as usize),
        indices: Vec::with_capacity((rows as f64 * ell * 4.0) as usize),
        lengths: Vec::with_capacity(rows),
        labels: Vec::with_capacity(rows * 4),
    };
    let (mut terms, mut row, mut z) = (Vec::new(), Vec::new(), vec![0f64; k]);
    for _ in 0..rows {
        let spread = (LENGTH_SIGMA * rng.normal() - LENGTH_SIGMA * LENGTH_SIGMA / 2.0).exp();
        let length = ((ell * spread).round() as usize).min(n);
        // Terms until the row holds `length` distinct columns, or the draws run out.
        terms.clear();
        let (mut distinct, mut drawn) = (0, 0);
        while distinct < length && drawn < 4 * length + 16 {
            for _ in distinct..length {
                // Inverse of the continuous law with density ∝ 1/x on [1, n + 1).
                let x = (rng.next_f64() * log_span).exp();
                terms.push((x as usize).saturating_sub(1).min(n - 1) as u32);
            }
            drawn += length - distinct;
            terms.sort_unstable();
            distinct = 1 + terms.windows(2).filter(|w| w[0] != w[1]).count();
        }
        // (column, tf-idf) of each distinct term, then the row scaled to unit length.
        row.clear();
        for run in terms.chunk_by(|a, b| a == b) {
            let j = run[0] as usize;
            row.push((run[0], (1.0 + (run.len() as f64).ln()) * idf(j)));
        }
        let norm = row.iter().map(|&(_, v)| v * v).sum::<f64>().sqrt();
        z.fill(0.0);
        for &(j, v) in &row {
            let v = v / norm;
            block.indices.extend(j.to_le_bytes());
            block.values.extend((v as f32).to_le_bytes());
            let w = &teacher[j as usize * k..(j as usize + 1) * k];
            for (zk, &wk) in z.iter_mut().zip(w) {
                *zk += v * f64::from(wk);
            }
        }
        block.lengths.push(row.len() as u64);
        // The label, drawn from softmax(s·z) (row max subtracted).
        let s = spec.problem.separation;
        let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = z.iter().map(|&zk| (s * (zk - top)).exp()).collect();
        let mut u = rng.next_f64() * weights.iter().sum::<f64>();
        let mut label = k - 1;
        for (c, &w) in weights.iter().enumerate() {
            if u < w {
                label = c;
                break;
            }
            u -= w;
        }
        block.labels.extend((label as i32).to_le_bytes());
    }
    block
}

/// A sparse problem's directory, checked for writing: absent (then created, inside an
/// existing directory) or a directory that holds nothing but what a sparse synth writes
/// there and the labels, so that no file of the user's other than these is replaced.
struct SparseDir {
    dir: PathBuf,
    /// The directory was there before the run (else the run makes it).
    exists: bool,
}

impl SparseDir {
    fn check(dir: &Path, y_path: &Path) -> Result<SparseDir> {
        let refuse = |reason: String| {
            Error::setting(
                "out",
                dir.display(),
                format!("cannot be written: it {reason}"),
            )
        };
        for member in SPARSE_MEMBERS {
            if crate::output::same_file(&dir.join(member), y_path) {
                return Err(Error::setting(
                    "labels",
                    y_path.display(),
                    format!("is the {member} that --out {} is to hold", dir.display()),
                ));
            }
        }
        let exists = match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => true,
            Ok(_) => {
                return Err(refuse(
                    "is not a directory; with --density it names a directory of .npy arrays".into(),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(refuse(format!("cannot be examined ({e})"))),
        };
        if exists {
            let entries =
                std::fs::read_dir(dir).map_err(|e| refuse(format!("cannot be listed ({e})")))?;
            for entry in entries {
                let entry = entry.map_err(|e| refuse(format!("cannot be listed ({e})")))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = SPARSE_MEMBERS.iter().any(|member| {
                    name == *member
                        || name
                            .strip_prefix(&format!(".{member}.tmp-"))
                            .is_some_and(|pid| pid.parse::<u32>().is_ok())
                });
                let labels = crate::output::same_file(&entry.path(), y_path);
                if !(ours || labels) {
                    return Err(refuse(format!(
                        "holds {name}, which synth --density does not write; name a new directory or one it wrote"
                    )));
                }
                if ours && !name.starts_with('.') && !entry.path().is_file() {
                    return Err(refuse(format!("holds {name}, which is not a regular file")));
                }
            }
        } else {
            // Where a new file could be made, a new directory can be.
            OutputPath::check(dir).map_err(refuse)?;
        }
        let out = SparseDir {
            dir: dir.to_path_buf(),
            exists,
        };
        if exists {
            out.members()?;
        }
        Ok(out)
    }

    /// Each array's output, checked; in a directory yet to be made, once it is made.
    fn members(&self) -> Result<Vec<OutputPath>> {
        SPARSE_MEMBERS
            .iter()
            .map(|member| {
                OutputPath::check(&self.dir.join(member)).map_err(|reason| {
                    Error::setting(
                        "out",
                        self.dir.display(),
                        format!("cannot hold {member}: it {reason}"),
                    )
                })
            })
            .collect()
    }
}
/// Writes a sparse problem ([`SparseSynthSpec`]): the directory `dir` with
/// [`SPARSE_MEMBERS`] — `data.npy` (float32 values), `indices.npy` (int32 columns, or
/// uint32 when n > 2³¹), `indptr.npy` (int64 row offsets) and `shape.npy` (int64 [m, n]),
/// SciPy's CSR arrays:
/// `scipy.sparse.csr_matrix((data, indices, indptr), shape=tuple(shape))` — and the labels
/// `y_path` (int32, (m,)).
///
/// `dir` may be absent (it is made, in an existing directory) or a directory holding
/// nothing but those arrays and the labels (a previous run's): any other file there is
/// refused before anything is written. The arrays are streamed block by block, each to a
/// temporary beside its name that is put in place only when all are complete; the stored
/// values' count is written into the headers of `data.npy` and `indices.npy` at the end.
/// `progress` gets the rows written so far and may stop the run, which then removes what
/// it wrote (and the directory, if it made it) and returns `Ok(None)`; a finished run
/// returns the number of stored values.
pub fn write_sparse_problem(
    spec: &SparseSynthSpec,
    dir: &Path,
    y_path: &Path,
    mut progress: impl FnMut(usize) -> std::ops::ControlFlow<()>,
) -> Result<Option<u64>> {
    spec.validate()?;
    let out = SparseDir::check(dir, y_path)?;
    let y_out = OutputPath::check(y_path).map_err(|reason| {
        Error::setting(
            "labels",
            y_path.display(),
            format!("cannot be written: it {reason}"),
        )
    })?;
    if !out.exists {
        std::fs::create_dir(&out.dir)
            .map_err(|e| io_error(&out.dir, "cannot create the directory", e))?;
    }
    let result = write_sparse_files(spec, &out, &y_out, &mut progress);
    if !matches!(result, Ok(Some(_))) && !out.exists {
        // Only the temporaries were there, and they are gone: the directory is empty.
        let _ = std::fs::remove_dir(&out.dir);
    }
    result
}

fn write_sparse_files(
    spec: &SparseSynthSpec,
    out: &SparseDir,
    y_out: &OutputPath,
    progress: &mut impl FnMut(usize) -> std::ops::ControlFlow<()>,
) -> Result<Option<u64>> {
    let SynthSpec {
        rows: m,
        features: n,
        classes: k,
        ..
    } = spec.problem;
    let paths: Vec<PathBuf> = SPARSE_MEMBERS.iter().map(|f| out.dir.join(f)).collect();
    let [data_path, indices_path, indptr_path, shape_path] =
        [0, 1, 2, 3].map(|i| paths[i].as_path());
    let y_path = y_out.path();
    // Dropped without a commit (an error, a stop), each removes its temporary.
    let mut pending = Vec::with_capacity(5);
    for output in out.members()?.iter().chain([y_out]) {
        pending.push(output.begin()?);
    }
    let write = |w: &mut BufWriter<&mut File>, path: &Path, bytes: &[u8]| {
        w.write_all(bytes)
            .map_err(|e| io_error(path, "cannot write", e))
    };
    let indices_descr = spec.indices_descr();
    let stored = {
        let [fdata, findices, findptr, fshape, fy] = &mut pending[..] else {
            unreachable!("five outputs were begun")
        };
        fn writer(p: &mut crate::output::PendingFile) -> BufWriter<&mut File> {
            BufWriter::with_capacity(1 << 20, p.file())
        }
        let (mut wdata, mut windices, mut windptr, mut wshape, mut wy) = (
            writer(fdata),
            writer(findices),
            writer(findptr),
            writer(fshape),
            writer(fy),
        );
        // The number of stored values is known at the end: its headers are written then,
        // over these of the same length (a 1-D header is 128 bytes for any length).
        write(&mut wdata, data_path, &npy_header("<f4", &[0]))?;
        write(
            &mut windices,
            indices_path,
            &npy_header(indices_descr, &[0]),
        )?;
        write(&mut windptr, indptr_path, &npy_header("<i8", &[m + 1]))?;
        write(&mut windptr, indptr_path, &0i64.to_le_bytes())?;
        let mut shape = npy_header("<i8", &[2]);
        shape.extend((m as i64).to_le_bytes());
        shape.extend((n as i64).to_le_bytes());
        write(&mut wshape, shape_path, &shape)?;
        write(&mut wy, y_path, &npy_header("<i4", &[m]))?;

        let mut rng = SplitMix64::new(spec.problem.seed);
        let teacher: Vec<f32> = (0..n * k).map(|_| rng.normal() as f32).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(8);
        let per = spec.block_rows();
        let blocks = m.div_ceil(per);
        let (mut next, mut nnz) = (0, 0u64);
        let mut stopped = false;
        while next < blocks {
            let group: Vec<usize> = (next..blocks.min(next + threads)).collect();
            let made: Vec<Option<SparseBlock>> = std::thread::scope(|scope| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|&b| {
                        let teacher = &teacher;
                        scope.spawn(move || sparse_block(spec, teacher, b))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().ok()).collect()
            });
            let Some(made) = made.into_iter().collect::<Option<Vec<_>>>() else {
                return Err(Error::Io {
                    path: data_path.display().to_string(),
                    message: "a generator thread failed".into(),
                });
            };
            for block in &made {
                write(&mut wdata, data_path, &block.values)?;
                write(&mut windices, indices_path, &block.indices)?;
                let mut offsets = Vec::with_capacity(block.lengths.len() * 8);
                for &len in &block.lengths {
                    nnz += len;
                    offsets.extend((nnz as i64).to_le_bytes());
                }
                write(&mut windptr, indptr_path, &offsets)?;
                write(&mut wy, y_path, &block.labels)?;
            }
            next += group.len();
            if progress((next * per).min(m)).is_break() {
                stopped = true;
                break;
            }
        }
        if stopped {
            return Ok(None);
        }
        {
            let nnz = usize::try_from(nnz).map_err(|_| Error::Io {
                path: data_path.display().to_string(),
                message: format!("{nnz} stored values do not fit in memory addresses"),
            })?;
            for (w, path, header) in [
                (wdata, data_path, npy_header("<f4", &[nnz])),
                (windices, indices_path, npy_header(indices_descr, &[nnz])),
            ] {
                let file = w
                    .into_inner()
                    .map_err(|e| io_error(path, "cannot write", e.into_error()))?;
                file.rewind()
                    .and_then(|()| file.write_all(&header))
                    .map_err(|e| io_error(path, "cannot write", e))?;
            }
            for (w, path) in [(windptr, indptr_path), (wshape, shape_path), (wy, y_path)] {
                w.into_inner()
                    .map_err(|e| io_error(path, "cannot write", e.into_error()))?;
            }
        }
        nnz
    };
    for p in pending {
        p.commit()?;
    }
    Ok(Some(stored))
}
