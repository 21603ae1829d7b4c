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
    weights: Option<Vec<f32>>,
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
            weights: None,
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
        let x = self.x.select(ndarray::Axis(0), rows);
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
