//! The knobs of a fine-tuning run, as a manifest's `[finetune]` tables spell them.

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Which projections get LoRA factors, and their size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    pub rank: usize,
    /// The factors are scaled by `alpha / rank`, as in PEFT.
    pub alpha: f64,
    /// PEFT's `lora_dropout`: the probability of zeroing an input of the LoRA path.
    #[serde(default)]
    pub dropout: f64,
    /// Module name suffixes: Llama `q_proj k_proj v_proj o_proj gate_proj up_proj down_proj`,
    /// GPT-2 `c_attn c_proj c_fc`, Phi `q_proj k_proj v_proj dense fc1 fc2`.
    pub targets: Vec<String>,
}

/// How the learning rate falls after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Decay {
    #[default]
    Linear,
    Cosine,
    Constant,
}

/// Skip-aware training: each training sequence draws a layer plan and its target tokens run
/// under it (the prompt always runs every layer, as when decoding).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipTraining {
    /// A strategy of hsd-skip's registry (`hsd`, `random`, `skipdecode`, ...), with static
    /// plans; a dynamic one contributes its upper plan.
    pub strategy: String,
    /// The target skip ratio is drawn uniformly from `[low, high]` per sequence.
    pub target_skip_ratio: [f64; 2],
    /// The share of sequences that train with every layer, so vanilla decoding stays good.
    #[serde(default)]
    pub full_share: f64,
    /// Further knobs of the strategy, `key=value` as `hsd run --set` takes them.
    #[serde(default)]
    pub settings: Vec<String>,
    /// The generation budget the plans are solved for (decoding's `max_new_tokens`).
    #[serde(default = "default_budget")]
    pub max_new_tokens: usize,
}

fn default_budget() -> usize {
    64
}

/// The optimisation: AdamW with warm-up and decay, gradient accumulation and clipping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimizer updates.
    pub steps: usize,
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Forward passes per update.
    #[serde(default = "one")]
    pub grad_accum: usize,
    pub lr: f64,
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default)]
    pub decay: Decay,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Clip the global gradient norm to this; 0 turns clipping off.
    #[serde(default = "default_clip")]
    pub max_grad_norm: f64,
    /// Eval loss on the held-out slice every this many updates (and after the last).
    pub eval_every: usize,
    /// Examples held out of training for the eval loss.
    pub eval_examples: usize,
    /// A resumable checkpoint every this many updates.
    #[serde(default = "default_checkpoint")]
    pub checkpoint_every: usize,
    /// Seeds shuffling, held-out picks, dropout and skip plans.
    #[serde(default)]
    pub seed: u64,
    /// Sequences longer than this many tokens (prompt + target) lose the prompt's start.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    #[serde(default)]
    pub train_skip: Option<SkipTraining>,
}

fn one() -> usize {
    1
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn default_clip() -> f64 {
    1.0
}
fn default_checkpoint() -> usize {
    25
}
fn default_max_len() -> usize {
    512
}

impl TrainConfig {
    pub fn check(&self) -> Result<(), TrainError> {
        let bad = |field: &str, reason: &str| {
            Err(TrainError::Config {
                field: field.into(),
                reason: reason.into(),
            })
        };
        if self.steps == 0 {
            return bad("steps", "must be at least 1");
        }
        if self.batch_size == 0 || self.grad_accum == 0 {
            return bad("batch_size", "batch_size and grad_accum must be at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", "must be a positive number");
        }
        if self.warmup_steps > self.steps {
            return bad("warmup_steps", "exceeds steps");
        }
        if self.eval_every == 0 || self.checkpoint_every == 0 {
            return bad(
                "eval_every",
                "eval_every and checkpoint_every must be at least 1",
            );
        }
        if self.max_len < 2 {
            return bad("max_len", "must be at least 2");
        }
        if let Some(skip) = &self.train_skip {
            let [low, high] = skip.target_skip_ratio;
            if !(0.0 <= low && low <= high && high < 1.0) {
                return bad(
                    "train_skip.target_skip_ratio",
                    "must be [low, high] with 0 <= low <= high < 1",
                );
            }
            if !(0.0..=1.0).contains(&skip.full_share) {
                return bad("train_skip.full_share", "must be in [0, 1]");
            }
        }
        Ok(())
    }

    /// The learning rate of update `step` (0-based): a linear warm-up to `lr` over
    /// `warmup_steps` updates, then `decay` to 0 at `steps`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = (self.steps - self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / span;
        match self.decay {
            Decay::Constant => self.lr,
            Decay::Linear => self.lr * (1.0 - progress),
            Decay::Cosine => self.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}

impl LoraConfig {
    pub fn check(&self) -> Result<(), TrainError> {
        let bad = |field: &str, reason: String| {
            Err(TrainError::Config {
                field: field.into(),
                reason,
            })
        };
        if self.rank == 0 {
            return bad("lora.rank", "must be at least 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad("lora.alpha", format!("{} is not positive", self.alpha));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("lora.dropout", format!("{} is not in [0, 1)", self.dropout));
        }
        if self.targets.is_empty() {
            return bad("lora.targets", "names no module".into());
        }
        Ok(())
    }

    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrainConfig {
        toml_like(
            r#"{"steps": 10, "batch_size": 2, "lr": 0.001, "warmup_steps": 2,
                "eval_every": 5, "eval_examples": 4}"#,
        )
    }

    fn toml_like(json: &str) -> TrainConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        let c = config();
        assert_eq!(c.lr_at(0), 0.0005);
        assert_eq!(c.lr_at(1), 0.001);
        assert_eq!(c.lr_at(2), 0.001);
        assert!((c.lr_at(6) - 0.0005).abs() < 1e-12);
        let cosine = TrainConfig {
            decay: Decay::Cosine,
            ..c.clone()
        };
        assert!((cosine.lr_at(6) - 0.0005).abs() < 1e-12);
        assert!(cosine.lr_at(9) < cosine.lr_at(8));
    }

    #[test]
    fn bad_knobs_name_their_field() {
        let mut c = config();
        c.warmup_steps = 11;
        assert!(
            c.check()
                .unwrap_err()
                .to_string()
                .starts_with("warmup_steps")
        );
        let mut c = config();
        c.train_skip = Some(SkipTraining {
            strategy: "hsd".into(),
            target_skip_ratio: [0.6, 0.3],
            full_share: 0.0,
            settings: vec![],
            max_new_tokens: 64,
        });
        let err = c.check().unwrap_err().to_string();
        assert!(err.starts_with("train_skip.target_skip_ratio"), "{err}");
        let unknown = serde_json::from_str::<TrainConfig>(
            r#"{"steps": 1, "batch_size": 1, "lr": 0.1, "eval_every": 1, "eval_examples": 0, "lr_warmup": 3}"#,
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("lr_warmup"), "{unknown}");
    }
}
