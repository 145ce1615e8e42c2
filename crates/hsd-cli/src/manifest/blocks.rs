//! The blocks a manifest is made of: models, datasets, profiles, and the small enums their
//! knobs take. Pure data, read with serde; checking and expansion live in their own files.

use hsd_data::{DatasetName, Mode, Split};
use hsd_skip::ModelShapes;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a sweep does with a (strategy, target skip ratio) cell that the strategy's knob grid
/// cannot reach within 1/L for the model's depth (e.g. `static` only reaches s/(s+1)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnreachableTargets {
    /// Leave the cell out, with a notice; the summary has no row for it.
    #[default]
    Skip,
    /// Refuse the whole sweep.
    Error,
}

/// A model to evaluate. `spec` is what `hsd_model::load_model` takes (a known name, a GGUF
/// file, a Hugging Face directory); `spec_env` names an environment variable that supplies
/// it instead. An `optional` model whose spec is not available is skipped with a notice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelBlock {
    pub name: String,
    pub spec: Option<String>,
    pub spec_env: Option<String>,
    #[serde(default)]
    pub optional: bool,
    /// `plain` prompts, or `chat` ones rendered with the model's own chat template.
    #[serde(default)]
    pub prompt_mode: Mode,
    /// The architecture's dimensions, used only by `hsd check`'s cost estimate.
    pub shapes: Option<ModelShapes>,
    /// A LoRA adapter directory (PEFT layout, from `hsd finetune`) merged into the weights
    /// for each dataset; `{dataset}` is replaced by the dataset's name, e.g.
    /// `adapters/plain/{dataset}`. An example the adapter was trained on is never evaluated.
    /// An `optional` model skips, with a notice, the datasets whose adapter is absent.
    #[serde(default)]
    pub adapter: Option<String>,
}

impl ModelBlock {
    /// The adapter directory for `dataset`, if the block names one.
    pub fn adapter_for(&self, dataset: DatasetName) -> Option<PathBuf> {
        self.adapter
            .as_ref()
            .map(|pattern| PathBuf::from(pattern.replace("{dataset}", dataset.as_str())))
    }
}

/// A dataset to evaluate, and how to prompt and decode it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetBlock {
    pub name: DatasetName,
    #[serde(default)]
    pub split: Split,
    /// A file in the dataset's native or Hugging Face schema instead of the shared split.
    pub path: Option<PathBuf>,
    /// A prompt template TOML; the dataset's built-in template otherwise.
    pub template: Option<PathBuf>,
    #[serde(default)]
    pub shots: usize,
    pub max_new_tokens: usize,
    /// Prompt truncation budget: the most tokens a source may take (cut at a word boundary).
    pub max_source_tokens: Option<usize>,
    /// Metric names (`hsd_metrics::by_name`); the dataset family's defaults when absent.
    pub metrics: Option<Vec<String>>,
    /// Where CALM's threshold is calibrated when a run gives a target instead of a threshold;
    /// `dev` when the dataset has a dev split here, `tail` otherwise.
    pub calibration: Option<Calibration>,
}

/// The examples CALM's threshold is bisected on: never ones that are scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// The first `batch_size` examples of the dataset's dev split.
    Dev,
    /// The last `batch_size` examples of the evaluated split, which must lie past the
    /// profile's example limit (CNN/DM and XSum have no dev split here).
    Tail,
}

impl DatasetBlock {
    pub fn metrics(&self) -> Vec<String> {
        self.metrics.clone().unwrap_or_else(|| {
            default_metrics(self.name)
                .iter()
                .map(|m| (*m).to_owned())
                .collect()
        })
    }
}

/// The metrics the field reports for each dataset family.
pub fn default_metrics(dataset: DatasetName) -> &'static [&'static str] {
    match dataset {
        DatasetName::CnnDailymail
        | DatasetName::Xsum
        | DatasetName::Samsum
        | DatasetName::Dialogsum
        | DatasetName::Scitldr => &["rouge"],
        DatasetName::E2e | DatasetName::Dart | DatasetName::Webnlg2017 => {
            &["bleu", "meteor", "rouge", "cider", "chrf"]
        }
        DatasetName::CommonGen => &["bleu", "cider"],
    }
}

/// How much of the grid a profile runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Examples per dataset (the first ones in file order); the whole split when absent.
    pub limit: Option<usize>,
    /// Only these datasets (by name).
    pub datasets: Option<Vec<DatasetName>>,
    /// Only these strategies (by label).
    pub strategies: Option<Vec<String>>,
    /// These target skip ratios replace the list of every strategy that has one.
    pub target_skip_ratios: Option<Vec<f64>>,
    /// Caps every dataset's `max_new_tokens`.
    pub max_new_tokens: Option<usize>,
}
