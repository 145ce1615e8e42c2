//! Resumable checkpoints: the factors, their AdamW moments and the run's counters, written
//! atomically (a new directory renamed into place) so that a kill at any instant leaves the
//! last complete one.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use hsd_model::weights::{SafetensorsDir, TensorSource};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::error::io;
use crate::factors::{Factors, adam_state, host, matrix, moments};

const STATE: &str = "state.json";
const TENSORS: &str = "tensors.safetensors";

/// One row of the training log (`train_log.csv`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// Updates done, 1-based.
    pub step: usize,
    pub lr: f64,
    /// Mean target-token loss of the update's batches.
    pub train_loss: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens (inputs, no padding) the update read.
    pub tokens: usize,
    pub seconds: f64,
    /// Mean target-token loss on the held-out slice, on evaluation updates.
    pub eval_loss: Option<f64>,
}

impl LogRow {
    pub const CSV_HEADER: &'static str = "step,lr,train_loss,grad_norm,tokens,seconds,eval_loss";

    pub fn csv(&self) -> String {
        format!(
            "{},{:.6e},{:.6},{:.6},{},{:.3},{}",
            self.step,
            self.lr,
            self.train_loss,
            self.grad_norm,
            self.tokens,
            self.seconds,
            self.eval_loss.map_or(String::new(), |l| format!("{l:.6}"))
        )
    }
}

/// The best eval loss so far and the update it came after.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub step: usize,
    pub eval_loss: f64,
}

/// What a checkpoint holds besides tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunState {
    /// Updates done.
    pub(crate) step: usize,
    pub(crate) best: Option<Best>,
    pub(crate) log: Vec<LogRow>,
    /// The hash of the run's knobs and examples: a checkpoint only resumes its own run.
    pub(crate) fingerprint: String,
}

pub(crate) fn save(dir: &Path, state: &RunState, factors: &Factors) -> Result<(), TrainError> {
    let staging = sibling(dir, "tmp");
    let old = sibling(dir, "old");
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    fs::create_dir_all(&staging).map_err(io(&staging))?;
    let text = serde_json::to_string_pretty(state).map_err(|e| TrainError::Checkpoint {
        path: staging.join(STATE),
        reason: e.to_string(),
    })?;
    fs::write(staging.join(STATE), text).map_err(io(&staging.join(STATE)))?;
    write_tensors(&staging.join(TENSORS), factors)?;
    if dir.exists() {
        if old.exists() {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        fs::rename(dir, &old).map_err(io(dir))?;
    }
    fs::rename(&staging, dir).map_err(io(dir))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

/// The last complete checkpoint under `dir`, if any, loaded into `factors`.
pub(crate) fn load(dir: &Path, factors: &mut Factors) -> Result<Option<RunState>, TrainError> {
    let dir = if dir.join(STATE).exists() {
        dir.to_owned()
    } else if sibling(dir, "old").join(STATE).exists() {
        sibling(dir, "old")
    } else {
        return Ok(None);
    };
    let path = dir.join(STATE);
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    let state: RunState = serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    read_tensors(&dir.join(TENSORS), factors)?;
    Ok(Some(state))
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

fn write_tensors(path: &Path, factors: &Factors) -> Result<(), TrainError> {
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut time = 0;
    for t in &factors.tensors {
        let mut parts = vec![(t.name.clone(), &t.value)];
        if let Some(state) = &t.adam {
            let (steps, m1, m2) = moments(state);
            time = steps;
            parts.push((format!("{}.exp_avg", t.name), m1));
            parts.push((format!("{}.exp_avg_sq", t.name), m2));
        }
        for (name, tensor) in parts {
            let h = host(&name, tensor)?;
            let bytes = h.data.iter().flat_map(|x| x.to_le_bytes()).collect();
            named.push((name, h.shape, bytes));
        }
    }
    let views = named
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| TrainError::Checkpoint {
                    path: path.to_owned(),
                    reason: format!("{name}: {e}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let metadata = HashMap::from([("adam_time".to_string(), time.to_string())]);
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| TrainError::Checkpoint {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    fs::write(path, bytes).map_err(io(path))
}

fn read_tensors(path: &Path, factors: &mut Factors) -> Result<(), TrainError> {
    let bytes = fs::read(path).map_err(io(path))?;
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| TrainError::Checkpoint {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let time: Option<usize> = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("adam_time"))
        .and_then(|t| t.parse().ok());
    let source = SafetensorsDir::open(path)?;
    for t in &mut factors.tensors {
        let device = t.value.device();
        let dims = t.value.dims();
        let load = |name: &str| -> Result<burn::tensor::Tensor<2>, TrainError> {
            let h = source.load(name)?;
            let [rows, cols] = h.shape[..] else {
                return Err(TrainError::Checkpoint {
                    path: path.to_owned(),
                    reason: format!("`{name}` is not a matrix"),
                });
            };
            if [rows, cols] != dims {
                return Err(TrainError::Checkpoint {
                    path: path.to_owned(),
                    reason: format!("`{name}` is {:?}, the run's factor is {:?}", h.shape, dims),
                });
            }
            Ok(matrix(h.data, [rows, cols], &device))
        };
        t.value = load(&t.name)?;
        let avg = format!("{}.exp_avg", t.name);
        t.adam = match time {
            Some(time) if source.contains(&avg) => Some(adam_state(
                time,
                load(&avg)?,
                load(&format!("{}.exp_avg_sq", t.name))?,
            )),
            _ => None,
        };
    }
    Ok(())
}
