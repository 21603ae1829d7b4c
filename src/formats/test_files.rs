//! Files for the readers' tests: a temporary directory, and NPY, IDX and gzip bytes built
//! the way the tools that write them do.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{LoadOptions, RawLabels, load};

/// A fresh directory under the system temp dir, removed when dropped.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("softmax-formats-{}-{tag}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(super) fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub(super) fn labelled() -> LoadOptions {
    LoadOptions {
        csv_has_labels: true,
        ..LoadOptions::default()
    }
}

/// An NPY file as numpy.save writes it (header padded to 64 bytes).
pub(super) fn npy(version: u8, descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    // A structured descr is a list literal; plain ones are quoted strings.
    let descr = if descr.starts_with('[') {
        descr.to_string()
    } else {
        format!("'{descr}'")
    };
    let mut header =
        format!("{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}");
    let prefix = if version == 1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

pub(super) fn idx(ty: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, ty, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

pub(super) fn f32_le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(super) fn load_err(path: &Path, options: &LoadOptions) -> String {
    match load(path, options) {
        Ok(loaded) => panic!("expected an error, got {:?}", loaded.x.dim()),
        Err(e) => {
            assert_eq!(e.path, path);
            e.to_string()
        }
    }
}

/// The message of an error that names a file other than the data file.
pub(super) fn load_err_at(path: &Path, options: &LoadOptions) -> String {
    match load(path, options) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// The rows of a CSV as `(x, labels)`, or the error's message.
pub(super) fn csv(
    dir: &TempDir,
    text: &str,
    options: &LoadOptions,
) -> Result<(Vec<Vec<f32>>, Option<RawLabels>), String> {
    let path = dir.write("data.csv", text);
    load(&path, options)
        .map(|l| (l.x.outer_iter().map(|r| r.to_vec()).collect(), l.labels))
        .map_err(|e| e.to_string())
}
