//! Scoring a folder's records with each dataset's metrics and writing its summary: the step
//! `hsd run` and `hsd merge` both end with.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use super::faithfulness::Output;
use super::records::{Record, Timing};
use super::summary::{RunResult, Speculation, summarize, write_summary};
use crate::manifest::{Expansion, Manifest, Run};

/// Scores every run's records with its dataset's metrics, writes `summary.parquet` and
/// `summary.csv` into `out`, and returns each metric's signature.
pub fn score_and_summarize(
    manifest: &Manifest,
    expansion: &Expansion,
    runs: &[Run],
    records: &[Record],
    timings: &[Timing],
    out: &Path,
) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    let mut by_run: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in records {
        by_run.entry(record.run.as_str()).or_default().push(record);
    }
    let mut seconds: BTreeMap<&str, f64> = BTreeMap::new();
    for timing in timings {
        *seconds.entry(timing.run.as_str()).or_default() += timing.decode_seconds;
    }
    let mut metrics: BTreeMap<String, Box<dyn hsd_metrics::Metric>> = BTreeMap::new();
    let mut signatures = BTreeMap::new();
    let mut results = Vec::new();
    for run in runs {
        let Some(mut recs) = by_run.get(run.id.as_str()).cloned() else {
            continue;
        };
        recs.sort_by_key(|r| r.index);
        let predictions: Vec<String> = recs.iter().map(|r| r.prediction.clone()).collect();
        let references: Vec<Vec<String>> = recs.iter().map(|r| r.references.clone()).collect();
        let mut scores = BTreeMap::new();
        for name in expansion.datasets[run.dataset_index].metrics() {
            if !metrics.contains_key(&name) {
                metrics.insert(
                    name.clone(),
                    hsd_metrics::by_name(&name).with_context(|| format!("metric {name}"))?,
                );
            }
            let scored = metrics[&name]
                .score(&predictions, &references)
                .with_context(|| format!("scoring {} with {name}", run.id))?;
            signatures.insert(name.clone(), scored.signature.clone());
            // ROUGE also reports precision and recall; the tables and figures use F-measures.
            for (key, corpus) in scored
                .corpus
                .iter()
                .filter(|(k, _)| !k.ends_with("_precision") && !k.ends_with("_recall"))
            {
                let per_example: Option<Vec<f64>> = scored
                    .per_example
                    .iter()
                    .map(|m| m.get(key).copied())
                    .collect();
                if let Some(per_example) = per_example {
                    scores.insert(key.clone(), (*corpus, per_example));
                }
            }
        }
        let layers = recs
            .iter()
            .flat_map(|r| r.layers.first())
            .map(String::len)
            .next()
            .unwrap_or(0);
        let tokens: usize = recs.iter().map(|r| r.layers.len()).sum();
        let ran: usize = recs.iter().flat_map(|r| r.layers_run()).sum();
        results.push(RunResult {
            run: run.id.clone(),
            model: run.model.clone(),
            dataset: run.dataset.to_string(),
            strategy: run.strategy.name().to_owned(),
            label: run.label.clone(),
            target_skip_ratio: run.target_skip_ratio,
            examples: recs.iter().map(|r| r.example.clone()).collect(),
            generated_tokens: tokens,
            skipped_slots: tokens * layers - ran,
            total_slots: tokens * layers,
            flops: recs.iter().map(|r| r.flops).sum(),
            vanilla_flops: recs.iter().map(|r| r.vanilla_flops).sum(),
            scores,
            outputs: recs
                .iter()
                .map(|r| Output {
                    example: r.example.clone(),
                    tokens: r.tokens.clone(),
                    empty: r.prediction.trim().is_empty(),
                    teacher_forced: r.teacher_forced,
                })
                .collect(),
            speculation: run.speculative.map(|_| Speculation {
                rounds: recs
                    .iter()
                    .filter_map(|r| r.speculative)
                    .map(|s| s.rounds)
                    .sum(),
                drafted: recs
                    .iter()
                    .filter_map(|r| r.speculative)
                    .map(|s| s.drafted)
                    .sum(),
                accepted: recs
                    .iter()
                    .filter_map(|r| r.speculative)
                    .map(|s| s.accepted)
                    .sum(),
            }),
            decode_seconds: seconds.get(run.id.as_str()).copied(),
        });
    }
    let rows = summarize(&results, manifest.bootstrap_resamples, manifest.seed)?;
    write_summary(&rows, out)?;
    Ok(signatures)
}
