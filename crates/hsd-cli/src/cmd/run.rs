//! `hsd run`: a manifest's sweep into a results folder. This file handles the folder (fresh or
//! resumed, sharded or whole), the models, and `meta.json`; [`crate::sweep`] decodes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hsd_model::{Backend, WeightMode};

use crate::adapters::{load_adapted, load_drafter};
use indicatif::MultiProgress;

use crate::manifest::{Expansion, Manifest, ModelSpecs, Run};
use crate::preflight::check_inputs;
use crate::prompts::PromptEncoder;
use crate::results::{
    Appender, Machine, Meta, ModelFiles, Record, SolvedKnobs, Timing, done, git_commit, hex_sha256,
    recover, score_and_summarize, write_atomic,
};
use crate::sweep::{Outputs, Sweep};

use super::jobs::{Jobs, ShardBy, earlier_processes, runs_of_shard, shard_folder_name};
use super::sweep_flags::{ModelFlags, SweepSelection};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub sweep: SweepSelection,
    /// Run only shard i of n (1-based, `i/n`) of the expanded list, divided as `--shard-by`
    /// says.
    #[arg(long)]
    pub shard: Option<String>,
    /// `runs` (runs i, i+n, i+2n, ...) or `datasets` (whole model-and-dataset groups,
    /// balanced by estimated cost, so that no batch is prefilled twice).
    #[arg(long, value_enum, default_value_t, requires = "shard")]
    pub shard_by: ShardBy,
    /// Decode in N processes at once, each taking whole model-and-dataset groups with
    /// cores / N threads, and merge their folders (`<out>/jobs/`) into `<out>`; the records are
    /// the bytes one process writes. On 2 cores, `--jobs 2` finishes a sweep about 1.5x sooner.
    #[arg(long, default_value_t = 1, conflicts_with = "shard")]
    pub jobs: usize,
    /// Continue a killed run in the same folder, skipping every (run, example) recorded.
    #[arg(long)]
    pub resume: bool,
    /// Results folder; `results/<manifest name>` (plus `/shard-i-of-n`) by default.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub model_flags: ModelFlags,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (manifest, mut expansion) = args.sweep.load()?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if args.jobs == 0 {
        bail!("--jobs 0: give at least one process");
    }
    let specs = ModelSpecs::from_flags(&args.model_flags.models)?;
    let decodes = decodes_here(&manifest, &specs);
    if let Some((i, n)) = shard {
        expansion.runs = runs_of_shard(&expansion, i, n, args.shard_by, &decodes);
        if expansion.runs.is_empty() {
            bail!(
                "shard {i}/{n} of {} holds no run",
                args.sweep.manifest.display()
            );
        }
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let base = PathBuf::from("results").join(&manifest.name);
        match shard {
            Some((i, n)) => base.join(shard_folder_name(i, n)),
            None => base,
        }
    });
    let backend = args.model_flags.backend.unwrap_or(manifest.backend);
    let weights = args.model_flags.weights.unwrap_or(manifest.weights);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = lock_folder(&out)?;
    let records_path = out.join("records.jsonl");
    let timings_path = out.join("timings.jsonl");
    let identity = RunIdentity::new(&manifest, &expansion, backend, weights);
    let identity_path = out.join("run.json");
    if records_path.exists() {
        if !args.resume {
            bail!(
                "{} exists: pass --resume to continue it, or choose another --out",
                records_path.display()
            );
        }
        let previous = std::fs::read_to_string(&identity_path)
            .with_context(|| format!("reading {}", identity_path.display()))?;
        if previous != identity.to_json()? {
            bail!(
                "{}: the manifest, profile, limit, shard, backend or weights differ from the run being resumed",
                identity_path.display()
            );
        }
    } else {
        write_atomic(&identity_path, identity.to_json()?.as_bytes())?;
    }
    if let Some(earlier) = earlier_processes(&out).filter(|&n| args.jobs == 1 && n > 1) {
        bail!(
            "{} holds a run of {earlier} processes: continue it with --jobs {earlier} --resume",
            out.join("jobs").display()
        );
    }
    if args.jobs > 1 {
        let inputs = check_inputs(&manifest, &expansion, &hsd_data::data_root()?, &specs)?;
        return Jobs {
            sweep: &args.sweep,
            model_flags: &args.model_flags,
            manifest: &manifest,
            expansion: &expansion,
            examples: inputs
                .examples
                .iter()
                .map(|(&index, examples)| (index, examples.len()))
                .collect(),
            out: &out,
            resume: args.resume,
            processes: args.jobs,
            decodes: &decodes,
        }
        .run();
    }
    let existing: Vec<Record> = recover(&records_path)?;
    let _: Vec<Timing> = recover(&timings_path)?;
    let finished = done(&existing);
    tracing::info!(records = existing.len(), out = %out.display(), "starting");

    let data_root = hsd_data::data_root()?;
    let inputs = check_inputs(&manifest, &expansion, &data_root, &specs)?;
    let knobs_path = out.join("solved.jsonl");
    let mut solved: BTreeSet<String> = recover::<SolvedKnobs>(&knobs_path)?
        .into_iter()
        .map(|k| k.run)
        .collect();
    let mut outputs = Outputs {
        records: &mut Appender::open(&records_path)?,
        timings: &mut Appender::open(&timings_path)?,
        knobs: &mut Appender::open(&knobs_path)?,
        solved: &mut solved,
    };
    let progress = MultiProgress::new();
    let mut models = Vec::new();
    let mut skipped = BTreeSet::new();
    for model_block in &manifest.models {
        let runs: Vec<&Run> = expansion
            .runs
            .iter()
            .filter(|r| r.model == model_block.name)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let Some(spec) = specs.resolve(model_block)? else {
            eprintln!(
                "notice: skipping model '{}' ({} runs): no spec given (set {} or pass --model {}=SPEC)",
                model_block.name,
                runs.len(),
                model_block.spec_env.as_deref().unwrap_or("its spec_env"),
                model_block.name
            );
            continue;
        };
        // With an adapter per dataset, each dataset decodes with its own merged weights.
        let mut groups: Vec<(Option<PathBuf>, Vec<&Run>)> = Vec::new();
        for run in runs {
            let dataset = expansion.datasets[run.dataset_index].name;
            let adapter = model_block.adapter_for(dataset);
            match groups.iter_mut().find(|(a, _)| *a == adapter) {
                Some((_, group)) => group.push(run),
                None => groups.push((adapter, vec![run])),
            }
        }
        for (adapter, runs) in groups {
            if let Some(dir) = adapter.as_ref().filter(|dir| {
                model_block.optional && !dir.join(hsd_model::weights::ADAPTER_CONFIG).exists()
            }) {
                eprintln!(
                    "notice: skipping {} runs of optional model '{}': no adapter at {}",
                    runs.len(),
                    model_block.name,
                    dir.display()
                );
                skipped.extend(runs.iter().map(|run| run.id.clone()));
                continue;
            }
            let model = load_adapted(&spec, backend, weights, adapter.as_deref())
                .with_context(|| format!("loading model '{}' from {spec}", model_block.name))?;
            models.push(match &adapter {
                Some(dir) => ModelFiles::with_adapter(&model_block.name, &model.source, dir)?,
                None => ModelFiles::new(&model_block.name, &model.source),
            });
            // `--weights` may override the manifest's, so what the runs draft on is compared
            // with the weights loaded, not with the manifest's.
            let drafter = match runs
                .iter()
                .find_map(|run| run.draft_weights.filter(|&w| w != weights))
            {
                Some(draft_weights) => {
                    load_drafter(&spec, backend, weights, draft_weights, adapter.as_deref())?
                        .map(|drafter| (draft_weights, drafter))
                }
                None => None,
            };
            let runs = solve_at_prompt_width(
                &manifest,
                &expansion,
                &inputs.examples,
                &model,
                model_block,
                &data_root,
                runs,
            )?;
            let mut buildable = Vec::with_capacity(runs.len());
            for run in &runs {
                let max_new_tokens = expansion.datasets[run.dataset_index].max_new_tokens;
                match manifest
                    .skip_reason(run, model.shapes.layers, max_new_tokens)
                    .with_context(|| format!("{}: building {}", manifest.path.display(), run.id))?
                {
                    None => buildable.push(run),
                    Some(reason) => {
                        eprintln!(
                            "notice: skipping {} (unreachable_targets = \"skip\"): {reason}",
                            run.id
                        );
                        skipped.insert(run.id.clone());
                    }
                }
            }
            let sweep = Sweep {
                manifest: &manifest,
                expansion: &expansion,
                model_block,
                model: &model,
                drafter: drafter.as_ref().map(|(w, drafter)| (*w, drafter)),
                finished: &finished,
                progress: &progress,
                data_root: &data_root,
                examples: &inputs.examples,
            };
            sweep.run(&buildable, &mut outputs)?;
        }
    }
    progress.clear()?;
    let all: Vec<Record> = recover(&records_path)?;
    let all_timings: Vec<Timing> = recover(&timings_path)?;
    let runs: Vec<Run> = expansion
        .runs
        .iter()
        .filter(|r| models.iter().any(|m| m.name == r.model) && !skipped.contains(&r.id))
        .cloned()
        .collect();
    let scoring = std::time::Instant::now();
    let metric_signatures =
        score_and_summarize(&manifest, &expansion, &runs, &all, &all_timings, &out)?;
    eprintln!(
        "scored and summarized {} records in {:.1} s",
        all.len(),
        scoring.elapsed().as_secs_f64()
    );
    Meta {
        manifest: manifest.path.display().to_string(),
        manifest_sha256: hex_sha256(manifest.text.as_bytes()),
        profile: expansion.profile.clone(),
        limit: expansion.limit,
        shard: args.shard.clone(),
        seed: manifest.seed,
        backend: backend.name().to_owned(),
        weights: (!weights.is_f32()).then(|| weights.name().to_owned()),
        solved_knobs: recover::<SolvedKnobs>(&knobs_path)?
            .into_iter()
            .map(|k| (k.run, serde_json::Value::Object(k.knobs)))
            .collect(),
        models,
        metric_signatures,
        skipped_runs: skipped,
        merged_from: Vec::new(),
        git_commit: git_commit(),
        machine: Machine::this(),
        hsd_version: env!("CARGO_PKG_VERSION").to_owned(),
        manifest_text: manifest.text.clone(),
    }
    .write(&out)?;
    println!(
        "{}: {} records, summary in {}",
        out.display(),
        all.len(),
        out.join("summary.csv").display()
    );
    Ok(())
}

/// Whether a run decodes here, as the model loop below decides: its model resolves to a spec
/// (an optional one may not), and an optional model's adapter for the dataset exists.
pub(super) fn decodes_here<'a>(
    manifest: &'a Manifest,
    specs: &'a ModelSpecs,
) -> impl Fn(&Run) -> bool + 'a {
    move |run: &Run| {
        let Some(block) = manifest.models.iter().find(|m| m.name == run.model) else {
            return false;
        };
        if !matches!(specs.resolve(block), Ok(Some(_))) {
            return false;
        }
        !block.optional
            || block
                .adapter_for(run.dataset)
                .is_none_or(|dir| dir.join(hsd_model::weights::ADAPTER_CONFIG).exists())
    }
}

/// An exclusive lock on `out/.lock`, held until the returned file is dropped (or the process
/// dies), so that a second `hsd run` on the same folder refuses instead of interleaving lines.
fn lock_folder(out: &Path) -> anyhow::Result<File> {
    let path = out.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => bail!(
            "{}: another hsd run is writing to {}; wait for it or choose another --out",
            path.display(),
            out.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// What must match for `--resume` to continue a folder.
struct RunIdentity(serde_json::Value);

impl RunIdentity {
    fn new(
        manifest: &Manifest,
        expansion: &Expansion,
        backend: Backend,
        weights: WeightMode,
    ) -> Self {
        let runs: Vec<&str> = expansion.runs.iter().map(|r| r.id.as_str()).collect();
        let mut identity = serde_json::json!({
            "manifest_sha256": hex_sha256(manifest.text.as_bytes()),
            "profile": expansion.profile,
            "limit": expansion.limit,
            "backend": backend.name(),
            "runs": runs,
        });
        // Stated only when not the reference, so folders made before the option still resume.
        if !weights.is_f32() {
            identity["weights"] = weights.name().into();
        }
        Self(identity)
    }

    fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(&self.0)? + "\n")
    }
}

fn parse_shard(text: &str) -> anyhow::Result<(usize, usize)> {
    let parsed = text.split_once('/').and_then(|(i, n)| {
        Some((
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((i, n)) if n > 0 && (1..=n).contains(&i) => Ok((i, n)),
        _ => bail!("--shard {text:?}: expected i/n with 1 <= i <= n"),
    }
}

/// `runs` with `prompt_len` stated for every rule that reads the sequence clock (see
/// [`hsd_skip::StrategyConfig::for_prompt_len`]): the median over the dataset's batches of the
/// batch width, the prompt length `P` a batch decodes with. Other runs pass unchanged.
fn solve_at_prompt_width(
    manifest: &Manifest,
    expansion: &Expansion,
    examples: &BTreeMap<usize, Vec<hsd_data::Example>>,
    model: &hsd_model::LoadedModel,
    model_block: &crate::manifest::ModelBlock,
    data_root: &Path,
    runs: Vec<&Run>,
) -> anyhow::Result<Vec<Run>> {
    let mut widths: BTreeMap<usize, usize> = BTreeMap::new();
    let mut solved = Vec::with_capacity(runs.len());
    for run in runs {
        let mut run = run.clone();
        if run.strategy.reads_prompt_len() {
            let width = match widths.get(&run.dataset_index) {
                Some(width) => *width,
                None => {
                    let block = &expansion.datasets[run.dataset_index];
                    let encoder = PromptEncoder::new(
                        model,
                        &model_block.name,
                        model_block.prompt_mode,
                        manifest.seed,
                        data_root,
                    )?;
                    let rows = examples.get(&run.dataset_index).with_context(|| {
                        format!(
                            "dataset {}: its examples were not read before work",
                            block.name
                        )
                    })?;
                    let prompts = encoder.encode(block, rows)?;
                    let width = median_batch_width(&prompts, manifest.batch_size);
                    widths.insert(run.dataset_index, width);
                    width
                }
            };
            run.strategy = run.strategy.for_prompt_len(width);
        }
        solved.push(run);
    }
    Ok(solved)
}

/// The median (lower middle) over batches of `batch_size` consecutive prompts of the longest
/// prompt in each; 0 without prompts.
fn median_batch_width(prompts: &[Vec<u32>], batch_size: usize) -> usize {
    let mut widths: Vec<usize> = prompts
        .chunks(batch_size.max(1))
        .map(|batch| batch.iter().map(Vec::len).max().unwrap_or(0))
        .collect();
    widths.sort_unstable();
    widths
        .get(widths.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_on_a_locked_folder_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_folder(dir.path()).unwrap();
        let err = lock_folder(dir.path()).unwrap_err().to_string();
        assert!(err.contains("another hsd run is writing to"), "{err}");
        drop(held);
        lock_folder(dir.path()).unwrap();
    }

    #[test]
    fn the_prompt_width_is_the_median_of_the_batches_longest_prompts() {
        let prompts: Vec<Vec<u32>> = [3, 9, 4, 4, 7, 1, 2].iter().map(|&n| vec![0; n]).collect();
        // Batches of two: widths 9, 4, 7, 2; the lower middle is 4.
        assert_eq!(median_batch_width(&prompts, 2), 4);
        assert_eq!(median_batch_width(&prompts, 7), 9);
        assert_eq!(median_batch_width(&[], 8), 0);
    }

    #[test]
    fn shards_parse_or_explain() {
        assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
        assert!(
            parse_shard("0/3").is_err() && parse_shard("4/3").is_err() && parse_shard("x").is_err()
        );
    }
}
