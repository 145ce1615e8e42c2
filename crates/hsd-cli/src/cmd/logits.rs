//! `hsd logits`: the last position's top-K next-token logits after a full forward pass.

use anyhow::Result;
use hsd_model::{Backend, Batch, WeightMode};
use serde_json::json;

use super::generate::prompt_ids;

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
    #[arg(long, default_value_t = 5)]
    top: usize,
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// `f32` (dequantized: the reference) or `native` (passes of up to 16 tokens read the
    /// GGUF's own quantized blocks; attention over the cache and SwiGLU take fused kernels).
    #[arg(long, default_value = "f32")]
    weights: WeightMode,
    /// A LoRA adapter directory (PEFT layout, e.g. adapters/plain/e2e) merged into the model.
    #[arg(long)]
    adapter: Option<std::path::PathBuf>,
    /// Print JSON (`{"prompt_ids": [..], "top": [{"id", "token", "logit"}, ..]}`) instead of a table.
    #[arg(long)]
    json: bool,
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
    let (logits, _) = model
        .decoder
        .prefill(&Batch::new(vec![ids.clone()], 0)?, 0)?;
    let row = logits.to_rows()?.remove(0);
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    let top: Vec<_> = order
        .iter()
        .take(args.top)
        .map(|&id| json!({"id": id, "token": tokenizer.decode(&[id as u32], false).unwrap_or_default(), "logit": row[id]}))
        .collect();
    if args.json {
        println!("{}", json!({"prompt_ids": ids, "top": top}));
    } else {
        for entry in &top {
            println!(
                "{:>8} {:>12.4} {:?}",
                entry["id"],
                entry["logit"].as_f64().unwrap_or(f64::NAN),
                entry["token"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
