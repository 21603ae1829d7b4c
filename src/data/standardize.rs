//! Per-feature standardization, `(x − μ) / σ`, and the evidence that features are badly
//! scaled.
//!
//! [`Standardizer::fit`] learns μ (the mean) and σ (the population standard deviation) of
//! every feature from the training rows, in f64, as scikit-learn's `StandardScaler` does:
//! a feature that is constant (its variance within rounding error of 0) gets σ = 1, so it
//! maps to 0 rather than to a division by zero. μ and σ are kept as f32, the precision
//! they have in a model file, and every transform — of the training rows, the held-out
//! rows and whatever is predicted later — computes `((x − μ) / σ)` in f64 from those f32
//! values and rounds once, so the same raw value always gives the same standardized bits.
//!
//! [`Scaling`] is what a run that did not converge reports when the features' scales
//! differ so widely that the optimizer's progress is the likely casualty.

use std::fmt;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::data::csr::Csr;
use crate::data::dataset::Dataset;
use crate::data::source::ChunkSource;
use crate::error::{Error, Result};

/// Values per block when X is read through for its statistics.
const BLOCK_VALUES: usize = 1 << 20;

/// Per-feature statistics of X, from two passes over its rows in order (so the same data
/// always gives the same bits).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    /// m.
    pub rows: usize,
    /// μ_j, the mean of feature j.
    pub mean: Vec<f64>,
    /// The population variance of feature j, `(1/m) Σ_i (x_ij − μ_j)²`.
    pub variance: Vec<f64>,
    /// The smallest value of feature j.
    pub min: Vec<f32>,
    /// The largest value of feature j.
    pub max: Vec<f32>,
}

impl FeatureStats {
    /// Reads X once for the sums, minima and maxima and once more for the squared
    /// deviations from the mean (exact where a one-pass formula would cancel).
    pub fn of(data: &Dataset) -> Result<Self> {
        if let Some(csr) = data.csr() {
            return Ok(Self::of_sparse(csr));
        }
        let (m, n) = (data.n_rows(), data.n_features());
        let block = (BLOCK_VALUES / n.max(1)).max(1);
        let mut sum = vec![0f64; n];
        let mut min = vec![f32::INFINITY; n];
        let mut max = vec![f32::NEG_INFINITY; n];
        data.for_each_block(block, |_, rows| {
            for row in rows.chunks_exact(n) {
                for (j, &v) in row.iter().enumerate() {
                    sum[j] += f64::from(v);
                    min[j] = min[j].min(v);
                    max[j] = max[j].max(v);
                }
            }
            Ok(())
        })?;
        let mean: Vec<f64> = sum.iter().map(|s| s / m as f64).collect();
        let mut squares = vec![0f64; n];
        data.for_each_block(block, |_, rows| {
            for row in rows.chunks_exact(n) {
                for (j, &v) in row.iter().enumerate() {
                    let d = f64::from(v) - mean[j];
                    squares[j] += d * d;
                }
            }
            Ok(())
        })?;
        Ok(FeatureStats {
            rows: m,
            variance: squares.iter().map(|s| s / m as f64).collect(),
            mean,
            min,
            max,
        })
    }

    /// The same statistics from a sparse X's stored values, the zeros counted without
    /// being read: feature j's m − c_j unstored zeros add (m − c_j)·μ_j² to its squared
    /// deviations and 0 to its range.
    fn of_sparse(csr: &Csr) -> Self {
        let (m, n) = (csr.n_rows(), csr.n_cols());
        let mut sum = vec![0f64; n];
        let mut stored = vec![0usize; n];
        let mut min = vec![f32::INFINITY; n];
        let mut max = vec![f32::NEG_INFINITY; n];
        for (&j, &v) in csr.indices().iter().zip(csr.values().iter()) {
            let j = j as usize;
            sum[j] += f64::from(v);
            stored[j] += 1;
            min[j] = min[j].min(v);
            max[j] = max[j].max(v);
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / m as f64).collect();
        let mut squares: Vec<f64> = (0..n)
            .map(|j| (m - stored[j]) as f64 * mean[j] * mean[j])
            .collect();
        for (&j, &v) in csr.indices().iter().zip(csr.values().iter()) {
            let d = f64::from(v) - mean[j as usize];
            squares[j as usize] += d * d;
        }
        for j in 0..n {
            if stored[j] < m {
                min[j] = min[j].min(0.0);
                max[j] = max[j].max(0.0);
            }
        }
        FeatureStats {
            rows: m,
            variance: squares.iter().map(|s| s / m as f64).collect(),
            mean,
            min,
            max,
        }
    }

    /// Whether feature j is constant: its variance is within the rounding error of its
    /// computation (scikit-learn's `_is_constant_feature` bound).
    pub fn is_constant(&self, j: usize) -> bool {
        let (m, eps) = (self.rows as f64, f64::EPSILON);
        let (var, mean) = (self.variance[j], self.mean[j]);
        var <= m * eps * var + (m * mean * eps).powi(2)
    }
}

/// μ and σ of every feature, applied as `(x − μ) / σ`.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    mean: Vec<f32>,
    scale: Vec<f32>,
}

impl Standardizer {
    /// Learns μ and σ from every row of `data` (pass the training rows only, so nothing
    /// held out leaks into them).
    pub fn fit(data: &Dataset) -> Result<Self> {
        Ok(Self::from_stats(&FeatureStats::of(data)?))
    }

    /// μ and σ (the population standard deviation; 1 for a constant feature) from
    /// statistics already computed.
    pub fn from_stats(stats: &FeatureStats) -> Self {
        let scale = (0..stats.mean.len())
            .map(|j| {
                let sigma = stats.variance[j].sqrt() as f32;
                // A σ that is 0 or below f32's normal range as stored would make the
                // transform blow up: such a feature is constant for every practical purpose.
                if stats.is_constant(j) || sigma < f32::MIN_POSITIVE {
                    1.0
                } else {
                    sigma
                }
            })
            .collect();
        Standardizer {
            mean: stats.mean.iter().map(|&v| v as f32).collect(),
            scale,
        }
    }

    /// A standardizer from μ and σ given directly (one each per feature): every μ finite,
    /// every σ finite and > 0.
    pub fn new(mean: Vec<f32>, scale: Vec<f32>) -> Result<Self> {
        if mean.len() != scale.len() {
            return Err(Error::shape("feature scale", &[mean.len()], &[scale.len()]));
        }
        if mean.is_empty() {
            return Err(Error::NoFeatures);
        }
        if let Some(&v) = mean.iter().find(|v| !v.is_finite()) {
            return Err(Error::setting(
                "feature_mean",
                v,
                "every mean must be finite",
            ));
        }
        if let Some(&v) = scale.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(Error::setting(
                "feature_scale",
                v,
                "every scale must be a finite number > 0",
            ));
        }
        Ok(Standardizer { mean, scale })
    }

    /// μ, one per feature.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// σ, one per feature.
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// n.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Standardizes whole rows in place (`values` is row-major, a multiple of n long).
    pub fn transform_rows(&self, values: &mut [f32]) {
        let n = self.n_features();
        for row in values.chunks_exact_mut(n) {
            for ((v, &mu), &sigma) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = ((f64::from(*v) - f64::from(mu)) / f64::from(sigma)) as f32;
            }
        }
    }

    /// `(x − μ) / σ` for the rows of X (m, n).
    pub fn transform(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if x.ncols() != self.n_features() {
            return Err(Error::shape(
                "x",
                &[x.nrows(), self.n_features()],
                x.shape(),
            ));
        }
        let mut out = x.as_standard_layout().into_owned();
        if let Some(values) = out.as_slice_mut() {
            self.transform_rows(values);
        }
        Ok(out)
    }

    /// The dataset with X standardized (labels, K and weights unchanged). X in memory is
    /// transformed into a copy; X read from a source (a memory-mapped file) stays there and
    /// is standardized block by block as it is read, so data larger than RAM still trains.
    pub fn apply(&self, data: &Dataset) -> Result<Dataset> {
        if data.n_features() != self.n_features() {
            return Err(Error::shape(
                "dataset features",
                &[self.n_features()],
                &[data.n_features()],
            ));
        }
        if data.csr().is_some() {
            return Err(Error::setting(
                "standardize",
                true,
                "sparse X is not standardized: subtracting each feature's mean would make every value stored; scale the features when the file is made",
            ));
        }
        if data.is_streamed() {
            return Ok(data.with_source(Arc::new(StandardizedSource {
                inner: data.source(),
                standardizer: self.clone(),
            })));
        }
        Ok(data.with_x(self.transform(data.x()?)?))
    }
}

/// A source whose rows are another source's, standardized as they are read.
struct StandardizedSource {
    inner: Arc<dyn ChunkSource>,
    standardizer: Standardizer,
}

impl ChunkSource for StandardizedSource {
    fn n_rows(&self) -> usize {
        self.inner.n_rows()
    }

    fn n_features(&self) -> usize {
        self.inner.n_features()
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        self.inner.read_rows(start, out)?;
        self.standardizer.transform_rows(out);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("{}, standardized", self.inner.describe())
    }
}

/// Features whose scales differ so widely that gradient methods crawl: the largest
/// magnitude any value reaches against the narrowest span (max − min) of a non-constant
/// feature, where the intercept counts as a feature of scale 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    /// The feature (0-based) holding the value of largest magnitude, and that magnitude;
    /// `None` when every value is within ±1 (the intercept's scale is then the largest).
    pub largest: Option<(usize, f32)>,
    /// The non-constant feature (0-based) of narrowest span, and that span; `None` when
    /// every span is at least 1.
    pub narrowest: Option<(usize, f32)>,
    /// Largest magnitude over narrowest span (each at least bounded by 1).
    pub ratio: f64,
}

impl Scaling {
    /// Ratios above this are reported. Data on one scale stays far below it (pixels
    /// 0–255 or 0–1, including rarely lit ones: 255), wine and breast-cancer measurements
    /// in their raw units are far above it (about 3·10³ and 10⁵).
    pub const THRESHOLD: f64 = 1000.0;

    /// The ratio of `stats`, when it is above [`Scaling::THRESHOLD`].
    pub fn of(stats: &FeatureStats) -> Option<Self> {
        let n = stats.mean.len();
        let mut largest: Option<(usize, f32)> = None;
        let mut narrowest: Option<(usize, f32)> = None;
        for j in 0..n {
            let magnitude = stats.min[j].abs().max(stats.max[j].abs());
            if magnitude > largest.map_or(1.0, |l| l.1) {
                largest = Some((j, magnitude));
            }
            let span = f64::from(stats.max[j]) - f64::from(stats.min[j]);
            if span > 0.0
                && !stats.is_constant(j)
                && span < narrowest.map_or(1.0, |s| f64::from(s.1))
            {
                narrowest = Some((j, span as f32));
            }
        }
        let ratio =
            f64::from(largest.map_or(1.0, |l| l.1)) / f64::from(narrowest.map_or(1.0, |s| s.1));
        (ratio > Self::THRESHOLD).then_some(Scaling {
            largest,
            narrowest,
            ratio,
        })
    }
}

/// A number in a few significant digits.
fn short(v: f32) -> String {
    let a = v.abs();
    if (0.01..10_000.0).contains(&a) {
        format!("{}", (f64::from(v) * 1e3).round() / 1e3)
    } else {
        format!("{v:.2e}")
    }
}

impl fmt::Display for Scaling {
    /// E.g. `|x| reaches 1.68e3 in feature 13 while feature 8 spans only 0.53` (features
    /// numbered from 1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.largest, self.narrowest) {
            (Some((a, big)), Some((b, span))) => write!(
                f,
                "|x| reaches {} in feature {} while feature {} spans only {}",
                short(big),
                a + 1,
                b + 1,
                short(span)
            ),
            (Some((a, big)), None) => write!(
                f,
                "|x| reaches {} in feature {}, against the intercept's scale of 1",
                short(big),
                a + 1
            ),
            (None, Some((b, span))) => write!(
                f,
                "feature {} spans only {}, against the intercept's scale of 1",
                b + 1,
                short(span)
            ),
            (None, None) => write!(f, "their scales differ by a factor of {:.0}", self.ratio),
        }
    }
}
