//! CALM's threshold, bisected per dataset towards each target skip ratio on examples that are
//! never scored: the dataset's dev split, or the tail of the evaluated split past the
//! profile's limit (`calibration = "dev" | "tail"` in the manifest).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use hsd_model::{Batch, Cache, GenerateConfig, LoadedModel, Logits};
use hsd_skip::{Measure, SkipStats, StrategyConfig};

use crate::manifest::{Calibration, DatasetBlock, Run};
use crate::prompts::{PromptEncoder, load_examples};

/// Bisection steps on the threshold's coordinate, and the skip-ratio tolerance that ends it.
const BISECTION_STEPS: usize = 10;
const SKIP_RATIO_TOLERANCE: f64 = 0.02;

/// Solves CALM configs that give a target skip ratio instead of a threshold, for one dataset;
/// each target is bisected once and remembered. The batch is prefilled once for every target,
/// and a threshold decoded for one target is not decoded again for another (bisections from
/// the same interval share their first midpoints).
pub struct CalmCalibrator<'a> {
    model: &'a LoadedModel,
    block: &'a DatasetBlock,
    generate: &'a GenerateConfig,
    /// `None` when no run of the dataset needs calibrating.
    batch: Option<Batch>,
    prefilled: Option<(Logits, Cache)>,
    /// Solved thresholds by the config's JSON.
    thresholds: BTreeMap<String, f64>,
    /// Measured skip ratios by the JSON of the config with its threshold and no target.
    measured: BTreeMap<String, f64>,
}

/// Where the calibration examples come from, and how many.
pub struct CalibrationSource<'a> {
    pub encoder: &'a PromptEncoder<'a>,
    pub data_root: &'a Path,
    pub batch_size: usize,
    /// The evaluated examples per dataset; the tail lies past them.
    pub evaluated_limit: Option<usize>,
}

impl<'a> CalmCalibrator<'a> {
    /// Prepares the calibration batch of `block` when one of `runs` needs it.
    pub fn new(
        model: &'a LoadedModel,
        block: &'a DatasetBlock,
        generate: &'a GenerateConfig,
        runs: &[&Run],
        source: &CalibrationSource<'_>,
    ) -> anyhow::Result<Self> {
        let needs = runs
            .iter()
            .any(|r| matches!(&r.strategy, StrategyConfig::Calm(c) if c.threshold.is_none()));
        let batch = if needs {
            Some(calibration_batch(block, generate, source)?)
        } else {
            None
        };
        Ok(Self {
            model,
            block,
            generate,
            batch,
            prefilled: None,
            thresholds: BTreeMap::new(),
            measured: BTreeMap::new(),
        })
    }

    /// `config` with a CALM threshold bisected towards its target skip ratio on the
    /// calibration batch (once per target); every other config unchanged.
    pub fn solve(&mut self, config: &StrategyConfig) -> anyhow::Result<StrategyConfig> {
        let StrategyConfig::Calm(calm) = config else {
            return Ok(config.clone());
        };
        let (Some(target), None) = (calm.target_skip_ratio, calm.threshold) else {
            return Ok(config.clone());
        };
        let key = serde_json::to_string(config)?;
        let threshold = match self.thresholds.get(&key) {
            Some(threshold) => *threshold,
            None => {
                let threshold = self.bisect(config, target)?;
                self.thresholds.insert(key, threshold);
                threshold
            }
        };
        let mut solved = calm.clone();
        solved.threshold = Some(threshold);
        Ok(StrategyConfig::Calm(solved))
    }

    fn bisect(&mut self, config: &StrategyConfig, target: f64) -> anyhow::Result<f64> {
        let StrategyConfig::Calm(calm) = config else {
            bail!("only CALM thresholds are calibrated");
        };
        let block = self.block;
        let Some(batch) = &self.batch else {
            bail!(
                "{}: CALM needs a threshold or calibration examples to bisect one on",
                block.name
            );
        };
        let layers = self.model.shapes.layers;
        let started = Instant::now();
        if self.prefilled.is_none() {
            self.prefilled = Some(self.model.decoder.prefill(batch, block.max_new_tokens)?);
        }
        let Some((logits, cache)) = &self.prefilled else {
            bail!("{}: the calibration batch was not prefilled", block.name);
        };
        let measured = &mut self.measured;
        let threshold_at = |u: f64| calm_threshold(calm.measure, u);
        let measured = hsd_skip::calibrate_threshold(
            target,
            (0.0, 1.0),
            SKIP_RATIO_TOLERANCE,
            BISECTION_STEPS,
            |u| -> anyhow::Result<f64> {
                let mut trial = calm.clone();
                trial.threshold = Some(threshold_at(u));
                trial.target_skip_ratio = None;
                let key = serde_json::to_string(&trial)?;
                if let Some(&skip_ratio) = measured.get(&key) {
                    return Ok(skip_ratio);
                }
                let mut strategy =
                    StrategyConfig::Calm(trial).build(layers, block.max_new_tokens)?;
                let out = self.model.decoder.decode(
                    logits.clone(),
                    cache.clone(),
                    strategy.as_mut(),
                    self.generate,
                )?;
                let mut stats = SkipStats::new(self.model.shapes);
                for trace in out.rows.iter().flat_map(|r| &r.traces) {
                    stats.record(trace)?;
                }
                measured.insert(key, stats.skip_ratio());
                Ok(stats.skip_ratio())
            },
        )?
        .with_context(|| {
            format!(
                "{}: CALM calibration towards {target} measured nothing",
                block.name
            )
        })?;
        let threshold = threshold_at(measured.threshold);
        tracing::info!(
            dataset = %block.name,
            target,
            threshold,
            skip_ratio = measured.skip_ratio,
            seconds = started.elapsed().as_secs_f64(),
            "calibrated CALM"
        );
        Ok(threshold)
    }
}

/// The batch CALM thresholds are calibrated on: `batch_size` examples that are never scored.
fn calibration_batch(
    block: &DatasetBlock,
    generate: &GenerateConfig,
    source: &CalibrationSource<'_>,
) -> anyhow::Result<Batch> {
    let (_, prompts) = calibration_prompts(block, source)?;
    Ok(Batch::new(prompts, generate.pad_id)?)
}

/// The ids and prompts of `batch_size` examples of `block` that are never scored: its dev
/// split's first ones, or the last ones of the evaluated split (`calibration = "dev" |
/// "tail"`, by default `dev` where the dataset has one here).
pub fn calibration_prompts(
    block: &DatasetBlock,
    source: &CalibrationSource<'_>,
) -> anyhow::Result<(Vec<String>, Vec<Vec<u32>>)> {
    let has_dev = block.name.split_file(hsd_data::Split::Dev).is_some();
    let size = source.batch_size;
    let (examples_block, examples) = match block.calibration.unwrap_or(if has_dev {
        Calibration::Dev
    } else {
        Calibration::Tail
    }) {
        Calibration::Dev => {
            if !has_dev {
                bail!(
                    "{}: calibration = \"dev\" but the dataset has no dev split here; use \"tail\" or give calm a threshold",
                    block.name
                );
            }
            let mut dev = block.clone();
            dev.split = hsd_data::Split::Dev;
            dev.path = None;
            dev.shots = 0;
            let examples = load_examples(&dev, Some(size), source.data_root)?;
            (dev, examples)
        }
        Calibration::Tail => {
            let all = load_examples(block, None, source.data_root)?;
            let evaluated = source.evaluated_limit.unwrap_or(all.len()).min(all.len());
            if all.len() - evaluated < size {
                bail!(
                    "{}: calibration = \"tail\" needs {size} examples past the {evaluated} evaluated ones, but the split has {}; lower the limit or give calm a threshold",
                    block.name,
                    all.len()
                );
            }
            let tail = all[all.len() - size..].to_vec();
            (block.clone(), tail)
        }
    };
    let prompts = source.encoder.encode(&examples_block, &examples)?;
    Ok((examples.into_iter().map(|e| e.id).collect(), prompts))
}

/// The CALM threshold at bisection coordinate `u` in `[0, 1]`. Softmax confidences spread over
/// `[0, 1]`, so `u` is the threshold. The cosine between consecutive hidden states of a
/// residual stream sits within about 1e-3 of 1 at every layer, so for the state measure `u`
/// moves `1 - threshold` on a log scale, from 1 down to 1e-8.
fn calm_threshold(measure: Measure, u: f64) -> f64 {
    match measure {
        Measure::State => 1.0 - 10f64.powf(-8.0 * u),
        Measure::SoftmaxMax | Measure::SoftmaxDiff => u,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calm_state_thresholds_bisect_on_a_log_scale_towards_one() {
        assert_eq!(calm_threshold(Measure::SoftmaxMax, 0.25), 0.25);
        assert_eq!(calm_threshold(Measure::State, 0.0), 0.0);
        assert!((calm_threshold(Measure::State, 0.5) - (1.0 - 1e-4)).abs() < 1e-12);
        let grid: Vec<f64> = (0..=10)
            .map(|k| calm_threshold(Measure::State, k as f64 / 10.0))
            .collect();
        assert!(grid.windows(2).all(|w| w[0] < w[1] && w[1] < 1.0));
    }
}
