//! One module per subcommand: its clap `Args` and its `run`.

pub mod bench;
pub mod check;
pub mod finetune;
pub mod generate;
pub mod jobs;
pub mod logits;
pub mod merge;
pub mod plan;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod score;
pub mod search;
pub mod slurm;
pub mod sweep_flags;
