//! `train` with a regularisation path: one lbfgs model per strength, scored on held-out
//! rows (k folds or the --validation rows), the best one chosen and written (refitted on
//! every row under --cv and --folds), a table per strength, `--json` lines and the
//! validation curve of `--plot`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use serde_json::json;
use softmax_regression::formats::{self, RawLabels};
use softmax_regression::{
    Backend, Choice, Dataset, Folds, GpuContext, Selection, SelectionStep, Settings, Status,
    Strength, Trainer,
};

use super::train::{Rows, save_model};
use crate::args::TrainArgs;

use crate::plan::{PathPlan, PathSelection, TrainPlan};
use crate::plot;
use crate::{CliResult, Failure};

/// Trains the path of `path`, chooses, writes the chosen model (and the figure), and
/// reports.
pub(super) fn run(
    a: &TrainArgs,
    (plan, path, folds): (&TrainPlan, &PathPlan, Option<Folds>),
    trainer: &Trainer,
    devices: &[GpuContext],
    rows: &Rows,
    names: Option<Vec<String>>,
    source: &str,
) -> CliResult<()> {
    let backend = Backend::of(devices);
    let choice = Choice {
        strengths: &path.strengths,
        score: path.score,
        warm_start: path.warm_start,
    };
    let quiet = a.quiet || a.json;
    let mut shown: Option<Option<usize>> = None;
    let count = folds.as_ref().map_or(1, Folds::count);
    // Each fold trains on the rows of the other folds.
    let fold_rows: Vec<usize> = match &folds {
        Some(f) => {
            let mut held = vec![0usize; f.count()];
            f.fold_of().iter().for_each(|&g| held[g as usize] += 1);
            held.iter().map(|h| f.n_rows() - h).collect()
        }
        None => Vec::new(),
    };
    let mut progress = |step: SelectionStep<'_>| {
        if !quiet && shown != Some(step.fold) {
            shown = Some(step.fold);
            match step.fold {
                Some(f) if folds.is_some() => eprintln!(
                    "fold {}/{count}: {} models on {} rows",
                    f + 1,
                    path.strengths.len(),
                    fold_rows[f]
                ),
                Some(_) => eprintln!(
                    "{} models on {} rows",
                    path.strengths.len(),
                    rows.train.n_rows()
                ),
                None => eprintln!("refitting on all {} rows", rows.train.n_rows()),
            }
        }
        ControlFlow::Continue(())
    };
    let started = std::time::Instant::now();
    let selection = match (&folds, &rows.held) {
        (Some(folds), _) => {
            trainer.cross_validate(backend, &rows.train, folds, choice, &mut progress)?
        }
        (None, Some(held)) => {
            trainer.select_on_validation(backend, &rows.train, held, choice, &mut progress)?
        }
        (None, None) => {
            return Err(Failure::Input(
                "a regularisation path needs --cv K, --folds PATH or --validation F to choose the model to write"
                    .to_string(),
            ));
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let chosen = &selection.chosen;
    let settings = Settings {
        l2: chosen.l2,
        ..plan.settings.clone()
    };
    save_model(a, &settings, &chosen.model, names, source, &plan.out)?;
    if let Some(out) = &plan.plot_out {
        out.write(curve(&selection, folds.as_ref(), source).as_bytes())?;
    }
    if a.json {
        report_json(
            a,
            &selection,
            folds.as_ref(),
            (seconds, Backend::of(devices).describe()),
        );
    } else {
        report_text(a, &selection, folds.as_ref(), rows);
    }
    match chosen.status {
        Status::Interrupted => Err(super::train::interrupted(
            a,
            trainer,
            "the best strength's weights as reached",
        )),
        Status::Diverged => Err(Failure::Runtime(format!(
            "training diverged at the chosen strength; {} holds the last finite weights",
            a.out.display()
        ))),
        _ => Ok(()),
    }
}

/// The folds of a cross-validated path (`None` when the --validation rows choose),
/// checked against the training rows before any training starts.
pub(super) fn folds_of(a: &TrainArgs, path: &PathPlan, rows: &Rows) -> CliResult<Option<Folds>> {
    Ok(match &path.selection {
        PathSelection::Stratified(k) => Some(
            Folds::stratified(rows.train.labels(), rows.train.n_classes(), *k, a.seed).map_err(
                |e| match e {
                    softmax_regression::Error::InvalidSetting { reason, .. } => {
                        Failure::Input(format!("--cv {k} is invalid: {reason}"))
                    }
                    other => other.into(),
                },
            )?,
        ),
        PathSelection::FoldsFile(file) => Some(read_folds(file, rows.train.n_rows())?),
        PathSelection::Validation => None,
    })
}

/// Folds from a file: one non-negative integer per row, as labels are read.
fn read_folds(path: &Path, rows: usize) -> CliResult<Folds> {
    let shown = path.display();
    let raw = formats::load_labels(path).map_err(|e| Failure::Input(e.to_string()))?;
    let ids: Vec<u32> = match raw {
        RawLabels::Ints(ints) => ints
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                u32::try_from(v).map_err(|_| {
                    Failure::Input(format!(
                        "{shown}: row {} holds fold {v}; folds are numbered from 0",
                        i + 1
                    ))
                })
            })
            .collect::<CliResult<_>>()?,
        RawLabels::Strings(_) => {
            return Err(Failure::Input(format!(
                "{shown}: folds must be integers 0…K−1, one per row"
            )));
        }
    };
    if ids.len() != rows {
        return Err(Failure::Input(format!(
            "{shown} holds {} fold numbers but the data has {rows} rows; give one per row",
            ids.len()
        )));
    }
    Folds::from_ids(ids).map_err(|e| match e {
        softmax_regression::Error::InvalidSetting { reason, .. } => {
            Failure::Input(format!("{shown}: {reason}"))
        }
        other => other.into(),
    })
}

/// A strength as a short number: plain from 0.001 to 10⁴, else in e-notation.
fn number(v: f64) -> String {
    if (1e-3..1e4).contains(&v.abs()) {
        format!("{}", (v * 1e6).round() / 1e6)
    } else {
        format!("{v:.4e}")
            .replace(".0000e", "e")
            .trim_end_matches('0')
            .to_string()
    }
}

/// "λ = 1e-3" or "C = 10" for a strength.
fn strength_text(s: Strength) -> String {
    format!("{} = {}", s.symbol(), number(s.value()))
}

fn report_text(a: &TrainArgs, selection: &Selection, folds: Option<&Folds>, rows: &Rows) {
    let how = match folds {
        Some(f) => format!("mean ± std over {} folds", f.count()),
        None => format!(
            "on {} validation rows",
            rows.held.as_ref().map_or(0, Dataset::n_rows)
        ),
    };
    let symbol = selection.candidates[0].strength.symbol();
    let scores: Vec<String> = selection
        .candidates
        .iter()
        .map(|c| {
            if folds.is_some() {
                format!("{:.6} ± {:.6}", c.mean(), c.std())
            } else {
                format!("{:.6}", c.mean())
            }
        })
        .collect();
    let score_head = format!("{} ({how})", selection.score.name());
    let width = scores
        .iter()
        .map(|s| s.chars().count())
        .chain([score_head.chars().count()])
        .max()
        .unwrap_or(0);
    let iterations_head = if folds.is_some() {
        "iterations (all folds)"
    } else {
        "iterations"
    };
    outln!(
        "{symbol:>10}  {:>12}  {score_head:>width$}  {iterations_head:>10}  status",
        "training J",
    );
    for (i, (c, score)) in selection.candidates.iter().zip(&scores).enumerate() {
        outln!(
            "{:>10}  {:>12.6}  {score:>width$}  {:>w2$}  {}{}",
            number(c.strength.value()),
            c.mean_train_loss(),
            c.iterations.iter().sum::<usize>(),
            c.status(),
            if i == selection.best {
                "  ← chosen"
            } else {
                ""
            },
            w2 = iterations_head.chars().count().max(10),
        );
    }
    if a.quiet {
        return;
    }
    let chosen = &selection.chosen;
    let best = selection.candidates[selection.best].strength;
    let folds_done = selection.candidates[0].scores.len();
    match folds {
        // Interrupted before the refit: the model is the last fold's.
        Some(f) if folds_done < f.count() => eprintln!(
            "best so far {} over {folds_done} of {} folds (the last one interrupted); no refit: the model written is fold {folds_done}'s at λ = {} (J = {:.6}, {} after {} iterations)",
            strength_text(best),
            f.count(),
            number(chosen.l2),
            chosen.loss,
            chosen.status,
            chosen.iterations
        ),
        Some(_) => eprintln!(
            "chose {} (λ = {} on all {} rows): refit J = {:.6}, {} after {} iterations",
            strength_text(best),
            number(chosen.l2),
            rows.train.n_rows(),
            chosen.loss,
            chosen.status,
            chosen.iterations
        ),
        None => eprintln!(
            "chose {}: J = {:.6}, {} after {} iterations",
            strength_text(best),
            chosen.loss,
            chosen.status,
            chosen.iterations
        ),
    }
    eprintln!("model written to {}", a.out.display());
}

fn report_json(
    a: &TrainArgs,
    selection: &Selection,
    folds: Option<&Folds>,
    (seconds, backend): (f64, String),
) {
    let key = match selection.candidates[0].strength {
        Strength::L2(_) => "l2",
        Strength::C(_) => "C",
    };
    for (i, c) in selection.candidates.iter().enumerate() {
        outln!(
            "{}",
            json!({
                key: c.strength.value(),
                "score": selection.score.name(),
                "scores": c.scores,
                "score_mean": c.mean(),
                "score_std": c.std(),
                "train_loss": c.train_loss,
                "iterations": c.iterations,
                "evaluations": c.evaluations,
                "status": c.status().name(),
                "chosen": i == selection.best,
            })
        );
    }
    let chosen = &selection.chosen;
    outln!(
        "{}",
        json!({
            "summary": true,
            key: selection.candidates[selection.best].strength.value(),
            "l2": chosen.l2,
            "folds": folds.map(Folds::count),
            "score": selection.score.name(),
            "loss": chosen.loss,
            "grad_max_norm": chosen.grad_max_norm,
            "iterations": chosen.iterations,
            "status": chosen.status.name(),
            "seconds": seconds,
            "backend": backend,
            "model": a.out.display().to_string(),
        })
    );
}

/// The validation curve: the held-out score and the training J against the strength on
/// a log axis, the chosen strength marked.
fn curve(selection: &Selection, folds: Option<&Folds>, source: &str) -> String {
    let symbol = selection.candidates[0].strength.symbol();
    let x = |c: &softmax_regression::Candidate| c.strength.value().log10();
    let mean: Vec<(f64, f64)> = selection
        .candidates
        .iter()
        .map(|c| (x(c), c.mean()))
        .collect();
    let best = &selection.candidates[selection.best];
    let mut score_series = vec![plot::Series {
        name: if folds.is_some() {
            "mean over folds"
        } else {
            "validation"
        },
        colour: "#1f77b4",
        points: mean,
    }];
    if folds.is_some() {
        // One outline around the band: along mean + std, back along mean − std.
        let mut band: Vec<(f64, f64)> = selection
            .candidates
            .iter()
            .map(|c| (x(c), c.mean() + c.std()))
            .collect();
        band.extend(
            selection
                .candidates
                .iter()
                .rev()
                .map(|c| (x(c), c.mean() - c.std())),
        );
        score_series.push(plot::Series {
            name: "mean ± std",
            colour: "#9ecae1",
            points: band,
        });
    }
    // The chosen strength as a vertical line across the scores.
    let (lo, hi) = selection
        .candidates
        .iter()
        .map(|c| (c.mean() - c.std(), c.mean() + c.std()))
        .fold((f64::MAX, f64::MIN), |(a, b), (l, h)| (a.min(l), b.max(h)));
    score_series.push(plot::Series {
        name: "chosen",
        colour: "#d62728",
        points: vec![(x(best), lo), (x(best), hi)],
    });
    let train = plot::Series {
        name: "training J",
        colour: "#2ca02c",
        points: selection
            .candidates
            .iter()
            .map(|c| (x(c), c.mean_train_loss()))
            .collect(),
    };
    let how = match folds {
        Some(f) => format!("{}-fold cross-validation", f.count()),
        None => "validation rows".to_string(),
    };
    let title = [
        format!("Validation curve: {source}"),
        format!("{how}, chosen {}", strength_text(best.strength)),
    ];
    let panels = [
        plot::Panel {
            title: format!("held-out {}", selection.score.name()),
            y_label: selection.score.name().to_string(),
            scale: plot::Scale::Linear,
            series: score_series,
        },
        plot::Panel {
            title: "training objective J".to_string(),
            y_label: "J".to_string(),
            scale: plot::Scale::Log,
            series: vec![train],
        },
    ];
    plot::validation_curve(&title, symbol, &panels)
}
