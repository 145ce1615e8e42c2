//! `hsd`: hierarchical skip decoding experiments from the command line.

mod adapters;
mod bench_report;
mod calibrate;
mod cmd;
mod finetune_manifest;
mod manifest;
mod preflight;
mod prompts;
mod report;
mod results;
mod sweep;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hsd",
    version,
    about = "Training-free layer skipping for autoregressive decoding: run, score and report experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a continuation of a prompt, optionally with a skip strategy.
    Generate(cmd::generate::Args),
    /// Print the last position's top-K logits after a full forward pass.
    Logits(cmd::logits::Args),
    /// Print a strategy's per-token layer plan, its skip ratio and solved knobs.
    Plan(cmd::plan::Args),
    /// Score predictions against references with one metric.
    Score(cmd::score::Args),
    /// Validate a manifest and print its expanded run list and estimated cost.
    Check(cmd::check::Args),
    /// Run a manifest's sweep, appending per-example records.
    Run(cmd::run::Args),
    /// Run a manifest afresh and compare its records with the committed run's.
    Reproduce(cmd::reproduce::Args),
    /// Join the records of sharded runs.
    Merge(cmd::merge::Args),
    /// Write (and with --submit, submit) a Slurm job array of `run --shard` tasks and a merge job.
    Slurm(cmd::slurm::Args),
    /// Regenerate tables and figures from `results/` alone.
    Report(cmd::report::Args),
    /// Train LoRA adapters (plain or skip-aware) per dataset from a fine-tuning manifest.
    Finetune(cmd::finetune::Args),
    /// Time prefill and decode (tokens/s, peak memory) and a strategy's speed-up over `full`.
    Bench(cmd::bench::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HSD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Generate(args) => cmd::generate::run(args),
        Command::Logits(args) => cmd::logits::run(args),
        Command::Plan(args) => cmd::plan::run(args),
        Command::Score(args) => cmd::score::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Finetune(args) => cmd::finetune::run(args),
        Command::Reproduce(args) => cmd::reproduce::run(args),
        Command::Merge(args) => cmd::merge::run(args),
        Command::Slurm(args) => cmd::slurm::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    }
}
