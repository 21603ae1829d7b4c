//! `synth`: a generated problem written to .npy files as it is made (dense, or with
//! `--density` a directory of CSR arrays), with progress and a clean stop (partial files
//! removed) on an interrupt.

use std::io::IsTerminal;
use std::ops::ControlFlow;

use softmax_regression::Error;

use crate::args::SynthArgs;
use crate::interrupt::interrupt_flag;
use crate::outputs::check_outputs;
use crate::{CliResult, Failure};

/// A synth setting error as the flag that carries it (the settings are named as the flags).
fn synth_flag_error(e: Error) -> Failure {
    match e {
        Error::InvalidSetting {
            name,
            value,
            reason,
        } => Failure::Input(format!("--{name} {value} is invalid: {reason}")),
        other => other.into(),
    }
}

pub fn synth(a: SynthArgs) -> CliResult<()> {
    use softmax_regression::synth::{
        SparseSynthSpec, SynthSpec, write_problem, write_sparse_problem,
    };
    let problem = SynthSpec {
        rows: a.rows,
        features: a.features,
        classes: a.classes,
        seed: a.seed,
        separation: a.separation,
    };
    let sparse = a.density.map(|density| SparseSynthSpec {
        problem: problem.clone(),
        density,
    });
    match &sparse {
        Some(spec) => {
            spec.validate().map_err(synth_flag_error)?;
            // --out names a directory, checked by the writer before anything is written.
            check_outputs(&[("--labels", &a.labels)], &[])?;
        }
        None => {
            problem.validate().map_err(synth_flag_error)?;
            check_outputs(&[("--out", &a.out), ("--labels", &a.labels)], &[])?;
        }
    }
    let rows = problem.rows;
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(rows as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows, {eta} left")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    // Off a terminal (a log file, CI), a plain line at each further tenth of the rows.
    let plain = !a.quiet && bar.is_none();
    let mut tenths_said = 0;
    let started = std::time::Instant::now();
    // Ctrl-C or SIGTERM stops between blocks and removes the partial files.
    let stop = interrupt_flag()?;
    let progress = |done: usize| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
        }
        let tenths = done * 10 / rows.max(1);
        if plain && tenths > tenths_said && done < rows {
            tenths_said = tenths;
            eprintln!(
                "synth: {done} of {rows} rows ({}%, {:.1} s)",
                tenths * 10,
                started.elapsed().as_secs_f64()
            );
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    // The stored values of a sparse problem; `Some(0)` stands for a finished dense one.
    let written = match &sparse {
        Some(spec) => write_sparse_problem(spec, &a.out, &a.labels, progress),
        None => write_problem(&problem, &a.out, &a.labels, progress)
            .map(|finished| finished.then_some(0)),
    }
    .map_err(synth_flag_error)?;
    let Some(nnz) = written else {
        return Err(Failure::Interrupted(
            "interrupted; nothing was written".to_string(),
        ));
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !a.quiet {
        let x = match &sparse {
            Some(spec) => format!(
                "{} ({rows} × {} CSR arrays: {nnz} stored values, {:.1} a row, {})",
                a.out.display(),
                spec.problem.features,
                nnz as f64 / rows as f64,
                softmax_regression::gpu::human_bytes(nnz * 8 + (rows as u64 + 1) * 8)
            ),
            None => format!(
                "{} ({} × {} float32, {})",
                a.out.display(),
                rows,
                problem.features,
                softmax_regression::gpu::human_bytes(problem.x_bytes())
            ),
        };
        eprintln!(
            "wrote {x} and {} ({rows} int32 labels in 0..{}) in {:.1} s",
            a.labels.display(),
            problem.classes,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
