//! Outputs: every file a command writes is checked before any work starts, so a run never
//! ends unable to save or overwrites one of its own inputs.

use std::path::Path;

use softmax_regression::output::OutputPath;

use crate::{CliResult, Failure};

/// Checks, before any work starts, that each output (flag, path) can be written and that
/// none is the same file as an input or another output; returns the outputs in order.
/// A checkpoint continued in place (`--resume` with no other `--checkpoint`) is the one
/// output allowed to be an input.
pub fn check_outputs(
    outputs: &[(&str, &Path)],
    inputs: &[(&str, Option<&Path>)],
) -> CliResult<Vec<OutputPath>> {
    let mut checked: Vec<OutputPath> = Vec::with_capacity(outputs.len());
    for (i, &(flag, path)) in outputs.iter().enumerate() {
        let out = OutputPath::check(path)
            .map_err(|reason| Failure::Input(format!("{flag} {} {reason}", path.display())))?;
        let resumed_in_place = |input_flag: &str| {
            input_flag == "--resume" && (flag == "--resume" || flag == "--checkpoint")
        };
        let clash = inputs
            .iter()
            .filter_map(|&(f, p)| p.map(|p| (f, p)))
            .filter(|&(f, p)| p != Path::new("-") && !resumed_in_place(f))
            .chain(outputs[..i].iter().copied())
            .find(|&(_, other)| out.is_same_file(other));
        if let Some((other_flag, other)) = clash {
            return Err(Failure::Input(format!(
                "{flag} {} is the same file as {other_flag} {}; writing it would destroy that file, so name another path",
                path.display(),
                other.display()
            )));
        }
        checked.push(out);
    }
    Ok(checked)
}
