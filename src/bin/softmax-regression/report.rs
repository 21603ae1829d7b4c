//! What a run says while and after it works: stdout that tolerates a closed pipe, the
//! progress bar or plain progress lines on stderr, the JSON line of an epoch, and the
//! description of the classes on a training run's first line.

use std::io::IsTerminal;

use serde_json::json;
use softmax_regression::EpochReport;

/// `println!` that ignores a closed stdout (`… | head`), as Unix tools do.
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($t:tt)*) => {{
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

/// What the labels were read as, for the first line: `K = 3 (integer labels 0…2)` or
/// `K = 3 (string labels: cat, dog, eel)`, with how many of the K classes the data holds
/// (`present`) when some are missing.
pub fn describe_classes(k: usize, present: usize, names: Option<&[String]>) -> String {
    match names {
        Some(names) => {
            let shown = match names {
                [first @ .., last] if names.len() > 6 => {
                    format!("{}, …, {last}", first[..3].join(", "))
                }
                _ => names.join(", "),
            };
            let unnamed = match k.saturating_sub(names.len()) {
                0 => String::new(),
                u => format!(", and {u} unnamed"),
            };
            format!("K = {k} (string labels: {shown}{unnamed})")
        }
        None => {
            let missing = if present < k {
                format!(", {present} of them present")
            } else {
                String::new()
            };
            format!(
                "K = {k} (integer labels 0…{}{missing})",
                k.saturating_sub(1)
            )
        }
    }
}

pub fn epoch_json(r: &EpochReport) -> serde_json::Value {
    json!({
        "epoch": r.epoch,
        "loss": r.loss,
        "grad_max_norm": r.grad_max_norm,
        "train_accuracy": r.train_accuracy,
        "validation_loss": r.validation.map(|m| m.log_loss),
        "validation_accuracy": r.validation.map(|m| m.accuracy),
        "seconds": r.elapsed,
    })
}

/// A progress bar on a terminal, a plain line every tenth of the run otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    every: usize,
    /// "epochs" or "iterations".
    steps: &'static str,
}

impl Progress {
    pub fn new(epochs: usize, steps: &'static str, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(epochs as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{bar:30}} {{pos}}/{{len}} {steps}  {{msg}}  [{{elapsed_precise}}, {{per_sec}}]"
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            quiet,
            every: epochs.div_ceil(10).max(1),
            steps,
        }
    }

    pub fn line(r: &EpochReport) -> String {
        let mut s = format!("J = {:.5}", r.loss);
        if let Some(v) = r.validation {
            s.push_str(&format!(
                "  validation loss {:.4} accuracy {:.4}",
                v.log_loss, v.accuracy
            ));
        }
        s
    }

    pub fn epoch(&self, r: &EpochReport) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => {
                bar.set_message(Self::line(r));
                bar.inc(1);
            }
            None if r.epoch.is_multiple_of(self.every) || r.epoch == 1 => {
                eprintln!(
                    "{} {:>5}  {}  ({:.1} s)",
                    self.steps.trim_end_matches('s'),
                    r.epoch,
                    Self::line(r),
                    r.elapsed
                )
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
