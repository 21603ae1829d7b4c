//! Raw arguments turned into a validated plan: what `train` settles from its flags alone
//! (the library's settings, the checked outputs, the trainer's checkpoints and resume
//! point, the engine), so that a bad flag or an unwritable output is reported before any
//! file is read.

use softmax_regression::formats;
use softmax_regression::output::OutputPath;
use softmax_regression::{Error, Optimizer, Schedule, Score, Settings, Strength, Trainer};

use crate::args::{BackendArg, CvScoreArg, OptimizerArg, ScheduleArg, TrainArgs};
use crate::engine::{Engine, choose_engine, train_needs_adapter};
use crate::outputs::check_outputs;
use crate::{CliResult, Failure};

/// What `train` settles from its flags alone, before any file is read: a bad flag, an
/// unwritable output or an unavailable engine is reported before any work starts.
pub struct TrainPlan {
    pub settings: Settings,
    pub trainer: Trainer,
    pub out: OutputPath,
    pub plot_out: Option<OutputPath>,
    pub engine: Engine,
    /// Set when the run trains a regularisation path rather than one model.
    pub path: Option<PathPlan>,
    /// scikit-learn's C of a one-model run given with --C: λ = 1/(C·m) once the training
    /// rows are known.
    pub single_c: Option<f64>,
}

/// A regularisation path: its strengths, how the model to write is chosen, the score and
/// warm starts.
pub struct PathPlan {
    pub strengths: Vec<Strength>,
    pub selection: PathSelection,
    pub score: Score,
    pub warm_start: bool,
}

/// How a path's model is chosen.
pub enum PathSelection {
    /// Stratified k folds, seeded.
    Stratified(usize),
    /// Folds read from a file.
    FoldsFile(std::path::PathBuf),
    /// The --validation rows (given or the embedded data's default).
    Validation,
}

impl TrainPlan {
    pub fn new(a: &TrainArgs) -> CliResult<TrainPlan> {
        let settings = settings_from(a);
        let mut trainer = Trainer::new(settings.clone()).map_err(flag_error)?;
        if let Some(k) = a.classes
            && k > formats::MAX_CLASSES
        {
            return Err(Failure::Input(format!(
                "--classes {k} is invalid: at most {} classes are supported",
                formats::MAX_CLASSES
            )));
        }
        // Every output is checked before any data is read, so a run never ends unable to
        // save.
        let (out, plot_out) = train_outputs(a)?;
        if let Some(path) = a.checkpoint.as_ref().or(a.resume.as_ref()) {
            trainer = trainer
                .with_checkpoints(path, a.checkpoint_every)
                .map_err(flag_error)?;
        }
        if let Some(path) = &a.resume {
            trainer = trainer.resume_from(path).map_err(flag_error)?;
            if a.init.is_some() {
                return Err(Failure::Input(
                    "--init and --resume both set where training starts; pass one".to_string(),
                ));
            }
        }
        if let Some(v) = a.validation
            && !(v > 0.0 && v < 1.0)
        {
            return Err(Failure::Input(format!(
                "--validation {v} is invalid: must be a fraction strictly between 0 and 1"
            )));
        }
        let strengths = strengths_of(a)?;
        let path = path_plan(a, &settings, &strengths)?;
        let single_c = match (&path, strengths.as_slice()) {
            (None, [Strength::C(c)]) => Some(*c),
            _ => None,
        };
        if a.devices.is_some() {
            if a.backend == BackendArg::Cpu {
                return Err(Failure::Input(
                    "--devices names adapters, and --backend cpu trains on none; drop one of them"
                        .to_string(),
                ));
            }
            if settings.batch_size.is_some() {
                return Err(Failure::Input(format!(
                    "--devices trains with full batches (lbfgs, or gd without --batch-size); --optimizer {} takes mini-batches",
                    settings.optimizer
                )));
            }
        }
        let engine = choose_engine(a.backend, a.x_storage, train_needs_adapter(a))?;
        Ok(TrainPlan {
            settings,
            trainer,
            out,
            plot_out,
            engine,
            path,
            single_c,
        })
    }
}

/// A library setting error as the flag that carries it.
fn flag_error(e: Error) -> Failure {
    match e {
        Error::InvalidSetting {
            name,
            value,
            reason,
        } => Failure::Input(format!("{} {value} is invalid: {reason}", flag_of(name))),
        other => other.into(),
    }
}

/// The strengths the flags give: --l2-path, --C or --l2, checked.
fn strengths_of(a: &TrainArgs) -> CliResult<Vec<Strength>> {
    let strengths = if let Some(spec) = &a.l2_path {
        let parts: Vec<&str> = spec.split(':').collect();
        let bad = || {
            Failure::Input(format!(
                "--l2-path {spec} is invalid: give HIGH:LOW:COUNT, e.g. 1e-1:1e-5:9"
            ))
        };
        let [high, low, count] = parts.as_slice() else {
            return Err(bad());
        };
        let high: f64 = high.trim().parse().map_err(|_| bad())?;
        let low: f64 = low.trim().parse().map_err(|_| bad())?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        Strength::log_spaced(high, low, count).map_err(|e| match e {
            Error::InvalidSetting { reason, .. } => {
                Failure::Input(format!("--l2-path {spec} is invalid: {reason}"))
            }
            other => other.into(),
        })?
    } else if let Some(cs) = &a.c {
        cs.iter().map(|&c| Strength::C(c)).collect()
    } else {
        a.l2.iter().map(|&l| Strength::L2(l)).collect()
    };
    softmax_regression::train::check_strengths(&strengths).map_err(flag_error)?;
    Ok(strengths)
}

/// The path the flags ask for, if any: several strengths, or --cv / --folds. What a path
/// cannot do is refused here, before any file is read.
fn path_plan(
    a: &TrainArgs,
    settings: &Settings,
    strengths: &[Strength],
) -> CliResult<Option<PathPlan>> {
    let selection = match (a.cv, &a.folds) {
        (Some(k), _) if k < 2 => {
            return Err(Failure::Input(format!(
                "--cv {k} is invalid: cross-validation needs at least 2 folds"
            )));
        }
        (Some(k), _) => Some(PathSelection::Stratified(k)),
        (None, Some(path)) => Some(PathSelection::FoldsFile(path.clone())),
        (None, None) => None,
    };
    if strengths.len() == 1 && selection.is_none() {
        return Ok(None);
    }
    let what = if strengths.len() > 1 {
        let flag = if a.l2_path.is_some() {
            "--l2-path"
        } else if a.c.is_some() {
            "--C"
        } else {
            "--l2"
        };
        format!(
            "{flag} with {} values trains a regularisation path",
            strengths.len()
        )
    } else if a.cv.is_some() {
        "--cv trains a model per fold".to_string()
    } else {
        "--folds trains a model per fold".to_string()
    };
    if settings.optimizer != Optimizer::Lbfgs {
        return Err(Failure::Input(format!(
            "{what}, which only --optimizer lbfgs does; drop --optimizer {}",
            settings.optimizer
        )));
    }
    for (flag, set) in [
        ("--init", a.init.is_some()),
        ("--patience", a.patience.is_some()),
    ] {
        if set {
            return Err(Failure::Input(format!(
                "{what}, which {flag} does not support; train one strength to use {flag}"
            )));
        }
    }
    let selection = match selection {
        Some(s) => s,
        // The embedded digits data holds out 0.2 by default.
        None if a.validation.is_some() || a.data.data.is_none() => PathSelection::Validation,
        None => {
            return Err(Failure::Input(format!(
                "{what}: add --cv K, --folds PATH or --validation F to choose the model to write"
            )));
        }
    };
    Ok(Some(PathPlan {
        strengths: strengths.to_vec(),
        selection,
        score: match a.cv_score {
            CvScoreArg::LogLoss => Score::LogLoss,
            CvScoreArg::Accuracy => Score::Accuracy,
        },
        warm_start: a.warm_start,
    }))
}

/// The model file and the figure, checked against each other, the checkpoint and every
/// input.
fn train_outputs(a: &TrainArgs) -> CliResult<(OutputPath, Option<OutputPath>)> {
    let checkpoint_out = a.checkpoint.as_ref().or(a.resume.as_ref());
    let checkpoint_flag = if a.checkpoint.is_some() {
        "--checkpoint"
    } else {
        "--resume"
    };
    let inputs = [
        ("--data", a.data.data.as_deref()),
        ("--labels", a.data.labels.as_deref()),
        ("--sample-weights", a.sample_weights.as_deref()),
        ("--init", a.init.as_deref()),
        ("--resume", a.resume.as_deref()),
    ];
    let mut outputs = vec![("--out", a.out.as_path())];
    if let Some(path) = checkpoint_out {
        outputs.push((checkpoint_flag, path.as_path()));
    }
    if let Some(path) = &a.plot {
        outputs.push(("--plot", path.as_path()));
    }
    let checked = check_outputs(&outputs, &inputs)?;
    Ok((
        checked[0].clone(),
        a.plot.as_ref().map(|_| checked[checked.len() - 1].clone()),
    ))
}

/// The library's settings from the flags, with the mini-batch default of each optimizer.
fn settings_from(a: &TrainArgs) -> Settings {
    let optimizer = match a.optimizer {
        OptimizerArg::Gd => Optimizer::Gd,
        OptimizerArg::Sgd => Optimizer::Sgd,
        OptimizerArg::Momentum => Optimizer::Momentum,
        OptimizerArg::Adam => Optimizer::Adam,
        OptimizerArg::Lbfgs => Optimizer::Lbfgs,
    };
    let batch_size = match (a.batch_size, optimizer) {
        (Some(b), _) => Some(b),
        (None, Optimizer::Gd | Optimizer::Lbfgs) => None,
        (None, _) => Some(64),
    };
    Settings {
        epochs: a.epochs,
        learning_rate: a.lr,
        l2: a.l2.first().copied().unwrap_or(1e-4),
        batch_size,
        optimizer,
        seed: a.seed,
        tol: a.tol,
        track_accuracy: a.plot.is_some(),
        patience: a.patience,
        standardize: a.standardize,
        schedule: match a.schedule {
            ScheduleArg::Constant => Schedule::Constant,
            ScheduleArg::Step => Schedule::Step {
                every: a.step_every,
                factor: a.step_factor,
            },
            ScheduleArg::Cosine => Schedule::Cosine,
        },
        ..Settings::default()
    }
}

/// Flag names for the settings the library names.
fn flag_of(setting: &str) -> &str {
    match setting {
        "learning_rate" => "--lr",
        "l2" => "--l2",
        "C" => "--C",
        "l2_path" => "--l2-path",
        "cv" => "--cv",
        "folds" => "--folds",
        "epochs" => "--epochs",
        "batch_size" => "--batch-size",
        "validation" => "--validation",
        "tol" => "--tol",
        "patience" => "--patience",
        "step_every" => "--step-every",
        "step_factor" => "--step-factor",
        "checkpoint_every" => "--checkpoint-every",
        "init" => "--init",
        other => other,
    }
}
