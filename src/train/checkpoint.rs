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
use crate::optim::lbfgs::LbfgsState;
use crate::train::settings::Settings;

/// The `format` metadata value of checkpoint files.
pub const CHECKPOINT_FORMAT: &str = "softmax-regression-checkpoint/1";

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
            meta.insert("lbfgs_iteration".into(), state.iteration.to_string());
            meta.insert("lbfgs_evaluations".into(), state.evaluations.to_string());
            meta.insert("lbfgs_pairs".into(), state.pairs.len().to_string());
            f64s.push(RawTensor::f64("lbfgs_w", vec![state.w.len()], &state.w));
            f64s.push(RawTensor::f64("lbfgs_f", vec![1], &[state.f]));
            f64s.push(RawTensor::f64("lbfgs_g", vec![state.g.len()], &state.g));
            for (i, (s, y, rho)) in state.pairs.iter().enumerate() {
                f64s.push(RawTensor::f64(format!("lbfgs_s{i}"), vec![s.len()], s));
                f64s.push(RawTensor::f64(format!("lbfgs_y{i}"), vec![y.len()], y));
                f64s.push(RawTensor::f64(format!("lbfgs_rho{i}"), vec![1], &[*rho]));
            }
        }
        // The 8-byte values first, so they sit at offsets that are multiples of 8.
        f64s.append(&mut f32s);
        safetensors_bytes(&f64s, &meta)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Checkpoint> {
        use crate::model::file::{ReadRefusal, read_safetensors};
        let bytes = read_safetensors(path).map_err(|refusal| match refusal {
            ReadRefusal::Io(e) => bad(path, format!("cannot read it: {e}")),
            ReadRefusal::Bad(why) => bad(path, format!("is not a checkpoint file ({why})")),
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses checkpoint bytes; `path` names the file in errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(path, format!("is not a checkpoint file ({e})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(CHECKPOINT_FORMAT) {
            return Err(bad(
                path,
                format!("is not a checkpoint (no \"format\": {CHECKPOINT_FORMAT:?} metadata)"),
            ));
        }
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| bad(path, format!("is damaged ({e})")))?;
        let text = |key: &str| -> Result<String> {
            meta.get(key)
                .cloned()
                .ok_or_else(|| bad(path, format!("has no `{key}` metadata")))
        };
        let number = |key: &str| -> Result<u64> {
            text(key)?
                .parse()
                .map_err(|_| bad(path, format!("metadata `{key}` is not a whole number")))
        };
        let tensor = |name: &str, dtype: Dtype| -> Result<Vec<u8>> {
            let t = tensors
                .tensor(name)
                .map_err(|_| bad(path, format!("has no `{name}` tensor")))?;
            if t.dtype() != dtype {
                return Err(bad(path, format!("tensor `{name}` is not {dtype:?}")));
            }
            Ok(t.data().to_vec())
        };
        let f32s = |name: &str| -> Result<Vec<f32>> {
            Ok(bytemuck::pod_collect_to_vec(&tensor(name, Dtype::F32)?))
        };
        let f64s = |name: &str| -> Result<Vec<f64>> {
            Ok(bytemuck::pod_collect_to_vec(&tensor(name, Dtype::F64)?))
        };
        let scalar = |name: &str| -> Result<f64> {
            f64s(name)?
                .first()
                .copied()
                .ok_or_else(|| bad(path, format!("tensor `{name}` is empty")))
        };
        let w = f32s("w")?;
        let (m1, m2) = (f32s("m1")?, f32s("m2")?);
        if m1.len() != w.len() || m2.len() != w.len() {
            return Err(bad(path, "has optimizer moments of the wrong length"));
        }
        let best = match meta.contains_key("best_epoch") {
            true => Some((
                scalar("best_loss")?,
                number("best_epoch")? as usize,
                f32s("best_w")?,
            )),
            false => None,
        };
        let lbfgs = match meta.contains_key("lbfgs_iteration") {
            true => {
                let pairs = (0..number("lbfgs_pairs")?)
                    .map(|i| {
                        Ok((
                            f64s(&format!("lbfgs_s{i}"))?,
                            f64s(&format!("lbfgs_y{i}"))?,
                            scalar(&format!("lbfgs_rho{i}"))?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(LbfgsState {
                    iteration: number("lbfgs_iteration")? as usize,
                    evaluations: number("lbfgs_evaluations")? as usize,
                    w: f64s("lbfgs_w")?,
                    f: scalar("lbfgs_f")?,
                    g: f64s("lbfgs_g")?,
                    pairs,
                })
            }
            false => None,
        };
        Ok(Checkpoint {
            settings: text("settings")?,
            data: text("data")?,
            chunk_rows: number("chunk_rows")? as usize,
            // Checkpoints from before compact storage existed hold f32 runs.
            x_storage: meta
                .get("x_storage")
                .cloned()
                .unwrap_or_else(|| "f32".into()),
            epochs_done: number("epochs_done")? as usize,
            batches_done: number("batches_done")? as usize,
            steps: number("steps")?,
            rng_state: number("rng_state")?,
            w,
            m1,
            m2,
            finite_w: f32s("finite_w")?,
            best,
            lbfgs,
        })
    }

    /// Fails unless this checkpoint continues a run on `data` with `settings`; the message
    /// names the first difference.
    pub fn check_compatible(&self, path: &Path, settings: &Settings, data: &Dataset) -> Result<()> {
        let here = data_fingerprint(data)?;
        if self.data != here {
            let shape = |s: &str| {
                s.rsplit_once(' ')
                    .map_or(s.to_string(), |(a, _)| a.to_string())
            };
            return Err(bad(
                path,
                if shape(&self.data) != shape(&here) {
                    format!(
                        "was written for data of shape (m n K) {}, this data is {}",
                        shape(&self.data),
                        shape(&here)
                    )
                } else {
                    "was written for different data of the same shape (its fingerprint differs)"
                        .to_string()
                },
            ));
        }
        let ours = trajectory_settings(settings);
        if self.settings != ours {
            let theirs: HashMap<&str, &str> = self
                .settings
                .split(' ')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            let differ = ours
                .split(' ')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, v)| theirs.get(k) != Some(v));
            let message = match differ {
                Some((k, v)) => format!(
                    "was written with {k} = {}, this run has {k} = {v}; resume with the same settings",
                    theirs.get(k).unwrap_or(&"(unset)")
                ),
                None => {
                    "was written with different settings; resume with the same settings".to_string()
                }
            };
            return Err(bad(path, message));
        }
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
