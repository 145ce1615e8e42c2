//! `hsd merge`: join the folders of `hsd run --shard i/n` into one results folder, with the
//! records in the order an unsharded run writes them, then score and summarize.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::sweep_flags::SweepSelection;
use crate::manifest::Run;
use crate::results::{
    Appender, Machine, Meta, ModelFiles, Record, Timing, git_commit, hex_sha256, recover,
    score_and_summarize, write_atomic,
};

#[derive(clap::Args)]
pub struct Args {
    /// The sweep the shards ran.
    #[command(flatten)]
    pub sweep: SweepSelection,
    /// The shard folders (`results/<manifest>/shard-i-of-n`).
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Where the merged folder goes; `results/<manifest name>` by default.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (manifest, expansion) = args.sweep.load()?;
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
                args.sweep.manifest.display(),
                args.sweep.profile
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
    let shard_metas = args
        .shards
        .iter()
        .map(|shard| Meta::read(shard))
        .collect::<anyhow::Result<Vec<Meta>>>()?;
    let sweep = (
        hex_sha256(manifest.text.as_bytes()),
        expansion.profile.clone(),
        expansion.limit,
    );
    let first = consistent_shards(&args.shards, &shard_metas, &sweep)?;
    let metric_signatures =
        score_and_summarize(&manifest, &expansion, &runs, &records, &timings, &out)?;
    Meta {
        shard: None,
        metric_signatures,
        solved_knobs: shard_metas
            .iter()
            .flat_map(|m| m.solved_knobs.clone())
            .collect(),
        skipped_runs: shard_metas
            .iter()
            .flat_map(|m| m.skipped_runs.iter().cloned())
            .collect(),
        models: merged_models(&manifest, &shard_metas),
        merged_from: args
            .shards
            .iter()
            .map(|s| s.display().to_string())
            .collect(),
        git_commit: git_commit(),
        machine: Machine::this(),
        ..first.clone()
    }
    .write(&out)?;
    println!(
        "{}: {} records from {} shards",
        out.display(),
        records.len(),
        args.shards.len()
    );
    Ok(())
}

/// The first shard's meta, once every shard is checked to come from this sweep (manifest
/// text, profile and limit in `sweep`) and from the same backend and model files: a merge of
/// unlike shards would mix two sweeps.
fn consistent_shards<'a>(
    shards: &[PathBuf],
    metas: &'a [Meta],
    sweep: &(String, String, Option<usize>),
) -> anyhow::Result<&'a Meta> {
    let Some(first) = metas.first() else {
        bail!("no shard folder given");
    };
    for (shard, meta) in shards.iter().zip(metas) {
        let (manifest_sha256, profile, limit) = sweep;
        let differs = if &meta.manifest_sha256 != manifest_sha256 {
            Some("manifest text")
        } else if (&meta.profile, meta.limit) != (profile, *limit) {
            Some("profile or limit")
        } else if meta.backend != first.backend {
            Some("backend")
        } else if meta.weights != first.weights {
            Some("weights")
        } else if !same_files(&meta.models, &first.models) {
            Some("model files")
        } else {
            None
        };
        if let Some(what) = differs {
            bail!(
                "{}: its {what} differs from this merge's or from {}'s (meta.json); merge only shards of one sweep",
                shard.display(),
                shards[0].display()
            );
        }
    }
    Ok(first)
}

/// Whether two shards read the same bytes wherever they read the same file for the same model
/// (shards split by dataset load different adapters, never different versions of one file).
fn same_files(a: &[ModelFiles], b: &[ModelFiles]) -> bool {
    let digests = |models: &[ModelFiles]| -> BTreeMap<(String, String), String> {
        models
            .iter()
            .flat_map(|m| {
                m.files
                    .iter()
                    .map(|f| ((m.name.clone(), f.path.clone()), f.sha256.clone()))
            })
            .collect()
    };
    let (a, b) = (digests(a), digests(b));
    a.iter()
        .all(|(file, sha)| b.get(file).is_none_or(|other| other == sha))
}

/// Every model the shards loaded, once, in the manifest's model order and then the order the
/// shards list them.
fn merged_models(manifest: &crate::manifest::Manifest, metas: &[Meta]) -> Vec<ModelFiles> {
    let mut models: Vec<ModelFiles> = Vec::new();
    for model in metas.iter().flat_map(|m| &m.models) {
        if !models.contains(model) {
            models.push(model.clone());
        }
    }
    models.sort_by_key(|m| {
        manifest
            .models
            .iter()
            .position(|block| block.name == m.name)
            .unwrap_or(usize::MAX)
    });
    models
}
