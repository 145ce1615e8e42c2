//! LoRA fine-tuning of hsd-model's decoders on burn autodiff: the base weights stay frozen,
//! PEFT-shaped factors train with AdamW (burn-optim) on the target tokens of prompts built
//! exactly as evaluation builds them, optionally under per-token skip plans (skip-aware
//! training), with checkpoints that resume to the same bytes.
//!
//! ```no_run
//! # fn run(decoder: &mut hsd_model::Decoder, train: Vec<hsd_train::TrainExample>,
//! #        eval: Vec<hsd_train::TrainExample>, lora: hsd_train::LoraConfig,
//! #        config: hsd_train::TrainConfig) -> Result<(), hsd_train::TrainError> {
//! let job = hsd_train::FineTune {
//!     decoder, lora, config, train, eval, pad_id: 0, out: "runs/e2e".into(), init: None,
//! };
//! let outcome = job.run(false, &mut |_event| {})?;
//! println!("best eval loss {:?} in {}", outcome.best, outcome.adapter_dir.display());
//! # Ok(()) }
//! ```

mod batches;
mod checkpoint;
mod config;
mod error;
mod factors;
mod loss;
mod skip;
mod trainer;

pub use checkpoint::{Best, LogRow};
pub use config::{Decay, LoraConfig, SkipTraining, TrainConfig};
pub use error::TrainError;
pub use loss::{TrainExample, target_nll};
pub use trainer::{BEST_DIR, CHECKPOINT_DIR, Event, FineTune, LOG_FILE, Outcome};
