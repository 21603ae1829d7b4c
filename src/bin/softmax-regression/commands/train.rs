//! `train`: the flags turned into a checked plan (`plan::TrainPlan`) before any file is
//! read, then the run in stages: load the data, weigh it, start from `--init`, hold out the
//! validation rows, open the engine, fit, save the model and the figure, and report.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use softmax_regression::data::Csr;
use softmax_regression::formats::{self, Format};
use softmax_regression::gpu::human_bytes;
use softmax_regression::output::OutputPath;
use softmax_regression::ranks::Ranks;
use softmax_regression::source::{ChunkSource, NpySource, RowRange};
use softmax_regression::{
    Backend, Dataset, EpochReport, Error, Fit, GpuContext, Model, Optimizer, Settings, Status,
    Trainer,
};

use crate::args::{TrainArgs, load_options};
use crate::engine::{Engine, describe_engine, open_devices};
use crate::interrupt::interrupt_flag;
use crate::plan::TrainPlan;
use crate::plot;
use crate::report::{Progress, describe_classes, epoch_json};
use crate::{CliResult, Failure};

pub fn train(mut a: TrainArgs, ranks: Option<&Arc<dyn Ranks>>) -> CliResult<()> {
    let mut plan = TrainPlan::new(&a)?;
    // Under mpirun: this rank's share of the rows, trained with the others; rank 0 alone
    // reports and writes.
    let mut share = ranks.map(|r| (r.rank(), r.size()));
    // Shard files: `{rank}` in --data (and --labels) names each rank's own file, which
    // holds its rows.
    let sharded = shard_paths(&mut a, share.map_or(0, |(rank, _)| rank));
    if sharded {
        share = None;
    }
    if let Some(ranks) = ranks {
        if plan.path.is_some() {
            return Err(Failure::Input(
                "a regularisation path (several strengths, --cv, --folds) trains in one process; run it without mpirun (--devices trains on several adapters)"
                    .to_string(),
            ));
        }
        plan.trainer = plan.trainer.clone().with_ranks(Arc::clone(ranks));
        if ranks.rank() != 0 {
            a.quiet = true;
            a.json = false;
        }
    }
    let Loaded {
        source,
        data,
        k,
        names,
        notes,
        ..
    } = load_data(&a, &plan.engine, &plan.trainer, share)?;
    let (data, k) = match (ranks, sharded) {
        (Some(ranks), true) => agree_on_classes(ranks.as_ref(), data, k, names.is_some(), &source)?,
        _ => (data, k),
    };
    let data = weigh(&a, data, k)?;
    let init = load_init(&a, &data, k)?;
    let mut rows = hold_out(&a, data, k, &source)?;
    if let Some(ranks) = ranks {
        let held = rows.held.as_ref().map_or(0, Dataset::n_rows) as f64;
        rows.held_total = softmax_regression::ranks::total(ranks.as_ref(), held)? as usize;
    }

    // A path's folds are read and checked before the first line of progress.
    let folds = match &plan.path {
        Some(path) => super::path::folds_of(&a, path, &rows)?,
        None => None,
    };
    if let Some(c) = plan.single_c {
        let l2 = 1.0 / (c * rows.train.n_rows() as f64);
        plan.settings.l2 = l2;
        plan.trainer = plan.trainer.with_l2(l2)?;
    }
    let devices = open_devices(&plan.engine, a.devices.as_deref())?;
    // A budget holds on every device.
    for ctx in &devices {
        ctx.set_memory_budget(a.max_gpu_memory);
    }
    let settings = &plan.settings;
    // Under mpirun: the rows of every rank, and how they are shared.
    let shared = match ranks {
        Some(ranks) => {
            let all = softmax_regression::ranks::total(ranks.as_ref(), rows.train.n_rows() as f64)?;
            Some((all as usize, ranks.size()))
        }
        None => None,
    };
    if !a.quiet && !a.json {
        eprintln!(
            "training on {source}: {} rows × {} features, {}{}; {} on {}{}",
            shared.map_or(rows.train.n_rows(), |(all, _)| all),
            rows.train.n_features(),
            describe_classes(k, rows.present, names.as_deref()),
            rows.held
                .as_ref()
                .map(|h| format!(", {} held out", h.n_rows()))
                .unwrap_or_default(),
            settings.optimizer,
            describe_engine(&devices, &plan.engine),
            shared.map_or(String::new(), |(_, size)| format!(
                ", on each of {size} MPI ranks (rank 0's share: {} rows)",
                rows.train.n_rows()
            ))
        );
        // What the reader decided that the file did not say, for the user to check.
        if !notes.is_empty() {
            eprintln!("{source}: {}", notes.join("; "));
        }
    }
    // From here on the first Ctrl-C or SIGTERM finishes the current step, checkpoints and
    // writes the model; a second one exits at once.
    let trainer = plan.trainer.clone().with_interrupt(interrupt_flag()?);
    if let Some(path) = &plan.path {
        return super::path::run(
            &a,
            (&plan, path, folds),
            &trainer,
            &devices,
            &rows,
            names,
            &source,
        );
    }
    let fit = fit(&a, settings, &trainer, &devices, &rows, init.as_ref())?;
    if ranks.is_some_and(|r| r.rank() != 0) {
        // Rank 0 reports and writes for every rank: they hold the same model.
        return match fit.status {
            Status::Interrupted => Err(Failure::Interrupted(String::new())),
            _ => Ok(()),
        };
    }

    save_model(&a, settings, &fit.model, names, &source, &plan.out)?;
    if let Some(plot_out) = &plan.plot_out {
        save_curve(settings, &fit, &rows, k, &source, plot_out)?;
    }
    if a.json {
        report_json(&a, settings, &fit, &devices);
    } else {
        report_text(&a, settings, &fit, &rows);
    }
    outcome(&a, &fit, &trainer)
}

/// The training data as read: where it came from (for messages and the model's metadata),
/// the rows, K, the class names of string labels, and what the reader decided that the
/// file did not say.
struct Loaded {
    source: String,
    data: Dataset,
    k: usize,
    names: Option<Vec<String>>,
    notes: Vec<String>,
    /// The data is already this rank's share.
    shared: bool,
}

/// Rank `rank` of `size`'s even share of `all` rows of `source`, which must have a row for
/// every rank.
fn rank_rows(
    all: usize,
    (rank, size): (usize, usize),
    source: &str,
) -> CliResult<std::ops::Range<usize>> {
    if all < size {
        return Err(Failure::Input(format!(
            "{source} has {all} rows, fewer than the {size} ranks to share them"
        )));
    }
    Ok(softmax_regression::train::even_row_ranges(all, size)[rank].clone())
}

/// Puts `rank` for `{rank}` in the paths of --data, --labels and --sample-weights; whether
/// --data had it (each rank then reads its own shard file).
fn shard_paths(a: &mut TrainArgs, rank: usize) -> bool {
    let put = |path: &mut Option<PathBuf>| {
        if let Some(p) = path.as_mut()
            && let Some(text) = p.to_str()
            && text.contains("{rank}")
        {
            *p = PathBuf::from(text.replace("{rank}", &rank.to_string()));
        }
    };
    let sharded = a
        .data
        .data
        .as_ref()
        .and_then(|p| p.to_str())
        .is_some_and(|p| p.contains("{rank}"));
    put(&mut a.data.data);
    put(&mut a.data.labels);
    put(&mut a.sample_weights);
    sharded
}

/// One K for every rank's shard: the largest any shard's labels need (a shard may lack
/// the last classes). Named classes would be numbered shard by shard, so shards need
/// integer labels.
fn agree_on_classes(
    ranks: &dyn Ranks,
    data: Dataset,
    k: usize,
    named: bool,
    source: &str,
) -> CliResult<(Dataset, usize)> {
    if named {
        return Err(Failure::Input(format!(
            "{source}: shard files need integer labels (names would be numbered shard by shard); encode the classes as 0…K−1"
        )));
    }
    let each = ranks.all_gather(&[k as f64])?;
    let k = each.iter().fold(k, |a, &b| a.max(b as usize));
    Ok((data.with_classes(k)?, k))
}

/// The training data, or with ranks (`share` = (rank, ranks)) this rank's even share of
/// its rows: a mapped `.npy` X is read only there, other files are read and the share
/// kept. The labels are read whole on every rank, so that K and the class names agree.
fn load_data(
    a: &TrainArgs,
    engine: &Engine,
    trainer: &Trainer,
    share: Option<(usize, usize)>,
) -> CliResult<Loaded> {
    let mut loaded = load_whole(a, engine, trainer, share)?;
    if let Some((rank, size)) = share
        && !loaded.shared
    {
        let rows: Vec<usize> =
            rank_rows(loaded.data.n_rows(), (rank, size), &loaded.source)?.collect();
        loaded.data = loaded.data.select_rows(&rows)?;
    }
    Ok(loaded)
}

fn load_whole(
    a: &TrainArgs,
    engine: &Engine,
    trainer: &Trainer,
    share: Option<(usize, usize)>,
) -> CliResult<Loaded> {
    let Some(path) = &a.data.data else {
        let digits = softmax_regression::datasets::digits()?;
        let (x, y) = (digits.x()?.to_owned(), digits.labels().to_vec());
        let k = a.classes.unwrap_or(10);
        let source = "embedded digits (1797 × 64, features / 16)".to_string();
        let data = Dataset::new(x, &y, k).map_err(|e| Failure::Input(format!("{source}: {e}")))?;
        return Ok(Loaded {
            source,
            data,
            k,
            names: None,
            notes: Vec::new(),
            shared: false,
        });
    };
    let format = a.data.data_format();
    // A float .npy trained on a GPU without a hold-out split or folds is memory-mapped, not
    // read: it can be larger than RAM, and is streamed to the device when it does not fit
    // there. Splitting off held-out rows copies them, so those runs read the file.
    let mapped = format == Some(Format::Npy)
        && a.validation.is_none()
        && a.cv.is_none()
        && a.folds.is_none()
        && engine.is_gpu()
        && !formats::is_stdin(path);
    // A LIBSVM file, an .npz or a directory of CSR arrays keeps its rows sparse, unless they are to be standardized
    // (centring makes every value stored).
    if mapped {
        load_mapped(a, path, share)
    } else if matches!(format, Some(Format::Libsvm | Format::Npz | Format::CsrDir))
        && !a.standardize
    {
        load_sparse_file(a, path, trainer)
    } else {
        load_file(a, path)
    }
}

/// A LIBSVM file (or stdin), a SciPy `.npz` or a directory of CSR arrays, its rows kept
/// sparse (and memory-mapped where `formats::load_sparse` can).
fn load_sparse_file(a: &TrainArgs, path: &Path, trainer: &Trainer) -> CliResult<Loaded> {
    let loaded = formats::load_sparse(path, &load_options(&a.data, true, true, None))?;
    let raw = loaded
        .labels
        .ok_or_else(|| Failure::Input(format!("{}: no labels; pass --labels", path.display())))?;
    let label_path = a.data.labels.as_deref().unwrap_or(path);
    let (y, k, names) = formats::encode_labels(&raw, a.classes, label_path)?;
    check_model_fits(trainer, path, loaded.x.n_cols, k, a.data.zero_based)?;
    let source = if formats::is_stdin(path) {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let input = |e: softmax_regression::Error| Failure::Input(format!("{source}: {e}"));
    let data = Dataset::from_csr(Csr::try_from(loaded.x).map_err(input)?, &y, k).map_err(input)?;
    Ok(Loaded {
        source,
        data,
        k,
        names,
        notes: Vec::new(),
        shared: false,
    })
}

/// The trainer's check that the model and its optimizer state fit in memory, made as soon
/// as a sparse file's width is known: sparse rows cost nothing for a mistyped huge index,
/// so the refusal names that index.
fn check_model_fits(
    trainer: &Trainer,
    path: &Path,
    n: usize,
    k: usize,
    zero_based: bool,
) -> CliResult<()> {
    match trainer.check_state_fits(n, k) {
        Err(Error::ModelTooLarge {
            bytes, available, ..
        }) => {
            let index = if zero_based { n.saturating_sub(1) } else { n };
            Err(Failure::Input(format!(
                "{}: the largest feature index, {index}, makes {n} features, whose model and optimizer state ({}) would not fit in the {} of memory available; check that index",
                path.display(),
                human_bytes(bytes),
                human_bytes(available)
            )))
        }
        other => Ok(other?),
    }
}

/// A float .npy, memory-mapped, with its labels from `--labels`.
fn load_mapped(a: &TrainArgs, path: &Path, share: Option<(usize, usize)>) -> CliResult<Loaded> {
    let x = NpySource::open(path)?;
    let Some(label_path) = a.data.labels.as_deref() else {
        return Err(Failure::Input(format!(
            "{}: no labels; pass --labels",
            path.display()
        )));
    };
    let raw = formats::load_labels(label_path)?;
    if raw.len() != x.n_rows() {
        return Err(Failure::Input(format!(
            "{} has {} labels but {} has {} rows",
            label_path.display(),
            raw.len(),
            path.display(),
            x.n_rows()
        )));
    }
    let (y, k, names) = formats::encode_labels(&raw, a.classes, label_path)?;
    let source = path.display().to_string();
    let input = |e: softmax_regression::Error| Failure::Input(format!("{source}: {e}"));
    let data = match share {
        // This rank's rows of the mapped file, the only ones it reads (and checks).
        Some((rank, size)) => {
            let rows = rank_rows(x.n_rows(), (rank, size), &source)?;
            let start = rows.start;
            let mine = RowRange::new(Arc::new(x), rows.clone()).map_err(input)?;
            // A bad value is named by its row of the file, not of this rank's share.
            Dataset::from_source(Arc::new(mine), &y[rows], k)
                .map_err(|e| match e {
                    softmax_regression::Error::NonFinite { row, column, value } => {
                        softmax_regression::Error::NonFinite {
                            row: row + start,
                            column,
                            value,
                        }
                    }
                    other => other,
                })
                .map_err(input)?
        }
        None => Dataset::from_source(Arc::new(x), &y, k).map_err(input)?,
    };
    Ok(Loaded {
        source,
        data,
        k,
        names,
        notes: Vec::new(),
        shared: share.is_some(),
    })
}

/// Any supported file (or stdin), read into memory.
fn load_file(a: &TrainArgs, path: &Path) -> CliResult<Loaded> {
    let loaded = formats::load(path, &load_options(&a.data, true, true, None))?;
    let raw = loaded
        .labels
        .ok_or_else(|| Failure::Input(format!("{}: no labels; pass --labels", path.display())))?;
    let label_path = a.data.labels.as_deref().unwrap_or(path);
    let (y, k, names) = formats::encode_labels(&raw, a.classes, label_path)?;
    let source = if formats::is_stdin(path) {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let data =
        Dataset::new(loaded.x, &y, k).map_err(|e| Failure::Input(format!("{source}: {e}")))?;
    Ok(Loaded {
        source,
        data,
        k,
        names,
        notes: loaded.notes,
        shared: false,
    })
}

/// The data with `--sample-weights` and `--class-weight` applied.
fn weigh(a: &TrainArgs, mut data: Dataset, k: usize) -> CliResult<Dataset> {
    if let Some(path) = &a.sample_weights {
        let data_path = a
            .data
            .data
            .clone()
            .unwrap_or_else(|| PathBuf::from("the embedded digits data"));
        let w = formats::load_weights(path, data.n_rows(), &data_path)?;
        data = data
            .with_sample_weights(&w)
            .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
    }
    let Some(spec) = &a.class_weight else {
        return Ok(data);
    };
    let weights = if spec == "balanced" {
        data.balanced_class_weights()
    } else {
        spec.split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<Vec<f32>, _>>()
            .map_err(|_| Failure::Input(format!("--class-weight {spec} is invalid: expected `balanced` or {k} comma-separated numbers")))?
    };
    if weights.len() != k {
        return Err(Failure::Input(format!(
            "--class-weight has {} values but there are {k} classes",
            weights.len()
        )));
    }
    data.with_class_weights(&weights).map_err(|e| match e {
        Error::InvalidSetting { reason, .. } => {
            Failure::Input(format!("--class-weight {spec} is invalid: {reason}"))
        }
        other => other.into(),
    })
}

/// The `--init` model, checked against the data's shape.
fn load_init(a: &TrainArgs, data: &Dataset, k: usize) -> CliResult<Option<Model>> {
    let Some(path) = &a.init else {
        return Ok(None);
    };
    let (model, _) = Model::load(path)?;
    if model.n_features() != data.n_features() || model.n_classes() != k {
        return Err(Failure::Input(format!(
            "--init {} has {} features and {} classes but the data has {} and {k}",
            path.display(),
            model.n_features(),
            model.n_classes(),
            data.n_features()
        )));
    }
    Ok(Some(model))
}

/// The rows trained on and those held out, with how many of the K classes the data holds.
pub(super) struct Rows {
    pub(super) train: Dataset,
    pub(super) held: Option<Dataset>,
    present: usize,
    /// Rows held out over every rank (this process's alone without ranks).
    held_total: usize,
}

/// Splits off the validation rows (a seeded 20% of the embedded digits by default), after
/// checking that the features fit the device storage of X.
fn hold_out(a: &TrainArgs, data: Dataset, k: usize, source: &str) -> CliResult<Rows> {
    if a.patience.is_some() && a.validation.is_none() && a.data.data.is_some() {
        return Err(Failure::Input(
            "--patience needs a validation split; add --validation F".to_string(),
        ));
    }
    // Cross-validation holds out its own folds.
    let folds = a.cv.is_some() || a.folds.is_some();
    let validation = match (&a.data.data, a.validation) {
        (None, None) if !folds => Some(0.2),
        (_, v) => v,
    };
    // Before the split shuffles the rows, so that an error names the file's sample.
    check_storage(a, &data, source)?;
    // The classes the data holds, for the first line (k is bounded by MAX_CLASSES here).
    let mut seen = vec![false; k];
    for &class in data.labels() {
        if let Some(slot) = seen.get_mut(class as usize) {
            *slot = true;
        }
    }
    let present = seen.iter().filter(|&&s| s).count();
    let (train, held) = match validation {
        Some(f) => {
            let (t, h) = data.split(f, a.seed)?;
            (t, Some(h))
        }
        None => (data, None),
    };
    let held_total = held.as_ref().map_or(0, Dataset::n_rows);
    Ok(Rows {
        train,
        held,
        present,
        held_total,
    })
}

/// Whether every feature fits `--x-storage`. Standardized values lie within ±√m, inside
/// every storage's range for any practical m.
fn check_storage(a: &TrainArgs, data: &Dataset, source: &str) -> CliResult<()> {
    let unchecked = if a.standardize {
        Ok(())
    } else {
        a.x_storage.storage().check(data)
    };
    unchecked.map_err(|e| match e {
        Error::OutOfStorageRange {
            row,
            column,
            value,
            storage,
            limit,
        } => Failure::Input(format!(
            "{source}: feature {} of sample {} is {value}, beyond the ±{limit} range of --x-storage {storage}; use --x-storage f32 or u8",
            column + 1,
            row + 1
        )),
        other => other.into(),
    })
}

/// Runs the optimizer, with progress on stderr or one JSON line per epoch on stdout.
fn fit(
    a: &TrainArgs,
    settings: &Settings,
    trainer: &Trainer,
    devices: &[GpuContext],
    rows: &Rows,
    init: Option<&Model>,
) -> CliResult<Fit> {
    let progress = Progress::new(
        settings.epochs,
        settings.optimizer.steps_name(),
        a.quiet || a.json,
    );
    let json = a.json;
    let fit = trainer.fit(
        Backend::of(devices),
        &rows.train,
        rows.held.as_ref(),
        init,
        |r| {
            if json {
                outln!("{}", epoch_json(r));
            }
            progress.epoch(r);
            ControlFlow::Continue(())
        },
    )?;
    progress.finish();
    Ok(fit)
}

/// Writes the model with its class names and the settings it was trained with.
pub(super) fn save_model(
    a: &TrainArgs,
    settings: &Settings,
    model: &Model,
    names: Option<Vec<String>>,
    source: &str,
    out: &OutputPath,
) -> CliResult<()> {
    let mut model = model.clone();
    if let Some(names) = names {
        model = model.with_labels(names)?;
    }
    let mut meta = vec![
        ("optimizer".to_string(), settings.optimizer.to_string()),
        ("epochs".to_string(), settings.epochs.to_string()),
        (
            "learning_rate".to_string(),
            settings.learning_rate.to_string(),
        ),
        ("l2".to_string(), settings.l2.to_string()),
        ("batch_size".to_string(), batch_text(settings)),
        ("seed".to_string(), settings.seed.to_string()),
        ("data".to_string(), source.to_string()),
    ];
    // predict and evaluate find the label in the same column of a CSV.
    let csv_labels = a.data.data_format() == Some(Format::Csv)
        && (a.data.labels.is_none() || a.data.label_column.is_some());
    if csv_labels {
        meta.push((
            "label_column".to_string(),
            a.data.label_column.unwrap_or_default().to_string(),
        ));
    }
    out.write(&model.to_safetensors(&meta)?)?;
    Ok(())
}

/// The mini-batch size as the model's metadata and the figure's title give it.
fn batch_text(settings: &Settings) -> String {
    settings
        .batch_size
        .map_or("full".to_string(), |b| b.to_string())
}

/// Writes the `--plot` figure.
fn save_curve(
    settings: &Settings,
    fit: &Fit,
    rows: &Rows,
    k: usize,
    source: &str,
    plot_out: &OutputPath,
) -> CliResult<()> {
    let steps = match settings.optimizer {
        Optimizer::Lbfgs => String::new(),
        _ => format!(
            ", learning rate {}, batch {}",
            settings.learning_rate,
            batch_text(settings)
        ),
    };
    let title = [
        format!("Training curve: {source}"),
        format!(
            "{}{steps}, λ = {}; {} training rows{}, K = {k}",
            settings.optimizer,
            settings.l2,
            rows.train.n_rows(),
            rows.held
                .as_ref()
                .map(|h| format!(", {} validation", h.n_rows()))
                .unwrap_or_default()
        ),
    ];
    plot_out.write(training_curve(&fit.history, &title, settings.optimizer).as_bytes())?;
    Ok(())
}

/// The `--json` summary line.
fn report_json(a: &TrainArgs, settings: &Settings, fit: &Fit, devices: &[GpuContext]) {
    let last = fit.history.last();
    let held_metrics = last.and_then(|r| r.validation);
    outln!(
        "{}",
        json!({
            "summary": true,
            "epochs": fit.history.len(),
            "evaluations": fit.evaluations,
            "loss": last.map(|r| r.loss),
            "grad_max_norm": last.map(|r| r.grad_max_norm),
            "status": fit.status.name(),
            "validation_loss": held_metrics.map(|m| m.log_loss),
            "validation_accuracy": held_metrics.map(|m| m.accuracy),
            "model": a.out.display().to_string(),
            "backend": Backend::of(devices).describe(),
            "seconds": last.map(|r| r.elapsed),
            "device_memory_peak": fit.device.map(|d| d.memory_peak),
            "device_memory_budget": a.max_gpu_memory,
            "combining_seconds": softmax_regression::objective::sum::combining_time().as_secs_f64(),
            "streamed": fit.device.map(|d| d.streamed),
            "chunks": fit.device.map(|d| d.chunk_plan.chunks),
            "x_storage": a.x_storage.storage().name(),
            "standardized": settings.standardize,
            "badly_scaled": fit.scaling.map(|s| s.to_string()),
        })
    );
}

/// The closing lines: how the run ended, the final objective, the held-out accuracy (on
/// stdout, the result a script reads), the device memory used and where the model went.
fn report_text(a: &TrainArgs, settings: &Settings, fit: &Fit, rows: &Rows) {
    // A run that did not converge must not look like one that did, so that is said even
    // with --quiet; a converged run is quiet.
    if !a.quiet || fit.status != Status::Converged {
        eprintln!("{}", fit.summary(settings));
    }
    if a.quiet {
        return;
    }
    let last = fit.history.last();
    if let Some(r) = last {
        eprintln!(
            "final objective J = {:.6} after {} {} ({:.1} s)",
            r.loss,
            r.epoch,
            settings.optimizer.steps_name(),
            r.elapsed
        );
    }
    if let Some(m) = last.and_then(|r| r.validation) {
        let what = if a.data.data.is_none() {
            "test"
        } else {
            "validation"
        };
        outln!(
            "{what} accuracy {:.4}, {what} log-loss {:.4} on {} held-out rows",
            m.accuracy,
            m.log_loss,
            rows.held_total
        );
    }
    if let Some(d) = fit.device {
        eprintln!(
            "device memory: peak {}{}; X {} in {} chunk{} of up to {} rows",
            softmax_regression::gpu::human_bytes(d.memory_peak),
            a.max_gpu_memory
                .map(|b| format!(" of a {} budget", softmax_regression::gpu::human_bytes(b)))
                .unwrap_or_default(),
            if d.streamed { "streamed" } else { "resident" },
            d.chunk_plan.chunks,
            if d.chunk_plan.chunks == 1 { "" } else { "s" },
            d.chunk_plan.chunk_rows
        );
    }
    eprintln!("model written to {}", a.out.display());
}

/// The run's result: a diverged run fails (exit 1) and an interrupted one says how to
/// continue (exit 130), each after the model was written.
fn outcome(a: &TrainArgs, fit: &Fit, trainer: &Trainer) -> CliResult<()> {
    match fit.status {
        Status::Diverged => Err(Failure::Runtime(format!(
            "training diverged; {} holds the last finite weights",
            a.out.display()
        ))),
        Status::Interrupted => Err(interrupted(a, trainer, "the weights reached")),
        _ => Ok(()),
    }
}

/// The failure of a run an interrupt stopped: the model file holds `what`, and how to
/// continue from the checkpoint, or how to be able to next time.
pub(super) fn interrupted(a: &TrainArgs, trainer: &Trainer, what: &str) -> Failure {
    Failure::Interrupted(match trainer.checkpoint_path() {
        Some(path) => format!(
            "interrupted; {} holds {what} and {} the checkpoint: add --resume {} to the same command to continue",
            a.out.display(),
            path.display(),
            path.display()
        ),
        None => format!(
            "interrupted; {} holds {what} (pass --checkpoint PATH to be able to resume)",
            a.out.display()
        ),
    })
}

fn training_curve(history: &[EpochReport], title: &[String], optimizer: Optimizer) -> String {
    use plot::{Panel, Scale, Series};
    let x_label = if optimizer == Optimizer::Lbfgs {
        "iteration"
    } else {
        "epoch"
    };
    let points = |f: &dyn Fn(&EpochReport) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let (blue, orange) = ("#1f77b4", "#ff7f0e");
    let mut panels = Vec::new();

    let objective = points(&|r| Some(r.loss).filter(|j| j.is_finite()));
    let (at, min) =
        objective.iter().copied().fold(
            (0.0, f64::INFINITY),
            |best, p| if p.1 < best.1 { p } else { best },
        );
    let gaps: Vec<(f64, f64)> = objective.iter().map(|&(x, j)| (x, j - min)).collect();
    // Six significant digits.
    let decimals = (5 - min.abs().max(1e-300).log10().floor() as i32).clamp(0, 12) as usize;
    let (y_label, shown) = if gaps.iter().filter(|p| p.1 > 0.0).count() >= 2 {
        (
            format!("J − min J (min J = {min:.decimals$} at {x_label} {at})"),
            gaps,
        )
    } else {
        // Too few points above the minimum for a line: J itself.
        ("J".to_string(), objective)
    };
    panels.push(Panel {
        title: "training objective J (cross-entropy + λ/2‖Θ‖²)".to_string(),
        y_label,
        scale: Scale::Log,
        series: vec![Series {
            name: "training",
            colour: blue,
            points: shown,
        }],
    });

    let validated = history.iter().any(|r| r.validation.is_some());
    if validated {
        panels.push(Panel {
            title: "validation log-loss (no λ term)".to_string(),
            y_label: "log-loss".to_string(),
            scale: Scale::Log,
            series: vec![Series {
                name: "validation",
                colour: orange,
                points: points(&|r| r.validation.map(|m| m.log_loss)),
            }],
        });
    }
    let mut accuracy = Vec::new();
    if history.iter().any(|r| r.train_accuracy.is_some()) {
        accuracy.push(Series {
            name: "training",
            colour: blue,
            points: points(&|r| r.train_accuracy),
        });
    }
    if validated {
        accuracy.push(Series {
            name: "validation",
            colour: orange,
            points: points(&|r| r.validation.map(|m| m.accuracy)),
        });
    }
    if !accuracy.is_empty() {
        panels.push(Panel {
            title: match accuracy.as_slice() {
                [one] => format!("{} accuracy", one.name),
                _ => "accuracy".to_string(),
            },
            y_label: "accuracy".to_string(),
            scale: Scale::Linear,
            series: accuracy,
        });
    }
    plot::training_curve(title, x_label, &panels)
}
