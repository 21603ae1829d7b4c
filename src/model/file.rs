//! The model file: safetensors with `weight` f32 `[K, n]` (row k is θ⁽ᵏ⁾, the layout of
//! PyTorch's `nn.Linear`), `bias` f32 `[K]`, and `__metadata__` holding `format`
//! (`softmax-regression/1`), `n_features`, `n_classes`, the class labels as JSON when
//! they were not 0…K−1, and whatever the caller adds (the binary adds its settings).
//! A model trained on standardized features also holds `feature_mean` f32 `[n]` (μ) and
//! `feature_scale` f32 `[n]` (σ, each > 0): its Θ and b apply to `(x − μ) / σ`, and
//! loading it gives a [`Model`] that standardizes its inputs itself. A file without them
//! (every file written before they existed) is a model of the raw features.
//! Files are written through [`crate::output`]: atomically, following symbolic links, and
//! byte for byte the same for the same model and metadata (the header's keys are sorted).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors};

use crate::data::standardize::Standardizer;
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

/// One tensor as [`safetensors_bytes`] writes it: its name, safetensors dtype (`"F32"`,
/// `"F64"`), shape and little-endian bytes.
pub(crate) struct RawTensor {
    pub(crate) name: String,
    pub(crate) dtype: &'static str,
    pub(crate) shape: Vec<usize>,
    pub(crate) bytes: Vec<u8>,
}

impl RawTensor {
    /// An F32 tensor of `values`.
    pub(crate) fn f32(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Self {
        RawTensor {
            name: name.into(),
            dtype: "F32",
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An F64 tensor of `values`.
    pub(crate) fn f64(name: impl Into<String>, shape: Vec<usize>, values: &[f64]) -> Self {
        RawTensor {
            name: name.into(),
            dtype: "F64",
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Tensors and string metadata as a safetensors file: the 8-byte little-endian header
/// length, the JSON header padded with spaces to a multiple of 8, then the tensors' bytes
/// in the order given. The header's keys come out sorted (`serde_json`'s map is ordered),
/// so the bytes depend only on the arguments; the safetensors crate's own writer takes a
/// `HashMap` and orders the metadata differently from run to run.
pub(crate) fn safetensors_bytes(tensors: &[RawTensor], meta: &BTreeMap<String, String>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(meta));
    let mut offset = 0usize;
    for t in tensors {
        let end = offset + t.bytes.len();
        header.insert(
            t.name.clone(),
            serde_json::json!({ "dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(8 + json.len() + offset);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for t in tensors {
        bytes.extend_from_slice(&t.bytes);
    }
    bytes
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::ModelFile {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// The largest header a safetensors file may declare (the format's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// Why [`read_safetensors`] gave up.
pub(crate) enum ReadRefusal {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is not what a safetensors header says; the reason, as a clause.
    Bad(String),
}

/// Reads a safetensors file no further than its header declares: the 8-byte header length
/// (at most the format's 100 MB), the header, then the tensor bytes it lists. A device, a
/// pipe or a damaged file costs at most what its header promises, a header promising more
/// than the memory available is refused before its data is read, and a file with more
/// than it promises is refused. A file that ends early is returned as it is, for the
/// parser to call damaged.
pub(crate) fn read_safetensors(path: &Path) -> std::result::Result<Vec<u8>, ReadRefusal> {
    use crate::formats::{available_memory, read_bounded};
    let file = std::fs::File::open(path).map_err(ReadRefusal::Io)?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let mut reader = std::io::BufReader::new(file);
    let mut out = Vec::new();
    read_bounded(&mut reader, 8, &mut out).map_err(ReadRefusal::Io)?;
    let Some(&[a, b, c, d, e, f, g, h]) = out.get(..8) else {
        return Ok(out);
    };
    let n = u64::from_le_bytes([a, b, c, d, e, f, g, h]);
    // The smallest header is "{}".
    if !(2..=MAX_HEADER).contains(&n) {
        return Err(ReadRefusal::Bad(format!(
            "its first 8 bytes declare a header of {n} bytes; safetensors headers are 2 to {MAX_HEADER} bytes"
        )));
    }
    let header_end = 8 + n;
    read_bounded(&mut reader, header_end, &mut out).map_err(ReadRefusal::Io)?;
    let header = match out.get(8..header_end as usize) {
        Some(header) => header,
        None => return Ok(out),
    };
    // A header the parser refuses needs no data to be refused.
    let Ok(metadata) = serde_json::from_slice::<safetensors::tensor::Metadata>(header) else {
        return Ok(out);
    };
    let data = metadata
        .tensors()
        .values()
        .map(|t| t.data_offsets.1 as u64)
        .max()
        .unwrap_or(0);
    let total = header_end.saturating_add(data);
    if let Some(memory) = available_memory()
        && size.map_or(total, |s| s.min(total)) > memory
    {
        return Err(ReadRefusal::Bad(format!(
            "its header declares {} of tensor data, more than the {} of memory available",
            crate::util::human_bytes(data),
            crate::util::human_bytes(memory)
        )));
    }
    if read_bounded(&mut reader, total, &mut out).map_err(ReadRefusal::Io)? {
        return Err(ReadRefusal::Bad(format!(
            "it goes on past the {total} bytes its header accounts for"
        )));
    }
    Ok(out)
}

impl Model {
    /// The model as safetensors bytes, with `extra` metadata added. The same model and
    /// metadata always give the same bytes.
    pub fn to_safetensors(&self, extra: &[(String, String)]) -> Result<Vec<u8>> {
        let (n, k) = (self.n_features(), self.n_classes());
        let mut meta: BTreeMap<String, String> = extra.iter().cloned().collect();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("n_features".into(), n.to_string());
        meta.insert("n_classes".into(), k.to_string());
        if let Some(labels) = self.labels() {
            meta.insert(
                "labels".into(),
                serde_json::to_string(labels).unwrap_or_default(),
            );
        }
        let weight: Vec<f32> = self.theta().t().iter().copied().collect();
        let mut tensors = vec![
            RawTensor::f32("weight", vec![k, n], &weight),
            RawTensor::f32("bias", vec![k], &self.bias().to_vec()),
        ];
        if let Some(s) = self.standardizer() {
            tensors.push(RawTensor::f32("feature_mean", vec![n], s.mean()));
            tensors.push(RawTensor::f32("feature_scale", vec![n], s.scale()));
        }
        Ok(safetensors_bytes(&tensors, &meta))
    }

    /// Writes the model to `path` (see [`crate::output`]: atomic, links followed).
    pub fn save(&self, path: &Path, extra: &[(String, String)]) -> Result<()> {
        crate::output::write_file(path, &self.to_safetensors(extra)?)
    }

    /// Reads a model file, checking the format tag, shapes, dtypes and that every value
    /// is finite. Returns the model and the file's metadata.
    pub fn load(path: &Path) -> Result<(Model, HashMap<String, String>)> {
        let bytes = read_safetensors(path).map_err(|refusal| match refusal {
            ReadRefusal::Io(e) => io_error(path, "cannot read the model file", e),
            ReadRefusal::Bad(why) => bad(path, format!("not a safetensors model file ({why})")),
        })?;
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
        check_format(&meta)?;
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| bad(p, format!("is damaged ({e})")))?;
        let (weight, bias) = weight_and_bias(&tensors, &meta)?;
        let (k, n) = weight.dim();
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
        let model = model
            .with_standardizer(standardizer_of(&tensors, n, k)?)
            .map_err(|e| bad(p, e.to_string()))?;
        Ok((model, meta))
    }
}

/// The `format` metadata says this is a model file of the version this code reads.
fn check_format(meta: &HashMap<String, String>) -> Result<()> {
    let p = Path::new("");
    match meta.get("format") {
        Some(f) if f == FORMAT => Ok(()),
        Some(f) => Err(bad(p, format!("has format {f:?}, expected {FORMAT:?}"))),
        None => Err(bad(
            p,
            format!(
                "is safetensors but not a softmax-regression model (no \"format\": {FORMAT:?} metadata)"
            ),
        )),
    }
}

/// An F32 tensor's shape and values.
fn read_f32(tensors: &SafeTensors<'_>, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let p = Path::new("");
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
}

/// `weight` (K, n) and `bias` (K): shapes that agree with each other and with the
/// metadata, and finite values.
fn weight_and_bias(
    tensors: &SafeTensors<'_>,
    meta: &HashMap<String, String>,
) -> Result<(Array2<f32>, Vec<f32>)> {
    let p = Path::new("");
    let (wshape, weight) = read_f32(tensors, "weight")?;
    let (bshape, bias) = read_f32(tensors, "bias")?;
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
    Ok((weight, bias))
}

/// The standardizer of a model trained on standardized features: `feature_mean` and
/// `feature_scale`, both [n], finite, the scale > 0; `None` when the file has neither.
fn standardizer_of(tensors: &SafeTensors<'_>, n: usize, k: usize) -> Result<Option<Standardizer>> {
    let p = Path::new("");
    let has = |name: &str| tensors.tensor(name).is_ok();
    match (has("feature_mean"), has("feature_scale")) {
        (false, false) => Ok(None),
        (true, true) => {
            let (mshape, mean) = read_f32(tensors, "feature_mean")?;
            let (sshape, scale) = read_f32(tensors, "feature_scale")?;
            for (name, shape) in [("feature_mean", &mshape), ("feature_scale", &sshape)] {
                if shape[..] != [n] {
                    return Err(bad(
                        p,
                        format!(
                            "tensor `{name}` has shape {shape:?}, expected [{n}] to match `weight` [{k}, {n}]"
                        ),
                    ));
                }
            }
            if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
                return Err(bad(
                    p,
                    format!("feature_mean[{i}] is {}, not finite", mean[i]),
                ));
            }
            if let Some(i) = scale.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(bad(
                    p,
                    format!(
                        "feature_scale[{i}] is {}, not a finite number > 0",
                        scale[i]
                    ),
                ));
            }
            Ok(Some(
                Standardizer::new(mean, scale).map_err(|e| bad(p, e.to_string()))?,
            ))
        }
        (mean, _) => {
            let (there, missing) = if mean {
                ("feature_mean", "feature_scale")
            } else {
                ("feature_scale", "feature_mean")
            };
            Err(bad(
                p,
                format!(
                    "has a `{there}` tensor but no `{missing}`; a standardized model needs both"
                ),
            ))
        }
    }
}
