//! `hsd check`: validate a manifest and every input it names (dataset files, templates,
//! few-shot pools, model files), print its expanded runs and what they will cost.

use std::path::PathBuf;

use crate::manifest::{Manifest, ModelSpecs};
use crate::preflight::check_inputs;

#[derive(clap::Args)]
pub struct Args {
    /// The manifest (`experiments/*.toml`).
    pub manifest: PathBuf,
    /// The profile to expand (`smoke`, `quick`, `full`); every run, unlimited, when absent.
    #[arg(long)]
    pub profile: Option<String>,
    /// Examples per dataset, overriding the profile.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Generated tokens per second, over the whole batch, for the time estimate; the manifest's `throughput_tok_s` otherwise.
    #[arg(long)]
    pub tok_s: Option<f64>,
    /// `NAME=SPEC`: the spec for the manifest's model NAME, as `hsd run` takes it.
    #[arg(long = "model", value_name = "NAME=SPEC")]
    pub models: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let expansion = manifest.expand(args.profile.as_deref(), args.limit)?;
    let specs = ModelSpecs::from_flags(&args.models)?;
    let inputs = check_inputs(&manifest, &expansion, &hsd_data::data_root()?, &specs)?;
    let tok_s = args.tok_s.unwrap_or(manifest.throughput_tok_s);
    if !manifest.description.is_empty() {
        println!("{}", manifest.description.trim());
    }
    println!(
        "{}: {} runs (profile {}, examples per dataset: {})",
        manifest.path.display(),
        expansion.runs.len(),
        expansion.profile,
        expansion
            .limit
            .map_or_else(|| "all".into(), |l| l.to_string())
    );
    for (&index, examples) in &inputs.examples {
        println!(
            "  input: dataset {}: {} examples read",
            expansion.datasets[index].name,
            examples.len()
        );
    }
    for (model, file) in &inputs.models {
        println!("  input: model {model}: {file}");
    }
    let mut tokens_total = 0u64;
    let mut flops_total = 0f64;
    let mut flops_known = true;
    let mut unreachable = Vec::new();
    for run in &expansion.runs {
        let dataset = &expansion.datasets[run.dataset_index];
        let examples = expansion
            .limit
            .unwrap_or(usize::MAX)
            .min(split_size(dataset.name));
        let tokens = (examples * dataset.max_new_tokens) as u64;
        let model = manifest.models.iter().find(|m| m.name == run.model);
        let skip = run.target_skip_ratio.unwrap_or(0.0);
        if let Some(shapes) = model.and_then(|m| m.shapes) {
            match manifest.skip_reason(run, shapes.layers, dataset.max_new_tokens) {
                Ok(None) => {}
                Ok(Some(reason)) => {
                    println!("  {:<48} skipped: {reason}", run.id);
                    continue;
                }
                Err(e) => unreachable.push(format!("{}: {e}", run.id)),
            }
        }
        tokens_total += tokens;
        let flops = model.and_then(|m| m.shapes).map(|shapes| {
            // Context length at a generated token: the source budget plus half the budget.
            let context = dataset.max_source_tokens.unwrap_or(512) + dataset.max_new_tokens / 2;
            let per_token = hsd_skip::vanilla_flops(&shapes, [context]);
            let layer_part = (per_token.attention + per_token.mlp) as f64;
            tokens as f64 * (layer_part * (1.0 - skip) + per_token.lm_head as f64)
        });
        match flops {
            Some(f) => flops_total += f,
            None => flops_known = false,
        }
        println!(
            "  {:<48} {:>5} examples x {:>3} tokens  metrics {}  {}",
            run.id,
            examples,
            dataset.max_new_tokens,
            dataset.metrics().join(","),
            serde_json::to_string(&run.strategy)?
        );
    }
    println!("estimated cost (upper bound: every example decodes max_new_tokens):");
    println!("  generated tokens: {tokens_total}");
    if flops_known {
        println!("  decode FLOPs:     {flops_total:.3e}");
    } else {
        println!("  decode FLOPs:     n/a (a model block has no `shapes`)");
    }
    let seconds = tokens_total as f64 / tok_s;
    println!(
        "  time at {tok_s} generated tok/s (prefill not counted): {:.1} min",
        seconds / 60.0
    );
    if !unreachable.is_empty() {
        anyhow::bail!(
            "{} runs cannot be built:\n  {}",
            unreachable.len(),
            unreachable.join("\n  ")
        );
    }
    Ok(())
}

/// The examples in each dataset's evaluated split here (PROVENANCE.md), for estimates only.
fn split_size(dataset: hsd_data::DatasetName) -> usize {
    use hsd_data::DatasetName::*;
    match dataset {
        CnnDailymail => 250,
        Xsum => 1000,
        E2e => 630,
        CommonGen => 993,
        Samsum => 819,
        Dialogsum => 500,
        Dart => 5097,
        Webnlg2017 => 1862,
        Scitldr => 618,
    }
}
