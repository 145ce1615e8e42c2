//! `hsd reproduce`: run a manifest from scratch into a fresh folder, leaving committed results
//! untouched, then say whether its records equal the committed run's byte for byte. The
//! committed run is the folder under `results/` whose `meta.json` names the same manifest text,
//! profile, limit and backend; `--adopt` copies the fresh run over it and re-renders its report.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::jobs::{ShardBy, default_processes, earlier_processes};
use super::sweep_flags::{ModelFlags, SweepSelection};
use crate::manifest::ModelSpecs;
use crate::results::{Meta, compare_records, hex_sha256};

/// The files of a results folder that `--adopt` copies.
const RESULT_FILES: [&str; 7] = [
    "records.jsonl",
    "timings.jsonl",
    "solved.jsonl",
    "summary.csv",
    "summary.parquet",
    "meta.json",
    "run.json",
];

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub sweep: SweepSelection,
    /// The fresh run's folder; `target/reproduce/<manifest name>-<profile>` by default. It is
    /// emptied first unless `--resume` continues it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted reproduction in `--out` instead of starting it over.
    #[arg(long)]
    pub resume: bool,
    /// The committed run to compare with; found under `results/` by its `meta.json` otherwise.
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// Where committed runs are looked for.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Copy the fresh run over the committed one (or into `results/<manifest name>` when there
    /// is none) and regenerate its tables and figures.
    #[arg(long)]
    pub adopt: bool,
    /// Decode in N processes at once (see `hsd run --jobs`); by default one per core, at most
    /// one per model-and-dataset group, and with `--resume` as many as the run being continued.
    #[arg(long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub model_flags: ModelFlags,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (manifest, expansion) = args.sweep.load()?;
    let backend = args.model_flags.backend.unwrap_or(manifest.backend);
    let weights = args.model_flags.weights.unwrap_or(manifest.weights);
    let manifest_sha256 = hex_sha256(manifest.text.as_bytes());
    let committed = match &args.against {
        Some(folder) => Some(folder.clone()),
        None => find_committed(&args.results, |meta| {
            meta.manifest_sha256 == manifest_sha256
                && meta.profile == expansion.profile
                && meta.limit == expansion.limit
                && meta.backend == backend.name()
                && meta.weights.as_deref() == (!weights.is_f32()).then(|| weights.name())
                && meta.shard.is_none()
        })?,
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("target/reproduce").join(format!("{}-{}", manifest.name, args.sweep.profile))
    });
    if !args.resume && out.exists() {
        for name in RESULT_FILES {
            let path = out.join(name);
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("clearing {}", path.display()))?;
            }
        }
        let jobs = out.join("jobs");
        if jobs.exists() {
            std::fs::remove_dir_all(&jobs)
                .with_context(|| format!("clearing {}", jobs.display()))?;
        }
    }
    let jobs = match args.jobs {
        Some(jobs) => jobs,
        None if args.resume => earlier_processes(&out).unwrap_or(1),
        None => {
            let specs = ModelSpecs::from_flags(&args.model_flags.models)?;
            default_processes(&expansion, &super::run::decodes_here(&manifest, &specs))
        }
    };
    eprintln!(
        "reproducing {} (profile {}) into {} with {jobs} process(es)",
        manifest.path.display(),
        args.sweep.profile,
        out.display()
    );
    let started = std::time::Instant::now();
    super::run::run(super::run::Args {
        sweep: args.sweep.clone(),
        shard: None,
        shard_by: ShardBy::Runs,
        jobs,
        resume: args.resume,
        out: Some(out.clone()),
        model_flags: args.model_flags.clone(),
    })?;
    println!(
        "{}: decoded and scored in {:.1} minutes of wall clock with {jobs} process(es)",
        out.display(),
        started.elapsed().as_secs_f64() / 60.0
    );

    let Some(committed) = committed else {
        println!(
            "{}: no committed run of this manifest text, profile, limit and backend under {} to compare with",
            out.display(),
            args.results.display()
        );
        return adopt_if_asked(&args, &out, &PathBuf::from("results").join(&manifest.name));
    };
    let comparison = compare_records(&out.join("records.jsonl"), &committed.join("records.jsonl"))?;
    let commit = Meta::read(&committed)
        .ok()
        .and_then(|m| m.git_commit)
        .map_or_else(
            || "commit unknown".to_owned(),
            |c| format!("git {}", &c[..c.len().min(7)]),
        );
    println!("{comparison} to {} ({commit})", committed.display());
    adopt_if_asked(&args, &out, &committed)?;
    if !comparison.is_identical() && !args.adopt {
        bail!(
            "the fresh run in {} differs from {}; pass --adopt to replace the committed run",
            out.display(),
            committed.display()
        );
    }
    Ok(())
}

fn adopt_if_asked(args: &Args, fresh: &Path, committed: &Path) -> anyhow::Result<()> {
    if !args.adopt {
        return Ok(());
    }
    std::fs::create_dir_all(committed)
        .with_context(|| format!("creating {}", committed.display()))?;
    for name in RESULT_FILES {
        let (from, to) = (fresh.join(name), committed.join(name));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    println!("adopted: {} now holds the fresh run", committed.display());
    super::report::run(super::report::Args {
        results: committed.to_path_buf(),
        paper: PathBuf::from("paper"),
    })
}

/// The folder under `root` (up to two levels down) whose `meta.json` satisfies `matches`.
fn find_committed(root: &Path, matches: impl Fn(&Meta) -> bool) -> anyhow::Result<Option<PathBuf>> {
    let mut found = Vec::new();
    let mut frontier = vec![root.to_path_buf()];
    for _ in 0..2 {
        let mut next = Vec::new();
        for dir in frontier {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                if path.join("meta.json").exists() && Meta::read(&path).is_ok_and(|m| matches(&m)) {
                    found.push(path.clone());
                }
                next.push(path);
            }
        }
        frontier = next;
    }
    found.sort();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => bail!(
            "{} committed runs match this manifest and profile ({}); pick one with --against",
            many.len(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
