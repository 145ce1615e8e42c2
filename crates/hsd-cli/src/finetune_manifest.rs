//! Fine-tuning manifests (`experiments/finetune.toml`): the LoRA and optimizer knobs, the
//! variants (plain, skip-aware), the datasets with the split each trains on, and profiles.
//! Prompts are not configured here: they come from the evaluation manifest it names, so a
//! model is trained on exactly the prompts it is evaluated with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hsd_data::{DatasetName, Split};
use hsd_train::{LoraConfig, SkipTraining, TrainConfig};

use crate::manifest::DatasetBlock;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneManifest {
    /// The evaluation manifest (relative to this file) whose model, prompt mode and dataset
    /// blocks (template, shots, source budget) the training prompts use.
    pub evaluation: PathBuf,
    /// A model name of the evaluation manifest.
    pub model: String,
    /// Where adapters go (relative to the working directory): `<out>/<variant>/<dataset>/`.
    pub out: PathBuf,
    pub lora: LoraConfig,
    /// Knobs shared by every dataset; a dataset's `train` table overrides them key by key.
    pub train: toml::Table,
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
    #[serde(rename = "dataset")]
    pub datasets: Vec<TrainDataset>,
    #[serde(default, rename = "profile")]
    pub profiles: BTreeMap<String, FinetuneProfile>,
}

/// A family of adapters: plain, or skip-aware with its plan distribution.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub train_skip: Option<SkipTraining>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainDataset {
    pub name: DatasetName,
    /// The split trained on; never the evaluated one, except for a slice (`skip_first`).
    pub split: Split,
    /// A file in the dataset's schema instead of the shared split (e.g. the HF train split).
    pub path: Option<PathBuf>,
    /// Leave out the first N examples of the split: those the evaluation profiles score
    /// (for XSum and CNN/DM, which ship only a test split here).
    #[serde(default)]
    pub skip_first: usize,
    /// Train on at most this many source examples (after `skip_first`).
    pub limit: Option<usize>,
    /// Per-dataset overrides of `[train]`.
    #[serde(default)]
    pub train: toml::Table,
}

impl TrainDataset {
    /// The evaluation block with this dataset's training split: the template, shots and
    /// source budget, hence the prompts, stay the evaluation's.
    pub fn prompt_block(&self, evaluation: &DatasetBlock) -> DatasetBlock {
        DatasetBlock {
            split: self.split,
            path: self.path.clone(),
            ..evaluation.clone()
        }
    }
}

/// A profile scales a run down: fewer updates, fewer examples.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneProfile {
    pub steps: Option<usize>,
    pub warmup_steps: Option<usize>,
    pub limit: Option<usize>,
    pub eval_examples: Option<usize>,
    pub eval_every: Option<usize>,
    pub datasets: Option<Vec<DatasetName>>,
    pub variants: Option<Vec<String>>,
}

impl FinetuneManifest {
    pub fn load(path: &Path) -> Result<(Self, String)> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Self =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok((manifest, text))
    }

    pub fn profile(&self, path: &Path, name: &str) -> Result<&FinetuneProfile> {
        self.profiles.get(name).with_context(|| {
            format!(
                "{}: no [profile.{name}] (it has {})",
                path.display(),
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The optimizer knobs of `dataset` in `variant` under `profile`.
    pub fn train_config(
        &self,
        path: &Path,
        dataset: &TrainDataset,
        variant: &Variant,
        profile: &FinetuneProfile,
    ) -> Result<TrainConfig> {
        let mut table = self.train.clone();
        for (key, value) in &dataset.train {
            table.insert(key.clone(), value.clone());
        }
        let overrides = [
            ("steps", profile.steps),
            ("warmup_steps", profile.warmup_steps),
            ("eval_examples", profile.eval_examples),
            ("eval_every", profile.eval_every),
        ];
        for (key, value) in overrides {
            if let Some(value) = value {
                table.insert(key.into(), toml::Value::Integer(value as i64));
            }
        }
        if table.contains_key("train_skip") {
            bail!(
                "{}: train_skip belongs to a [[variant]], not to [train]",
                path.display()
            );
        }
        let mut config: TrainConfig = table
            .try_into()
            .map_err(|e| anyhow::anyhow!("{}: [train] of {}: {e}", path.display(), dataset.name))?;
        config.train_skip = variant.train_skip.clone();
        config
            .check()
            .map_err(|e| anyhow::anyhow!("{}: [train] of {}: {e}", path.display(), dataset.name))?;
        Ok(config)
    }
}
