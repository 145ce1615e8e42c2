//! `hsd`: hierarchical skip decoding experiments from the command line. The binary is
//! [`main`]; the manifest reader is public so that other tools (the fuzz targets under `fuzz/`)
//! read manifests exactly as `hsd run` does.

mod adapters;
mod bench_report;
mod calibrate;
mod cmd;
mod faithfulness_report;
mod finetune_manifest;
mod finetune_report;
mod importance_report;
pub mod manifest;
mod oracle_report;
mod plans;
mod preflight;
mod prompts;
mod report;
mod report_rows;
mod results;
mod speculative_report;
mod sweep;
mod verdict_report;

use std::process::ExitCode;

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
    /// Search static skip sets (greedy removal by teacher-forced agreement) into a plan file.
    Search(cmd::search::Args),
}

/// The stack of the worker that runs a command: a main thread's, not rayon's 2 MiB default.
const MAIN_STACK_BYTES: usize = 8 << 20;

/// Keeps freed memory in the process. By default glibc serves each allocation over 128 KiB to
/// 32 MiB (its threshold grows with use) by a fresh `mmap` and hands the top of its heaps back
/// to the kernel past a trim threshold, so a forward pass over many tokens, whose activations
/// are megabytes each, had every page faulted in and zeroed again at every layer: a fifth of a
/// 512-token prefill's time. With these settings allocations up to 32 MiB come from the heap and
/// freed memory stays for the next layer.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    const TRIM_THRESHOLD: libc::c_int = 1 << 30;
    // SAFETY: mallopt only sets the allocator's parameters; it runs before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Parses the command line, runs the command and reports its error on one line.
pub fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HSD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command;
    // Every command runs on a worker of one rayon pool, so that the ~200 parallel kernels of a
    // decode step start from a worker instead of each waking the pool from this thread (on
    // two cores, a quarter of batch-1 decode time went to those context switches).
    let pool = match rayon::ThreadPoolBuilder::new()
        .stack_size(MAIN_STACK_BYTES)
        .build()
    {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("Error: starting the thread pool: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = pool.install(|| match command {
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
        Command::Search(args) => cmd::search::run(args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the line already
/// holds (a typed error that prints its source), so that a bad input reads as one line.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
