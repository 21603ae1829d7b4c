//! The validated training data: X (m, n) f32, labels (m) in 0..K, and K.
//! Validation happens once here, so nothing downstream re-checks values.

use ndarray::{Array2, ArrayView2, CowArray, Ix2};

use crate::error::{Error, Result};

/// A dense dataset checked once at the edge: every feature finite, every label in 0..K,
/// m ≥ 1, n ≥ 1, K ≥ 2.
#[derive(Debug, Clone)]
pub struct Dataset {
    x: Array2<f32>,
    labels: Vec<u32>,
    n_classes: usize,
}

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
            x: x.into_owned().as_standard_layout().into_owned(),
            labels: labels.to_vec(),
            n_classes,
        })
    }

    /// Checks X, labels and K without copying anything.
    pub fn validate(x: ArrayView2<'_, f32>, labels: &[u32], n_classes: usize) -> Result<()> {
        let (m, n) = x.dim();
        if m == 0 {
            return Err(Error::NoRows);
        }
        if n == 0 {
            return Err(Error::NoFeatures);
        }
        if n_classes < 2 {
            return Err(Error::TooFewClasses { n_classes });
        }
        if labels.len() != m {
            return Err(Error::LengthMismatch {
                rows: m,
                labels: labels.len(),
            });
        }
        for (row, values) in x.outer_iter().enumerate() {
            if let Some((column, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite())
            {
                return Err(Error::NonFinite { row, column, value });
            }
        }
        if let Some((row, &label)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= n_classes)
        {
            return Err(Error::LabelOutOfRange {
                row,
                label: label.into(),
                n_classes,
            });
        }
        Ok(())
    }

    /// m, the number of samples.
    pub fn n_rows(&self) -> usize {
        self.x.nrows()
    }

    /// n, the number of features.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }

    /// K, the number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// X (m, n), standard (row-major) layout.
    pub fn x(&self) -> ArrayView2<'_, f32> {
        self.x.view()
    }

    /// Labels (m), each in 0..K.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Rows `start..end` as a new dataset (same K). Used for hold-out splits and batches.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::NoRows);
        }
        let x = self.x.select(ndarray::Axis(0), rows);
        let labels: Vec<u32> = rows.iter().map(|&r| self.labels[r]).collect();
        Ok(Dataset {
            x,
            labels,
            n_classes: self.n_classes,
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
