//! Plan files: the removal orders `hsd search` finds, keyed `model/dataset`, which
//! `searched` strategy blocks load with `plan_file = "..."`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, ensure};
use serde::{Deserialize, Serialize};

use crate::results::ModelFiles;

/// The plan file's format tag.
pub const PLAN_FORMAT: &str = "hsd-searched-plan/1";

/// A plan file: one searched removal order per `model/dataset`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub format: String,
    pub plans: BTreeMap<String, SearchedPlan>,
}

/// One model and dataset's search: the order, what it was scored on, and by whom.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchedPlan {
    /// 0-based layers in removal order; `searched` skips a prefix of it.
    pub removal_order: Vec<usize>,
    /// Teacher-forced top-1 agreement with the full model after each removal.
    pub agreement: Vec<f64>,
    pub layers: usize,
    pub model: ModelFiles,
    /// The calibration prompts (never scored) and the continuation tokens scored along them.
    pub calibration_examples: Vec<String>,
    pub scored_tokens: usize,
    pub max_new_tokens: usize,
    /// The manifest, and the binary's commit.
    pub manifest: String,
    pub git_commit: Option<String>,
}

impl PlanFile {
    /// Reads `path`, or an empty plan file when there is none yet.
    pub fn read_or_default(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            return Ok(Self {
                format: PLAN_FORMAT.into(),
                plans: BTreeMap::new(),
            });
        }
        Self::read(path)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading plan file {}", path.display()))?;
        let file: Self = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a plan file", path.display()))?;
        ensure!(
            file.format == PLAN_FORMAT,
            "{}: format {:?}, expected {PLAN_FORMAT:?}",
            path.display(),
            file.format
        );
        Ok(file)
    }
}
