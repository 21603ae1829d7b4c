//! Output files: where a path really leads, whether it can be written, and writing it so
//! that nothing a user owns is lost.
//!
//! The rules (DESIGN.md, output safety):
//! - A regular file (or a path that does not exist yet) is replaced atomically: the bytes
//!   go to a temporary file beside it, are flushed, and the temporary is renamed over it;
//!   the directory is then synced. An existing file keeps its permissions.
//! - A symbolic link is followed, and its target is what gets replaced; the link stays.
//! - A FIFO or a character device (`/dev/stdout`, a pipe made with `mkfifo`) is written
//!   through, never renamed over. A directory, block device or socket is refused.
//! - Temporaries are named `.NAME.tmp-PID`; one left by a process that no longer runs (a
//!   killed run) is removed the next time NAME is written.
//!
//! [`OutputPath::check`] applies the rules before any work starts, so a run that cannot
//! write its result fails at once rather than after training; [`same_file`] tells whether
//! two paths lead to one file, so an output never overwrites an input.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How an output path is written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// A regular file, or none yet: write a temporary beside `target`, rename it over.
    Replace,
    /// A FIFO or character device: open `target` and write into it.
    Stream,
}

/// An output path checked for writing: symbolic links resolved, the directory present and
/// writable, and the kind of file there known.
#[derive(Debug, Clone)]
pub struct OutputPath {
    /// As the user gave it, for messages.
    path: PathBuf,
    /// What is written: the path with every symbolic link of its last component followed.
    target: PathBuf,
    destination: Destination,
}

/// Why an output path cannot be written, as a phrase that follows the path in a sentence.
pub type Refusal = String;

impl OutputPath {
    /// Checks that `path` can be written under the rules of this module, without writing
    /// it. The refusal is a phrase to follow the path ("is a directory").
    pub fn check(path: &Path) -> std::result::Result<OutputPath, Refusal> {
        if path.as_os_str().is_empty() {
            return Err("is empty; name a file".into());
        }
        // A process's open file (`/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`): whatever the
        // descriptor is — a pipe, a terminal, a file the shell opened with `>` or `>>` —
        // writing through it, at its end, is what the user asked; renaming over the file
        // behind it would drop what `>>` kept.
        if is_descriptor(path) && std::fs::metadata(path).is_ok() {
            return Ok(OutputPath {
                path: path.to_path_buf(),
                target: path.to_path_buf(),
                destination: Destination::Stream,
            });
        }
        let target = follow_links(path)?;
        let destination = match std::fs::metadata(&target) {
            Ok(meta) => destination_of(&meta)?,
            // Not there yet (or under something that is not a directory, which
            // `check_directory` names): a new file.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Destination::Replace
            }
            Err(e) => return Err(format!("cannot be examined ({e})")),
        };
        if destination == Destination::Replace {
            check_directory(&target)?;
        }
        Ok(OutputPath {
            path: path.to_path_buf(),
            target,
            destination,
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` as the whole content of the output (see the module rules).
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        let mut pending = self.begin()?;
        pending
            .file()
            .write_all(bytes)
            .map_err(|e| io_error(&self.path, "cannot write", e))?;
        pending.commit()
    }

    /// Starts writing the output piece by piece: the returned file is a temporary beside
    /// the target (or the FIFO or device itself), which [`PendingFile::commit`] puts in
    /// place. Dropped without a commit, the temporary is removed and the target is untouched.
    pub fn begin(&self) -> Result<PendingFile> {
        match self.destination {
            Destination::Stream => {
                // Appending: at the end of what a `>>` redirection kept, and the same as
                // writing for a pipe or a device.
                let file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&self.target)
                    .map_err(|e| io_error(&self.path, "cannot open it for writing", e))?;
                Ok(PendingFile {
                    file: Some(file),
                    temporary: None,
                    output: self.clone(),
                })
            }
            Destination::Replace => {
                remove_stale_temporaries(&self.target);
                let temporary = temporary_path(&self.target);
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&temporary)
                    .map_err(|e| {
                        io_error(&self.path, "cannot create a temporary file beside it", e)
                    })?;
                // A replaced file keeps its permissions (a model shared read-only stays so).
                if let Ok(meta) = std::fs::metadata(&self.target) {
                    let _ = file.set_permissions(meta.permissions());
                }
                Ok(PendingFile {
                    file: Some(file),
                    temporary: Some(temporary),
                    output: self.clone(),
                })
            }
        }
    }

    /// Whether this output and `other` lead to the same file (see [`same_file`]).
    pub fn is_same_file(&self, other: &Path) -> bool {
        same_file(&self.target, other)
    }
}

/// An output being written: commit it to put it in place.
#[derive(Debug)]
pub struct PendingFile {
    file: Option<File>,
    temporary: Option<PathBuf>,
    output: OutputPath,
}

impl PendingFile {
    /// The file to write into.
    pub fn file(&mut self) -> &mut File {
        // Only `commit` takes the file, and it consumes `self`.
        self.file
            .as_mut()
            .expect("a pending file holds its file until committed")
    }

    /// Flushes the written bytes to disk and puts them in place: renames the temporary over
    /// the target and syncs the directory, or (FIFO, device) just flushes.
    pub fn commit(mut self) -> Result<()> {
        let path = self.output.path.clone();
        let file = self.file.take();
        if let Some(file) = &file
            && self.temporary.is_some()
        {
            file.sync_all()
                .map_err(|e| io_error(&path, "cannot flush to disk", e))?;
        }
        drop(file);
        if let Some(temporary) = self.temporary.take() {
            let target = &self.output.target;
            if let Err(e) = std::fs::rename(&temporary, target) {
                let _ = std::fs::remove_file(&temporary);
                return Err(io_error(
                    &path,
                    "cannot move the finished file into place",
                    e,
                ));
            }
            if let Ok(d) = File::open(directory_of(target)) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(temporary) = self.temporary.take() {
            self.file.take();
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// Writes `bytes` to `path` under the rules of this module: a regular file is replaced
/// atomically, so a crash or a full disk never leaves a half-written file under its name.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    OutputPath::check(path)
        .map_err(|reason| Error::Io {
            path: path.display().to_string(),
            message: format!("cannot be written: it {reason}"),
        })?
        .write(bytes)
}

/// Whether `a` and `b` lead to the same file: the same device and inode where both exist,
/// else the same absolute path once symbolic links and `..` are resolved.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    match (absolute(a), absolute(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `path` made absolute with its links followed, when its directory exists.
fn absolute(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = std::fs::canonicalize(path) {
        return Some(p);
    }
    let target = follow_links(path).ok()?;
    let name = target.file_name()?;
    Some(
        std::fs::canonicalize(directory_of(&target))
            .ok()?
            .join(name),
    )
}

/// `path` with the symbolic links of its last component followed (a link's relative
/// target is relative to the link's directory). A target that does not exist yet is fine:
/// it is what will be created.
fn follow_links(path: &Path) -> std::result::Result<PathBuf, Refusal> {
    let mut current = path.to_path_buf();
    // As the kernel does, give up on a chain longer than 40 links (a loop).
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current)
                    .map_err(|e| format!("is a symbolic link that cannot be read ({e})"))?;
                current = if link.is_absolute() {
                    link
                } else {
                    directory_of(&current).join(link)
                };
            }
            _ => return Ok(current),
        }
    }
    Err("is a symbolic link in a loop".into())
}

/// Whether `path` names an open file descriptor of a process: `/dev/stdout`,
/// `/dev/stderr`, `/dev/fd/N`, or a path under `/proc/…/fd/`, or a link leading to one.
fn is_descriptor(path: &Path) -> bool {
    let by_name = |p: &Path| {
        p.starts_with("/dev/fd")
            || p == Path::new("/dev/stdout")
            || p == Path::new("/dev/stderr")
            || (p.starts_with("/proc") && p.components().any(|c| c.as_os_str() == "fd"))
    };
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        if by_name(&current) {
            return true;
        }
        match std::fs::read_link(&current) {
            Ok(link) if link.is_absolute() => current = link,
            Ok(link) => current = directory_of(&current).join(link),
            Err(_) => return false,
        }
    }
    false
}

fn destination_of(meta: &std::fs::Metadata) -> std::result::Result<Destination, Refusal> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(Destination::Replace);
    }
    if kind.is_dir() {
        return Err("is a directory; name a file in it".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() || kind.is_char_device() {
            return Ok(Destination::Stream);
        }
        if kind.is_block_device() {
            return Err("is a block device; name a regular file".into());
        }
        if kind.is_socket() {
            return Err("is a socket; name a regular file".into());
        }
    }
    Err("is not a regular file".into())
}

/// The directory of `target` exists and a file can be created in it (tried for real: a
/// read-only mount or a missing permission says no only when asked).
fn check_directory(target: &Path) -> std::result::Result<(), Refusal> {
    let dir = directory_of(target);
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "cannot be created: {} is not a directory",
                dir.display()
            ));
        }
        Err(_) => {
            return Err(format!(
                "cannot be created: directory {} does not exist",
                dir.display()
            ));
        }
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let probe = dir.join(format!(".{name}.probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "cannot be created in {} ({})",
            dir.display(),
            plain_io_error(&e)
        )),
    }
}

/// An I/O error without Rust's "(os error N)" suffix.
fn plain_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The prefix of the temporary names an atomic write of `target` uses.
fn temporary_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    format!(".{name}.tmp-")
}

/// The temporary an atomic write of `target` goes to first: beside it, so the final rename
/// stays within one file system, and named after this process.
fn temporary_path(target: &Path) -> PathBuf {
    directory_of(target).join(format!(
        "{}{}",
        temporary_prefix(target),
        std::process::id()
    ))
}

/// Removes the temporaries of `target` left by processes that no longer run (a killed
/// run). Only where the process table can be read (`/proc`); elsewhere nothing is removed.
fn remove_stale_temporaries(target: &Path) {
    let proc = Path::new("/proc/self");
    if !proc.exists() {
        return;
    }
    let prefix = temporary_prefix(target);
    let Ok(entries) = std::fs::read_dir(directory_of(target)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub(crate) fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: format!("{what}: {}", plain_io_error(&e)),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "softmax-regression-output-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_symbolic_link_is_followed_and_stays_a_link() {
        let dir = scratch("link");
        let target = dir.join("real.bin");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.join("link.bin");
        std::os::unix::fs::symlink("real.bin", &link).unwrap();
        write_file(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn a_dangling_link_creates_its_target() {
        let dir = scratch("dangling");
        let link = dir.join("link.bin");
        std::os::unix::fs::symlink(dir.join("later.bin"), &link).unwrap();
        write_file(&link, b"made").unwrap();
        assert_eq!(std::fs::read(dir.join("later.bin")).unwrap(), b"made");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_directory_and_a_missing_directory_are_refused_before_writing() {
        let dir = scratch("dirs");
        let refusal = OutputPath::check(&dir).unwrap_err();
        assert!(refusal.contains("is a directory"), "{refusal}");
        let refusal = OutputPath::check(&dir.join("absent/model.bin")).unwrap_err();
        assert!(refusal.contains("does not exist"), "{refusal}");
        std::fs::write(dir.join("file"), b"x").unwrap();
        let refusal = OutputPath::check(&dir.join("file/model.bin")).unwrap_err();
        assert!(refusal.contains("is not a directory"), "{refusal}");
    }

    #[test]
    fn a_replaced_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let path = dir.join("m.bin");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_file(&path, b"new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = scratch("stale");
        let path = dir.join("x.npy");
        // Above Linux's largest pid (2^22), so no process has it.
        let dead = dir.join(".x.npy.tmp-4294967");
        std::fs::write(&dead, b"left by a killed run").unwrap();
        let other_live = dir.join(".x.npy.tmp-1");
        std::fs::write(&other_live, b"pid 1 runs").unwrap();
        write_file(&path, b"data").unwrap();
        assert!(
            !dead.exists(),
            "the dead process's temporary is still there"
        );
        assert!(
            other_live.exists(),
            "a running process's temporary was removed"
        );
    }

    #[test]
    fn same_file_sees_through_links_and_dot_dot() {
        let dir = scratch("same");
        let a = dir.join("a.csv");
        std::fs::write(&a, b"1,2\n").unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let via_dots = dir.join("sub/../a.csv");
        let link = dir.join("l.csv");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(same_file(&a, &via_dots));
        assert!(same_file(&a, &link));
        assert!(same_file(&dir.join("new.bin"), &dir.join("sub/../new.bin")));
        assert!(!same_file(&a, &dir.join("new.bin")));
    }
}
