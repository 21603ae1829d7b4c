//! `predict`: the class, or the K probabilities, of every row, as text or CSV.

use std::io::Write;

use softmax_regression::{Backend, Model};

use super::{ModelRows, load_for_model, model_inputs};
use crate::args::{PredictArgs, XStorageArg};
use crate::engine::{choose_engine, open_engine};
use crate::outputs::check_outputs;
use crate::{CliResult, Failure};

pub fn predict(a: PredictArgs) -> CliResult<()> {
    let out_path = match &a.out {
        Some(path) => {
            Some(check_outputs(&[("--out", path)], &model_inputs(&a.model, &a.data))?.remove(0))
        }
        None => None,
    };
    let (model, meta) = Model::load(&a.model)?;
    let (x, _, _) = load_for_model(&a.data, &model, &meta, &a.model, false)?;
    let ctx = open_engine(&choose_engine(a.backend, XStorageArg::F32, None)?)?;
    let mut out = String::new();
    if a.proba {
        let p = match &x {
            ModelRows::Dense(x) => model.predict_proba(Backend::of(&ctx), x.view())?,
            ModelRows::Sparse(x) => model.predict_proba_csr(Backend::of(&ctx), x)?,
        };
        // A header naming each class, as pandas' read_csv expects.
        let header: Vec<String> = (0..model.n_classes())
            .map(|c| match model.labels() {
                Some(names) => csv_cell(&names[c]),
                None => c.to_string(),
            })
            .collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for row in p.outer_iter() {
            let cells: Vec<String> = row.iter().map(|&v| probability_text(v)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    } else {
        let classes = match &x {
            ModelRows::Dense(x) => model.predict(Backend::of(&ctx), x.view())?,
            ModelRows::Sparse(x) => model.predict_csr(Backend::of(&ctx), x)?,
        };
        for class in classes {
            match model.labels() {
                Some(names) => out.push_str(&names[class as usize]),
                None => out.push_str(&class.to_string()),
            }
            out.push('\n');
        }
    }
    match &out_path {
        Some(path) => path.write(out.as_bytes())?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(out.as_bytes())
                .map_err(|e| Failure::Runtime(format!("cannot write to stdout: {e}")))?;
        }
    }
    Ok(())
}

/// from 1e-4 up, scientific notation below, so a small probability never prints as 0.
fn probability_text(v: f32) -> String {
    if v == 0.0 || v.abs() >= 1e-4 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
