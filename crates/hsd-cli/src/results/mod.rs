//! What a run leaves in its results folder, and the one place that reads and writes it:
//! `records.jsonl` and `timings.jsonl` ([`records`]), `summary.{csv,parquet}` ([`summary`],
//! scored by [`score`], with [`faithfulness`] beside the metrics), and `meta.json` ([`meta`]: hashes, git commit, machine); and
//! whether two folders hold the same records ([`compare`]).

mod compare;
mod faithfulness;
mod meta;
mod records;
mod score;
mod summary;

pub use compare::compare_records;
#[cfg(test)]
pub use faithfulness::Faithfulness;
pub use meta::{Machine, Meta, ModelFiles, git_commit, hex_sha256};
pub use records::{
    Appender, Record, RecordKey, SolvedKnobs, SpeculativeRecord, TeacherForced, Timing, done,
    recover, write_atomic,
};
pub use score::score_and_summarize;
#[cfg(test)]
pub use summary::write_summary;
pub use summary::{MetricSummary, SummaryRow, read_parquet};
