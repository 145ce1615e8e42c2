//! `hsd search`: per model and dataset of a manifest, the static skip set a `searched`
//! strategy drafts or decodes with, chosen by greedy removal (Draft & Verify's and SWIFT's way
//! of choosing draft layers). Its score is teacher-forced top-1 agreement with the full model
//! along the full model's own greedy continuations of calibration prompts, which are never
//! scored (CALM's calibration examples): the acceptance rate a drafter with that set would see
//! in a round of one token. Written to a plan file keyed `model/dataset`, which strategy blocks
//! load with `plan_file = "..."`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use hsd_model::{Batch, LoadedModel};
use hsd_skip::{KvFill, LayerPlan, LayerSet, Removal, StrategyConfig, greedy_removal};
use indicatif::{ProgressBar, ProgressStyle};

use super::sweep_flags::{ModelFlags, SweepSelection};
use crate::adapters::load_adapted;
use crate::calibrate::{CalibrationSource, calibration_prompts};
use crate::manifest::{DatasetBlock, ModelBlock, ModelSpecs};
use crate::plans::{PlanFile, SearchedPlan};
use crate::prompts::{PromptEncoder, decode_config};
use crate::results::{ModelFiles, git_commit, write_atomic};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    selection: SweepSelection,
    #[command(flatten)]
    model_flags: ModelFlags,
    /// Only these datasets (repeatable); every dataset of the profile otherwise.
    #[arg(long = "dataset")]
    datasets: Vec<String>,
    /// Calibration prompts per dataset.
    #[arg(long, default_value_t = 8)]
    examples: usize,
    /// Remove layers up to this share of the model (the highest target a plan can serve).
    #[arg(long, default_value_t = 0.6)]
    max_skip_ratio: f64,
    /// The plan file; plans of other model/dataset pairs in it are kept.
    #[arg(long, default_value = "plans/searched.json")]
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.examples > 0, "--examples must be positive");
    ensure!(
        args.max_skip_ratio > 0.0 && args.max_skip_ratio < 1.0,
        "--max-skip-ratio must lie in (0, 1)"
    );
    let (manifest, expansion) = args.selection.load()?;
    let specs = ModelSpecs::from_flags(&args.model_flags.models)?;
    let backend = args.model_flags.backend.unwrap_or(manifest.backend);
    let weights = args.model_flags.weights.unwrap_or(manifest.weights);
    let data_root = hsd_data::data_root()?;
    let mut datasets: Vec<&DatasetBlock> = expansion
        .runs
        .iter()
        .map(|r| &expansion.datasets[r.dataset_index])
        .collect();
    datasets.dedup_by_key(|d| d.name);
    if !args.datasets.is_empty() {
        datasets.retain(|d| args.datasets.iter().any(|n| n == d.name.as_str()));
        ensure!(
            !datasets.is_empty(),
            "--dataset {}: not a dataset of {} (profile {})",
            args.datasets.join(", "),
            manifest.path.display(),
            expansion.profile
        );
    }
    let mut file = PlanFile::read_or_default(&args.out)?;
    for block in &manifest.models {
        let Some(spec) = specs.resolve(block)? else {
            eprintln!("notice: skipping model '{}': no spec given", block.name);
            continue;
        };
        for dataset in &datasets {
            let adapter = block.adapter_for(dataset.name);
            if let Some(dir) = adapter.as_ref().filter(|dir| {
                block.optional && !dir.join(hsd_model::weights::ADAPTER_CONFIG).exists()
            }) {
                eprintln!(
                    "notice: skipping {}/{}: no adapter at {}",
                    block.name,
                    dataset.name,
                    dir.display()
                );
                continue;
            }
            let model = load_adapted(&spec, backend, weights, adapter.as_deref())
                .with_context(|| format!("loading model '{}' from {spec}", block.name))?;
            let files = match &adapter {
                Some(dir) => ModelFiles::with_adapter(&block.name, &model.source, dir)?,
                None => ModelFiles::new(&block.name, &model.source),
            };
            let search = Search {
                model: &model,
                block,
                dataset,
                seed: manifest.seed,
                data_root: &data_root,
                examples: args.examples,
                evaluated_limit: expansion.limit,
            };
            let started = Instant::now();
            let (order, calibration) = search.run(args.max_skip_ratio)?;
            let key = format!("{}/{}", block.name, dataset.name);
            eprintln!(
                "{key}: removal order {:?} in {:.0} s; agreement {}",
                order.iter().map(|r| r.layer).collect::<Vec<_>>(),
                started.elapsed().as_secs_f64(),
                order
                    .iter()
                    .map(|r| format!("{:.3}", r.score))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            file.plans.insert(
                key,
                SearchedPlan {
                    removal_order: order.iter().map(|r| r.layer).collect(),
                    agreement: order.iter().map(|r| r.score).collect(),
                    layers: model.shapes.layers,
                    model: files,
                    calibration_examples: calibration.examples,
                    scored_tokens: calibration.scored_tokens,
                    max_new_tokens: dataset.max_new_tokens,
                    manifest: manifest.path.display().to_string(),
                    git_commit: git_commit(),
                },
            );
            // Written after every dataset, so a killed search keeps what it finished.
            let mut json = serde_json::to_string_pretty(&file)?;
            json.push('\n');
            write_atomic(&args.out, json.as_bytes())?;
        }
    }
    println!("{}: {} plans", args.out.display(), file.plans.len());
    Ok(())
}

/// One model and dataset's search.
struct Search<'a> {
    model: &'a LoadedModel,
    block: &'a ModelBlock,
    dataset: &'a DatasetBlock,
    seed: u64,
    data_root: &'a Path,
    examples: usize,
    evaluated_limit: Option<usize>,
}

/// What the score was computed on.
struct Calibration {
    examples: Vec<String>,
    scored_tokens: usize,
}

impl Search<'_> {
    fn run(&self, max_skip_ratio: f64) -> anyhow::Result<(Vec<Removal>, Calibration)> {
        let model = self.model;
        let decoder = &model.decoder;
        let tokenizer = model.tokenizer()?;
        let layers = model.shapes.layers;
        let encoder = PromptEncoder::new(
            model,
            &self.block.name,
            self.block.prompt_mode,
            self.seed,
            self.data_root,
        )?;
        let config = decode_config(tokenizer, self.dataset.max_new_tokens);
        let (ids, prompts) = calibration_prompts(
            self.dataset,
            &CalibrationSource {
                encoder: &encoder,
                data_root: self.data_root,
                batch_size: self.examples,
                evaluated_limit: self.evaluated_limit,
            },
        )?;
        let full = StrategyConfig::named("full")?;
        let vanilla = decoder.generate(
            &prompts,
            full.build(layers, config.max_new_tokens)?.as_mut(),
            &config,
        )?;
        // Each row feeds its continuation but the last token and is scored on the next ones;
        // shorter rows are padded at the end, where causality keeps the padding unseen.
        let fed: Vec<&[u32]> = vanilla
            .rows
            .iter()
            .map(|r| &r.tokens[..r.tokens.len().saturating_sub(1)])
            .collect();
        let width = fed.iter().map(|f| f.len()).max().unwrap_or(0);
        if width == 0 {
            bail!(
                "{}: the full model's continuations of the calibration prompts are one token \
                 long; nothing to score",
                self.dataset.name
            );
        }
        let chunk: Vec<Vec<u32>> = fed
            .iter()
            .map(|f| {
                let mut row = f.to_vec();
                row.resize(width, config.pad_id);
                row
            })
            .collect();
        let scored_tokens: usize = fed.iter().map(|f| f.len()).sum();
        let batch = Batch::new(prompts, config.pad_id)?;
        let (_, prefilled) = decoder.prefill(&batch, width)?;

        let removals = ((max_skip_ratio * layers as f64).floor() as usize).min(layers - 1);
        let evaluations: usize = (0..removals).map(|i| layers - i).sum();
        let bar = ProgressBar::new(evaluations as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} sets {msg} eta {eta}",
            )?
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", self.block.name, self.dataset.name));
        let order = greedy_removal(layers, removals, |run: &LayerSet| -> anyhow::Result<f64> {
            let plan = LayerPlan {
                run: run.clone(),
                kv_fill: KvFill::Propagate,
                checks: LayerSet::empty(layers),
            };
            let greedy = decoder.greedy_chunk(&mut prefilled.clone(), &chunk, &plan)?;
            let agreed: usize = vanilla
                .rows
                .iter()
                .zip(&greedy)
                .map(|(row, predicted)| {
                    (1..row.tokens.len())
                        .filter(|&i| predicted[i - 1] == row.tokens[i])
                        .count()
                })
                .sum();
            bar.inc(1);
            Ok(agreed as f64 / scored_tokens.max(1) as f64)
        })?;
        bar.finish_and_clear();
        Ok((
            order,
            Calibration {
                examples: ids,
                scored_tokens,
            },
        ))
    }
}
