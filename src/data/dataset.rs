//! The validated training data: X (m, n) f32, labels (m) in 0..K, and K.
//! Validation happens once here, so nothing downstream re-checks values.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2, CowArray, Ix2};

use crate::data::csr::Csr;
use crate::data::source::{ChunkSource, MemorySource, RowRange, SharedValues};
use crate::error::{Error, Result};

/// A dense dataset checked once at the edge: every feature finite, every label in 0..K,
/// m ≥ 1, n ≥ 1, K ≥ 2. X is either in memory ([`Dataset::new`]) or read on demand from a
/// [`ChunkSource`] ([`Dataset::from_source`]), such as a memory-mapped `.npy` file; the
/// labels and weights are always in memory. Cloning is cheap: X is shared.
#[derive(Clone)]
pub struct Dataset {
    x: Features,
    labels: Vec<u32>,
    n_classes: usize,
    weights: Option<Vec<f32>>,
}

#[derive(Clone)]
enum Features {
    Memory(MemorySource),
    Source(Arc<dyn ChunkSource>),
    Sparse(Arc<Csr>),
}

impl Features {
    fn source(&self) -> &dyn ChunkSource {
        match self {
            Features::Memory(m) => m,
            Features::Source(s) => s.as_ref(),
            Features::Sparse(c) => c.as_ref(),
        }
    }
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("x", &self.x.source().describe())
            .field("n_classes", &self.n_classes)
            .field("weighted", &self.weights.is_some())
            .finish()
    }
}

/// Every label in 0..K.
fn check_labels(labels: &[u32], n_classes: usize) -> Result<()> {
    match labels
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= n_classes)
    {
        Some((row, &label)) => Err(Error::LabelOutOfRange {
            row,
            label: label.into(),
            n_classes,
        }),
        None => Ok(()),
    }
}

/// m ≥ 1, n ≥ 1, K ≥ 2 and one label per row.
fn check_shape(m: usize, n: usize, labels: usize, n_classes: usize) -> Result<()> {
    if m == 0 {
        return Err(Error::NoRows);
    }
    if n == 0 {
        return Err(Error::NoFeatures);
    }
    if n_classes < 2 {
        return Err(Error::TooFewClasses { n_classes });
    }
    if labels != m {
        return Err(Error::LengthMismatch { rows: m, labels });
    }
    Ok(())
}

/// Rows per block when a source is read through for validation.
const VALIDATION_BLOCK_VALUES: usize = 1 << 22;

impl Dataset {
    /// Builds a dataset from an owned X (m, n) or a view of one (copied), labels and K.
    ///
    /// Errors name the first offending row and column: [`Error::NonFinite`],
    /// [`Error::LabelOutOfRange`], [`Error::LengthMismatch`], [`Error::NoRows`],
    /// [`Error::NoFeatures`], [`Error::TooFewClasses`].
    pub fn new<'a>(
        x: impl Into<CowArray<'a, f32, Ix2>>,
        labels: &[u32],
        n_classes: usize,
    ) -> Result<Self> {
        let x: CowArray<'a, f32, Ix2> = x.into();
        Self::validate(x.view(), labels, n_classes)?;
        Ok(Dataset {
            x: Features::Memory(MemorySource::new(x.into_owned())),
            labels: labels.to_vec(),
            n_classes,
            weights: None,
        })
    }

    /// A dataset over `rows` × X's row-major values held by the caller ([`SharedValues`]),
    /// checked here and then used in place, without a copy: the Python package's way to
    /// train on a NumPy array. Errors as [`Dataset::new`].
    pub fn from_shared(
        values: SharedValues,
        rows: usize,
        cols: usize,
        labels: &[u32],
        n_classes: usize,
    ) -> Result<Self> {
        let source = MemorySource::shared(values, rows, cols)?;
        Self::validate(source.array(), labels, n_classes)?;
        Ok(Dataset {
            x: Features::Memory(source),
            labels: labels.to_vec(),
            n_classes,
            weights: None,
        })
    }

    /// A dataset whose X stays in `source` (a memory-mapped file, your own storage): it is
    /// read through once here to check every value, then read again block by block
    /// whenever training needs it. The GPU trainer streams it to the device when it does
    /// not fit there (see [`crate::Settings`]); operations that need X in memory (a
    /// hold-out split, the CPU backend) say so with [`Error::NotInMemory`].
    pub fn from_source(
        source: Arc<dyn ChunkSource>,
        labels: &[u32],
        n_classes: usize,
    ) -> Result<Self> {
        let (m, n) = (source.n_rows(), source.n_features());
        check_shape(m, n, labels.len(), n_classes)?;
        let block = (VALIDATION_BLOCK_VALUES / n).max(1);
        let mut buf = vec![0f32; block.min(m) * n];
        let mut start = 0;
        while start < m {
            let rows = block.min(m - start);
            let values = &mut buf[..rows * n];
            source.read_rows(start, values)?;
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    row: start + i / n,
                    column: i % n,
                    value: values[i],
                });
            }
            start += rows;
        }
        check_labels(labels, n_classes)?;
        Ok(Dataset {
            x: Features::Source(source),
            labels: labels.to_vec(),
            n_classes,
            weights: None,
        })
    }

    /// A dataset whose X is sparse (CSR, validated when it was made). The CPU reference
    /// computes with its stored values only; the GPU trainer reads its rows as dense row
    /// chunks, streamed under the memory budget when the dense matrix does not fit.
    pub fn from_csr(x: Csr, labels: &[u32], n_classes: usize) -> Result<Self> {
        check_shape(x.n_rows(), x.n_cols(), labels.len(), n_classes)?;
        check_labels(labels, n_classes)?;
        Ok(Dataset {
            x: Features::Sparse(Arc::new(x)),
            labels: labels.to_vec(),
            n_classes,
            weights: None,
        })
    }

    /// X in CSR form, when the dataset was made from one.
    pub fn csr(&self) -> Option<&Csr> {
        match &self.x {
            Features::Sparse(c) => Some(c),
            _ => None,
        }
    }

    /// [`Dataset::csr`], shared.
    pub(crate) fn shared_csr(&self) -> Option<Arc<Csr>> {
        match &self.x {
            Features::Sparse(c) => Some(Arc::clone(c)),
            _ => None,
        }
    }

    /// Checks X, labels and K without copying anything.
    pub fn validate(x: ArrayView2<'_, f32>, labels: &[u32], n_classes: usize) -> Result<()> {
        let (m, n) = x.dim();
        check_shape(m, n, labels.len(), n_classes)?;
        for (row, values) in x.outer_iter().enumerate() {
            if let Some((column, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite())
            {
                return Err(Error::NonFinite { row, column, value });
            }
        }
        check_labels(labels, n_classes)?;
        Ok(())
    }

    /// m, the number of samples.
    pub fn n_rows(&self) -> usize {
        self.x.source().n_rows()
    }

    /// n, the number of features.
    pub fn n_features(&self) -> usize {
        self.x.source().n_features()
    }

    /// K, the number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// X (m, n), standard (row-major) layout, when it is in memory; a dataset made with
    /// [`Dataset::from_source`] gives [`Error::NotInMemory`] (use [`Dataset::source`]).
    pub fn x(&self) -> Result<ArrayView2<'_, f32>> {
        match &self.x {
            Features::Memory(m) => Ok(m.array()),
            Features::Source(s) => Err(Error::NotInMemory { from: s.describe() }),
            Features::Sparse(c) => Err(Error::NotInMemory { from: c.describe() }),
        }
    }

    /// X as a [`ChunkSource`], wherever it is.
    pub fn source(&self) -> Arc<dyn ChunkSource> {
        match &self.x {
            Features::Memory(m) => Arc::new(m.clone()),
            Features::Source(s) => Arc::clone(s),
            Features::Sparse(c) => Arc::clone(c) as Arc<dyn ChunkSource>,
        }
    }

    /// Calls `f(first row, rows)` on consecutive blocks of at most `max_rows` rows of X
    /// (row-major), reading them from the source when X is not in memory.
    pub fn for_each_block(
        &self,
        max_rows: usize,
        mut f: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let (m, n) = (self.n_rows(), self.n_features());
        let block = max_rows.clamp(1, m.max(1));
        if let Features::Memory(mem) = &self.x {
            let flat = mem.values();
            return flat
                .chunks(block * n)
                .enumerate()
                .try_for_each(|(i, rows)| f(i * block, rows));
        }
        let source = self.x.source();
        let mut buf = vec![0f32; block.min(m) * n];
        let mut start = 0;
        while start < m {
            let rows = block.min(m - start);
            source.read_rows(start, &mut buf[..rows * n])?;
            f(start, &buf[..rows * n])?;
            start += rows;
        }
        Ok(())
    }

    /// X in f64, in memory (for the CPU reference), read from the source when needed.
    pub(crate) fn x_f64(&self) -> Result<Array2<f64>> {
        if let Features::Memory(mem) = &self.x {
            return Ok(mem.array().mapv(f64::from));
        }
        let n = self.n_features();
        let mut values = Vec::with_capacity(self.n_rows() * n);
        self.for_each_block(VALIDATION_BLOCK_VALUES / n.max(1), |_, rows| {
            values.extend(rows.iter().map(|&v| f64::from(v)));
            Ok(())
        })?;
        Array2::from_shape_vec((self.n_rows(), n), values)
            .map_err(|e| Error::setting("x", "shape", e.to_string()))
    }

    /// The same labels, K and weights with X replaced by `x` of the same shape, whose
    /// values the caller keeps finite (a transform of this dataset's X).
    pub(crate) fn with_x(&self, x: Array2<f32>) -> Self {
        Dataset {
            x: Features::Memory(MemorySource::new(x)),
            ..self.clone()
        }
    }

    /// [`Dataset::with_x`] with X read from `source`.
    pub(crate) fn with_source(&self, source: Arc<dyn ChunkSource>) -> Self {
        Dataset {
            x: Features::Source(source),
            ..self.clone()
        }
    }

    /// Whether X is read from a source rather than held in memory.
    pub fn is_streamed(&self) -> bool {
        matches!(self.x, Features::Source(_))
    }

    /// Labels (m), each in 0..K.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Per-sample weights w, when set. The objective is then
    /// `J = (1/m) Σ_i w_i·(−log P[i, y⁽ⁱ⁾]) + (λ/2)‖Θ‖²`.
    pub fn weights(&self) -> Option<&[f32]> {
        self.weights.as_deref()
    }

    /// Sets per-sample weights (one per row, each finite and ≥ 0), replacing any set
    /// before. With λ = 1/(C·m) the minimiser is scikit-learn's
    /// `LogisticRegression(C=C).fit(X, y, sample_weight=w)`.
    pub fn with_sample_weights(mut self, weights: &[f32]) -> Result<Self> {
        if weights.len() != self.n_rows() {
            return Err(Error::shape(
                "sample weights",
                &[self.n_rows()],
                &[weights.len()],
            ));
        }
        if let Some((row, &value)) = weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(Error::InvalidWeight { row, value });
        }
        self.weights = Some(weights.to_vec());
        Ok(self)
    }

    /// Multiplies every row's weight (1 when none was set) by the weight of its class.
    /// `class_weights` has K entries, each finite and ≥ 0.
    pub fn with_class_weights(self, class_weights: &[f32]) -> Result<Self> {
        if class_weights.len() != self.n_classes {
            return Err(Error::shape(
                "class weights",
                &[self.n_classes],
                &[class_weights.len()],
            ));
        }
        if let Some((class, &value)) = class_weights
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(Error::setting(
                "class_weight",
                value,
                format!("the weight of class {class} must be a finite number ≥ 0"),
            ));
        }
        let weights: Vec<f32> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, &y)| self.weights.as_ref().map_or(1.0, |w| w[i]) * class_weights[y as usize])
            .collect();
        self.with_sample_weights(&weights)
    }

    /// scikit-learn's `class_weight="balanced"`: `m / (K · count(k))` for each class k
    /// (1 for a class with no rows, which then never enters the objective).
    pub fn balanced_class_weights(&self) -> Vec<f32> {
        let mut counts = vec![0usize; self.n_classes];
        for &y in &self.labels {
            counts[y as usize] += 1;
        }
        let m = self.n_rows() as f64;
        counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    1.0
                } else {
                    (m / (self.n_classes as f64 * c as f64)) as f32
                }
            })
            .collect()
    }

    /// The given rows as a new dataset (same K, weights carried along). Used for hold-out
    /// splits.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::NoRows);
        }
        let x = match &self.x {
            Features::Sparse(c) => Features::Sparse(Arc::new(c.select_rows(rows))),
            _ => Features::Memory(MemorySource::new(self.x()?.select(ndarray::Axis(0), rows))),
        };
        let labels: Vec<u32> = rows.iter().map(|&r| self.labels[r]).collect();
        let weights = self
            .weights
            .as_ref()
            .map(|w| rows.iter().map(|&r| w[r]).collect());
        Ok(Dataset {
            x,
            labels,
            n_classes: self.n_classes,
            weights,
        })
    }

    /// The same rows with K = `n_classes` (at least the current K): for a share of rows
    /// that lacks the last classes, when the whole data has them (one rank's shard file).
    pub fn with_classes(mut self, n_classes: usize) -> Result<Self> {
        if n_classes < self.n_classes {
            return Err(Error::setting(
                "classes",
                n_classes,
                format!("the labels need at least {}", self.n_classes),
            ));
        }
        self.n_classes = n_classes;
        Ok(self)
    }

    /// Rows `rows` (a range of row numbers) as a dataset of their own, for one device's or
    /// one rank's share: dense X is not copied (the part reads the rows from this
    /// dataset's storage when a device needs them), sparse X is.
    pub fn row_range(&self, rows: std::ops::Range<usize>) -> Result<Self> {
        if rows.is_empty() || rows.end > self.n_rows() {
            return Err(Error::setting(
                "rows",
                format!("{}..{}", rows.start, rows.end),
                format!(
                    "must be a non-empty range within the {} rows",
                    self.n_rows()
                ),
            ));
        }
        let x = match &self.x {
            Features::Sparse(c) => {
                Features::Sparse(Arc::new(c.select_rows(&rows.clone().collect::<Vec<_>>())))
            }
            Features::Memory(m) => Features::Source(Arc::new(RowRange {
                inner: Arc::new(m.clone()),
                start: rows.start,
                rows: rows.len(),
            })),
            Features::Source(s) => Features::Source(Arc::new(RowRange {
                inner: Arc::clone(s),
                start: rows.start,
                rows: rows.len(),
            })),
        };
        Ok(Dataset {
            x,
            labels: self.labels[rows.clone()].to_vec(),
            n_classes: self.n_classes,
            weights: self.weights.as_ref().map(|w| w[rows].to_vec()),
        })
    }

    /// Splits off a seeded random fraction `holdout` of the rows: returns (rest, held out).
    /// Both parts keep at least one row.
    pub fn split(&self, holdout: f64, seed: u64) -> Result<(Self, Self)> {
        if !(holdout > 0.0 && holdout < 1.0) {
            return Err(Error::setting(
                "validation",
                holdout,
                "must be a fraction strictly between 0 and 1",
            ));
        }
        let m = self.n_rows();
        if m < 2 {
            return Err(Error::setting(
                "validation",
                holdout,
                "a split needs at least 2 rows",
            ));
        }
        let mut order: Vec<usize> = (0..m).collect();
        crate::rng::SplitMix64::new(seed).shuffle(&mut order);
        let held = ((m as f64 * holdout).round() as usize).clamp(1, m - 1);
        let (held_rows, rest_rows) = order.split_at(held);
        let mut held_rows = held_rows.to_vec();
        let mut rest_rows = rest_rows.to_vec();
        held_rows.sort_unstable();
        rest_rows.sort_unstable();
        Ok((self.select_rows(&rest_rows)?, self.select_rows(&held_rows)?))
    }
}
