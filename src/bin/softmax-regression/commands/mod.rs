//! One module per subcommand, each taking its parsed arguments to a finished run; and what
//! `predict` and `evaluate` share: reading data for a trained model.

pub mod evaluate;
pub mod info;
pub mod path;
pub mod predict;
pub mod synth;
pub mod train;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use softmax_regression::Model;
use softmax_regression::data::Csr;
use softmax_regression::formats;

use crate::args::{DataArgs, load_options};
use crate::{CliResult, Failure};

/// Rows to predict from: a LIBSVM file's, an .npz's or a CSR directory's stay sparse, other
/// formats are dense.
pub enum ModelRows {
    Dense(Array2<f32>),
    Sparse(Csr),
}

pub fn load_for_model(
    d: &DataArgs,
    model: &Model,
    meta: &HashMap<String, String>,
    model_path: &Path,
    need_labels: bool,
) -> CliResult<(ModelRows, Option<formats::RawLabels>, PathBuf)> {
    let path = d
        .data
        .clone()
        .ok_or_else(|| Failure::Input("--data PATH is required".to_string()))?;
    let n = model.n_features();
    let has_label_column = d.labels.is_none() || d.label_column.is_some();
    let mut options = load_options(d, need_labels, has_label_column, Some(n));
    options.label_column = d
        .label_column
        .or_else(|| meta.get("label_column").and_then(|c| c.parse().ok()))
        .unwrap_or_default();
    let sparse = matches!(
        d.data_format(),
        Some(formats::Format::Libsvm | formats::Format::Npz | formats::Format::CsrDir)
    );
    if sparse && model.standardizer().is_none() {
        let loaded = formats::load_sparse(&path, &options)?;
        let x = Csr::try_from(loaded.x)
            .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
        return Ok((ModelRows::Sparse(x), loaded.labels, path));
    }
    let loaded = formats::load(&path, &options)?;
    if loaded.x.ncols() != n {
        return Err(Failure::Input(format!(
            "{} has {} feature columns but the model {} was trained on {n}",
            path.display(),
            loaded.x.ncols(),
            model_path.display()
        )));
    }
    Ok((ModelRows::Dense(loaded.x), loaded.labels, path))
}

/// The files `predict` and `evaluate` read.
pub fn model_inputs<'a>(model: &'a Path, d: &'a DataArgs) -> [(&'static str, Option<&'a Path>); 3] {
    [
        ("--model", Some(model)),
        ("--data", d.data.as_deref()),
        ("--labels", d.labels.as_deref()),
    ]
}
