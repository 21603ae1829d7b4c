//! `synth`: a generated problem written to .npy files as it is made, with progress and a
//! clean stop (partial files removed) on an interrupt.

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
    use softmax_regression::synth::{SynthSpec, write_problem};
    let spec = SynthSpec {
        rows: a.rows,
        features: a.features,
        classes: a.classes,
        seed: a.seed,
        separation: a.separation,
    };
    spec.validate().map_err(synth_flag_error)?;
    check_outputs(&[("--out", &a.out), ("--labels", &a.labels)], &[])?;
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(spec.rows as u64);
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
    let finished = write_problem(&spec, &a.out, &a.labels, |rows| {
        if let Some(bar) = &bar {
            bar.set_position(rows as u64);
        }
        let tenths = rows * 10 / spec.rows.max(1);
        if plain && tenths > tenths_said && rows < spec.rows {
            tenths_said = tenths;
            eprintln!(
                "synth: {rows} of {} rows ({}%, {:.1} s)",
                spec.rows,
                tenths * 10,
                started.elapsed().as_secs_f64()
            );
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .map_err(synth_flag_error)?;
    if !finished {
        return Err(Failure::Interrupted(
            "interrupted; nothing was written".to_string(),
        ));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !a.quiet {
        eprintln!(
            "wrote {} ({} × {} float32, {}) and {} ({} int32 labels in 0..{}) in {:.1} s",
            a.out.display(),
            spec.rows,
            spec.features,
            softmax_regression::gpu::human_bytes(spec.x_bytes()),
            a.labels.display(),
            spec.rows,
            spec.classes,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
