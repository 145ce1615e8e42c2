//! The training loop: accumulated AdamW updates on LoRA factors over seeded batches, eval
//! loss on a held-out slice with the best adapter kept, and checkpoints to resume from.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Tensor;
use hsd_model::weights::PeftAdapter;
use hsd_model::{Decoder, LoraScaling, TokenRuns};
use rand_xoshiro::rand_core::Rng;
use sha2::{Digest, Sha256};

use crate::TrainError;
use crate::batches::{Batches, stream};
use crate::checkpoint::{self, Best, LogRow, RunState};
use crate::config::{LoraConfig, TrainConfig};
use crate::error::io;
use crate::factors::{Factors, optimizer, read};
use crate::loss::{TrainExample, target_nll};
use crate::skip::sequence_runs;

const DROPOUT_STREAM: u64 = 4;

/// What a run's directory holds.
pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const BEST_DIR: &str = "best";
pub const LOG_FILE: &str = "train_log.csv";

/// One fine-tuning run.
pub struct FineTune<'a> {
    pub decoder: &'a mut Decoder,
    pub lora: LoraConfig,
    pub config: TrainConfig,
    pub train: Vec<TrainExample>,
    /// The held-out slice for the eval loss; never trained on.
    pub eval: Vec<TrainExample>,
    pub pad_id: u32,
    /// Where the checkpoint, the best adapter and the log go.
    pub out: PathBuf,
    /// Factors to start from instead of PEFT's initialisation (continued training).
    pub init: Option<PeftAdapter>,
}

/// Progress, for a bar or a log.
pub enum Event<'a> {
    /// The run starts at update `done` of `total`.
    Started {
        done: usize,
        total: usize,
    },
    Update(&'a LogRow),
    Checkpoint {
        step: usize,
    },
}

/// How a finished run went.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub steps: usize,
    pub best: Option<Best>,
    pub log: Vec<LogRow>,
    /// The adapter kept: `<out>/best`.
    pub adapter_dir: PathBuf,
}

impl FineTune<'_> {
    /// Trains, continuing from the run's last checkpoint when `resume` is set. A resumed run
    /// ends with the same adapter bytes as an uninterrupted one.
    pub fn run(
        mut self,
        resume: bool,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<Outcome, TrainError> {
        self.config.check()?;
        self.lora.check()?;
        let max_len = self.config.max_len;
        for examples in [&mut self.train, &mut self.eval] {
            for e in examples.iter() {
                e.check()?;
            }
            let owned = std::mem::take(examples);
            *examples = owned.into_iter().map(|e| e.truncated(max_len)).collect();
        }
        if self.train.is_empty() {
            return Err(TrainError::Config {
                field: "train".into(),
                reason: "no training examples".into(),
            });
        }
        fs::create_dir_all(&self.out).map_err(io(&self.out))?;
        let checkpoint_dir = self.out.join(CHECKPOINT_DIR);
        let fingerprint = self.fingerprint();
        let mut factors = match &self.init {
            Some(adapter) => Factors::from_adapter(self.decoder, &self.lora, adapter)?,
            None => Factors::init(self.decoder, &self.lora, self.config.seed)?,
        };
        let mut state = if resume {
            checkpoint::load(&checkpoint_dir, &mut factors)?
        } else {
            None
        }
        .unwrap_or(RunState {
            step: 0,
            best: None,
            log: Vec::new(),
            fingerprint: fingerprint.clone(),
        });
        if state.fingerprint != fingerprint {
            return Err(TrainError::Checkpoint {
                path: checkpoint_dir,
                reason: "was written by a run with other knobs or examples; remove the directory to start afresh".into(),
            });
        }
        if !resume && checkpoint_dir.exists() {
            return Err(TrainError::Checkpoint {
                path: checkpoint_dir,
                reason: "exists: pass --resume to continue that run, or remove it".into(),
            });
        }
        let gpt2 = factors
            .modules
            .iter()
            .any(|m| m.name.starts_with("transformer."));
        let scaling = LoraScaling {
            scale: self.lora.scale(),
            dropout: self.lora.dropout,
        };
        let optimizer = optimizer(&self.config);
        let lengths = self.train.iter().map(TrainExample::len).collect();
        let mut batches = Batches::new(lengths, self.config.batch_size, self.config.seed);
        let best_dir = self.out.join(BEST_DIR);
        on_event(Event::Started {
            done: state.step,
            total: self.config.steps,
        });
        for step in state.step..self.config.steps {
            let started = Instant::now();
            let lr = self.config.lr_at(step);
            let micro: Vec<Vec<usize>> = (0..self.config.grad_accum)
                .map(|j| batches.get(step * self.config.grad_accum + j).to_vec())
                .collect();
            let targets: usize = micro
                .iter()
                .flatten()
                .map(|&i| self.train[i].target.len())
                .sum();
            let (keyed, leaves) = factors.leaves();
            self.decoder.set_lora(&keyed, scaling)?;
            let mut grads: Vec<Option<Tensor<2>>> = vec![None; leaves.len()];
            let (mut train_loss, mut tokens) = (0.0, 0);
            for (j, indices) in micro.iter().enumerate() {
                let k = (step * self.config.grad_accum + j) as u64;
                let rows: Vec<&TrainExample> = indices.iter().map(|&i| &self.train[i]).collect();
                tokens += rows.iter().map(|e| e.inputs().len()).sum::<usize>();
                let runs = self.token_runs(&rows, k)?;
                self.decoder
                    .seed_lora_dropout(stream(self.config.seed, DROPOUT_STREAM, k).next_u64());
                let (nll, _) = target_nll(self.decoder, &rows, runs.as_ref(), self.pad_id)?;
                let loss = nll.div_scalar(targets as f64);
                train_loss += f64::from(read(loss.clone())?[0]);
                let backward = loss.backward();
                for (sum, leaf) in grads.iter_mut().zip(&leaves) {
                    let grad = leaf
                        .grad(&backward)
                        .unwrap_or_else(|| leaf.clone().inner().zeros_like());
                    *sum = Some(match sum.take() {
                        Some(s) => s + grad,
                        None => grad,
                    });
                }
            }
            let grads: Vec<Tensor<2>> = grads.into_iter().flatten().collect();
            let grad_norm = global_norm(&grads)?;
            let grads = clip(grads, grad_norm, self.config.max_grad_norm);
            factors.update(&optimizer, lr, grads);
            let mut row = LogRow {
                step: step + 1,
                lr,
                train_loss,
                grad_norm,
                tokens,
                seconds: started.elapsed().as_secs_f64(),
                eval_loss: None,
            };
            let last = step + 1 == self.config.steps;
            if (step + 1) % self.config.eval_every == 0 || last {
                let loss = self.eval_loss(&factors, scaling)?;
                row.eval_loss = loss;
                let improved = match (loss, state.best) {
                    (None, _) => last,
                    (Some(_), None) => true,
                    (Some(l), Some(best)) => l < best.eval_loss,
                };
                if improved {
                    state.best = loss.map(|eval_loss| Best {
                        step: step + 1,
                        eval_loss,
                    });
                    factors.adapter(&self.lora, gpt2)?.write(&best_dir)?;
                }
            }
            state.log.push(row);
            state.step = step + 1;
            on_event(Event::Update(state.log.last().expect("pushed")));
            if (step + 1) % self.config.checkpoint_every == 0 || last {
                write_log(&self.out.join(LOG_FILE), &state.log)?;
                checkpoint::save(&checkpoint_dir, &state, &factors)?;
                on_event(Event::Checkpoint { step: step + 1 });
            }
        }
        self.decoder.clear_lora();
        Ok(Outcome {
            steps: state.step,
            best: state.best,
            log: state.log,
            adapter_dir: best_dir,
        })
    }

    /// Per-token layer plans for skip-aware training; `None` when it is off.
    fn token_runs(&self, rows: &[&TrainExample], k: u64) -> Result<Option<TokenRuns>, TrainError> {
        let Some(skip) = &self.config.train_skip else {
            return Ok(None);
        };
        let layers = self.decoder.shapes().layers;
        let runs = rows
            .iter()
            .enumerate()
            .map(|(row, e)| {
                sequence_runs(
                    skip,
                    self.config.seed,
                    (k << 16) | row as u64,
                    layers,
                    e.prompt.len(),
                    e.inputs().len(),
                    skip.max_new_tokens,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(TokenRuns::new(runs)))
    }

    /// The mean target-token loss on the held-out slice with every layer running.
    fn eval_loss(
        &mut self,
        factors: &Factors,
        scaling: LoraScaling,
    ) -> Result<Option<f64>, TrainError> {
        if self.eval.is_empty() {
            return Ok(None);
        }
        self.decoder.set_lora(
            &factors.values(),
            LoraScaling {
                dropout: 0.0,
                ..scaling
            },
        )?;
        let mut order: Vec<&TrainExample> = self.eval.iter().collect();
        order.sort_by_key(|e| e.len());
        let (mut sum, mut count) = (0.0, 0);
        for rows in order.chunks(self.config.batch_size) {
            let (nll, n) = target_nll(self.decoder, rows, None, self.pad_id)?;
            sum += f64::from(read(nll)?[0]);
            count += n;
        }
        Ok(Some(sum / count as f64))
    }

    fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(serde_json::to_string(&self.lora).unwrap_or_default());
        hash.update(serde_json::to_string(&self.config).unwrap_or_default());
        if let Some(init) = &self.init {
            for f in init.factors.values() {
                for x in f.a.data.iter().chain(&f.b.data) {
                    hash.update(x.to_le_bytes());
                }
            }
        }
        for (tag, examples) in [("train", &self.train), ("eval", &self.eval)] {
            hash.update(tag);
            for e in examples {
                hash.update(e.id.as_bytes());
                for id in e.prompt.iter().chain(&e.target) {
                    hash.update(id.to_le_bytes());
                }
            }
        }
        format!("{:x}", hash.finalize())
    }
}

fn global_norm(grads: &[Tensor<2>]) -> Result<f64, TrainError> {
    let mut sum = 0.0;
    for g in grads {
        sum += f64::from(read(g.clone().powi_scalar(2).sum())?[0]);
    }
    Ok(sum.sqrt())
}

/// PyTorch's `clip_grad_norm_`: scales by `max / (norm + 1e-6)` when the norm exceeds `max`.
fn clip(grads: Vec<Tensor<2>>, norm: f64, max: f64) -> Vec<Tensor<2>> {
    if max <= 0.0 || norm <= max {
        return grads;
    }
    let factor = max / (norm + 1e-6);
    grads.into_iter().map(|g| g * factor).collect()
}

fn write_log(path: &Path, log: &[LogRow]) -> Result<(), TrainError> {
    let mut text = String::from(LogRow::CSV_HEADER);
    text.push('\n');
    for row in log {
        text.push_str(&row.csv());
        text.push('\n');
    }
    fs::write(path, text).map_err(io(path))
}
