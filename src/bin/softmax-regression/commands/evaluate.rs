//! `evaluate`: accuracy, mean cross-entropy, the confusion matrix with per-class precision
//! and recall, as a report, a JSON object or an SVG heat map.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use softmax_regression::formats;
use softmax_regression::{Backend, Dataset, Metrics, Model};

use super::{ModelRows, load_for_model, model_inputs};
use crate::args::{EvaluateArgs, XStorageArg};
use crate::engine::{choose_engine, open_engine};
use crate::outputs::check_outputs;
use crate::plot;
use crate::{CliResult, Failure};

pub fn evaluate(a: EvaluateArgs) -> CliResult<()> {
    let plot_out = match &a.plot {
        Some(path) => {
            Some(check_outputs(&[("--plot", path)], &model_inputs(&a.model, &a.data))?.remove(0))
        }
        None => None,
    };
    let (model, meta) = Model::load(&a.model)?;
    let (x, raw, path) = load_for_model(&a.data, &model, &meta, &a.model, true)?;
    let raw =
        raw.ok_or_else(|| Failure::Input(format!("{}: no labels; pass --labels", path.display())))?;
    let k = model.n_classes();
    let y = class_numbers(&a, &model, &raw, &path)?;
    let input = |e: softmax_regression::Error| Failure::Input(format!("{}: {e}", path.display()));
    let data = match x {
        ModelRows::Dense(x) => Dataset::new(x, &y, k).map_err(input)?,
        ModelRows::Sparse(x) => Dataset::from_csr(x, &y, k).map_err(input)?,
    };
    let ctx = open_engine(&choose_engine(a.backend, XStorageArg::F32, None)?)?;
    let metrics = model.evaluate(Backend::of(&ctx), &data)?;
    let predicted = match data.csr() {
        Some(x) => model.predict_csr(Backend::of(&ctx), x)?,
        None => model.predict(Backend::of(&ctx), data.x()?)?,
    };
    let table = Confusion::new(&model, &y, &predicted);
    if let Some(plot_out) = &plot_out {
        let title = [
            format!(
                "Confusion matrix: accuracy {:.4} on {} rows",
                metrics.accuracy,
                y.len()
            ),
            format!("data {}, model {}", path.display(), a.model.display()),
        ];
        plot_out.write(plot::confusion_heat_map(&table.names, &table.counts, &title).as_bytes())?;
    }
    if a.json {
        outln!(
            "{}",
            json!({
                "rows": y.len(),
                "accuracy": metrics.accuracy,
                "log_loss": metrics.log_loss,
                "classes": table.names,
                "confusion": table.counts,
                "precision": table.precision,
                "recall": table.recall,
            })
        );
    } else {
        print_report(y.len(), &metrics, &table);
    }
    Ok(())
}

/// The class number of every row's label. Labels are matched by name when the model has
/// names, else read as class numbers.
fn class_numbers(
    a: &EvaluateArgs,
    model: &Model,
    raw: &formats::RawLabels,
    path: &Path,
) -> CliResult<Vec<u32>> {
    let k = model.n_classes();
    Ok(match (model.labels(), raw) {
        (Some(names), formats::RawLabels::Strings(s)) => s
            .iter()
            .enumerate()
            .map(|(row, l)| {
                names
                    .iter()
                    .position(|n| n == l)
                    .map(|c| c as u32)
                    .ok_or_else(|| {
                        Failure::Input(format!(
                            "{}: label {l:?} in row {} is not one of the model's classes",
                            path.display(),
                            row + 1
                        ))
                    })
            })
            .collect::<CliResult<_>>()?,
        (Some(names), formats::RawLabels::Ints(v)) => v
            .iter()
            .enumerate()
            .map(|(row, l)| {
                names
                    .iter()
                    .position(|n| *n == l.to_string())
                    .map(|c| c as u32)
                    .ok_or_else(|| {
                        Failure::Input(format!(
                            "{}: label {l} in row {} is not one of the model's classes",
                            path.display(),
                            row + 1
                        ))
                    })
            })
            .collect::<CliResult<_>>()?,
        // A model of class numbers knows no names: a name would be mapped to a class by
        // its sort order, and the accuracy would be that of a guess.
        (None, formats::RawLabels::Strings(s)) => {
            let label_path = a.data.labels.as_deref().unwrap_or(path);
            return Err(Failure::Input(format!(
                "{}: label {:?} of sample 1 is not a class of the model {}, which was trained on class numbers 0 to {}",
                label_path.display(),
                s.first().map_or("", String::as_str),
                a.model.display(),
                k - 1
            )));
        }
        (None, raw) => {
            formats::encode_labels(raw, Some(k), a.data.labels.as_deref().unwrap_or(path))?.0
        }
    })
}

/// The confusion matrix with the class names and each class's precision and recall
/// (`None` where nothing was predicted as, or labelled, that class).
struct Confusion {
    names: Vec<String>,
    /// `counts[true][predicted]`.
    counts: Vec<Vec<usize>>,
    precision: Vec<Option<f64>>,
    recall: Vec<Option<f64>>,
}

impl Confusion {
    fn new(model: &Model, y: &[u32], predicted: &[u32]) -> Confusion {
        let k = model.n_classes();
        let mut confusion = vec![vec![0usize; k]; k];
        for (&t, &p) in y.iter().zip(predicted) {
            confusion[t as usize][p as usize] += 1;
        }
        let names: Vec<String> = model.labels().map_or_else(
            || (0..k).map(|c| c.to_string()).collect(),
            <[String]>::to_vec,
        );
        let precision: Vec<Option<f64>> = (0..k)
            .map(|c| {
                let col: usize = (0..k).map(|t| confusion[t][c]).sum();
                (col > 0).then(|| confusion[c][c] as f64 / col as f64)
            })
            .collect();
        let recall: Vec<Option<f64>> = (0..k)
            .map(|c| {
                let row: usize = confusion[c].iter().sum();
                (row > 0).then(|| confusion[c][c] as f64 / row as f64)
            })
            .collect();
        Confusion {
            names,
            counts: confusion,
            precision,
            recall,
        }
    }
}

/// The text report: the metrics, then the confusion matrix with precision and recall
/// columns.
fn print_report(rows: usize, metrics: &Metrics, table: &Confusion) {
    let Confusion {
        names,
        counts: confusion,
        precision,
        recall,
    } = table;
    outln!("rows        {}", rows);
    outln!("accuracy    {:.4}", metrics.accuracy);
    outln!("log-loss    {:.4}  (mean cross-entropy)", metrics.log_loss);
    outln!("\nconfusion matrix (rows: true class, columns: predicted)");
    let width = names.iter().map(String::len).max().unwrap_or(1).max(5);
    out!("{:>width$} ", "");
    for n in names {
        out!("{n:>width$} ");
    }
    outln!(" precision  recall");
    let fmt = |v: Option<f64>| v.map_or_else(|| "     -".to_string(), |v| format!("{v:>6.3}"));
    for c in 0..confusion.len() {
        out!("{:>width$} ", names[c]);
        for count in &confusion[c] {
            out!("{count:>width$} ");
        }
        outln!("    {}  {}", fmt(precision[c]), fmt(recall[c]));
    }
}
