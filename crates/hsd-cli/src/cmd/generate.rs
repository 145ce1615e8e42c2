//! `hsd generate`: a greedy continuation of one prompt, optionally under a skip strategy, or
//! losslessly with the strategy drafting for the full model (`--speculative K`).

use anyhow::Result;
use hsd_model::chat::ChatMessage;
use hsd_model::tokenizer::PromptMode;
use hsd_model::{
    Backend, GenerateConfig, GenerationBatch, LoadedModel, SpeculativeConfig, WeightMode,
};
use hsd_skip::StrategyConfig;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// A known model name (`smollm2-135m`), a `.gguf` file or a Hugging Face directory.
    #[arg(long)]
    model: String,
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user turn of the model's chat template.
    #[arg(long)]
    chat: bool,
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// A strategy of the registry (`full`, `hsd`, `skipdecode`, `calm`, ...).
    #[arg(long, default_value = "full")]
    strategy: String,
    /// A strategy knob, `key=value`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// `f32` (dequantized: the reference) or `native` (passes of up to 16 tokens read the
    /// GGUF's own quantized blocks; attention over the cache and SwiGLU take fused kernels).
    #[arg(long, default_value = "f32")]
    weights: WeightMode,
    /// A LoRA adapter directory (PEFT layout, e.g. adapters/plain/e2e) merged into the model.
    #[arg(long)]
    adapter: Option<std::path::PathBuf>,
    /// Decode losslessly: the strategy drafts K tokens per round and the full model verifies
    /// them, so the text is vanilla greedy decoding's.
    #[arg(long, value_name = "K")]
    speculative: Option<usize>,
    /// With --speculative: let K grow on full acceptance and shrink on early rejection (up to
    /// 2K).
    #[arg(long, requires = "speculative")]
    adaptive: bool,
    /// With --speculative: the weights the draft passes read (default: --weights). `native`
    /// under `--weights f32` drafts from the GGUF's quantized blocks while f32 verifies, so
    /// the text stays the f32 model's.
    #[arg(long, value_name = "WEIGHTS", requires = "speculative")]
    draft_weights: Option<WeightMode>,
    /// Print token ids, layers per token, skip ratio and tokens/s as JSON (with --speculative,
    /// also acceptance_rate, mean_accepted and draft_layers_per_token).
    #[arg(long)]
    json: bool,
}

/// The prompt's token ids, through the chat template when asked, tokenized as `hsd run` does.
pub(crate) fn prompt_ids(model: &LoadedModel, prompt: &str, chat: bool) -> Result<Vec<u32>> {
    let tokenizer = model.tokenizer()?;
    if !chat {
        return Ok(tokenizer.encode_prompt(prompt, PromptMode::Plain)?);
    }
    let text = model
        .chat()?
        .render(&[ChatMessage::new("user", prompt)], true)?;
    Ok(tokenizer.encode_prompt(&text, PromptMode::Chat)?)
}

pub fn run(args: Args) -> Result<()> {
    let model = crate::adapters::load_adapted(
        &args.model,
        args.backend,
        args.weights,
        args.adapter.as_deref(),
    )?;
    let tokenizer = model.tokenizer()?;
    let ids = prompt_ids(&model, &args.prompt, args.chat)?;
    let layers = model.shapes.layers;
    let mut strategy = StrategyConfig::from_settings(&args.strategy, &args.settings)?
        .for_prompt_len(ids.len())
        .build(layers, args.max_new_tokens)?;
    let config = GenerateConfig {
        max_new_tokens: args.max_new_tokens,
        eos_ids: tokenizer.eos_ids().to_vec(),
        pad_id: tokenizer.pad_id().unwrap_or(0),
    };
    let speculative = args
        .speculative
        .map(|k| SpeculativeConfig::new(k, args.adaptive));
    let draft_weights = args.draft_weights.unwrap_or(args.weights);
    let drafter = crate::adapters::load_drafter(
        &args.model,
        args.backend,
        args.weights,
        draft_weights,
        args.adapter.as_deref(),
    )?;
    let prompts = std::slice::from_ref(&ids);
    let (out, stats): (GenerationBatch, _) = match &speculative {
        Some(speculative) => {
            let out = model.decoder.generate_speculative_with(
                &drafter.as_ref().unwrap_or(&model).decoder,
                prompts,
                strategy.as_mut(),
                &config,
                speculative,
            )?;
            (out.generation, Some(out.stats))
        }
        None => (
            model
                .decoder
                .generate(prompts, strategy.as_mut(), &config)?,
            None,
        ),
    };
    let generation = &out.rows[0];
    let text = tokenizer.decode(&generation.tokens, true)?;
    if !args.json {
        println!("{text}");
        return Ok(());
    }
    let layers_per_token: Vec<usize> = generation.traces.iter().map(|t| t.ran.count()).collect();
    let ran: usize = layers_per_token.iter().sum();
    let skip_ratio = 1.0 - ran as f64 / (layers * layers_per_token.len().max(1)) as f64;
    let decoded_after_first = generation.tokens.len().saturating_sub(1);
    let mut report = json!({
        "model": model.source,
        "strategy": args.strategy,
        "prompt_ids": ids,
        "text": text,
        "token_ids": generation.tokens,
        "stop": generation.stop,
        "layers_per_token": layers_per_token,
        "skip_ratio": skip_ratio,
        "prefill_s": out.prefill_time.map(|d| d.as_secs_f64()),
        "decode_s": out.decode_time.as_secs_f64(),
        "decode_tokens_per_s": decoded_after_first as f64 / out.decode_time.as_secs_f64().max(f64::EPSILON),
    });
    if let (Some(speculative), Some(stats)) = (speculative, stats) {
        report["speculative"] = json!({
            "draft_tokens": speculative.draft_tokens,
            "adaptive": speculative.adaptive,
            "max_draft_tokens": speculative.max_draft_tokens,
            "draft_weights": draft_weights,
            "acceptance_rate": stats.acceptance_rate(),
            "mean_accepted": stats.mean_accepted(),
            "draft_layers_per_token": stats.draft_layers_per_token(),
            "rounds": stats.rounds,
            "draft_s": stats.draft_time.as_secs_f64(),
            "verify_s": stats.verify_time.as_secs_f64(),
        });
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
