//! Training checkpoints: everything [`crate::Trainer`] needs to continue a run so that the
//! final parameters equal those of the uninterrupted run bit for bit (same data, same
//! settings, same adapter).
//!
//! A checkpoint is a safetensors file (tag `softmax-regression-checkpoint/1`) holding the
//! parameters, the optimizer state (momentum or Adam moments, or the L-BFGS point and
//! correction pairs), the best early-stopping parameters, and in its metadata the epoch,
//! the mini-batch position within the epoch, the step count, the shuffle generator's
//! state, the settings that shape the trajectory and a fingerprint of the data. It is
//! written atomically, like model files.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};
use crate::model::file::{RawTensor, safetensors_bytes};
use crate::optim::Status;
use crate::optim::lbfgs::LbfgsState;
use crate::train::settings::Settings;
use crate::train::strength::{Candidate, Strength};

/// The `format` metadata value of checkpoint files.
pub const CHECKPOINT_FORMAT: &str = "softmax-regression-checkpoint/1";

/// The `format` metadata value of a regularisation path's checkpoint files.
pub const PATH_CHECKPOINT_FORMAT: &str = "softmax-regression-path-checkpoint/1";

/// A training run's state between two steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The trajectory-shaping settings, as [`trajectory_settings`] writes them.
    pub settings: String,
    /// `m n K` and a hash of X, the labels and the weights.
    pub data: String,
    /// Rows per device chunk (mini-batches are drawn within a chunk).
    pub chunk_rows: usize,
    /// How the device stored X (`f32`, `f16` or `u8`; `f32` on the CPU): compact storage
    /// changes the values computed with.
    pub x_storage: String,
    /// Whole epochs (L-BFGS iterations) done.
    pub epochs_done: usize,
    /// Mini-batches done within the next epoch.
    pub batches_done: usize,
    /// Optimizer steps taken (Adam's t).
    pub steps: u64,
    /// The shuffle generator's state at the start of the next epoch.
    pub rng_state: u64,
    /// Parameters w = (Θ row-major, b).
    pub w: Vec<f32>,
    /// First optimizer moment (momentum velocity or Adam's m); zeros otherwise.
    pub m1: Vec<f32>,
    /// Adam's second moment; zeros otherwise.
    pub m2: Vec<f32>,
    /// The parameters at the end of the last whole epoch whose loss was finite (what a
    /// diverging run falls back to); equal to `w` unless the checkpoint is mid-epoch.
    pub finite_w: Vec<f32>,
    /// Early stopping: (best validation log-loss, its epoch, its parameters).
    pub best: Option<(f64, usize, Vec<f32>)>,
    /// The L-BFGS state, for L-BFGS runs.
    pub lbfgs: Option<LbfgsState>,
}

/// The settings that determine the sequence of iterates, as one line; `epochs` (unless
/// the cosine schedule, whose rates depend on it, is used), `tol`, `patience` and reporting
/// may change between a run and its resumption.
pub fn trajectory_settings(s: &Settings) -> String {
    let epochs = match s.schedule {
        crate::train::settings::Schedule::Cosine => format!(" epochs={}", s.epochs),
        _ => String::new(),
    };
    // Only a standardized run says so, so that checkpoints written before the setting
    // existed still match runs without it.
    let standardize = if s.standardize {
        " standardize=true"
    } else {
        ""
    };
    format!("{}{epochs}{standardize}", trajectory_core(s))
}

fn trajectory_core(s: &Settings) -> String {
    format!(
        "optimizer={} learning_rate={:?} l2={:?} batch_size={:?} seed={} momentum={:?} beta1={:?} beta2={:?} epsilon={:?} history={} schedule={:?}",
        s.optimizer,
        s.learning_rate,
        s.l2,
        s.batch_size,
        s.seed,
        s.momentum,
        s.beta1,
        s.beta2,
        s.epsilon,
        s.history,
        s.schedule
    )
}

/// `m n K hash`: the shape and a 64-bit hash of X, the labels and the sample weights.
pub fn data_fingerprint(data: &Dataset) -> Result<String> {
    let mut h = Fingerprint::default();
    match data.csr() {
        // Sparse X by its stored values and where they are, never expanded.
        Some(x) => {
            x.indptr().iter().for_each(|&o| {
                h.add(o as u32);
                h.add((o >> 32) as u32);
            });
            x.indices().iter().for_each(|&c| h.add(c));
            x.values().iter().for_each(|v| h.add(v.to_bits()));
        }
        None => data.for_each_block(1 << 16, |_, rows| {
            rows.iter().for_each(|v| h.add(v.to_bits()));
            Ok(())
        })?,
    }
    data.labels().iter().for_each(|&l| h.add(l));
    data.weights()
        .into_iter()
        .flatten()
        .for_each(|w| h.add(w.to_bits()));
    Ok(format!(
        "{} {} {} {:016x}",
        data.n_rows(),
        data.n_features(),
        data.n_classes(),
        h.0
    ))
}

/// The 64-bit hash [`data_fingerprint`] uses, of any words (fold numbers, say).
pub(crate) fn hash_words(words: impl IntoIterator<Item = u32>) -> u64 {
    let mut h = Fingerprint::default();
    words.into_iter().for_each(|w| h.add(w));
    h.0
}

/// A multiply-xorshift hash over 32-bit words: fast, and plenty to tell datasets apart.
struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    fn add(&mut self, word: u32) {
        self.0 = (self.0 ^ u64::from(word)).wrapping_mul(0x0000_0100_0000_01b3);
        self.0 ^= self.0 >> 29;
    }
}

/// A checkpoint file's bytes.
pub(crate) fn read_checkpoint(path: &Path) -> Result<Vec<u8>> {
    use crate::model::file::{ReadRefusal, read_safetensors};
    read_safetensors(path).map_err(|refusal| match refusal {
        ReadRefusal::Io(e) => bad(path, format!("cannot read it: {e}")),
        ReadRefusal::Bad(why) => bad(path, format!("is not a checkpoint file ({why})")),
    })
}

/// The `format` metadata of checkpoint bytes, if they have one.
pub(crate) fn format_of(bytes: &[u8]) -> Option<String> {
    let (_, header) = SafeTensors::read_metadata(bytes).ok()?;
    header.metadata().as_ref()?.get("format").cloned()
}

/// An L-BFGS state as tensors named `{prefix}_w`, `{prefix}_f`, … and metadata
/// `{prefix}_iteration`, `{prefix}_evaluations`, `{prefix}_pairs`.
fn write_lbfgs(
    prefix: &str,
    state: &LbfgsState,
    meta: &mut BTreeMap<String, String>,
    f64s: &mut Vec<RawTensor>,
) {
    meta.insert(format!("{prefix}_iteration"), state.iteration.to_string());
    meta.insert(
        format!("{prefix}_evaluations"),
        state.evaluations.to_string(),
    );
    meta.insert(format!("{prefix}_pairs"), state.pairs.len().to_string());
    f64s.push(RawTensor::f64(
        format!("{prefix}_w"),
        vec![state.w.len()],
        &state.w,
    ));
    f64s.push(RawTensor::f64(format!("{prefix}_f"), vec![1], &[state.f]));
    f64s.push(RawTensor::f64(
        format!("{prefix}_g"),
        vec![state.g.len()],
        &state.g,
    ));
    for (i, (s, y, rho)) in state.pairs.iter().enumerate() {
        f64s.push(RawTensor::f64(format!("{prefix}_s{i}"), vec![s.len()], s));
        f64s.push(RawTensor::f64(format!("{prefix}_y{i}"), vec![y.len()], y));
        f64s.push(RawTensor::f64(format!("{prefix}_rho{i}"), vec![1], &[*rho]));
    }
}

/// A parsed checkpoint file: its metadata and tensors, each read with the file named in
/// errors.
struct Stored<'b> {
    path: &'b Path,
    meta: HashMap<String, String>,
    tensors: SafeTensors<'b>,
}

impl<'b> Stored<'b> {
    /// The file's parts, if its `format` is `format`.
    fn open(path: &'b Path, bytes: &'b [u8], format: &str) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(path, format!("is not a checkpoint file ({e})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        match meta.get("format").map(String::as_str) {
            Some(f) if f == format => {}
            Some(CHECKPOINT_FORMAT) => {
                return Err(bad(
                    path,
                    "is the checkpoint of a one-strength run; resume it without a path of strengths",
                ));
            }
            Some(PATH_CHECKPOINT_FORMAT) => {
                return Err(bad(
                    path,
                    "is the checkpoint of a regularisation path; resume it with the same strengths and selection flags",
                ));
            }
            _ => {
                return Err(bad(
                    path,
                    format!("is not a checkpoint (no \"format\": {format:?} metadata)"),
                ));
            }
        }
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| bad(path, format!("is damaged ({e})")))?;
        Ok(Stored {
            path,
            meta,
            tensors,
        })
    }

    fn has(&self, key: &str) -> bool {
        self.meta.contains_key(key)
    }

    fn text(&self, key: &str) -> Result<String> {
        self.meta
            .get(key)
            .cloned()
            .ok_or_else(|| bad(self.path, format!("has no `{key}` metadata")))
    }

    fn number(&self, key: &str) -> Result<u64> {
        self.text(key)?
            .parse()
            .map_err(|_| bad(self.path, format!("metadata `{key}` is not a whole number")))
    }

    fn tensor(&self, name: &str, dtype: Dtype) -> Result<Vec<u8>> {
        let t = self
            .tensors
            .tensor(name)
            .map_err(|_| bad(self.path, format!("has no `{name}` tensor")))?;
        if t.dtype() != dtype {
            return Err(bad(self.path, format!("tensor `{name}` is not {dtype:?}")));
        }
        Ok(t.data().to_vec())
    }

    fn f32s(&self, name: &str) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(
            &self.tensor(name, Dtype::F32)?,
        ))
    }

    fn f64s(&self, name: &str) -> Result<Vec<f64>> {
        Ok(bytemuck::pod_collect_to_vec(
            &self.tensor(name, Dtype::F64)?,
        ))
    }

    fn scalar(&self, name: &str) -> Result<f64> {
        self.f64s(name)?
            .first()
            .copied()
            .ok_or_else(|| bad(self.path, format!("tensor `{name}` is empty")))
    }

    /// The L-BFGS state [`write_lbfgs`] wrote under `prefix`.
    fn lbfgs(&self, prefix: &str) -> Result<LbfgsState> {
        let pairs = (0..self.number(&format!("{prefix}_pairs"))?)
            .map(|i| {
                Ok((
                    self.f64s(&format!("{prefix}_s{i}"))?,
                    self.f64s(&format!("{prefix}_y{i}"))?,
                    self.scalar(&format!("{prefix}_rho{i}"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LbfgsState {
            iteration: self.number(&format!("{prefix}_iteration"))? as usize,
            evaluations: self.number(&format!("{prefix}_evaluations"))? as usize,
            w: self.f64s(&format!("{prefix}_w"))?,
            f: self.scalar(&format!("{prefix}_f"))?,
            g: self.f64s(&format!("{prefix}_g"))?,
            pairs,
        })
    }
}

/// Fails unless a checkpoint's data fingerprint `theirs` is `here`'s.
fn same_data(path: &Path, theirs: &str, here: &str) -> Result<()> {
    if theirs == here {
        return Ok(());
    }
    let shape = |s: &str| {
        s.rsplit_once(' ')
            .map_or(s.to_string(), |(a, _)| a.to_string())
    };
    Err(bad(
        path,
        if shape(theirs) != shape(here) {
            format!(
                "was written for data of shape (m n K) {}, this data is {}",
                shape(theirs),
                shape(here)
            )
        } else {
            "was written for different data of the same shape, or for the same data split between another number of ranks (its fingerprint differs)".to_string()
        },
    ))
}

/// Fails unless a checkpoint's settings line `theirs` is `ours`, naming the first
/// setting that differs.
fn same_settings(path: &Path, theirs: &str, ours: &str) -> Result<()> {
    if theirs == ours {
        return Ok(());
    }
    let written: HashMap<&str, &str> = theirs
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let differ = ours
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| written.get(k) != Some(v));
    let message = match differ {
        Some((k, v)) => format!(
            "was written with {k} = {}, this run has {k} = {v}; resume with the same settings",
            written.get(k).unwrap_or(&"(unset)")
        ),
        None => "was written with different settings; resume with the same settings".to_string(),
    };
    Err(bad(path, message))
}

fn bad(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::output::write_file(path, &self.to_bytes())
    }

    /// The checkpoint as safetensors bytes: the same state always gives the same bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), CHECKPOINT_FORMAT.to_string());
        meta.insert("settings".into(), self.settings.clone());
        meta.insert("data".into(), self.data.clone());
        meta.insert("x_storage".into(), self.x_storage.clone());
        for (key, value) in [
            ("chunk_rows", self.chunk_rows as u64),
            ("epochs_done", self.epochs_done as u64),
            ("batches_done", self.batches_done as u64),
            ("steps", self.steps),
            ("rng_state", self.rng_state),
        ] {
            meta.insert(key.into(), value.to_string());
        }
        // Every float is stored as a tensor so it survives bit for bit.
        let mut f32s = vec![
            RawTensor::f32("w", vec![self.w.len()], &self.w),
            RawTensor::f32("m1", vec![self.m1.len()], &self.m1),
            RawTensor::f32("m2", vec![self.m2.len()], &self.m2),
            RawTensor::f32("finite_w", vec![self.finite_w.len()], &self.finite_w),
        ];
        let mut f64s = Vec::new();
        if let Some((loss, epoch, w)) = &self.best {
            meta.insert("best_epoch".into(), epoch.to_string());
            f64s.push(RawTensor::f64("best_loss", vec![1], &[*loss]));
            f32s.push(RawTensor::f32("best_w", vec![w.len()], w));
        }
        if let Some(state) = &self.lbfgs {
            write_lbfgs("lbfgs", state, &mut meta, &mut f64s);
        }
        // The 8-byte values first, so they sit at offsets that are multiples of 8.
        f64s.append(&mut f32s);
        safetensors_bytes(&f64s, &meta)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Checkpoint> {
        Self::from_bytes(path, &read_checkpoint(path)?)
    }

    /// Parses checkpoint bytes; `path` names the file in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
        let file = Stored::open(path, bytes, CHECKPOINT_FORMAT)?;
        let w = file.f32s("w")?;
        let (m1, m2) = (file.f32s("m1")?, file.f32s("m2")?);
        if m1.len() != w.len() || m2.len() != w.len() {
            return Err(bad(path, "has optimizer moments of the wrong length"));
        }
        let best = match file.has("best_epoch") {
            true => Some((
                file.scalar("best_loss")?,
                file.number("best_epoch")? as usize,
                file.f32s("best_w")?,
            )),
            false => None,
        };
        let lbfgs = match file.has("lbfgs_iteration") {
            true => Some(file.lbfgs("lbfgs")?),
            false => None,
        };
        Ok(Checkpoint {
            settings: file.text("settings")?,
            data: file.text("data")?,
            chunk_rows: file.number("chunk_rows")? as usize,
            // Checkpoints from before compact storage existed hold f32 runs.
            x_storage: file.text("x_storage").unwrap_or_else(|_| "f32".into()),
            epochs_done: file.number("epochs_done")? as usize,
            batches_done: file.number("batches_done")? as usize,
            steps: file.number("steps")?,
            rng_state: file.number("rng_state")?,
            w,
            m1,
            m2,
            finite_w: file.f32s("finite_w")?,
            best,
            lbfgs,
        })
    }

    /// (rows per device chunk, storage of X) the run was written with.
    pub(crate) fn device(&self) -> (usize, &str) {
        (self.chunk_rows, &self.x_storage)
    }

    /// Fails unless this checkpoint continues a run on `data` (whose fingerprint, over every
    /// rank's rows when there are ranks, is `fingerprint`) with `settings`; the message
    /// names the first difference.
    pub fn check_compatible(
        &self,
        path: &Path,
        settings: &Settings,
        data: &Dataset,
        fingerprint: &str,
    ) -> Result<()> {
        same_data(path, &self.data, fingerprint)?;
        same_settings(path, &self.settings, &trajectory_settings(settings))?;
        let len = data.n_features() * data.n_classes() + data.n_classes();
        let lengths_ok = [&self.w, &self.m1, &self.m2, &self.finite_w]
            .into_iter()
            .chain(self.best.as_ref().map(|b| &b.2))
            .all(|v| v.len() == len);
        if !lengths_ok {
            return Err(bad(
                path,
                "holds parameters of the wrong length for this data",
            ));
        }
        if self
            .best
            .as_ref()
            .is_some_and(|b| b.1 > self.epochs_done || !b.0.is_finite())
        {
            return Err(bad(
                path,
                "is damaged (its best epoch is not one it has run)",
            ));
        }
        Ok(())
    }
}

/// A path's place in what writes its checkpoints: the settings line and data fingerprint
/// of the whole run (a lone path, or a selection over folds), the stage (fold, or refit)
/// and the results of the stages before it.
pub(crate) struct Stage<'a> {
    pub(crate) journal: &'a Journal,
    pub(crate) index: usize,
    pub(crate) earlier: &'a [Candidate],
}

/// What a path's checkpoints are checked against: the trajectory settings with the path's
/// strengths and selection, and the fingerprint of the data the run was given.
pub(crate) struct Journal {
    pub(crate) settings: String,
    pub(crate) data: String,
}

/// A regularisation path's state, or a selection's (cross-validation over folds, each a
/// path, then the refit): every model's L-BFGS state at an iteration of its own, the
/// stage reached and the results of the stages before it.
///
/// A path that writes checkpoints puts every model in its own place on every oracle call
/// ([`crate::optim::path::Batching::Fixed`]), so each model's values depend on its own
/// point alone and a resumed path ends where the uninterrupted one ends, bit for bit
/// (same data, same settings, same adapter and memory budget).
#[derive(Debug, Clone, PartialEq)]
pub struct PathCheckpoint {
    /// The trajectory-shaping settings and the path's strengths and selection, as one line.
    pub settings: String,
    /// `m n K` and a hash of the data the selection was given.
    pub data: String,
    /// The stage in progress: the fold being trained (0 for a lone path or a validation
    /// split), or the number of folds for the refit.
    pub stage: usize,
    /// Rows per device chunk of the stage's oracle (0 on the CPU).
    pub chunk_rows: usize,
    /// How the device stored X.
    pub x_storage: String,
    /// Models per pass over X on the device (1 on the CPU or for warm starts).
    pub models_per_pass: usize,
    /// Each model's state at its last checkpointed iteration; `None` for a model that had
    /// none (it starts where it would have).
    pub models: Vec<Option<LbfgsState>>,
    /// The results of the stages before this one, one per strength.
    pub earlier: Vec<Candidate>,
}

impl PathCheckpoint {
    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::output::write_file(path, &self.to_bytes())
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), PATH_CHECKPOINT_FORMAT.to_string());
        meta.insert("settings".into(), self.settings.clone());
        meta.insert("data".into(), self.data.clone());
        meta.insert("x_storage".into(), self.x_storage.clone());
        for (key, value) in [
            ("stage", self.stage),
            ("chunk_rows", self.chunk_rows),
            ("models_per_pass", self.models_per_pass),
            ("models", self.models.len()),
            ("earlier", self.earlier.len()),
        ] {
            meta.insert(key.into(), value.to_string());
        }
        let mut f64s = Vec::new();
        for (s, state) in self.models.iter().enumerate() {
            if let Some(state) = state {
                write_lbfgs(&format!("model{s}"), state, &mut meta, &mut f64s);
            }
        }
        let list = |values: &mut dyn Iterator<Item = String>| values.collect::<Vec<_>>().join(",");
        for (i, c) in self.earlier.iter().enumerate() {
            meta.insert(format!("earlier{i}_strength"), c.strength.setting().into());
            f64s.push(RawTensor::f64(
                format!("earlier{i}_value"),
                vec![1],
                &[c.strength.value()],
            ));
            f64s.push(RawTensor::f64(
                format!("earlier{i}_scores"),
                vec![c.scores.len()],
                &c.scores,
            ));
            f64s.push(RawTensor::f64(
                format!("earlier{i}_train_loss"),
                vec![c.train_loss.len()],
                &c.train_loss,
            ));
            for (key, values) in [
                (
                    "iterations",
                    list(&mut c.iterations.iter().map(usize::to_string)),
                ),
                (
                    "evaluations",
                    list(&mut c.evaluations.iter().map(usize::to_string)),
                ),
                (
                    "statuses",
                    list(&mut c.statuses.iter().map(|s| s.name().to_string())),
                ),
            ] {
                meta.insert(format!("earlier{i}_{key}"), values);
            }
        }
        safetensors_bytes(&f64s, &meta)
    }

    /// Reads a checkpoint written by [`PathCheckpoint::save`].
    pub fn load(path: &Path) -> Result<PathCheckpoint> {
        Self::from_bytes(path, &read_checkpoint(path)?)
    }

    /// Parses path checkpoint bytes; `path` names the file in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<PathCheckpoint> {
        let file = Stored::open(path, bytes, PATH_CHECKPOINT_FORMAT)?;
        let models = (0..file.number("models")?)
            .map(|s| {
                let prefix = format!("model{s}");
                match file.has(&format!("{prefix}_iteration")) {
                    true => file.lbfgs(&prefix).map(Some),
                    false => Ok(None),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let earlier = (0..file.number("earlier")?)
            .map(|i| file.candidate(i as usize))
            .collect::<Result<Vec<_>>>()?;
        Ok(PathCheckpoint {
            settings: file.text("settings")?,
            data: file.text("data")?,
            stage: file.number("stage")? as usize,
            chunk_rows: file.number("chunk_rows")? as usize,
            x_storage: file.text("x_storage")?,
            models_per_pass: file.number("models_per_pass")? as usize,
            models,
            earlier,
        })
    }

    /// Fails unless this checkpoint continues a path or selection whose settings line is
    /// `settings` on data with fingerprint `data`, with `len` parameters per model.
    pub fn check_compatible(
        &self,
        path: &Path,
        settings: &str,
        data: &str,
        len: usize,
    ) -> Result<()> {
        same_data(path, &self.data, data)?;
        same_settings(path, &self.settings, settings)?;
        let states_ok = self.models.iter().flatten().all(|st| {
            st.w.len() == len && st.g.len() == len && st.pairs.iter().all(|p| p.0.len() == len)
        });
        let earlier_ok = self.earlier.iter().all(|c| {
            let n = c.scores.len();
            n == self.stage
                && [c.train_loss.len(), c.iterations.len(), c.evaluations.len()]
                    .iter()
                    .chain([&c.statuses.len()])
                    .all(|&l| l == n)
        });
        if !states_ok || !earlier_ok {
            return Err(bad(
                path,
                "is damaged (its models or earlier results do not fit its path)",
            ));
        }
        Ok(())
    }
}

impl Stored<'_> {
    /// Candidate `i` of a path checkpoint's earlier stages.
    fn candidate(&self, i: usize) -> Result<Candidate> {
        let value = self.scalar(&format!("earlier{i}_value"))?;
        let strength = match self.text(&format!("earlier{i}_strength"))?.as_str() {
            "C" => Strength::C(value),
            _ => Strength::L2(value),
        };
        let list = |key: &str| -> Result<Vec<String>> {
            let text = self.text(&format!("earlier{i}_{key}"))?;
            Ok(text
                .split(',')
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect())
        };
        let counts = |key: &str| -> Result<Vec<usize>> {
            list(key)?
                .iter()
                .map(|v| {
                    v.parse().map_err(|_| {
                        bad(
                            self.path,
                            format!("metadata `earlier{i}_{key}` is not a list of whole numbers"),
                        )
                    })
                })
                .collect()
        };
        let statuses = list("statuses")?
            .iter()
            .map(|name| {
                Status::from_name(name)
                    .ok_or_else(|| bad(self.path, format!("holds an unknown status {name:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Candidate {
            strength,
            scores: self.f64s(&format!("earlier{i}_scores"))?,
            train_loss: self.f64s(&format!("earlier{i}_train_loss"))?,
            iterations: counts("iterations")?,
            evaluations: counts("evaluations")?,
            statuses,
        })
    }
}
