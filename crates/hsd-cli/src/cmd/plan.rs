//! `hsd plan`: a strategy's per-token layer plan, its skip ratio and its solved knobs.

use anyhow::Context;
use hsd_skip::report::plan_rows;
use hsd_skip::{StrategyConfig, skip_ratio, static_schedule};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Strategy name: full, hsd, skipdecode, calm, static, early_exit, d3, random, oracle.
    #[arg(long)]
    strategy: String,
    /// Number of decoder layers L.
    #[arg(long)]
    layers: usize,
    /// Generation budget T.
    #[arg(long)]
    max_new_tokens: usize,
    /// Prompt length P (read by `position = "sequence"`, and a target is solved at it).
    #[arg(long, default_value_t = 0)]
    prompt_len: usize,
    /// A knob as key=value (repeatable), e.g. `--set levels=4 --set target_skip_ratio=0.5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Print one JSON object instead of the text view.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // A target under the sequence clock is solved at this prompt length, as `hsd run` does.
    let config = StrategyConfig::from_settings(&args.strategy, &args.settings)?
        .for_prompt_len(args.prompt_len);
    let knobs = config.solved_knobs(args.layers, args.max_new_tokens)?;
    let mut strategy = config
        .build(args.layers, args.max_new_tokens)
        .with_context(|| format!("building `{}` for {} layers", args.strategy, args.layers))?;
    let plans = static_schedule(
        &mut *strategy,
        args.layers,
        args.max_new_tokens,
        args.prompt_len,
    );
    let ratio = skip_ratio(&plans);
    let dynamic = config.is_dynamic();
    if args.json {
        let plan: Vec<Vec<u8>> = plans.iter().map(|p| p.run.to_bits()).collect();
        let out = json!({
            "strategy": config.name(),
            "layers": args.layers,
            "max_new_tokens": args.max_new_tokens,
            "prompt_len": args.prompt_len,
            "knobs": knobs,
            "skip_ratio": ratio,
            "dynamic": dynamic,
            "plan": plan,
        });
        println!("{}", serde_json::to_string(&out)?);
        return Ok(());
    }
    println!("strategy   {}", config.name());
    println!("knobs      {}", serde_json::to_string(&knobs)?);
    println!(
        "shape      L = {}, T = {}, P = {}",
        args.layers, args.max_new_tokens, args.prompt_len
    );
    println!("skip ratio {ratio:.4}");
    if dynamic {
        println!(
            "dynamic: the upper plan below runs until a check (▓) exits; the ratio is of that plan"
        );
    }
    println!(
        "layers     0 → {} (█ runs, ▓ runs and is checked, · skipped)",
        args.layers.saturating_sub(1)
    );
    for (t, (row, plan)) in plan_rows(&plans).iter().zip(&plans).enumerate() {
        println!("t {t:>4}     {row} {:>3}", plan.run.count());
    }
    Ok(())
}
