//! Ctrl-C and SIGTERM: the first asks a run to stop after its current step and save what
//! it has; a second exits at once.

use crate::{CliResult, Failure};

/// Exit status of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// A flag set by the first SIGINT or SIGTERM, which also says on stderr that the run will
/// stop after the current step; a second signal exits at once with status 130.
pub fn interrupt_flag() -> CliResult<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::sync::atomic::Ordering;
    let raised = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Failure::Runtime(format!("cannot install the signal handler: {e}")))?;
    let flag = raised.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("interrupted again: exiting at once");
                std::process::exit(EXIT_INTERRUPTED);
            }
            eprintln!(
                "interrupt: stopping after the current step (interrupt again to quit at once)"
            );
        }
    });
    Ok(raised)
}
