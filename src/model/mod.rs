//! A trained model: Θ (n, K), b (K) and, optionally, the original class labels and the
//! per-feature standardization it was trained with; with prediction and evaluation on the
//! CPU reference or on a GPU.

pub mod file;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::data::csr::Csr;
use crate::data::dataset::Dataset;
use crate::data::standardize::Standardizer;
use crate::error::{Error, Result};
use crate::objective::metrics::{Backend, Evaluator, Metrics, RowsIn, argmax, probabilities};
use crate::params::{check_params, flatten};

/// Softmax regression parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    theta: Array2<f32>,
    bias: Array1<f32>,
    labels: Option<Vec<String>>,
    standardizer: Option<Standardizer>,
}

impl Model {
    /// Θ = 0, b = 0: every class equally likely. The default starting point.
    pub fn zeros(n_features: usize, n_classes: usize) -> Self {
        Model {
            theta: Array2::zeros((n_features, n_classes)),
            bias: Array1::zeros(n_classes),
            labels: None,
            standardizer: None,
        }
    }

    /// A model from Θ (n, K) and b (K); every value must be finite.
    pub fn new(theta: Array2<f32>, bias: Array1<f32>) -> Result<Self> {
        let (n, k) = theta.dim();
        check_params(theta.view(), bias.view(), n, k)?;
        if k < 2 {
            return Err(Error::TooFewClasses { n_classes: k });
        }
        if let Some(((row, column), &value)) = theta.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite { row, column, value });
        }
        if let Some((column, &value)) = bias.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                row: n,
                column,
                value,
            });
        }
        Ok(Model {
            theta,
            bias,
            labels: None,
            standardizer: None,
        })
    }

    /// Makes the model standardize every input first: Θ and b then apply to
    /// `(x − μ) / σ` ([`Standardizer`]), and [`Model::predict`], [`Model::predict_proba`]
    /// and [`Model::evaluate`] take raw features. `None` removes it.
    pub fn with_standardizer(mut self, standardizer: Option<Standardizer>) -> Result<Self> {
        if let Some(s) = &standardizer
            && s.n_features() != self.n_features()
        {
            return Err(Error::shape(
                "standardizer features",
                &[self.n_features()],
                &[s.n_features()],
            ));
        }
        self.standardizer = standardizer;
        Ok(self)
    }

    /// The standardization applied to inputs before Θ and b, if any.
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// The same function of the raw features, re-expressed for inputs standardized by
    /// `target` (or raw, for `None`): with this model's own μ′, σ′ (0 and 1 when it has
    /// none) and the target's μ, σ, a raw x is `σu + μ` for the target's input u, so
    /// `Θ_j ← (σ_j / σ′_j) Θ′_j` and `b ← b′ + Σ_j ((μ_j − μ′_j) / σ′_j) Θ′_j`, computed in
    /// f64. Θ and b are unchanged, bit for bit, when the two standardizations are equal.
    /// Labels are kept.
    pub fn restandardized(&self, target: Option<&Standardizer>) -> Result<Self> {
        if self.standardizer.as_ref() == target {
            return Ok(self.clone());
        }
        let n = self.n_features();
        let own = |j: usize| {
            self.standardizer.as_ref().map_or((0.0, 1.0), |s| {
                (f64::from(s.mean()[j]), f64::from(s.scale()[j]))
            })
        };
        let new = |j: usize| {
            target.map_or((0.0, 1.0), |s| {
                (f64::from(s.mean()[j]), f64::from(s.scale()[j]))
            })
        };
        if let Some(s) = target
            && s.n_features() != n
        {
            return Err(Error::shape(
                "standardizer features",
                &[n],
                &[s.n_features()],
            ));
        }
        let mut theta = self.theta.clone();
        let mut bias = self.bias.mapv(f64::from);
        for j in 0..n {
            let ((mu_old, sigma_old), (mu_new, sigma_new)) = (own(j), new(j));
            let (ratio, shift) = (sigma_new / sigma_old, (mu_new - mu_old) / sigma_old);
            for (t, b) in theta.row_mut(j).iter_mut().zip(bias.iter_mut()) {
                *b += shift * f64::from(*t);
                *t = (ratio * f64::from(*t)) as f32;
            }
        }
        let model = Model::new(theta, bias.mapv(|b| b as f32))?;
        let model = match &self.labels {
            Some(l) => model.with_labels(l.clone())?,
            None => model,
        };
        model.with_standardizer(target.cloned())
    }

    /// Attaches the original class names, one per class in class order.
    pub fn with_labels(mut self, labels: Vec<String>) -> Result<Self> {
        if labels.len() != self.n_classes() {
            return Err(Error::shape(
                "class labels",
                &[self.n_classes()],
                &[labels.len()],
            ));
        }
        self.labels = Some(labels);
        Ok(self)
    }

    /// Θ, shape (n, K); column k is θ⁽ᵏ⁾.
    pub fn theta(&self) -> ArrayView2<'_, f32> {
        self.theta.view()
    }

    /// b, shape (K).
    pub fn bias(&self) -> ArrayView1<'_, f32> {
        self.bias.view()
    }

    /// The original class names, if the training labels were not 0…K−1.
    pub fn labels(&self) -> Option<&[String]> {
        self.labels.as_deref()
    }

    /// n.
    pub fn n_features(&self) -> usize {
        self.theta.nrows()
    }

    /// K.
    pub fn n_classes(&self) -> usize {
        self.theta.ncols()
    }

    fn check_x(&self, x: ArrayView2<'_, f32>) -> Result<()> {
        if x.nrows() == 0 {
            return Err(Error::NoRows);
        }
        if x.ncols() != self.n_features() {
            return Err(Error::shape(
                "x",
                &[x.nrows(), self.n_features()],
                x.shape(),
            ));
        }
        for (row, values) in x.outer_iter().enumerate() {
            if let Some((column, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite())
            {
                return Err(Error::NonFinite { row, column, value });
            }
        }
        Ok(())
    }

    /// Class probabilities P (m, K) for the rows of X (m, n), raw features (a standardized
    /// model standardizes them first).
    pub fn predict_proba(
        &self,
        backend: Backend<'_>,
        x: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>> {
        self.check_x(x)?;
        let standardized = self
            .standardizer
            .as_ref()
            .map(|s| s.transform(x))
            .transpose()?;
        let x = standardized.as_ref().map_or(x, |s| s.view());
        probabilities(
            backend,
            self.theta.view(),
            self.bias.view(),
            RowsIn::Dense(x),
        )
    }

    /// [`Model::predict_proba`] for sparse rows, which are never expanded on the CPU. A
    /// model trained on standardized features refuses them: standardizing would make every
    /// value stored.
    pub fn predict_proba_csr(&self, backend: Backend<'_>, x: &Csr) -> Result<Array2<f32>> {
        if x.n_cols() != self.n_features() {
            return Err(Error::shape(
                "sparse X (n)",
                &[self.n_features()],
                &[x.n_cols()],
            ));
        }
        if self.standardizer.is_some() {
            return Err(Error::setting(
                "standardize",
                true,
                "this model standardizes its inputs, which sparse rows cannot be without making every value stored; predict from dense rows",
            ));
        }
        probabilities(
            backend,
            self.theta.view(),
            self.bias.view(),
            RowsIn::Sparse(x),
        )
    }

    /// [`Model::predict`] for sparse rows.
    pub fn predict_csr(&self, backend: Backend<'_>, x: &Csr) -> Result<Vec<u32>> {
        let p = self.predict_proba_csr(backend, x)?;
        Ok(p.outer_iter()
            .map(|row| argmax(row.iter().copied()))
            .collect())
    }

    /// The most probable class (0…K−1) of each row.
    pub fn predict(&self, backend: Backend<'_>, x: ArrayView2<'_, f32>) -> Result<Vec<u32>> {
        let p = self.predict_proba(backend, x)?;
        Ok(p.outer_iter()
            .map(|row| argmax(row.iter().copied()))
            .collect())
    }

    /// Accuracy and mean cross-entropy on a labelled dataset (of raw features: a
    /// standardized model standardizes them first).
    pub fn evaluate(&self, backend: Backend<'_>, data: &Dataset) -> Result<Metrics> {
        if data.n_features() != self.n_features() || data.n_classes() != self.n_classes() {
            return Err(Error::shape(
                "dataset (n, K)",
                &[self.n_features(), self.n_classes()],
                &[data.n_features(), data.n_classes()],
            ));
        }
        let standardized = self
            .standardizer
            .as_ref()
            .map(|s| s.apply(data))
            .transpose()?;
        let mut evaluator = Evaluator::new(backend, standardized.as_ref().unwrap_or(data))?;
        evaluator.evaluate(&flatten(self.theta.view(), self.bias.view()))
    }
}
