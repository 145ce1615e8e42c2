//! `hsd run`: a manifest's sweep. Per (model, dataset), examples go in fixed batches: each
//! batch is prefilled once (every layer) and its logits and KV cache are cloned for every
//! strategy and target skip ratio still to do. Records are appended as batches finish, so a
//! killed run resumes with `--resume` and recomputes nothing it had written.
//!
//! Batches are the same chunks of the example list on every attempt, whatever is already
//! done, so a resumed run decodes exactly the batches an uninterrupted one does and writes
//! byte-identical records (dynamic strategies exit on the whole batch's agreement, so batch
//! composition matters).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use hsd_data::{DatasetSpec, Mode, PromptBody, PromptTemplate, RenderOptions, Role, ShotPool};
use hsd_model::chat::{ChatMessage, ChatTemplate};
use hsd_model::{Backend, Batch, GenerateConfig, LoadedModel, StopReason, load_model};
use hsd_skip::{Measure, Oracle, SkipStats, Strategy, StrategyConfig};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::manifest::{Calibration, DatasetBlock, Expansion, Manifest, ModelBlock, Run};
use crate::records::{Appender, Record, Timing, done, recover, write_atomic};

#[derive(clap::Args)]
pub struct Args {
    /// The manifest (`experiments/*.toml`).
    pub manifest: PathBuf,
    /// `smoke` (a handful of examples), `quick` (50 per dataset) or `full`.
    #[arg(long, default_value = "quick")]
    pub profile: String,
    /// Examples per dataset, overriding the profile.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Run only shard i of n (1-based, `i/n`): runs i, i+n, i+2n, ... of the expanded list.
    #[arg(long)]
    pub shard: Option<String>,
    /// Continue a killed run in the same folder, skipping every (run, example) recorded.
    #[arg(long)]
    pub resume: bool,
    /// Results folder; `results/<manifest name>` (plus `/shard-i-of-n`) by default.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `NAME=SPEC`: the spec for the manifest's model NAME (e.g. `gpt2=/models/gpt2`).
    #[arg(long = "model", value_name = "NAME=SPEC")]
    pub models: Vec<String>,
    /// The backend, overriding the manifest's.
    #[arg(long)]
    pub backend: Option<Backend>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let mut expansion = manifest.expand(Some(&args.profile), args.limit)?;
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if let Some((i, n)) = shard {
        expansion.runs = expansion
            .runs
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % n == i - 1)
            .map(|(_, r)| r)
            .collect();
        if expansion.runs.is_empty() {
            bail!("shard {i}/{n} of {} holds no run", args.manifest.display());
        }
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let base = PathBuf::from("results").join(&manifest.name);
        match shard {
            Some((i, n)) => base.join(format!("shard-{i}-of-{n}")),
            None => base,
        }
    });
    let backend = match args.backend {
        Some(b) => b,
        None => manifest
            .backend
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: backend: {e}", manifest.path.display()))?,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let records_path = out.join("records.jsonl");
    let identity = RunIdentity::new(&manifest, &expansion, backend);
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
                "{}: the manifest, profile, limit, shard or backend differ from the run being resumed",
                identity_path.display()
            );
        }
    } else {
        write_atomic(&identity_path, identity.to_json()?.as_bytes())?;
    }
    let existing: Vec<Record> = recover(&records_path)?;
    let _: Vec<Timing> = recover(&out.join("timings.jsonl"))?;
    let finished = done(&existing);
    tracing::info!(records = existing.len(), out = %out.display(), "starting");

    let overrides = parse_overrides(&args.models)?;
    let mut records = Appender::open(&records_path)?;
    let mut timings = Appender::open(&out.join("timings.jsonl"))?;
    let progress = MultiProgress::new();
    let mut model_files = Vec::new();
    let mut model_names = BTreeSet::new();
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
        let Some(spec) = resolve_spec(model_block, &overrides)? else {
            eprintln!(
                "notice: skipping model '{}' ({} runs): no spec given (set {} or pass --model {}=SPEC)",
                model_block.name,
                runs.len(),
                model_block.spec_env.as_deref().unwrap_or("its spec_env"),
                model_block.name
            );
            continue;
        };
        model_names.insert(model_block.name.clone());
        let model = load_model(&spec, backend)
            .with_context(|| format!("loading model '{}' from {spec}", model_block.name))?;
        model_files.push(serde_json::json!({ "name": model_block.name, "spec": spec, "architecture": model.source.architecture, "files": model.source.files }));
        let mut buildable = Vec::with_capacity(runs.len());
        for run in runs {
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
        let runs = buildable;
        let sweep = Sweep {
            manifest: &manifest,
            expansion: &expansion,
            model_block,
            model: &model,
            finished: &finished,
            progress: &progress,
        };
        sweep.run(&runs, &mut records, &mut timings)?;
    }
    progress.clear()?;
    let all: Vec<Record> = recover(&records_path)?;
    let all_timings: Vec<Timing> = recover(&out.join("timings.jsonl"))?;
    let runs: Vec<Run> = expansion
        .runs
        .iter()
        .filter(|r| model_names.contains(&r.model) && !skipped.contains(&r.id))
        .cloned()
        .collect();
    let signatures =
        super::merge::summarize_folder(&manifest, &expansion, &runs, &all, &all_timings, &out)?;
    let meta = serde_json::json!({
        "manifest": manifest.path.display().to_string(),
        "manifest_text": manifest.text,
        "manifest_sha256": hex_sha256(manifest.text.as_bytes()),
        "profile": expansion.profile,
        "limit": expansion.limit,
        "shard": args.shard,
        "seed": manifest.seed,
        "backend": backend.name(),
        "models": model_files,
        "metric_signatures": signatures,
        "skipped_runs": skipped,
        "git_commit": git_commit(),
        "machine": machine(),
        "hsd_version": env!("CARGO_PKG_VERSION"),
    });
    write_atomic(
        &out.join("meta.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    println!(
        "{}: {} records, summary in {}",
        out.display(),
        all.len(),
        out.join("summary.csv").display()
    );
    Ok(())
}

/// What must match for `--resume` to continue a folder.
struct RunIdentity(serde_json::Value);

impl RunIdentity {
    fn new(manifest: &Manifest, expansion: &Expansion, backend: Backend) -> Self {
        let runs: Vec<&str> = expansion.runs.iter().map(|r| r.id.as_str()).collect();
        Self(serde_json::json!({
            "manifest_sha256": hex_sha256(manifest.text.as_bytes()),
            "profile": expansion.profile,
            "limit": expansion.limit,
            "backend": backend.name(),
            "runs": runs,
        }))
    }

    fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(&self.0)? + "\n")
    }
}

struct Sweep<'a> {
    manifest: &'a Manifest,
    expansion: &'a Expansion,
    model_block: &'a ModelBlock,
    model: &'a LoadedModel,
    finished: &'a BTreeSet<(String, String)>,
    progress: &'a MultiProgress,
}

impl Sweep<'_> {
    fn run(
        &self,
        runs: &[&Run],
        records: &mut Appender,
        timings: &mut Appender,
    ) -> anyhow::Result<()> {
        let data_root = hsd_data::data_root()?;
        let tokenizer = self.model.tokenizer()?;
        let shapes = self.model.shapes;
        let bar_style =
            ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg} eta {eta}")?
                .progress_chars("=> ");
        let mut by_dataset: BTreeMap<usize, Vec<&Run>> = BTreeMap::new();
        for run in runs {
            by_dataset.entry(run.dataset_index).or_default().push(run);
        }
        for (dataset_index, dataset_runs) in by_dataset {
            let block = &self.expansion.datasets[dataset_index];
            let examples = load_examples(block, self.expansion.limit, &data_root)?;
            let prompts = self.prompts(block, &examples, &data_root)?;
            let bar = self.progress.add(ProgressBar::new(
                (examples.len() * dataset_runs.len()) as u64,
            ));
            bar.set_style(bar_style.clone());
            bar.set_prefix(format!("{}/{}", self.model_block.name, block.name));
            let config = GenerateConfig {
                max_new_tokens: block.max_new_tokens,
                eos_ids: tokenizer.eos_ids().to_vec(),
                pad_id: tokenizer
                    .pad_id()
                    .or_else(|| tokenizer.eos_ids().first().copied())
                    .unwrap_or(0),
            };
            let calibration = self.calibration_batch(&dataset_runs, block, &data_root, &config)?;
            let mut thresholds: BTreeMap<String, f64> = BTreeMap::new();
            let mut tokens_done = 0usize;
            let started = Instant::now();
            for (chunk, batch_examples) in examples.chunks(self.manifest.batch_size).enumerate() {
                let first = chunk * self.manifest.batch_size;
                let todo: Vec<&Run> = dataset_runs
                    .iter()
                    .copied()
                    .filter(|r| {
                        batch_examples
                            .iter()
                            .any(|e| !self.finished.contains(&(r.id.clone(), e.id.clone())))
                    })
                    .collect();
                bar.inc(((dataset_runs.len() - todo.len()) * batch_examples.len()) as u64);
                if todo.is_empty() {
                    continue;
                }
                let rows: Vec<Vec<u32>> = prompts[first..first + batch_examples.len()].to_vec();
                let batch = Batch::new(rows.clone(), config.pad_id)?;
                let prefill_started = Instant::now();
                let (logits, cache) = self.model.decoder.prefill(&batch, block.max_new_tokens)?;
                let prefill_seconds = prefill_started.elapsed().as_secs_f64();
                for run in todo {
                    let mut oracle = Oracle::new();
                    let mut built = match &run.strategy {
                        StrategyConfig::Oracle(_) => None,
                        config_of_run => Some(
                            self.calibrated(
                                config_of_run,
                                &calibration,
                                &mut thresholds,
                                block,
                                &config,
                            )?
                            .build(shapes.layers, block.max_new_tokens)
                            .with_context(|| format!("building {}", run.id))?,
                        ),
                    };
                    // Timed from here: bisecting a CALM threshold above is setup, not decoding.
                    let decode_started = Instant::now();
                    let strategy: &mut dyn Strategy = match built.as_mut() {
                        Some(built) => built.as_mut(),
                        None => &mut oracle,
                    };
                    let generated = self.model.decoder.decode(
                        logits.clone(),
                        cache.clone(),
                        strategy,
                        &config,
                    )?;
                    let decode_seconds = decode_started.elapsed().as_secs_f64();
                    let oracle = built.is_none().then_some(oracle);
                    let mut batch_records = Vec::with_capacity(batch_examples.len());
                    for (offset, (example, generation)) in
                        batch_examples.iter().zip(&generated.rows).enumerate()
                    {
                        let mut stats = SkipStats::new(shapes);
                        for trace in &generation.traces {
                            stats
                                .record(trace)
                                .with_context(|| format!("{} on {}", run.id, example.id))?;
                        }
                        let summary = stats.summary();
                        let layers = generation
                            .traces
                            .iter()
                            .map(|t| {
                                (0..shapes.layers)
                                    .map(|l| {
                                        if t.ran.contains(l) {
                                            '1'
                                        } else if t.propagated.contains(l) {
                                            'p'
                                        } else {
                                            '0'
                                        }
                                    })
                                    .collect()
                            })
                            .collect();
                        let text = tokenizer
                            .decode(&generation.tokens, true)
                            .map_err(|e| anyhow::anyhow!("decoding {}: {e}", example.id))?;
                        batch_records.push(Record {
                            run: run.id.clone(),
                            example: example.id.clone(),
                            index: first + offset,
                            prompt_tokens: rows[offset].len(),
                            prediction: clean_prediction(&text),
                            references: example.references.clone(),
                            tokens: generation.tokens.clone(),
                            layers,
                            skip_ratio: summary.skip_ratio,
                            flops: summary.flops.total(),
                            vanilla_flops: summary.vanilla_flops.total(),
                            stop: match generation.stop {
                                StopReason::Eos => "eos".into(),
                                StopReason::MaxNewTokens => "max_new_tokens".into(),
                            },
                            oracle_layers: oracle
                                .as_ref()
                                .map(|o| oracle_layers(o, offset, generation.tokens.len())),
                        });
                    }
                    let generated_tokens: usize =
                        generated.rows.iter().map(|g| g.tokens.len()).sum();
                    records.append(&batch_records)?;
                    timings.append(&[Timing {
                        run: run.id.clone(),
                        examples: batch_examples.iter().map(|e| e.id.clone()).collect(),
                        generated_tokens,
                        prefill_seconds,
                        decode_seconds,
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

    /// The batch CALM thresholds are calibrated on: the first `batch_size` examples of the
    /// dataset's dev split (never the evaluated split), or `None` when it has none here.
    fn calibration_batch(
        &self,
        runs: &[&Run],
        block: &DatasetBlock,
        data_root: &Path,
        config: &GenerateConfig,
    ) -> anyhow::Result<Option<Batch>> {
        let needs = runs
            .iter()
            .any(|r| matches!(&r.strategy, StrategyConfig::Calm(c) if c.threshold.is_none()));
        if !needs {
            return Ok(None);
        }
        let has_dev = block.name.split_file(hsd_data::Split::Dev).is_some();
        let size = self.manifest.batch_size;
        let (source, examples) = match block.calibration.unwrap_or(if has_dev {
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
                let examples = load_examples(&dev, Some(size), data_root)?;
                (dev, examples)
            }
            Calibration::Tail => {
                let all = load_examples(block, None, data_root)?;
                let evaluated = self.expansion.limit.unwrap_or(all.len()).min(all.len());
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
        let prompts = self.prompts(&source, &examples, data_root)?;
        Ok(Some(Batch::new(prompts, config.pad_id)?))
    }

    /// `config` with a CALM threshold bisected towards its target skip ratio on the
    /// calibration batch (once per target); every other config unchanged.
    fn calibrated(
        &self,
        config: &StrategyConfig,
        calibration: &Option<Batch>,
        thresholds: &mut BTreeMap<String, f64>,
        block: &DatasetBlock,
        generate: &GenerateConfig,
    ) -> anyhow::Result<StrategyConfig> {
        let StrategyConfig::Calm(calm) = config else {
            return Ok(config.clone());
        };
        let (Some(target), None) = (calm.target_skip_ratio, calm.threshold) else {
            return Ok(config.clone());
        };
        let key = serde_json::to_string(config)?;
        if let Some(threshold) = thresholds.get(&key) {
            let mut solved = calm.clone();
            solved.threshold = Some(*threshold);
            return Ok(StrategyConfig::Calm(solved));
        }
        let Some(batch) = calibration else {
            bail!(
                "{}: CALM needs a threshold or calibration examples to bisect one on",
                block.name
            );
        };
        let layers = self.model.shapes.layers;
        let started = Instant::now();
        let (logits, cache) = self.model.decoder.prefill(batch, block.max_new_tokens)?;
        let threshold_at = |u: f64| calm_threshold(calm.measure, u);
        let measured = hsd_skip::calibrate_threshold(
            target,
            (0.0, 1.0),
            0.02,
            10,
            |u| -> anyhow::Result<f64> {
                let mut trial = calm.clone();
                trial.threshold = Some(threshold_at(u));
                let mut strategy =
                    StrategyConfig::Calm(trial).build(layers, block.max_new_tokens)?;
                let out = self.model.decoder.decode(
                    logits.clone(),
                    cache.clone(),
                    strategy.as_mut(),
                    generate,
                )?;
                let mut stats = SkipStats::new(self.model.shapes);
                for trace in out.rows.iter().flat_map(|r| &r.traces) {
                    stats.record(trace)?;
                }
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
        thresholds.insert(key, threshold);
        let mut solved = calm.clone();
        solved.threshold = Some(threshold);
        Ok(StrategyConfig::Calm(solved))
    }

    /// The token ids of every example's prompt, rendered with the dataset's template (and the
    /// model's chat template in chat mode), sources cut to the truncation budget.
    fn prompts(
        &self,
        block: &DatasetBlock,
        examples: &[hsd_data::Example],
        data_root: &Path,
    ) -> anyhow::Result<Vec<Vec<u32>>> {
        let tokenizer = self.model.tokenizer()?;
        let template = match &block.template {
            Some(path) => PromptTemplate::from_file(path)?,
            None => PromptTemplate::builtin(block.name)?,
        };
        let mode = if self.model_block.prompt_mode == "chat" {
            Mode::Chat
        } else {
            Mode::Plain
        };
        let chat = match mode {
            Mode::Chat => {
                let source = self.model.chat_template.as_deref().with_context(|| {
                    format!(
                        "model '{}' has no chat template; use prompt_mode = \"plain\"",
                        self.model_block.name
                    )
                })?;
                let token =
                    |id: Option<u32>| id.and_then(|i| tokenizer.token_str(i)).unwrap_or_default();
                Some(ChatTemplate::new(
                    source,
                    &token(tokenizer.bos_id()),
                    &token(tokenizer.eos_ids().first().copied()),
                )?)
            }
            Mode::Plain => None,
        };
        let spec = dataset_spec(block, None);
        let pool = if block.shots > 0 {
            Some(ShotPool::for_evaluation(
                &spec,
                data_root,
                block.shots,
                None,
            )?)
        } else {
            None
        };
        let options = RenderOptions {
            mode,
            max_source_tokens: block.max_source_tokens,
        };
        let count = |text: &str| {
            tokenizer
                .encode(text, false)
                .map_or(usize::MAX, |ids| ids.len())
        };
        let mut out = Vec::with_capacity(examples.len());
        for (i, example) in examples.iter().enumerate() {
            let shots = match &pool {
                Some(pool) => pool.draw(block.shots, self.manifest.seed.wrapping_add(i as u64))?,
                None => Vec::new(),
            };
            let prompt = template.render(example, &shots, &options, &count)?;
            let text = match (&prompt.body, &chat) {
                (PromptBody::Text(text), _) => text.clone(),
                (PromptBody::Messages(messages), Some(chat)) => {
                    let messages: Vec<ChatMessage> = messages
                        .iter()
                        .map(|m| {
                            let role = match m.role {
                                Role::System => "system",
                                Role::User => "user",
                                Role::Assistant => "assistant",
                            };
                            ChatMessage::new(role, m.content.clone())
                        })
                        .collect();
                    chat.render(&messages, true)?
                }
                (PromptBody::Messages(_), None) => bail!(
                    "{}: the template rendered chat messages in plain mode",
                    block.name
                ),
            };
            let ids = tokenizer
                .encode(&text, mode == Mode::Plain)
                .map_err(|e| anyhow::anyhow!("tokenizing the prompt of {}: {e}", example.id))?;
            out.push(ids);
        }
        Ok(out)
    }
}

/// Per generated token of batch row `row`, the fewest layers whose exit gives the full
/// model's token, placed by the oracle's own token index.
fn oracle_layers(oracle: &Oracle, row: usize, tokens: usize) -> Vec<Option<usize>> {
    let mut layers = vec![None; tokens];
    for token in oracle.tokens() {
        if let Some(slot) = layers.get_mut(token.t) {
            *slot = token.first_match.get(row).copied().flatten().map(|l| l + 1);
        }
    }
    layers
}

pub(crate) fn dataset_spec(block: &DatasetBlock, limit: Option<usize>) -> DatasetSpec {
    DatasetSpec {
        name: block.name,
        split: block.split,
        path: block.path.clone(),
        limit,
    }
}

fn load_examples(
    block: &DatasetBlock,
    limit: Option<usize>,
    data_root: &Path,
) -> anyhow::Result<Vec<hsd_data::Example>> {
    Ok(hsd_data::load(&dataset_spec(block, limit), data_root)?)
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

/// The first line of the continuation, trimmed: the templates ask for a one-paragraph answer
/// and small models tend to continue with a new turn or example after it.
fn clean_prediction(text: &str) -> String {
    text.trim().lines().next().unwrap_or("").trim().to_owned()
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

fn parse_overrides(models: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    models
        .iter()
        .map(|m| match m.split_once('=') {
            Some((name, spec)) if !name.is_empty() && !spec.is_empty() => {
                Ok((name.to_owned(), spec.to_owned()))
            }
            _ => bail!("--model {m:?}: expected NAME=SPEC"),
        })
        .collect()
}

/// The spec for a model block: `--model NAME=SPEC`, else its `spec_env` variable, else its
/// `spec`. `None` for an optional model with none of them; an error for a required one.
fn resolve_spec(
    block: &ModelBlock,
    overrides: &BTreeMap<String, String>,
) -> anyhow::Result<Option<String>> {
    let from_env = block
        .spec_env
        .as_deref()
        .and_then(|v| std::env::var(v).ok())
        .filter(|v| !v.is_empty());
    match overrides
        .get(&block.name)
        .cloned()
        .or(from_env)
        .or_else(|| block.spec.clone())
    {
        Some(spec) => Ok(Some(spec)),
        None if block.optional => Ok(None),
        None => bail!(
            "model '{}' needs a spec: set {} or pass --model {}=SPEC",
            block.name,
            block.spec_env.as_deref().unwrap_or("spec"),
            block.name
        ),
    }
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The checked-out commit, read from `.git` without running git.
fn git_commit() -> Option<String> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let git = dir.join(".git");
        if git.is_dir() {
            let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
            return match head.trim().strip_prefix("ref: ") {
                Some(reference) => std::fs::read_to_string(git.join(reference))
                    .ok()
                    .map(|c| c.trim().to_owned())
                    .or_else(|| {
                        let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
                        packed
                            .lines()
                            .find(|l| l.ends_with(reference))
                            .and_then(|l| l.split_whitespace().next())
                            .map(str::to_owned)
                    }),
                None => Some(head.trim().to_owned()),
            };
        }
        if !dir.pop() {
            return None;
        }
    }
}

fn machine() -> serde_json::Value {
    serde_json::json!({
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpus": std::thread::available_parallelism().map_or(0, usize::from),
        "hostname": std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_overrides_parse_or_explain() {
        assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
        assert!(
            parse_shard("0/3").is_err() && parse_shard("4/3").is_err() && parse_shard("x").is_err()
        );
        let o = parse_overrides(&["gpt2=/m/gpt2".into()]).unwrap();
        assert_eq!(o["gpt2"], "/m/gpt2");
        assert!(parse_overrides(&["gpt2".into()]).is_err());
    }

    #[test]
    fn optional_models_without_a_spec_are_skipped_and_required_ones_are_errors() {
        let mut block = ModelBlock {
            name: "gpt2".into(),
            spec: None,
            spec_env: Some("HSD_TEST_UNSET_VARIABLE".into()),
            optional: true,
            prompt_mode: "plain".into(),
            shapes: None,
        };
        assert_eq!(resolve_spec(&block, &BTreeMap::new()).unwrap(), None);
        let o = BTreeMap::from([("gpt2".to_owned(), "/m".to_owned())]);
        assert_eq!(resolve_spec(&block, &o).unwrap().as_deref(), Some("/m"));
        block.optional = false;
        assert!(
            resolve_spec(&block, &BTreeMap::new())
                .unwrap_err()
                .to_string()
                .contains("--model gpt2=SPEC")
        );
    }

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

    #[test]
    fn predictions_keep_the_first_line() {
        assert_eq!(clean_prediction("  A summary.\nUser: next"), "A summary.");
        assert_eq!(clean_prediction("\n"), "");
    }
}
