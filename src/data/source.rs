//! Where the rows of X come from. The trainer reads X through [`ChunkSource`], one block of
//! rows at a time, so data that does not fit in device memory (or in RAM) can be streamed:
//! [`MemorySource`] serves an array in memory, [`NpySource`] a memory-mapped `.npy` file,
//! and any storage of yours can implement the trait.
//!
//! ```
//! use std::sync::Arc;
//! use softmax_regression::source::ChunkSource;
//! use softmax_regression::{Dataset, Result};
//!
//! /// Rows computed on demand: row i is (i mod 7, 1).
//! struct Generated { rows: usize }
//!
//! impl ChunkSource for Generated {
//!     fn n_rows(&self) -> usize { self.rows }
//!     fn n_features(&self) -> usize { 2 }
//!     fn read_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
//!         for (i, row) in out.chunks_mut(2).enumerate() {
//!             row[0] = ((start + i) % 7) as f32;
//!             row[1] = 1.0;
//!         }
//!         Ok(())
//!     }
//!     fn describe(&self) -> String { format!("{} generated rows", self.rows) }
//! }
//!
//! # fn main() -> Result<()> {
//! let labels: Vec<u32> = (0..1000).map(|i| u32::from(i % 7 > 3)).collect();
//! let data = Dataset::from_source(Arc::new(Generated { rows: 1000 }), &labels, 2)?;
//! assert_eq!((data.n_rows(), data.n_features()), (1000, 2));
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::formats::{FormatError, NpyElement, NpyLayout, npy_layout};

/// A matrix X (m, n) of f32 read in blocks of whole rows.
pub trait ChunkSource: Send + Sync {
    /// m.
    fn n_rows(&self) -> usize;
    /// n.
    fn n_features(&self) -> usize;
    /// Writes rows `start..start + out.len() / n` into `out`, row-major. The caller keeps
    /// `out.len()` a multiple of n and the rows within 0..m.
    fn read_rows(&self, start: usize, out: &mut [f32]) -> Result<()>;
    /// A few words naming the source, for messages.
    fn describe(&self) -> String;
}

/// Row-major f32 values held by someone else for as long as this handle lives: a
/// caller's buffer (a NumPy array the Python package keeps referenced) served without a
/// copy. The values must not change while a dataset over them is in use.
pub type SharedValues = Arc<dyn AsRef<[f32]> + Send + Sync>;

/// An array in memory, shared: an owned array, or a caller's [`SharedValues`].
#[derive(Clone)]
pub struct MemorySource {
    values: SharedValues,
    rows: usize,
    cols: usize,
}

impl std::fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl MemorySource {
    /// Serves `x` (made row-major if it is not).
    pub fn new(x: Array2<f32>) -> Self {
        let (rows, cols) = x.dim();
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned()
        };
        let (values, offset) = x.into_raw_vec_and_offset();
        debug_assert!(offset.unwrap_or(0) == 0);
        MemorySource {
            values: Arc::new(values),
            rows,
            cols,
        }
    }

    /// Serves `rows` × `cols` row-major values held by the caller, without a copy.
    pub fn shared(values: SharedValues, rows: usize, cols: usize) -> Result<Self> {
        let len = (*values).as_ref().len();
        if rows.checked_mul(cols) != Some(len) {
            return Err(Error::shape("X", &[rows, cols], &[len]));
        }
        Ok(MemorySource { values, rows, cols })
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f32] {
        (*self.values).as_ref()
    }

    /// The array (m, n).
    pub fn array(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.rows, self.cols), self.values())
            .expect("MemorySource holds rows × cols values")
    }
}

impl ChunkSource for MemorySource {
    fn n_rows(&self) -> usize {
        self.rows
    }

    fn n_features(&self) -> usize {
        self.cols
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        let n = self.cols;
        let from = start * n;
        match self.values().get(from..from + out.len()) {
            Some(rows) => {
                out.copy_from_slice(rows);
                Ok(())
            }
            None => Err(rows_out_of_range(start, out.len(), n, self.rows)),
        }
    }

    fn describe(&self) -> String {
        format!("{} × {} array in memory", self.rows, self.cols)
    }
}

/// Rows `start..start + rows` of another source, read from it on demand: one device's or
/// one rank's share of X, without a copy (of a memory-mapped file, only those rows are
/// ever read).
pub struct RowRange {
    pub(crate) inner: Arc<dyn ChunkSource>,
    pub(crate) start: usize,
    pub(crate) rows: usize,
}

impl RowRange {
    /// Rows `rows` of `inner`; the range must be non-empty and within its rows.
    pub fn new(inner: Arc<dyn ChunkSource>, rows: std::ops::Range<usize>) -> Result<Self> {
        if rows.is_empty() || rows.end > inner.n_rows() {
            return Err(Error::setting(
                "rows",
                format!("{}..{}", rows.start, rows.end),
                format!(
                    "must be a non-empty range within the {} rows",
                    inner.n_rows()
                ),
            ));
        }
        Ok(RowRange {
            inner,
            start: rows.start,
            rows: rows.len(),
        })
    }
}

impl ChunkSource for RowRange {
    fn n_rows(&self) -> usize {
        self.rows
    }

    fn n_features(&self) -> usize {
        self.inner.n_features()
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        let n = self.n_features().max(1);
        if start + out.len() / n > self.rows {
            return Err(rows_out_of_range(start, out.len(), n, self.rows));
        }
        self.inner.read_rows(self.start + start, out)
    }

    fn describe(&self) -> String {
        format!(
            "rows {} to {} of {}",
            self.start + 1,
            self.start + self.rows,
            self.inner.describe()
        )
    }
}

fn rows_out_of_range(start: usize, len: usize, n: usize, m: usize) -> Error {
    Error::setting(
        "rows",
        format!("{} to {}", start + 1, start + len / n.max(1)),
        format!("the source has {m} rows"),
    )
}

/// A float32, float64 or uint8 `.npy` file, memory-mapped: nothing is read until rows are
/// asked for, float64 and uint8 are converted block by block, and the pages of each block
/// read are handed back to the kernel afterwards, so resident memory stays near one
/// block, not the file.
///
/// The file must not change while it is mapped.
#[derive(Debug)]
pub struct NpySource {
    path: PathBuf,
    map: memmap2::Mmap,
    layout: NpyLayout,
}

impl NpySource {
    /// Maps `path` and checks its header (dtype, shape, length); the values are checked
    /// when a [`crate::Dataset`] is made from it.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let fail = |detail: String| FormatError {
            path: path.to_path_buf(),
            message: format!("{}: {detail}", path.display()),
        };
        let file = File::open(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
        // SAFETY: the map is read-only; the documented contract is that the file does not
        // change while it is mapped (as with any reader of a file being written).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| fail(format!("cannot map the file: {e}")))?;
        let layout = npy_layout(path, &map)?;
        Ok(NpySource {
            path: path.to_path_buf(),
            map,
            layout,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of values in the file.
    pub fn data_bytes(&self) -> usize {
        self.layout.m * self.layout.n * self.layout.element.size()
    }
}

impl ChunkSource for NpySource {
    fn n_rows(&self) -> usize {
        self.layout.m
    }

    fn n_features(&self) -> usize {
        self.layout.n
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        let NpyLayout {
            m,
            n,
            offset,
            element,
            big_endian,
        } = self.layout;
        let size = element.size();
        let range = start
            .checked_mul(n * size)
            .and_then(|skip| skip.checked_add(offset))
            .and_then(|from| Some((from, from.checked_add(out.len().checked_mul(size)?)?)));
        let Some((from, bytes)) =
            range.and_then(|(from, to)| Some((from, self.map.get(from..to)?)))
        else {
            return Err(rows_out_of_range(start, out.len(), n, m));
        };
        let len = bytes.len();
        match (element, big_endian) {
            (NpyElement::F32, false) => out
                .iter_mut()
                .zip(bytes.chunks_exact(4))
                .for_each(|(o, b)| *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            (NpyElement::F32, true) => out
                .iter_mut()
                .zip(bytes.chunks_exact(4))
                .for_each(|(o, b)| *o = f32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            (NpyElement::U8, _) => out
                .iter_mut()
                .zip(bytes)
                .for_each(|(o, &b)| *o = f32::from(b)),
            (NpyElement::F64, big) => {
                for (i, (o, b)) in out.iter_mut().zip(bytes.chunks_exact(8)).enumerate() {
                    let b = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                    let v = if big {
                        f64::from_be_bytes(b)
                    } else {
                        f64::from_le_bytes(b)
                    };
                    *o = v as f32;
                    // A finite value that float32 cannot hold would otherwise read as ±inf.
                    if o.is_infinite() && v.is_finite() {
                        return Err(Error::BeyondFloat32 {
                            row: start + i / n.max(1),
                            column: i % n.max(1),
                            value: v,
                        });
                    }
                }
            }
        }
        // Hand the pages just read back to the kernel: they stay in the page cache but no
        // longer count against this process, so a pass over a file larger than RAM keeps
        // resident memory near one block. Only whole pages inside the range are dropped.
        #[cfg(unix)]
        {
            let page = 4096;
            let first = from.next_multiple_of(page);
            let last = (from + len) / page * page;
            if last > first {
                // SAFETY: the mapping is a read-only view of a file: dropped pages are read
                // again from the file when next touched, so no data is lost.
                let _ = unsafe {
                    self.map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        first,
                        last - first,
                    )
                };
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "{} ({} × {} {}, memory-mapped)",
            self.path.display(),
            self.layout.m,
            self.layout.n,
            self.layout.element.name()
        )
    }
}

/// Bytes of X below which one thread reads a chunk alone.
const READ_BYTES_PER_THREAD: usize = 4 << 20;

/// `source.read_rows(start, out)` split into runs of whole rows read by up to
/// `available_parallelism` threads, at least [`READ_BYTES_PER_THREAD`] each. The first error
/// in row order is returned.
pub(crate) fn read_rows_parallel(
    source: &dyn ChunkSource,
    start: usize,
    n: usize,
    out: &mut [f32],
) -> Result<()> {
    let rows = out.len() / n.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(4 * out.len() / READ_BYTES_PER_THREAD)
        .min(rows);
    if threads <= 1 {
        return source.read_rows(start, out);
    }
    let per = rows.div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = out
            .chunks_mut(per * n)
            .enumerate()
            .map(|(i, part)| scope.spawn(move || source.read_rows(start + i * per, part)))
            .collect();
        parts.into_iter().try_for_each(|part| {
            part.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows read in parallel runs are the rows read in one call.
    #[test]
    fn parallel_reads_match_one_read() {
        let (m, n) = (3001, 1000);
        let x = ndarray::Array2::from_shape_fn((m, n), |(i, j)| (i * n + j) as f32 * 0.5);
        let source = MemorySource::new(x);
        let (start, rows) = (7, 2990);
        let mut one = vec![0.0f32; rows * n];
        source.read_rows(start, &mut one).unwrap();
        let mut parallel = vec![f32::NAN; rows * n];
        read_rows_parallel(&source, start, n, &mut parallel).unwrap();
        assert!(
            4 * parallel.len() >= 2 * READ_BYTES_PER_THREAD,
            "too small to split"
        );
        assert_eq!(one, parallel);
    }

    /// A source failing from some row on: the error comes back, not a panic.
    #[test]
    fn a_failing_run_is_reported() {
        struct FailsFrom(usize);
        impl ChunkSource for FailsFrom {
            fn n_rows(&self) -> usize {
                4000
            }
            fn n_features(&self) -> usize {
                1000
            }
            fn read_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
                if start + out.len() / 1000 > self.0 {
                    return Err(Error::setting("rows", start, "unreadable"));
                }
                out.fill(1.0);
                Ok(())
            }
            fn describe(&self) -> String {
                "failing".into()
            }
        }
        let mut out = vec![0.0f32; 4000 * 1000];
        assert!(read_rows_parallel(&FailsFrom(4000), 0, 1000, &mut out).is_ok());
        let err = read_rows_parallel(&FailsFrom(3000), 0, 1000, &mut out).unwrap_err();
        assert!(err.to_string().contains("unreadable"), "{err}");
    }
}
