//! `hsd bench`: prefill and decode throughput and peak memory on real CNN/DailyMail prompts,
//! and for a strategy its measured skip ratio, FLOPs ratio and wall-clock speed-up over `full`.
//!
//! Every row of a batch is a different article cut to exactly `--prompt-tokens` tokens, so no
//! row is padded, and decoding ignores EOS so every row generates exactly `--new-tokens`: the
//! work is fixed and `bench/hf_generate.py` can repeat it token for token from `--prompts-out`.
//! Throughputs count tokens over all rows; decode covers the steps after the first generated
//! token (which the prompt's forward pass yields), and FLOPs are counted over the same steps.
//! With `--speculative K` the strategy drafts for the full model instead (see `speculative`).

mod bandwidth;
mod speculative;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use hsd_data::{DatasetName, DatasetSpec, Example, Source, Split};
use hsd_model::tokenizer::TextTokenizer;
use hsd_model::{
    Backend, Batch, Cache, Decoder, GenerateConfig, GenerationBatch, Logits, SpeculativeConfig,
    SpeculativeStats, WeightMode,
};
use hsd_skip::{Flops, ModelShapes, SkipStats, StrategyConfig};
use serde::Serialize;
use serde_json::{Map, Value};

use speculative::{SpeculativeMeasure, SpeculativeReport, checked_speculative_decode};

#[derive(clap::Args)]
pub struct Args {
    /// A known model name (`smollm2-135m`), a `.gguf` file or a Hugging Face directory.
    #[arg(long, default_value = "smollm2-135m")]
    model: String,
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// `f32` (dequantized: the reference) or `native` (passes of up to 16 tokens read the
    /// GGUF's own quantized blocks; attention over the cache and SwiGLU take fused kernels).
    #[arg(long, default_value = "f32")]
    weights: WeightMode,
    /// A LoRA adapter directory merged into the model (decoding then costs the same).
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Batch sizes, comma-separated; one result per size.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    batch: Vec<usize>,
    /// Tokens per prompt: each article is cut to exactly this many.
    #[arg(long, default_value_t = 512)]
    prompt_tokens: usize,
    /// Tokens generated per row, EOS ignored.
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    /// A strategy of the registry, timed against `full` on the same prompts.
    #[arg(long)]
    strategy: Option<String>,
    /// A strategy knob, `key=value`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "strategy")]
    settings: Vec<String>,
    /// Decode losslessly: the strategy drafts K tokens a round and the full model verifies
    /// them; reports acceptance and the speed-up over vanilla with its prediction.
    #[arg(long, value_name = "K", requires = "strategy")]
    speculative: Option<usize>,
    /// With --speculative: K grows on full acceptance and shrinks on early rejection.
    #[arg(long, requires = "speculative")]
    adaptive: bool,
    /// With --speculative: the weights the draft passes read (default: --weights); `native`
    /// under `--weights f32` drafts from the GGUF's blocks while f32 verifies.
    #[arg(long, value_name = "WEIGHTS", requires = "speculative")]
    draft_weights: Option<WeightMode>,
    /// Timed repetitions per batch size; the medians are reported.
    #[arg(long, default_value_t = 5)]
    repetitions: usize,
    /// Untimed repetitions before them.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Write the prompt token ids (as many rows as the largest batch) to this JSON file.
    #[arg(long)]
    prompts_out: Option<PathBuf>,
    /// Print one JSON object per batch size, one per line.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// The weights lossless mode's drafts read: `--draft-weights`, else `--weights`.
    fn drafts_on(&self) -> WeightMode {
        self.draft_weights.unwrap_or(self.weights)
    }
}

/// The prompts both benchmarks decode, as `--prompts-out` writes them.
#[derive(Debug, Serialize, PartialEq)]
struct PromptSet {
    dataset: String,
    example_ids: Vec<String>,
    prompt_tokens: usize,
    new_tokens: usize,
    rows: Vec<Vec<u32>>,
}

/// The result for one batch size, as `--json` prints it.
#[derive(Debug, Serialize)]
struct BatchReport {
    engine: &'static str,
    model: String,
    backend: &'static str,
    /// `native` when decode passes read the GGUF's quantized blocks; absent for `f32`.
    #[serde(skip_serializing_if = "Option::is_none")]
    weights: Option<&'static str>,
    /// Projections that hold their weight in quantized blocks, of all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    native_projections: Option<[usize; 2]>,
    threads: usize,
    batch: usize,
    prompt_tokens: usize,
    new_tokens: usize,
    repetitions: usize,
    prefill_s: f64,
    decode_s: f64,
    prefill_tok_s: f64,
    decode_tok_s: f64,
    /// The process's peak resident set so far (`VmHWM`), so it covers earlier batch sizes too.
    peak_rss_mb: f64,
    /// `/proc/loadavg` after this batch size: above ~1.5 on two cores the timings are noisy.
    load_avg: [f64; 3],
    /// The machine's memory read bandwidth (GB/s, every thread), measured before the first
    /// batch size: batch-1 decode speed follows it from host to host.
    read_bandwidth_gb_s: f64,
    /// Share of vanilla decode FLOPs spent in the LM head, which no layer skip removes.
    lm_head_share: f64,
    #[serde(flatten)]
    strategy: Option<StrategyReport>,
    #[serde(flatten)]
    speculative: Option<SpeculativeReport>,
}

#[derive(Debug, Serialize)]
struct StrategyReport {
    strategy: String,
    knobs: Map<String, Value>,
    skip_ratio: f64,
    flops_ratio: f64,
    /// `1 / flops_ratio`: the speed-up the FLOPs predict.
    flops_speedup: f64,
    /// Full decode's FLOPs with the skipped share of the layers' FLOPs removed and the LM head
    /// kept: the speed-up the measured skip ratio allows at most, by Amdahl's law.
    amdahl_speedup: f64,
    full_decode_s: f64,
    full_decode_tok_s: f64,
    /// `full_decode_s / decode_s` (medians).
    speedup: f64,
    /// `speedup / flops_speedup`.
    speedup_efficiency: f64,
}

/// What the decode steps of one generation did, pooled over its rows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DecodeAccount {
    skip_ratio: f64,
    flops: Flops,
    vanilla: Flops,
}

impl DecodeAccount {
    /// Counts every trace but each row's first, whose token came from the prompt's pass and
    /// is outside the decode time.
    fn of(shapes: ModelShapes, out: &GenerationBatch) -> Result<Self> {
        let mut skipped = 0.0;
        let mut flops = Flops::default();
        let mut vanilla = Flops::default();
        for (row, generation) in out.rows.iter().enumerate() {
            let mut stats = SkipStats::new(shapes);
            for trace in generation.traces.iter().skip(1) {
                stats
                    .record(trace)
                    .with_context(|| format!("accounting row {row}"))?;
            }
            skipped += stats.skip_ratio();
            flops += stats.flops();
            vanilla += stats.vanilla_flops();
        }
        Ok(Self {
            skip_ratio: skipped / out.rows.len().max(1) as f64,
            flops,
            vanilla,
        })
    }

    fn flops_ratio(&self) -> f64 {
        ratio(self.flops.total() as f64, self.vanilla.total() as f64)
    }

    fn lm_head_share(&self) -> f64 {
        ratio(self.vanilla.lm_head as f64, self.vanilla.total() as f64)
    }

    /// The best speed-up over vanilla decoding when a `skip_ratio` share of the layer FLOPs
    /// goes and the LM head's share stays.
    fn amdahl_speedup(&self, skip_ratio: f64) -> f64 {
        let head = self.lm_head_share();
        1.0 / (head + (1.0 - head) * (1.0 - skip_ratio))
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

/// The median of `samples`; the mean of the middle two for an even count.
fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The first `rows` articles of at least `prompt_tokens` tokens, each cut to exactly that.
fn select_prompts(
    examples: &[Example],
    rows: usize,
    prompt_tokens: usize,
    mut encode: impl FnMut(&str) -> Result<Vec<u32>>,
) -> Result<(Vec<String>, Vec<Vec<u32>>)> {
    let mut ids = Vec::with_capacity(rows);
    let mut prompts = Vec::with_capacity(rows);
    for example in examples {
        if prompts.len() == rows {
            break;
        }
        let Source::Document { text } = &example.source else {
            bail!("example {} is not a document", example.id);
        };
        let mut tokens = encode(text).with_context(|| format!("tokenizing {}", example.id))?;
        if tokens.len() >= prompt_tokens {
            tokens.truncate(prompt_tokens);
            ids.push(example.id.clone());
            prompts.push(tokens);
        }
    }
    ensure!(
        prompts.len() == rows,
        "only {} of {} articles have {prompt_tokens} tokens; {rows} are needed",
        prompts.len(),
        examples.len()
    );
    Ok((ids, prompts))
}

fn load_prompts(tokenizer: &TextTokenizer, rows: usize, prompt_tokens: usize) -> Result<PromptSet> {
    let spec = DatasetSpec::new(DatasetName::CnnDailymail, Split::Test);
    let root = hsd_data::data_root()?;
    let examples = hsd_data::load(&spec, &root)?;
    let (example_ids, rows) = select_prompts(&examples, rows, prompt_tokens, |text| {
        Ok(tokenizer.encode(text, false)?)
    })?;
    Ok(PromptSet {
        dataset: format!("{}/{}", spec.name, spec.split),
        example_ids,
        prompt_tokens,
        new_tokens: 0,
        rows,
    })
}

/// The first number of the `/proc/self/status` line `field`, in kB.
fn status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

fn peak_rss_mb() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kb = status_kb(&status, "VmHWM").context("/proc/self/status has no VmHWM line")?;
    Ok(kb as f64 / 1024.0)
}

fn load_avg() -> Result<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    let mut next = || -> Result<f64> {
        fields
            .next()
            .context("/proc/loadavg has fewer than three fields")?
            .context("/proc/loadavg holds a non-number")
    };
    Ok([next()?, next()?, next()?])
}

/// One decode under `strategy` from a prefill, checked to have done the fixed work.
fn checked_decode(
    decoder: &Decoder,
    (logits, cache): (Logits, Cache),
    strategy: &StrategyConfig,
    generate: &GenerateConfig,
) -> Result<GenerationBatch> {
    let layers = decoder.shapes().layers;
    let mut built = strategy.build(layers, generate.max_new_tokens)?;
    let out = decoder.decode(logits, cache, built.as_mut(), generate)?;
    ensure_fixed_work(&out, generate)?;
    Ok(out)
}

/// Every row generated exactly `max_new_tokens` (EOS is ignored), so timings compare.
fn ensure_fixed_work(out: &GenerationBatch, generate: &GenerateConfig) -> Result<()> {
    if let Some(row) = out
        .rows
        .iter()
        .position(|r| r.tokens.len() != generate.max_new_tokens)
    {
        bail!(
            "row {row} generated {} tokens, not {}",
            out.rows[row].tokens.len(),
            generate.max_new_tokens
        );
    }
    Ok(())
}

/// Wall-clock samples of the timed repetitions.
#[derive(Default)]
struct Samples {
    prefill: Vec<f64>,
    full_decode: Vec<f64>,
    strategy_decode: Vec<f64>,
    /// Vanilla decode seconds summed over the timed repetitions.
    full_s: f64,
    speculative: SpeculativeStats,
}

struct Bench<'a> {
    decoder: &'a Decoder,
    /// Drafts in lossless mode: `decoder` itself unless `--draft-weights` differ.
    drafter: &'a Decoder,
    args: &'a Args,
    model: String,
    strategy: Option<StrategyConfig>,
    speculative: Option<SpeculativeConfig>,
    read_bandwidth_gb_s: f64,
}

/// The strategy's decode of one repetition: skipping layers, or drafting for the full model.
enum Decoded {
    Skipped(GenerationBatch),
    Speculative(GenerationBatch, SpeculativeStats),
}

impl Decoded {
    fn generation(&self) -> &GenerationBatch {
        match self {
            Decoded::Skipped(out) | Decoded::Speculative(out, _) => out,
        }
    }
}

/// The speculative tokens must be vanilla's, row for row.
fn ensure_lossless(speculative: &GenerationBatch, vanilla: &GenerationBatch) -> Result<()> {
    for (row, (ours, theirs)) in speculative.rows.iter().zip(&vanilla.rows).enumerate() {
        if let Some(at) = (0..ours.tokens.len().max(theirs.tokens.len()))
            .find(|&i| ours.tokens.get(i) != theirs.tokens.get(i))
        {
            bail!(
                "row {row}: speculative decoding left vanilla's tokens at position {at} \
                 ({} tokens, vanilla {})",
                ours.tokens.len(),
                theirs.tokens.len()
            );
        }
    }
    Ok(())
}

impl Bench<'_> {
    fn strategy_decode(
        &self,
        prefill: (Logits, Cache),
        config: &StrategyConfig,
        generate: &GenerateConfig,
    ) -> Result<Decoded> {
        Ok(match &self.speculative {
            Some(speculative) => {
                let (out, stats) = checked_speculative_decode(
                    self.decoder,
                    self.drafter,
                    prefill,
                    config,
                    generate,
                    speculative,
                )?;
                Decoded::Speculative(out, stats)
            }
            None => Decoded::Skipped(checked_decode(self.decoder, prefill, config, generate)?),
        })
    }

    fn run_batch(&self, prompts: &[Vec<u32>]) -> Result<BatchReport> {
        let args = self.args;
        let batch = prompts.len();
        let generate = GenerateConfig {
            max_new_tokens: args.new_tokens,
            eos_ids: Vec::new(),
            pad_id: 0,
        };
        let full = StrategyConfig::named("full")?;
        let batch_ids = Batch::new(prompts.to_vec(), generate.pad_id)?;
        let shapes = self.decoder.shapes();
        let mut samples = Samples::default();
        let mut accounts = None;
        // Room for the last round's drafts beyond the budget; vanilla never writes there.
        let room = self.speculative.map_or(0, |s| s.max_draft_tokens);
        for repetition in 0..args.warmup + args.repetitions {
            let timed = repetition >= args.warmup;
            let started = Instant::now();
            let prefill = self.decoder.prefill(&batch_ids, args.new_tokens + room)?;
            let prefill_s = started.elapsed().as_secs_f64();
            // Both decodes start from this prefill: the first from a copy, whose first cache
            // write clones the buffers, the second from the original. Alternating the order
            // spreads that copy and any drift in machine load over both.
            let (vanilla, skipped) = match &self.strategy {
                None => (
                    checked_decode(self.decoder, prefill, &full, &generate)?,
                    None,
                ),
                Some(config) if repetition % 2 == 1 => {
                    let skipped = self.strategy_decode(prefill.clone(), config, &generate)?;
                    let vanilla = checked_decode(self.decoder, prefill, &full, &generate)?;
                    (vanilla, Some(skipped))
                }
                Some(config) => {
                    let vanilla = checked_decode(self.decoder, prefill.clone(), &full, &generate)?;
                    let skipped = self.strategy_decode(prefill, config, &generate)?;
                    (vanilla, Some(skipped))
                }
            };
            if let Some(Decoded::Speculative(out, _)) = &skipped {
                ensure_lossless(out, &vanilla)?;
            }
            if !timed {
                continue;
            }
            samples.prefill.push(prefill_s);
            samples.full_decode.push(vanilla.decode_time.as_secs_f64());
            samples.full_s += vanilla.decode_time.as_secs_f64();
            if let Some(decoded) = &skipped {
                samples
                    .strategy_decode
                    .push(decoded.generation().decode_time.as_secs_f64());
            }
            if let Some(Decoded::Speculative(_, stats)) = &skipped {
                samples.speculative.absorb(stats);
            }
            if accounts.is_none() {
                let vanilla_account = DecodeAccount::of(shapes, &vanilla)?;
                let skipped_account = skipped
                    .as_ref()
                    .map(|decoded| DecodeAccount::of(shapes, decoded.generation()))
                    .transpose()?;
                accounts = Some((vanilla_account, skipped_account));
            }
        }
        let (vanilla_account, skipped_account) =
            accounts.context("no timed repetition ran (--repetitions 0)")?;
        let prefill_s = median(&samples.prefill).context("no prefill sample")?;
        let full_decode_s = median(&samples.full_decode).context("no decode sample")?;
        let decoded = (batch * args.new_tokens.saturating_sub(1)) as f64;
        let speculative = match (&self.strategy, &self.speculative) {
            (Some(config), Some(speculative)) => Some(SpeculativeReport::new(SpeculativeMeasure {
                strategy: config,
                knobs: config.solved_knobs(shapes.layers, args.new_tokens)?,
                config: speculative,
                draft_weights: args.drafts_on(),
                stats: &samples.speculative,
                full_steps: args.repetitions * args.new_tokens.saturating_sub(1),
                full_s: samples.full_s,
                full_decode_s,
                decode_s: median(&samples.strategy_decode).context("no strategy sample")?,
                decoded_tokens: decoded,
            })),
            _ => None,
        };
        let strategy = match (&self.strategy, skipped_account) {
            (Some(config), Some(account)) if speculative.is_none() => {
                let decode_s = median(&samples.strategy_decode).context("no strategy sample")?;
                let flops_ratio = account.flops_ratio();
                let speedup = ratio(full_decode_s, decode_s);
                let flops_speedup = ratio(1.0, flops_ratio);
                Some(StrategyReport {
                    strategy: config.name().to_string(),
                    knobs: config.solved_knobs(shapes.layers, args.new_tokens)?,
                    skip_ratio: account.skip_ratio,
                    flops_ratio,
                    flops_speedup,
                    amdahl_speedup: vanilla_account.amdahl_speedup(account.skip_ratio),
                    full_decode_s,
                    full_decode_tok_s: ratio(decoded, full_decode_s),
                    speedup,
                    speedup_efficiency: ratio(speedup, flops_speedup),
                })
            }
            _ => None,
        };
        let decode_s = self
            .strategy
            .as_ref()
            .and_then(|_| median(&samples.strategy_decode))
            .unwrap_or(full_decode_s);
        Ok(BatchReport {
            engine: "hsd",
            model: self.model.clone(),
            backend: args.backend.name(),
            weights: (!args.weights.is_f32()).then(|| args.weights.name()),
            native_projections: (!args.weights.is_f32()).then(|| {
                let (native, all) = self.decoder.native_projections();
                [native, all]
            }),
            threads: rayon::current_num_threads(),
            batch,
            prompt_tokens: args.prompt_tokens,
            new_tokens: args.new_tokens,
            repetitions: args.repetitions,
            prefill_s,
            decode_s,
            prefill_tok_s: ratio((batch * args.prompt_tokens) as f64, prefill_s),
            decode_tok_s: ratio(decoded, decode_s),
            peak_rss_mb: peak_rss_mb()?,
            load_avg: load_avg()?,
            read_bandwidth_gb_s: self.read_bandwidth_gb_s,
            lm_head_share: vanilla_account.lm_head_share(),
            strategy,
            speculative,
        })
    }
}

fn print_text(report: &BatchReport) {
    println!(
        "batch {:>3}  prefill {:>8.1} tok/s  decode {:>7.1} tok/s  peak RSS {:>6.0} MB  load {:.2}  read {:.1} GB/s",
        report.batch,
        report.prefill_tok_s,
        report.decode_tok_s,
        report.peak_rss_mb,
        report.load_avg[0],
        report.read_bandwidth_gb_s
    );
    if let Some(s) = &report.speculative {
        s.print();
    }
    if let Some(s) = &report.strategy {
        println!(
            "           {}: skip ratio {:.3}, FLOPs ratio {:.3} (predicts {:.2}x, Amdahl {:.2}x), \
             speed-up {:.2}x over full at {:.1} tok/s ({:.0}% of predicted)",
            s.strategy,
            s.skip_ratio,
            s.flops_ratio,
            s.flops_speedup,
            s.amdahl_speedup,
            s.speedup,
            s.full_decode_tok_s,
            100.0 * s.speedup_efficiency
        );
    }
}

fn write_prompts(path: &Path, prompts: &PromptSet) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_string(prompts)?;
    std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
}

pub fn run(args: Args) -> Result<()> {
    ensure!(
        !args.batch.is_empty() && args.batch.iter().all(|&b| b > 0),
        "--batch needs positive sizes"
    );
    ensure!(args.prompt_tokens > 0, "--prompt-tokens must be positive");
    ensure!(
        args.new_tokens > 1,
        "--new-tokens must be at least 2 (the first comes from the prefill)"
    );
    ensure!(args.repetitions > 0, "--repetitions must be positive");
    ensure!(
        args.speculative != Some(0),
        "--speculative needs at least one draft token"
    );
    let strategy = args
        .strategy
        .as_deref()
        .map(|name| StrategyConfig::from_settings(name, &args.settings))
        .transpose()?;
    let model = crate::adapters::load_adapted(
        &args.model,
        args.backend,
        args.weights,
        args.adapter.as_deref(),
    )?;
    let tokenizer = model.tokenizer()?;
    let rows = args.batch.iter().copied().max().unwrap_or(1);
    let mut prompts = load_prompts(tokenizer, rows, args.prompt_tokens)?;
    prompts.new_tokens = args.new_tokens;
    if let Some(path) = &args.prompts_out {
        write_prompts(path, &prompts)?;
    }
    let drafter = crate::adapters::load_drafter(
        &args.model,
        args.backend,
        args.weights,
        args.drafts_on(),
        args.adapter.as_deref(),
    )?;
    let bench = Bench {
        decoder: &model.decoder,
        drafter: &drafter.as_ref().unwrap_or(&model).decoder,
        args: &args,
        model: model.source.spec.clone(),
        strategy,
        speculative: args
            .speculative
            .map(|k| SpeculativeConfig::new(k, args.adaptive)),
        read_bandwidth_gb_s: bandwidth::read_bandwidth_gb_s(),
    };
    for &batch in &args.batch {
        let report = bench
            .run_batch(&prompts.rows[..batch])
            .with_context(|| format!("benchmarking batch {batch}"))?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_text(&report);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsd_model::load_model;
    use hsd_model::{Generation, StopReason};
    use hsd_skip::{LayerSet, SignalKind, StepTrace};
    use std::time::Duration;

    fn document(id: &str, text: &str) -> Example {
        Example {
            id: id.into(),
            source: Source::Document { text: text.into() },
            references: vec!["r".into()],
        }
    }

    fn words(text: &str) -> Result<Vec<u32>> {
        Ok(text.split_whitespace().map(|w| w.len() as u32).collect())
    }

    #[test]
    fn median_takes_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[9.0, 1.0, 1.0, 1.0, 100.0]), Some(1.0));
    }

    #[test]
    fn prompts_skip_short_articles_and_are_cut_to_length() {
        let examples = [
            document("a", "one two three four"),
            document("b", "x y"),
            document("c", "aa bbb cccc dddd eeeee"),
        ];
        let (ids, rows) = select_prompts(&examples, 2, 3, words).unwrap();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(rows, [vec![3, 3, 5], vec![2, 3, 4]]);
        let err = select_prompts(&examples, 3, 3, words).unwrap_err();
        assert!(err.to_string().contains("only 2 of 3"), "{err}");
    }

    #[test]
    fn a_non_document_source_is_an_error_naming_the_example() {
        let examples = [Example {
            id: "e2e/test/0".into(),
            source: Source::Concepts {
                concepts: vec!["dog".into()],
            },
            references: vec!["r".into()],
        }];
        let err = select_prompts(&examples, 1, 1, words).unwrap_err();
        assert!(err.to_string().contains("e2e/test/0"), "{err}");
    }

    #[test]
    fn status_fields_are_read_in_kb() {
        let status = "Name:\thsd\nVmPeak:\t  900 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(status_kb(status, "VmHWM"), Some(204_800));
        assert_eq!(status_kb(status, "VmRSS"), Some(1000));
        assert_eq!(status_kb(status, "VmSwap"), None);
        assert!(peak_rss_mb().unwrap() > 0.0);
        assert!(load_avg().unwrap().iter().all(|&l| l >= 0.0));
    }

    fn shapes() -> ModelShapes {
        ModelShapes {
            layers: 4,
            hidden: 8,
            heads: 2,
            kv_heads: 1,
            head_dim: 4,
            intermediate: 16,
            vocab: 32,
            gated_mlp: true,
        }
    }

    fn trace(ran: &[usize], context_len: usize) -> StepTrace {
        StepTrace {
            ran: LayerSet::from_indices(4, ran.iter().copied()),
            propagated: LayerSet::empty(4),
            checks: 0,
            check_kind: SignalKind::Hidden,
            exited_after: None,
            context_len,
        }
    }

    fn generation(traces: Vec<StepTrace>) -> Generation {
        Generation {
            tokens: vec![0; traces.len()],
            traces,
            stop: StopReason::MaxNewTokens,
        }
    }

    #[test]
    fn the_account_leaves_out_the_prefill_token_and_pools_rows() {
        let shapes = shapes();
        let row = || {
            generation(vec![
                trace(&[0, 1, 2, 3], 5),
                trace(&[1, 3], 6),
                trace(&[3], 7),
            ])
        };
        let out = GenerationBatch {
            rows: vec![row(), row()],
            prefill_time: None,
            decode_time: Duration::ZERO,
        };
        let account = DecodeAccount::of(shapes, &out).unwrap();
        assert!((account.skip_ratio - 5.0 / 8.0).abs() < 1e-12);
        let mut single = SkipStats::new(shapes);
        single.record(&trace(&[1, 3], 6)).unwrap();
        single.record(&trace(&[3], 7)).unwrap();
        assert_eq!(account.vanilla.total(), 2 * single.vanilla_flops().total());
        assert!((account.flops_ratio() - single.flops_ratio()).abs() < 1e-12);
        let head = account.lm_head_share();
        assert!(head > 0.0 && head < 1.0);
        assert_eq!(account.amdahl_speedup(0.0), 1.0);
        assert!((account.amdahl_speedup(1.0) - 1.0 / head).abs() < 1e-9);
    }

    /// The real model and the CNN/DM prompts, when `models/` and the shared data have them: a
    /// short run does the fixed work and reports a speed-up for a strategy that skips layers.
    #[test]
    fn a_short_bench_of_the_real_model_reports_a_skip() {
        let models = std::env::var_os("HSD_MODELS").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"),
            PathBuf::from,
        );
        let file = models.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        let Ok(model) = load_model(&file.to_string_lossy(), Backend::Flex) else {
            eprintln!("skipped: {} is absent", file.display());
            return;
        };
        if let Err(why) = hsd_data::data_root() {
            eprintln!("skipped: {why}");
            return;
        }
        let args = Args {
            model: "smollm2-135m".into(),
            backend: Backend::Flex,
            weights: WeightMode::F32,
            adapter: None,
            batch: vec![2],
            prompt_tokens: 24,
            new_tokens: 8,
            strategy: Some("hsd".into()),
            settings: vec!["target_skip_ratio=0.5".into()],
            speculative: None,
            adaptive: false,
            draft_weights: None,
            repetitions: 1,
            warmup: 0,
            prompts_out: None,
            json: true,
        };
        let prompts = load_prompts(model.tokenizer().unwrap(), 2, 24).unwrap();
        assert!(prompts.rows.iter().all(|r| r.len() == 24));
        assert_ne!(prompts.rows[0], prompts.rows[1]);
        let bench = Bench {
            decoder: &model.decoder,
            drafter: &model.decoder,
            args: &args,
            model: "smollm2-135m".into(),
            strategy: Some(StrategyConfig::from_settings("hsd", &args.settings).unwrap()),
            speculative: None,
            read_bandwidth_gb_s: 10.0,
        };
        let report = bench.run_batch(&prompts.rows).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "batch",
            "prefill_tok_s",
            "decode_tok_s",
            "peak_rss_mb",
            "skip_ratio",
            "flops_ratio",
            "speedup",
        ] {
            assert!(json[key].is_number(), "{key} missing in {json}");
        }
        assert_eq!(json["batch"], 2);
        let skip = report.strategy.unwrap();
        assert!(skip.skip_ratio > 0.2, "skip ratio {}", skip.skip_ratio);
        assert!(skip.flops_ratio < 1.0 && skip.flops_ratio > 0.0);
        assert!((skip.amdahl_speedup / skip.flops_speedup - 1.0).abs() < 0.1);
    }
}
