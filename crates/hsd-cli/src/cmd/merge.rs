//! `hsd merge`: join the folders of `hsd run --shard i/n` into one results folder, with the
//! records in the order an unsharded run writes them, then score and summarize.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::manifest::{Expansion, Manifest, Run};
use crate::records::{Appender, Record, Timing, recover, write_atomic};
use crate::summary::{RunResult, summarize, write};

#[derive(clap::Args)]
pub struct Args {
    /// The manifest the shards ran.
    pub manifest: PathBuf,
    /// The shard folders (`results/<manifest>/shard-i-of-n`).
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    #[arg(long, default_value = "quick")]
    pub profile: String,
    #[arg(long)]
    pub limit: Option<usize>,
    /// Where the merged folder goes; `results/<manifest name>` by default.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let expansion = manifest.expand(Some(&args.profile), args.limit)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&manifest.name));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let position: BTreeMap<&str, usize> = expansion
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let mut records = Vec::new();
    let mut timings = Vec::new();
    for shard in &args.shards {
        let shard_records: Vec<Record> = recover(&shard.join("records.jsonl"))?;
        if let Some(stray) = shard_records
            .iter()
            .find(|r| !position.contains_key(r.run.as_str()))
        {
            bail!(
                "{}: run {} is not in {} (profile {})",
                shard.display(),
                stray.run,
                args.manifest.display(),
                args.profile
            );
        }
        records.extend(shard_records);
        timings.extend(recover::<Timing>(&shard.join("timings.jsonl"))?);
    }
    let order = |r: &Record| {
        let run = &expansion.runs[position[r.run.as_str()]];
        let model = manifest
            .models
            .iter()
            .position(|m| m.name == run.model)
            .unwrap_or(usize::MAX);
        (
            model,
            run.dataset_index,
            r.index / manifest.batch_size,
            position[r.run.as_str()],
            r.index,
        )
    };
    records.sort_by_key(order);
    let before = records.len();
    records.dedup_by(|a, b| a.run == b.run && a.example == b.example);
    if records.len() != before {
        bail!(
            "the shards overlap: {} (run, example) pairs appear twice",
            before - records.len()
        );
    }
    for name in ["records.jsonl", "timings.jsonl"] {
        write_atomic(&out.join(name), b"")?;
    }
    Appender::open(&out.join("records.jsonl"))?.append(&records)?;
    Appender::open(&out.join("timings.jsonl"))?.append(&timings)?;
    let runs: Vec<Run> = expansion
        .runs
        .iter()
        .filter(|r| records.iter().any(|rec| rec.run == r.id))
        .cloned()
        .collect();
    let signatures = summarize_folder(&manifest, &expansion, &runs, &records, &timings, &out)?;
    let meta = serde_json::json!({
        "manifest": manifest.path.display().to_string(),
        "manifest_text": manifest.text,
        "manifest_sha256": super::run::hex_sha256(manifest.text.as_bytes()),
        "profile": expansion.profile,
        "limit": expansion.limit,
        "merged_from": args.shards.iter().map(|s| s.display().to_string()).collect::<Vec<_>>(),
        "shard_meta": args.shards.iter().map(|s| std::fs::read_to_string(s.join("meta.json")).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())).collect::<Vec<_>>(),
        "metric_signatures": signatures,
    });
    write_atomic(
        &out.join("meta.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    println!(
        "{}: {} records from {} shards",
        out.display(),
        records.len(),
        args.shards.len()
    );
    Ok(())
}

/// Scores every run's records with its dataset's metrics, writes `summary.parquet` and
/// `summary.csv` into `out`, and returns each metric's signature.
pub(crate) fn summarize_folder(
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
            decode_seconds: seconds.get(run.id.as_str()).copied(),
        });
    }
    let rows = summarize(&results, manifest.bootstrap_resamples, manifest.seed)?;
    write(&rows, out)?;
    Ok(signatures)
}
