//! A profile's slice of a manifest: the runs a sweep performs, in a fixed order, and which of
//! them a model of a given depth cannot build.

use std::fmt;

use hsd_data::DatasetName;
use hsd_model::{SpeculativeConfig, WeightMode};
use hsd_skip::StrategyConfig;
use serde::Serialize;

use super::blocks::{DatasetBlock, Profile, UnreachableTargets};
use super::error::ManifestError;
use super::validate::Manifest;

/// One (model, dataset, strategy config): a row of the summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// `model/dataset/label` plus `@target` when the strategy has a target skip ratio, plus
    /// `+k4` (`+k4a` adaptive) when it drafts for the full model with 4 tokens a round.
    pub id: String,
    pub model: String,
    pub dataset: DatasetName,
    /// Index into `Manifest::datasets`.
    pub dataset_index: usize,
    pub label: String,
    pub strategy: StrategyConfig,
    pub target_skip_ratio: Option<f64>,
    /// Lossless mode: the strategy drafts, the full model verifies.
    pub speculative: Option<SpeculativeConfig>,
    /// Lossless mode: the weights the draft passes read where the block sets `draft_weights`
    /// (the manifest's `weights` otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_weights: Option<WeightMode>,
    /// `searched` runs: the plan file their removal order comes from.
    pub plan_file: Option<std::path::PathBuf>,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// The sweep a profile selects: the runs and, per dataset, the decode settings.
#[derive(Clone, Debug)]
pub struct Expansion {
    pub profile: String,
    pub limit: Option<usize>,
    pub datasets: Vec<DatasetBlock>,
    pub runs: Vec<Run>,
}

impl Manifest {
    /// Why `run` is left out of a sweep on a `layers`-deep model, or `None` when it can be
    /// built. A target the strategy cannot reach is a reason under
    /// `unreachable_targets = "skip"` and an error under `"error"`; CALM's data-dependent
    /// target is calibrated at run time, so it always counts as reachable here.
    pub fn skip_reason(
        &self,
        run: &Run,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Option<String>, hsd_skip::SkipError> {
        if let (StrategyConfig::Searched(searched), Some(file)) = (&run.strategy, &run.plan_file)
            && searched.removal_order.is_empty()
        {
            return Err(hsd_skip::SkipError::InvalidKnob {
                strategy: "searched",
                knob: "plan_file",
                reason: format!(
                    "{} holds no plan for {}/{}: run `hsd search {} --out {}` first",
                    file.display(),
                    run.model,
                    run.dataset,
                    self.path.display(),
                    file.display()
                ),
            });
        }
        match run.strategy.solve(layers, max_new_tokens) {
            Ok(_) | Err(hsd_skip::SkipError::NeedsCalibration { .. }) => Ok(None),
            Err(e @ hsd_skip::SkipError::TargetUnreachable { .. })
                if self.unreachable_targets == UnreachableTargets::Skip =>
            {
                Ok(Some(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// The runs of `profile` (`None`: everything, no limit), in model, dataset, strategy,
    /// target order. `limit` overrides the profile's example limit.
    pub fn expand(
        &self,
        profile: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Expansion, ManifestError> {
        let chosen = match profile {
            None => Profile::default(),
            Some(name) => {
                self.profiles
                    .get(name)
                    .cloned()
                    .ok_or_else(|| ManifestError::Invalid {
                        path: self.path.clone(),
                        what: if self.profiles.is_empty() {
                            format!("no [profile.{name}] (the manifest defines no profile)")
                        } else {
                            format!(
                                "no [profile.{name}] (have: {})",
                                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                            )
                        },
                    })?
            }
        };
        let datasets: Vec<DatasetBlock> = self
            .datasets
            .iter()
            .map(|d| {
                let mut d = d.clone();
                if let Some(cap) = chosen.max_new_tokens {
                    d.max_new_tokens = d.max_new_tokens.min(cap);
                }
                d
            })
            .collect();
        let mut runs = Vec::new();
        for model in &self.models {
            for (dataset_index, dataset) in datasets.iter().enumerate() {
                if chosen
                    .datasets
                    .as_ref()
                    .is_some_and(|keep| !keep.contains(&dataset.name))
                {
                    continue;
                }
                for block in &self.strategies {
                    if chosen
                        .strategies
                        .as_ref()
                        .is_some_and(|keep| !keep.contains(&block.label))
                    {
                        continue;
                    }
                    let targeted = block
                        .configs
                        .first()
                        .is_some_and(|c| c.target_skip_ratio().is_some());
                    let configs: Vec<StrategyConfig> = match (&chosen.target_skip_ratios, targeted)
                    {
                        (Some(targets), true) => targets
                            .iter()
                            .map(|&t| {
                                let mut config = block.configs[0].clone();
                                config.set_target_skip_ratio(t);
                                config
                            })
                            .collect(),
                        _ => block.configs.clone(),
                    };
                    for config in &configs {
                        let mut config = config.clone();
                        if let StrategyConfig::Searched(searched) = &mut config
                            && let Some(order) =
                                block.plans.get(&format!("{}/{}", model.name, dataset.name))
                        {
                            searched.removal_order = order.clone();
                        }
                        let target = config.target_skip_ratio();
                        let label = match config.run_suffix() {
                            Some(suffix) => format!("{}-{suffix}", block.label),
                            None => block.label.clone(),
                        };
                        let base = format!("{}/{}/{label}", model.name, dataset.name);
                        let base = match target {
                            Some(t) => format!("{base}@{t:.2}"),
                            None => base,
                        };
                        for speculative in &block.speculative {
                            let id = match speculative {
                                Some(s) => format!(
                                    "{base}+k{}{}",
                                    s.draft_tokens,
                                    if s.adaptive { "a" } else { "" }
                                ),
                                None => base.clone(),
                            };
                            runs.push(Run {
                                id,
                                model: model.name.clone(),
                                dataset: dataset.name,
                                dataset_index,
                                label: label.clone(),
                                strategy: config.clone(),
                                target_skip_ratio: target,
                                speculative: *speculative,
                                draft_weights: speculative.and(block.draft_weights),
                                plan_file: block.plan_file.clone(),
                            });
                        }
                    }
                }
            }
        }
        if runs.is_empty() {
            return Err(ManifestError::Invalid {
                path: self.path.clone(),
                what: format!("profile {} selects no run", profile.unwrap_or("(none)")),
            });
        }
        Ok(Expansion {
            profile: profile.unwrap_or("all").to_owned(),
            limit: limit.or(chosen.limit),
            datasets,
            runs,
        })
    }
}
