//! `softmax-regression`: train, predict, evaluate and inspect adapters from the command
//! line. A thin layer over the library: argument parsing, files, progress and output.
//! Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad input.
//!
//! This file parses, dispatches to a command and maps its failure to an exit code; the
//! flags live in `args`, each command in `commands`, and what they share (the engine,
//! output checks, progress, signals, figures) in the modules beside this one.

use std::path::Path;
use std::process::ExitCode;

#[macro_use]
mod report;
mod args;
mod commands;
mod engine;
mod interrupt;
mod outputs;
mod plan;
mod plot;
mod ranks;

use clap::Parser;
use softmax_regression::Error;
use softmax_regression::formats;

use args::{Cli, Command};
use interrupt::EXIT_INTERRUPTED;

/// A failure, split by exit code: bad input or usage (2) versus a runtime failure (1).
pub enum Failure {
    Input(String),
    Runtime(String),
    /// Stopped by a signal after saving what there was to save (exit 130).
    Interrupted(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::NoAdapter { .. }
            | Error::RequestDevice { .. }
            | Error::OutOfMemory { .. }
            | Error::Gpu { .. }
            | Error::DeviceLost { .. }
            | Error::Timeout { .. }
            | Error::Io { .. } => Failure::Runtime(e.to_string()),
            _ => Failure::Input(e.to_string()),
        }
    }
}

impl From<formats::FormatError> for Failure {
    fn from(e: formats::FormatError) -> Self {
        Failure::Input(e.to_string())
    }
}

pub type CliResult<T> = Result<T, Failure>;

fn main() -> ExitCode {
    quiet_mesa();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // clap's first line is the sentence; its usage block follows on later lines.
            // A sentence that ends in a colon lists what it names on the indented lines
            // below it (the missing arguments), which belong to the sentence.
            let text = e.render().to_string();
            let mut lines = text.lines();
            let first = lines
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            let listed: Vec<&str> = if first.ends_with(':') {
                lines
                    .take_while(|l| l.starts_with(' '))
                    .map(str::trim)
                    .collect()
            } else {
                Vec::new()
            };
            if listed.is_empty() {
                eprintln!("error: {first} (see --help)");
            } else {
                eprintln!("error: {first} {} (see --help)", listed.join(", "));
            }
            return ExitCode::from(2);
        }
    };
    // Under mpirun, training joins the other ranks; a failed rank ends them all.
    let job = match &cli.command {
        Command::Train(_) => match ranks::Job::join() {
            Ok(job) => Some(job),
            Err(failure) => return exit_with(failure),
        },
        _ => None,
    };
    let result = match cli.command {
        Command::Train(a) => commands::train::train(*a, job.as_ref().and_then(ranks::Job::ranks)),
        Command::Predict(a) => commands::predict::predict(a),
        Command::Evaluate(a) => commands::evaluate::evaluate(a),
        Command::Info(a) => commands::info::info(a),
        Command::Synth(a) => commands::synth::synth(a),
    };
    if let (Some(job), Err(failure)) = (&job, &result) {
        match failure {
            Failure::Input(m) => job.fail(&format!("error: {m}"), 2),
            Failure::Runtime(m) => job.fail(&format!("error: {m}"), 1),
            // Every rank stopped after the same step; rank 0 has written what it writes.
            Failure::Interrupted(_) => {}
        }
    }
    // MPI is finalized here, before the exit code is returned.
    drop(job);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => exit_with(failure),
    }
}

/// Reports a failure and gives its exit code.
fn exit_with(failure: Failure) -> ExitCode {
    match failure {
        Failure::Input(m) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Failure::Runtime(m) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
        Failure::Interrupted(m) => {
            if !m.is_empty() {
                eprintln!("{m}");
            }
            ExitCode::from(EXIT_INTERRUPTED as u8)
        }
    }
}

/// Mesa's Vulkan driver prints "XDG_RUNTIME_DIR is invalid" on headless machines when the
/// variable is unset; point it at a private directory so our stderr holds only our words.
fn quiet_mesa() {
    let valid = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).is_dir());
    if !valid {
        let dir =
            std::env::temp_dir().join(format!("softmax-regression-runtime-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            // SAFETY: called first thing in main, before any other thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}
