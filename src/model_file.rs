//! The model file: safetensors with `weight` f32 `[K, n]` (row k is θ⁽ᵏ⁾, the layout of
//! PyTorch's `nn.Linear`), `bias` f32 `[K]`, and `__metadata__` holding `format`
//! (`softmax-regression/1`), `n_features`, `n_classes`, the class labels as JSON when
//! they were not 0…K−1, and whatever the caller adds (the binary adds its settings).
//! Files are written atomically: a temporary file in the same directory, fsync, rename.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::model::Model;

/// The `format` metadata value this version writes and reads.
pub const FORMAT: &str = "softmax-regression/1";

pub(crate) fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: format!("{what}: {e}"),
    }
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::ModelFile {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, so a
/// crash or a full disk never leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)
            .map_err(|e| io_error(path, "cannot create a temporary file beside it", e))?;
        f.write_all(bytes)
            .map_err(|e| io_error(path, "cannot write", e))?;
        f.sync_all()
            .map_err(|e| io_error(path, "cannot flush to disk", e))?;
        move_into_place(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The directory `path` is in (`.` for a bare file name).
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The temporary name an atomic write of `path` goes to first: beside it, so the final
/// rename stays within one file system.
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    directory_of(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Renames the complete, flushed `tmp` to `path` and makes the rename durable; a directory
/// that cannot be opened or synced (some network file systems) still has the complete
/// file under its name.
pub(crate) fn move_into_place(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path)
        .map_err(|e| io_error(path, "cannot move the finished file into place", e))?;
    if let Ok(d) = std::fs::File::open(directory_of(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Model {
    /// The model as safetensors bytes, with `extra` metadata added.
    pub fn to_safetensors(&self, extra: &[(String, String)]) -> Result<Vec<u8>> {
        let (n, k) = (self.n_features(), self.n_classes());
        let weight: Vec<f32> = self.theta().t().iter().copied().collect();
        let bias: Vec<f32> = self.bias().to_vec();
        let weight_bytes: &[u8] = bytemuck::cast_slice(&weight);
        let bias_bytes: &[u8] = bytemuck::cast_slice(&bias);
        let mut meta: HashMap<String, String> = extra.iter().cloned().collect();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("n_features".into(), n.to_string());
        meta.insert("n_classes".into(), k.to_string());
        if let Some(labels) = self.labels() {
            meta.insert(
                "labels".into(),
                serde_json::to_string(labels).unwrap_or_default(),
            );
        }
        let fail = |e: safetensors::SafeTensorError| Error::ModelFile {
            path: String::new(),
            message: e.to_string(),
        };
        let tensors = vec![
            (
                "weight",
                TensorView::new(Dtype::F32, vec![k, n], weight_bytes).map_err(fail)?,
            ),
            (
                "bias",
                TensorView::new(Dtype::F32, vec![k], bias_bytes).map_err(fail)?,
            ),
        ];
        safetensors::serialize(tensors, Some(meta)).map_err(fail)
    }

    /// Writes the model to `path` atomically (see [`write_atomic`]).
    pub fn save(&self, path: &Path, extra: &[(String, String)]) -> Result<()> {
        write_atomic(path, &self.to_safetensors(extra)?)
    }

    /// Reads a model file, checking the format tag, shapes, dtypes and that every value
    /// is finite. Returns the model and the file's metadata.
    pub fn load(path: &Path) -> Result<(Model, HashMap<String, String>)> {
        let bytes =
            std::fs::read(path).map_err(|e| io_error(path, "cannot read the model file", e))?;
        Self::from_safetensors(&bytes).map_err(|e| match e {
            Error::ModelFile { message, .. } => bad(path, message),
            other => other,
        })
    }

    /// Parses safetensors bytes written by [`Model::to_safetensors`].
    pub fn from_safetensors(bytes: &[u8]) -> Result<(Model, HashMap<String, String>)> {
        let p = Path::new("");
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(p, format!("not a safetensors model file ({e})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        match meta.get("format") {
            Some(f) if f == FORMAT => {}
            Some(f) => return Err(bad(p, format!("has format {f:?}, expected {FORMAT:?}"))),
            None => {
                return Err(bad(
                    p,
                    format!(
                        "is safetensors but not a softmax-regression model (no \"format\": {FORMAT:?} metadata)"
                    ),
                ));
            }
        }
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| bad(p, format!("is damaged ({e})")))?;
        let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let t = tensors
                .tensor(name)
                .map_err(|_| bad(p, format!("has no `{name}` tensor")))?;
            if t.dtype() != Dtype::F32 {
                return Err(bad(
                    p,
                    format!("tensor `{name}` is {:?}, expected F32", t.dtype()),
                ));
            }
            Ok((
                t.shape().to_vec(),
                bytemuck::pod_collect_to_vec::<u8, f32>(t.data()),
            ))
        };
        let (wshape, weight) = read("weight")?;
        let (bshape, bias) = read("bias")?;
        let [k, n] = wshape[..] else {
            return Err(bad(
                p,
                format!("tensor `weight` has shape {wshape:?}, expected [K, n]"),
            ));
        };
        if bshape != [k] {
            return Err(bad(
                p,
                format!(
                    "tensor `bias` has shape {bshape:?}, expected [{k}] to match `weight` [{k}, {n}]"
                ),
            ));
        }
        for (key, want) in [("n_features", n), ("n_classes", k)] {
            if let Some(v) = meta.get(key)
                && v.parse::<usize>().ok() != Some(want)
            {
                return Err(bad(
                    p,
                    format!("metadata {key} = {v} disagrees with the weight shape [{k}, {n}]"),
                ));
            }
        }
        if let Some(i) = weight.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                p,
                format!(
                    "weight[{}, {}] is {}, not finite",
                    i / n.max(1),
                    i % n.max(1),
                    weight[i]
                ),
            ));
        }
        if let Some(i) = bias.iter().position(|v| !v.is_finite()) {
            return Err(bad(p, format!("bias[{i}] is {}, not finite", bias[i])));
        }
        let weight = Array2::from_shape_vec((k, n), weight).map_err(|e| bad(p, e.to_string()))?;
        let model = Model::new(weight.t().to_owned(), Array1::from_vec(bias))
            .map_err(|e| bad(p, e.to_string()))?;
        let model = match meta.get("labels") {
            Some(json) => {
                let labels: Vec<String> = serde_json::from_str(json).map_err(|e| {
                    bad(
                        p,
                        format!("metadata labels is not a JSON list of strings ({e})"),
                    )
                })?;
                model
                    .with_labels(labels)
                    .map_err(|e| bad(p, e.to_string()))?
            }
            None => model,
        };
        Ok((model, meta))
    }
}
