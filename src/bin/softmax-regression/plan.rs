//! Raw arguments turned into a validated plan: what `train` settles from its flags alone
//! (the library's settings, the checked outputs, the trainer's checkpoints and resume
//! point, the engine), so that a bad flag or an unwritable output is reported before any
//! file is read.

use softmax_regression::formats;
use softmax_regression::output::OutputPath;
use softmax_regression::{Error, Optimizer, Schedule, Settings, Trainer};

use crate::args::{OptimizerArg, ScheduleArg, TrainArgs};
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
        let engine = choose_engine(a.backend, a.x_storage, train_needs_adapter(a))?;
        Ok(TrainPlan {
            settings,
            trainer,
            out,
            plot_out,
            engine,
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
        l2: a.l2,
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
