//! What memory the process can still take, and reservations checked against it, so that
//! a size read from a file is refused instead of allocated on credit.

use std::fmt;
use std::path::Path;

use super::{FormatError, fail};

/// Bytes of memory this process can still take without swapping: Linux's MemAvailable,
/// lowered to what the cgroup (a container's limit) leaves; `None` where neither is known.
pub fn available_memory() -> Option<u64> {
    let system = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()?
                .checked_mul(1024)
        });
    let cgroup_file = |file: &str| std::fs::read_to_string(Path::new("/sys/fs/cgroup").join(file));
    // "max" (no limit) does not parse, which leaves the system's figure. The page cache
    // counts against the limit but is given back on demand, so only anonymous memory
    // (the processes' own) is taken from it.
    let limit = cgroup_file("memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let cgroup = limit.map(|max| {
        let anon = cgroup_file("memory.stat").ok().and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("anon "))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
        max.saturating_sub(anon.unwrap_or(0))
    });
    match (system, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reserves room for `count` more elements in `values`, or says that holding `what`
/// needs more memory than there is: sizes read from files are checked against the memory
/// available (a reservation alone succeeds on credit under Linux's overcommit, and the
/// kernel kills the process later) and then reserved fallibly.
pub(super) fn reserve<T>(
    path: &Path,
    values: &mut Vec<T>,
    count: usize,
    what: impl fmt::Display,
) -> Result<(), FormatError> {
    let bytes = (count as u64).saturating_mul(std::mem::size_of::<T>() as u64);
    let too_much = |there: String| {
        fail(
            path,
            format_args!(
                "holding its {what} needs {} of memory, {there}",
                crate::util::human_bytes(bytes)
            ),
        )
    };
    if let Some(available) = available_memory()
        && bytes > available
    {
        return Err(too_much(format!(
            "more than the {} available",
            crate::util::human_bytes(available)
        )));
    }
    // Memory that is there can still be refused: a process limit (ulimit -v), or a size
    // no allocation can have.
    values
        .try_reserve_exact(count)
        .map_err(|_| too_much("and the system refused to allocate it".to_string()))
}
