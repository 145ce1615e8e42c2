//! Per-example records as JSON lines, appended as they finish, and the crash-safety rules
//! that make `--resume` exact.
//!
//! A record holds only what is deterministic for a manifest, seed and backend; wall-clock
//! times go to a separate `timings.jsonl` of [`Timing`]s, so `records.jsonl` is byte-identical
//! between an uninterrupted run and a killed-and-resumed one. A kill can leave the last line
//! torn (no newline, or not valid JSON); [`recover`] drops it and truncates the file to the
//! last whole line. Any other bad line is an error naming its line.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hsd_model::{Generation, StopReason};
use hsd_skip::{ModelShapes, SkipError, SkipStats, StepTrace};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One (run, example): what was generated and what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub run: String,
    pub example: String,
    /// Position of the example in the dataset's file order.
    pub index: usize,
    pub prompt_tokens: usize,
    pub prediction: String,
    pub references: Vec<String>,
    pub tokens: Vec<u32>,
    /// Per generated token, one character per layer: `1` ran, `p` skipped but propagated
    /// K/V, `0` skipped.
    pub layers: Vec<String>,
    /// Skipped layers over all layers, over this example's tokens.
    pub skip_ratio: f64,
    pub flops: u64,
    /// What vanilla decoding costs for the same tokens and context lengths.
    pub vanilla_flops: u64,
    /// `eos` or `max_new_tokens`.
    pub stop: String,
    /// Oracle runs only: per token, the fewest layers whose exit gives the full model's token
    /// (`None` where no layer below the last agrees with it, or where no check ran: the first
    /// token comes from the prefill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle_layers: Option<Vec<Option<usize>>>,
    /// Lossless runs only: how the strategy drafted for the full model. `tokens` are then
    /// vanilla's, and `layers` says what produced each token: the draft step of an accepted
    /// draft, every layer for a token the verifier emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speculative: Option<SpeculativeRecord>,
    /// Skipping runs (with `teacher_forced`, the default): the strategy fed the same model's
    /// vanilla tokens for this example as decoding feeds them, against the full model along
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_forced: Option<TeacherForced>,
}

/// A record's teacher-forced agreement with vanilla decoding, over its vanilla tokens after
/// the first (which the prompt's full pass gives every strategy).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherForced {
    pub positions: usize,
    /// Share of positions where the strategy's greedy token is vanilla's.
    pub top1_agreement: f64,
    /// Mean KL(full || strategy) over the positions, in nats.
    pub mean_kl: f64,
}

/// What a run's strategy block became once solved: every knob, with the CALM threshold
/// calibrated for a target, so that the run repeats without the solver. `solved.jsonl` holds
/// one per run, written when the run is first built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolvedKnobs {
    pub run: String,
    pub knobs: serde_json::Map<String, serde_json::Value>,
}

/// One example's drafting in a lossless run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeculativeRecord {
    /// `k`, the draft tokens per round (the first round's when adaptive).
    pub draft_tokens: usize,
    pub adaptive: bool,
    /// The weights the draft passes read, where the run sets them apart from the manifest's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_weights: Option<hsd_model::WeightMode>,
    /// Verify passes this example was decoding in.
    pub rounds: usize,
    /// Drafted tokens put to the verifier, and of those the ones accepted.
    pub drafted: usize,
    pub accepted: usize,
}

/// Where a generation sits in a sweep: the run, the example and its position, and how long
/// its prompt was.
pub struct RecordKey<'a> {
    pub run: &'a str,
    pub example: &'a hsd_data::Example,
    pub index: usize,
    pub prompt_tokens: usize,
}

impl Record {
    /// The record of one row of a decoded batch: `text` is the decoded continuation, whose
    /// first line becomes the prediction; per-token layers and FLOPs come from the traces.
    pub fn from_generation(
        key: RecordKey<'_>,
        generation: &Generation,
        text: &str,
        shapes: ModelShapes,
    ) -> Result<Self, SkipError> {
        let mut stats = SkipStats::new(shapes);
        for trace in &generation.traces {
            stats.record(trace)?;
        }
        let summary = stats.summary();
        Ok(Self {
            run: key.run.to_owned(),
            example: key.example.id.clone(),
            index: key.index,
            prompt_tokens: key.prompt_tokens,
            prediction: clean_prediction(text),
            references: key.example.references.clone(),
            tokens: generation.tokens.clone(),
            layers: generation
                .traces
                .iter()
                .map(StepTrace::layer_string)
                .collect(),
            skip_ratio: summary.skip_ratio,
            flops: summary.flops.total(),
            vanilla_flops: summary.vanilla_flops.total(),
            stop: match generation.stop {
                StopReason::Eos => "eos".into(),
                StopReason::MaxNewTokens => "max_new_tokens".into(),
            },
            oracle_layers: None,
            speculative: None,
            teacher_forced: None,
        })
    }

    /// Layers that ran per generated token.
    pub fn layers_run(&self) -> impl Iterator<Item = usize> + '_ {
        self.layers
            .iter()
            .map(|l| l.bytes().filter(|&b| b == b'1').count())
    }
}

/// The first line of the continuation, trimmed: the templates ask for a one-paragraph answer
/// and small models tend to continue with a new turn or example after it.
fn clean_prediction(text: &str) -> String {
    text.trim().lines().next().unwrap_or("").trim().to_owned()
}

/// Wall-clock time of one run over one batch of examples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    pub run: String,
    pub examples: Vec<String>,
    pub generated_tokens: usize,
    /// The shared prefill, charged to every run that reuses it.
    pub prefill_seconds: f64,
    pub decode_seconds: f64,
    /// Solving the run's knobs before decoding: CALM's threshold bisection on its first batch,
    /// about 0 after. Absent in folders written before it was timed.
    #[serde(default)]
    pub solve_seconds: f64,
    /// The teacher-forced pass; the batch's first forced run also pays for the full model's
    /// reference along vanilla's tokens. Absent in folders written before it was timed.
    #[serde(default)]
    pub forced_seconds: f64,
}

/// Reads a JSON-lines file, dropping (and truncating away) a torn last line.
/// A missing file is empty.
pub fn recover<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut reader = BufReader::new(file);
    let mut items = Vec::new();
    let mut good_bytes = 0u64;
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        number += 1;
        let whole = line.ends_with('\n');
        match serde_json::from_str::<T>(line.trim_end_matches('\n')) {
            Ok(item) if whole => {
                items.push(item);
                good_bytes += read as u64;
            }
            parsed => {
                let mut rest = String::new();
                reader.read_line(&mut rest)?;
                if !rest.is_empty() {
                    let why = parsed
                        .err()
                        .map_or_else(|| "no newline".to_owned(), |e| e.to_string());
                    bail!("{}:{number}: malformed record ({why})", path.display());
                }
                tracing::warn!(path = %path.display(), line = number, "dropping a torn last line");
                OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(good_bytes).and_then(|()| f.sync_all()))
                    .with_context(|| {
                        format!("truncating the torn line {number} of {}", path.display())
                    })?;
                break;
            }
        }
    }
    Ok(items)
}

/// Appends JSON lines; each call writes whole lines in one `write` and syncs them.
pub struct Appender {
    path: PathBuf,
    file: File,
}

impl Appender {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {} for appending", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn append<T: Serialize>(&mut self, items: &[T]) -> anyhow::Result<()> {
        let mut buffer = Vec::new();
        for item in items {
            serde_json::to_writer(&mut buffer, item)?;
            buffer.push(b'\n');
        }
        self.file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so
/// readers see the old file or the new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.partial"));
    let mut file =
        File::create(&temporary).with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("renaming {} to {}", temporary.display(), path.display()))
}

/// The (run, example) pairs already recorded.
pub fn done(records: &[Record]) -> BTreeSet<(String, String)> {
    records
        .iter()
        .map(|r| (r.run.clone(), r.example.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(run: &str, example: &str) -> Record {
        Record {
            run: run.into(),
            example: example.into(),
            index: 0,
            prompt_tokens: 12,
            prediction: "a cat \"sat\"\non a mat".into(),
            references: vec!["the cat sat".into()],
            tokens: vec![1, 2, 3],
            layers: vec!["1010".into(), "1p1p".into(), "1111".into()],
            skip_ratio: 4.0 / 12.0,
            flops: 100,
            vanilla_flops: 150,
            stop: "eos".into(),
            oracle_layers: None,
            speculative: None,
            teacher_forced: None,
        }
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let mut appender = Appender::open(&path).unwrap();
        appender
            .append(&[record("r", "a"), record("r", "b")])
            .unwrap();
        let whole = std::fs::read(&path).unwrap();

        let mut torn = whole.clone();
        torn.extend_from_slice(br#"{"run":"r","exam"#);
        std::fs::write(&path, &torn).unwrap();
        let back: Vec<Record> = recover(&path).unwrap();
        assert_eq!(back, [record("r", "a"), record("r", "b")]);
        assert_eq!(std::fs::read(&path).unwrap(), whole);

        // A complete last line without its newline is torn too: the write did not finish.
        let line = serde_json::to_string(&record("r", "c")).unwrap();
        std::fs::write(&path, [whole.as_slice(), line.as_bytes()].concat()).unwrap();
        assert_eq!(recover::<Record>(&path).unwrap().len(), 2);
        assert_eq!(std::fs::read(&path).unwrap(), whole);

        assert_eq!(done(&back).len(), 2);
        assert_eq!(back[0].layers_run().collect::<Vec<_>>(), [2, 2, 4]);
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let good = serde_json::to_string(&record("r", "a")).unwrap();
        std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
        let err = recover::<Record>(&path).unwrap_err().to_string();
        assert!(err.contains("records.jsonl:2: malformed record"), "{err}");
        assert!(
            recover::<Record>(&dir.path().join("missing.jsonl"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn predictions_keep_the_first_line() {
        assert_eq!(clean_prediction("  A summary.\nUser: next"), "A summary.");
        assert_eq!(clean_prediction("\n"), "");
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
