//! One model's share of a sweep. Per dataset, examples go in fixed batches: each batch is
//! prefilled once (every layer) and its logits and KV cache are cloned for every strategy and
//! target skip ratio still to do. Records are appended as batches finish, so a killed run
//! resumes with `--resume` and recomputes nothing it had written.
//!
//! Batches are the same chunks of the example list on every attempt, whatever is already
//! done, so a resumed run decodes exactly the batches an uninterrupted one does and writes
//! byte-identical records (dynamic strategies exit on the whole batch's agreement, so batch
//! composition matters).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use hsd_model::{
    Batch, Cache, ForcedReference, GenerateConfig, GenerationBatch, LoadedModel, Logits,
    RowSpeculation, WeightMode,
};
use hsd_skip::StrategyConfig;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::calibrate::{CalibrationSource, CalmCalibrator};
use crate::manifest::{Expansion, Manifest, ModelBlock, Run};
use crate::prompts::{PromptEncoder, decode_config};
use crate::results::{
    Appender, Record, RecordKey, SolvedKnobs, SpeculativeRecord, TeacherForced, Timing,
};

/// What one model's runs share.
pub struct Sweep<'a> {
    pub manifest: &'a Manifest,
    pub expansion: &'a Expansion,
    pub model_block: &'a ModelBlock,
    pub model: &'a LoadedModel,
    /// The model loaded again with other weights than `model`'s, and those weights: it drafts
    /// for the lossless runs whose `draft_weights` name them; `model` drafts for the rest.
    pub drafter: Option<(WeightMode, &'a LoadedModel)>,
    /// The (run, example) pairs already recorded.
    pub finished: &'a BTreeSet<(String, String)>,
    pub progress: &'a MultiProgress,
    pub data_root: &'a Path,
    /// The evaluated examples by dataset index, as the checks before work read them.
    pub examples: &'a BTreeMap<usize, Vec<hsd_data::Example>>,
}

/// Where a sweep writes.
pub struct Outputs<'a> {
    pub records: &'a mut Appender,
    pub timings: &'a mut Appender,
    /// `solved.jsonl`, and the runs it already holds.
    pub knobs: &'a mut Appender,
    pub solved: &'a mut BTreeSet<String>,
}

impl Sweep<'_> {
    /// Decodes every (run, example) of `runs` not yet finished, dataset by dataset.
    pub fn run(&self, runs: &[&Run], out: &mut Outputs<'_>) -> anyhow::Result<()> {
        let tokenizer = self.model.tokenizer()?;
        let encoder = PromptEncoder::new(
            self.model,
            &self.model_block.name,
            self.model_block.prompt_mode,
            self.manifest.seed,
            self.data_root,
        )?;
        let bar_style =
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg} eta {eta}")?
                .progress_chars("=> ");
        let mut by_dataset: BTreeMap<usize, Vec<&Run>> = BTreeMap::new();
        for run in runs {
            by_dataset.entry(run.dataset_index).or_default().push(run);
        }
        for (dataset_index, dataset_runs) in by_dataset {
            let block = &self.expansion.datasets[dataset_index];
            let examples = self.examples.get(&dataset_index).with_context(|| {
                format!(
                    "dataset {}: its examples were not read before work",
                    block.name
                )
            })?;
            let prompts = encoder.encode(block, examples)?;
            let bar = self.progress.add(ProgressBar::new(
                (examples.len() * dataset_runs.len()) as u64,
            ));
            bar.set_style(bar_style.clone());
            bar.set_prefix(format!("{}/{}", self.model_block.name, block.name));
            let config = decode_config(tokenizer, block.max_new_tokens);
            let mut calibrator = CalmCalibrator::new(
                self.model,
                block,
                &config,
                &dataset_runs,
                &CalibrationSource {
                    encoder: &encoder,
                    data_root: self.data_root,
                    batch_size: self.manifest.batch_size,
                    evaluated_limit: self.expansion.limit,
                },
            )?;
            let mut tokens_done = 0usize;
            let started = Instant::now();
            for (chunk, batch_examples) in examples.chunks(self.manifest.batch_size).enumerate() {
                let first = chunk * self.manifest.batch_size;
                let mut todo: Vec<&Run> = dataset_runs
                    .iter()
                    .copied()
                    .filter(|r| {
                        batch_examples
                            .iter()
                            .any(|e| !self.finished.contains(&(r.id.clone(), e.id.clone())))
                    })
                    .collect();
                // Vanilla first: the teacher-forced passes of the others follow its tokens.
                todo.sort_by_key(|run| !is_vanilla(run));
                bar.inc(((dataset_runs.len() - todo.len()) * batch_examples.len()) as u64);
                if todo.is_empty() {
                    continue;
                }
                let rows = &prompts[first..first + batch_examples.len()];
                let batch = Batch::new(rows.to_vec(), config.pad_id)?;
                // Lossless runs draft past the budget in their last round; the room changes
                // nothing for the other runs, which never write there.
                let room = todo
                    .iter()
                    .filter_map(|r| r.speculative.map(|s| s.max_draft_tokens))
                    .max()
                    .unwrap_or(0)
                    .min(
                        self.model
                            .decoder
                            .max_positions()
                            .saturating_sub(batch.width() + block.max_new_tokens),
                    );
                let prefill_started = Instant::now();
                let (logits, cache) = self
                    .model
                    .decoder
                    .prefill(&batch, block.max_new_tokens + room)?;
                let prefill_seconds = prefill_started.elapsed().as_secs_f64();
                let mut forcing = Forcing::default();
                for run in todo {
                    let solving = Instant::now();
                    let solved = calibrator.solve(&run.strategy)?;
                    let solve_seconds = solving.elapsed().as_secs_f64();
                    let layers = self.model.shapes.layers;
                    if !out.solved.contains(&run.id) {
                        let knobs = solved
                            .solved_knobs(layers, block.max_new_tokens)
                            .with_context(|| format!("solving {}", run.id))?;
                        out.knobs.append(&[SolvedKnobs {
                            run: run.id.clone(),
                            knobs,
                        }])?;
                        out.solved.insert(run.id.clone());
                    }
                    let mut strategy = solved
                        .build(layers, block.max_new_tokens)
                        .with_context(|| format!("building {}", run.id))?;
                    // Timed from here: bisecting a CALM threshold above is setup, not decoding.
                    let decode_started = Instant::now();
                    let (generated, speculation): (GenerationBatch, Vec<RowSpeculation>) =
                        match &run.speculative {
                            Some(speculative) => {
                                let drafter = match (run.draft_weights, self.drafter) {
                                    (Some(wanted), Some((weights, drafter)))
                                        if wanted == weights =>
                                    {
                                        drafter
                                    }
                                    _ => self.model,
                                };
                                let out = self.model.decoder.decode_speculative_with(
                                    &drafter.decoder,
                                    logits.clone(),
                                    &mut cache.clone(),
                                    strategy.as_mut(),
                                    &config,
                                    speculative,
                                )?;
                                (out.generation, out.rows)
                            }
                            None => (
                                self.model.decoder.decode(
                                    logits.clone(),
                                    cache.clone(),
                                    strategy.as_mut(),
                                    &config,
                                )?,
                                Vec::new(),
                            ),
                        };
                    let decode_seconds = decode_started.elapsed().as_secs_f64();
                    if is_vanilla(run) {
                        forcing.vanilla =
                            Some(generated.rows.iter().map(|g| g.tokens.clone()).collect());
                    }
                    let forcing_started = Instant::now();
                    let agreements = if self.manifest.teacher_forced && is_forced(run) {
                        let reference = forcing.reference(self.model, &logits, &cache, &config)?;
                        let mut fresh = solved
                            .build(layers, block.max_new_tokens)
                            .with_context(|| format!("building {}", run.id))?;
                        self.model
                            .decoder
                            .teacher_forced(cache.clone(), fresh.as_mut(), &config, reference)
                            .with_context(|| format!("{}: teacher-forced pass", run.id))?
                    } else {
                        Vec::new()
                    };
                    let forced_seconds = forcing_started.elapsed().as_secs_f64();
                    let exits = strategy.exit_observations();
                    let mut batch_records = Vec::with_capacity(batch_examples.len());
                    for (offset, (example, generation)) in
                        batch_examples.iter().zip(&generated.rows).enumerate()
                    {
                        let text = tokenizer
                            .decode(&generation.tokens, true)
                            .map_err(|e| anyhow::anyhow!("decoding {}: {e}", example.id))?;
                        let key = RecordKey {
                            run: &run.id,
                            example,
                            index: first + offset,
                            prompt_tokens: rows[offset].len(),
                        };
                        let mut record =
                            Record::from_generation(key, generation, &text, self.model.shapes)
                                .with_context(|| format!("{} on {}", run.id, example.id))?;
                        record.oracle_layers =
                            exits.map(|e| e.fewest_layers(offset, generation.tokens.len()));
                        record.teacher_forced = agreements
                            .get(offset)
                            .filter(|a| a.positions > 0)
                            .map(|a| TeacherForced {
                                positions: a.positions,
                                top1_agreement: a.top1_agreement,
                                mean_kl: a.mean_kl,
                            });
                        record.speculative =
                            run.speculative
                                .zip(speculation.get(offset))
                                .map(|(config, row)| SpeculativeRecord {
                                    draft_tokens: config.draft_tokens,
                                    adaptive: config.adaptive,
                                    draft_weights: run.draft_weights,
                                    rounds: row.rounds,
                                    drafted: row.drafted,
                                    accepted: row.accepted,
                                });
                        // A run killed while appending this batch left some of its records
                        // whole: the batch decodes again (its composition is fixed), and only
                        // the missing records follow them, as an uninterrupted run writes them.
                        if !self
                            .finished
                            .contains(&(run.id.clone(), example.id.clone()))
                        {
                            batch_records.push(record);
                        }
                    }
                    let generated_tokens: usize =
                        generated.rows.iter().map(|g| g.tokens.len()).sum();
                    out.records.append(&batch_records)?;
                    out.timings.append(&[Timing {
                        run: run.id.clone(),
                        examples: batch_examples.iter().map(|e| e.id.clone()).collect(),
                        generated_tokens,
                        prefill_seconds,
                        decode_seconds,
                        solve_seconds,
                        forced_seconds,
                    }])?;
                    tokens_done += generated_tokens;
                    bar.inc(batch_examples.len() as u64);
                    bar.set_message(format!(
                        "{:.1} tok/s",
                        tokens_done as f64 / started.elapsed().as_secs_f64().max(1e-9)
                    ));
                }
            }
            bar.finish();
        }
        Ok(())
    }
}

/// Vanilla decoding: the run every other run of its model and dataset is compared with.
fn is_vanilla(run: &Run) -> bool {
    run.speculative.is_none() && run.strategy.name() == "full"
}

/// Runs whose records carry teacher-forced agreement: every lossy run that can skip a layer
/// (the oracle runs every layer and only observes; lossless runs emit vanilla's tokens).
fn is_forced(run: &Run) -> bool {
    run.speculative.is_none() && !matches!(run.strategy.name(), "full" | "oracle")
}

/// One batch's vanilla tokens and the full model's distributions along them, made once and
/// shared by the batch's runs.
#[derive(Default)]
struct Forcing {
    vanilla: Option<Vec<Vec<u32>>>,
    reference: Option<ForcedReference>,
}

impl Forcing {
    /// The reference, from this batch's vanilla run when it decoded earlier in the batch, else
    /// from a vanilla decoding of the batch made here (a resumed or sharded run that lacks
    /// it): the same tokens, since batches are fixed.
    fn reference(
        &mut self,
        model: &LoadedModel,
        logits: &Logits,
        cache: &Cache,
        config: &GenerateConfig,
    ) -> anyhow::Result<&ForcedReference> {
        let reference = match self.reference.take() {
            Some(reference) => reference,
            None => {
                let vanilla = match self.vanilla.take() {
                    Some(tokens) => tokens,
                    None => {
                        let layers = model.shapes.layers;
                        let mut full =
                            StrategyConfig::named("full")?.build(layers, config.max_new_tokens)?;
                        model
                            .decoder
                            .decode(logits.clone(), cache.clone(), full.as_mut(), config)?
                            .rows
                            .into_iter()
                            .map(|g| g.tokens)
                            .collect()
                    }
                };
                model
                    .decoder
                    .forced_reference(cache.clone(), &vanilla, config.pad_id)?
            }
        };
        Ok(self.reference.insert(reference))
    }
}
