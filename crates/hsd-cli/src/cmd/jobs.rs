//! `hsd run --jobs N`: one sweep decoded by N processes at once, then merged.
//!
//! On a few cores a single process leaves compute idle: a batch-8 decode step is a few hundred
//! small kernels, and rayon's two threads wait on each other at every one (measured on 2 cores:
//! one thread decodes at 0.74x of two, so two one-thread processes side by side finish 1.5x the
//! work of one two-thread process in the same time). Each process takes whole (model, dataset)
//! groups (`--shard i/N --shard-by datasets`), so every batch is still prefilled, decoded by
//! vanilla and calibrated once, and writes its own folder under `<out>/jobs/`; `hsd merge`
//! then orders the records as one process writes them. Kernels split work by output, never
//! by summation, so a record's bytes do not depend on the thread count (the smoke and quick
//! sweeps were compared byte for byte at one and two threads).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::sweep_flags::{ModelFlags, SweepSelection};
use crate::manifest::{Expansion, Manifest, Run};

/// How `--shard i/n` divides a sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ShardBy {
    /// Runs i, i+n, i+2n, ... of the expanded list: fine-grained, for many shards; a shard
    /// prefills (and decodes vanilla for teacher forcing) every batch its runs share.
    #[default]
    Runs,
    /// Whole (model, dataset) groups, balanced by estimated cost: each batch is prefilled,
    /// decoded by vanilla and calibrated once, as in one process.
    Datasets,
}

/// Whether a run will decode here: its model has a spec (an optional model without one is left
/// out) and, for an optional model, the adapter its dataset names exists.
pub type Decodes<'a> = &'a dyn Fn(&Run) -> bool;

/// The 0-based shard of each run of `expansion` (in its order) when split `n` ways by `by`;
/// by datasets, the groups that will not decode (`decodes`) weigh nothing.
pub fn shard_of_runs(
    expansion: &Expansion,
    n: usize,
    by: ShardBy,
    decodes: Decodes<'_>,
) -> Vec<usize> {
    match by {
        ShardBy::Runs => (0..expansion.runs.len()).map(|k| k % n).collect(),
        ShardBy::Datasets => {
            let groups = group_shards(expansion, n, decodes);
            expansion
                .runs
                .iter()
                .map(|run| groups[&(run.model.as_str(), run.dataset_index)])
                .collect()
        }
    }
}

/// Each (model, dataset) group's shard: longest estimated group first onto the least loaded
/// shard (ties to the lower index), a deterministic function of the expansion, so a resumed
/// shard holds the same runs.
fn group_shards<'e>(
    expansion: &'e Expansion,
    n: usize,
    decodes: Decodes<'_>,
) -> BTreeMap<(&'e str, usize), usize> {
    let mut cost: Vec<((&str, usize), u64)> = Vec::new();
    for run in &expansion.runs {
        let key = (run.model.as_str(), run.dataset_index);
        let run_cost = if decodes(run) {
            run_cost(&expansion.datasets[run.dataset_index])
        } else {
            0
        };
        match cost.iter_mut().find(|(k, _)| *k == key) {
            Some((_, total)) => *total += run_cost,
            None => cost.push((key, run_cost)),
        }
    }
    // Stable: equal costs keep the expansion's order.
    cost.sort_by_key(|&(_, c)| std::cmp::Reverse(c));
    let mut load = vec![0u64; n];
    let mut shards = BTreeMap::new();
    for (key, c) in cost {
        let (least, _) = load
            .iter()
            .enumerate()
            .min_by_key(|&(i, &l)| (l, i))
            .expect("n >= 1");
        load[least] += c;
        shards.insert(key, least);
    }
    shards
}

/// A run's relative cost for balancing: its decoding steps, at about twice the price per token
/// of the prompt it attends over, plus its share of the prefill (an eighth of a token per source
/// token). Fitted to `results/main/timings.jsonl`, where it orders the 15 groups' times
/// (2.1-5.9 minutes) up to swaps within 10%.
fn run_cost(dataset: &crate::manifest::DatasetBlock) -> u64 {
    let source = dataset.max_source_tokens.unwrap_or(dataset.max_new_tokens) as u64;
    2 * dataset.max_new_tokens as u64 + source / 8
}

/// What `hsd run --jobs N` runs.
pub struct Jobs<'a> {
    pub sweep: &'a SweepSelection,
    pub model_flags: &'a ModelFlags,
    pub manifest: &'a Manifest,
    pub expansion: &'a Expansion,
    /// The examples each dataset (by index) has in this sweep, for the progress bars.
    pub examples: BTreeMap<usize, usize>,
    pub out: &'a Path,
    pub resume: bool,
    pub processes: usize,
    pub decodes: Decodes<'a>,
}

impl Jobs<'_> {
    /// Where process i of n (1-based) writes.
    pub fn shard_folder(out: &Path, i: usize, n: usize) -> PathBuf {
        out.join("jobs").join(shard_folder_name(i, n))
    }

    /// Runs the processes to the end and merges their folders into `out`.
    pub fn run(&self) -> anyhow::Result<()> {
        let n = self.processes;
        self.check_folder()?;
        let shard_of = shard_of_runs(self.expansion, n, ShardBy::Datasets, self.decodes);
        let groups = decoding_groups(self.expansion, self.decodes);
        if groups < n {
            bail!(
                "--jobs {n}: {} decodes {groups} model-and-dataset group(s) at profile {} here, so at most --jobs {groups} can share the work",
                self.sweep.manifest.display(),
                self.expansion.profile
            );
        }
        let threads = (cores() / n).max(1);
        eprintln!(
            "decoding {} runs in {n} processes of {threads} thread(s) each; their logs are in {}",
            self.expansion
                .runs
                .iter()
                .filter(|run| (self.decodes)(run))
                .count(),
            self.out.join("jobs").display()
        );
        let progress = MultiProgress::new();
        let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} eta {eta}")?
            .progress_chars("=> ");
        let mut workers = Vec::with_capacity(n);
        for i in 1..=n {
            let folder = Self::shard_folder(self.out, i, n);
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("creating {}", folder.display()))?;
            let expected: usize = self
                .expansion
                .runs
                .iter()
                .zip(&shard_of)
                .filter(|&(run, &s)| s == i - 1 && (self.decodes)(run))
                .map(|(run, _)| self.examples.get(&run.dataset_index).copied().unwrap_or(0))
                .sum();
            let bar = progress.add(ProgressBar::new(expected as u64));
            bar.set_style(style.clone());
            bar.set_prefix(format!("process {i}/{n}"));
            let log = folder.with_extension("log");
            let child = self.spawn(i, n, threads, &folder, &log)?;
            workers.push(Worker {
                child: Some(child),
                counter: LineCounter::new(folder.join("records.jsonl")),
                log,
                bar,
            });
        }
        let outcome = wait_all(&mut workers);
        progress.clear()?;
        outcome?;
        let shards: Vec<PathBuf> = (1..=n)
            .map(|i| Self::shard_folder(self.out, i, n))
            .collect();
        super::merge::run(super::merge::Args {
            sweep: self.sweep.clone(),
            shards,
            out: Some(self.out.to_path_buf()),
        })
    }

    /// Refuses to mix process counts or a one-process run's records with these processes.
    fn check_folder(&self) -> anyhow::Result<()> {
        let jobs = self.out.join("jobs");
        let earlier = earlier_shard_folders(self.out);
        if !self.resume {
            if !earlier.is_empty() {
                bail!(
                    "{} holds an earlier run's processes: pass --resume to continue it, or choose another --out",
                    jobs.display()
                );
            }
            return Ok(());
        }
        if let Some((other, _)) = earlier
            .iter()
            .find(|(_, processes)| *processes != Some(self.processes))
        {
            bail!(
                "{}: the run being resumed used another number of processes ({other}); resume it with that --jobs",
                jobs.display()
            );
        }
        if earlier.is_empty() && self.out.join("records.jsonl").exists() {
            bail!(
                "{} was written by one process: resume it without --jobs",
                self.out.display()
            );
        }
        Ok(())
    }

    /// Starts process `i` of `n` writing into `folder`, its output going to `log_path`.
    fn spawn(
        &self,
        i: usize,
        n: usize,
        threads: usize,
        folder: &Path,
        log_path: &Path,
    ) -> anyhow::Result<Child> {
        let exe = std::env::current_exe().context("finding the hsd binary to start processes")?;
        let mut command = Command::new(exe);
        command
            .arg("run")
            .arg(&self.sweep.manifest)
            .args(["--profile", &self.sweep.profile])
            .args(["--shard", &format!("{i}/{n}"), "--shard-by", "datasets"])
            .arg("--out")
            .arg(folder);
        if let Some(limit) = self.sweep.limit {
            command.args(["--limit", &limit.to_string()]);
        }
        if self.resume {
            command.arg("--resume");
        }
        for model in &self.model_flags.models {
            command.args(["--model", model]);
        }
        if let Some(backend) = self.model_flags.backend {
            command.args(["--backend", backend.name()]);
        }
        if let Some(weights) = self.model_flags.weights {
            command.args(["--weights", weights.name()]);
        }
        let log =
            File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?;
        command
            .env("RAYON_NUM_THREADS", threads.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut command);
        command
            .spawn()
            .with_context(|| format!("starting process {i}/{n} of {}", self.manifest.name))
    }
}

/// A child killed with its parent: `kill -9` of `hsd run --jobs` leaves no process writing to
/// the folder that `--resume` will continue.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own attributes.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

struct Worker {
    child: Option<Child>,
    counter: LineCounter,
    log: PathBuf,
    bar: ProgressBar,
}

/// Waits for every worker, updating its bar from its records file; on the first failure the
/// others are stopped and the error quotes the failed process's last log lines.
fn wait_all(workers: &mut [Worker]) -> anyhow::Result<()> {
    loop {
        let mut running = 0;
        for (index, worker) in workers.iter_mut().enumerate() {
            worker.bar.set_position(worker.counter.count() as u64);
            let Some(child) = worker.child.as_mut() else {
                continue;
            };
            match child.try_wait().context("waiting for a process")? {
                None => running += 1,
                Some(status) if status.success() => {
                    worker.child = None;
                    worker.bar.finish();
                }
                Some(status) => {
                    worker.child = None;
                    let log = worker.log.clone();
                    for other in workers.iter_mut() {
                        if let Some(mut child) = other.child.take() {
                            let _ = child.kill();
                            let _ = child.wait();
                        }
                    }
                    bail!(
                        "process {}/{} {status}: {} (log {})",
                        index + 1,
                        workers.len(),
                        last_error(&log),
                        log.display()
                    );
                }
            }
        }
        if running == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The log's last line that reports an error, else its last line.
fn last_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("Error:"))
        .or(lines.last())
        .map_or_else(|| "no output".to_owned(), |l| (*l).to_owned())
}

/// Counts the complete lines of a growing file, reading only what was appended since the last
/// count.
struct LineCounter {
    path: PathBuf,
    read: u64,
    lines: usize,
}

impl LineCounter {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            read: 0,
            lines: 0,
        }
    }

    fn count(&mut self) -> usize {
        let Ok(mut file) = File::open(&self.path) else {
            return self.lines;
        };
        if file.seek(SeekFrom::Start(self.read)).is_err() {
            return self.lines;
        }
        let mut reader = BufReader::new(file.by_ref());
        let mut line = Vec::new();
        while let Ok(bytes) = reader.read_until(b'\n', &mut line) {
            if bytes == 0 || line.last() != Some(&b'\n') {
                break;
            }
            self.read += bytes as u64;
            self.lines += 1;
            line.clear();
        }
        self.lines
    }
}

/// The processes a sweep of `expansion` can keep busy on this machine: one per core, at most
/// one per (model, dataset) group that decodes.
pub fn default_processes(expansion: &Expansion, decodes: Decodes<'_>) -> usize {
    cores().min(decoding_groups(expansion, decodes)).max(1)
}

/// The cores this process may use (1 where that cannot be known).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

/// The (model, dataset) groups of `expansion` with a run that decodes.
pub fn decoding_groups(expansion: &Expansion, decodes: Decodes<'_>) -> usize {
    expansion
        .runs
        .iter()
        .filter(|run| decodes(run))
        .map(|run| (run.model.as_str(), run.dataset_index))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// The folder of shard `i` of `n` (1-based) among its sweep's shards: `shard-i-of-n`. `i` may
/// be a placeholder, as in a job script's comment.
pub fn shard_folder_name(i: impl std::fmt::Display, n: usize) -> String {
    format!("shard-{i}-of-{n}")
}

/// The folders under `out/jobs` of an earlier run in processes, by name, with the process
/// count a [`shard_folder_name`] gives (`None` for any other name).
fn earlier_shard_folders(out: &Path) -> Vec<(String, Option<usize>)> {
    let Ok(entries) = std::fs::read_dir(out.join("jobs")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let processes = name
                .strip_prefix("shard-")
                .and_then(|rest| rest.split_once("-of-"))
                .and_then(|(_, n)| n.parse::<usize>().ok());
            (name, processes)
        })
        .collect()
}

/// How many processes wrote the interrupted run in `out`, by its `jobs/shard-i-of-n` folders;
/// `None` when none did.
pub fn earlier_processes(out: &Path) -> Option<usize> {
    earlier_shard_folders(out)
        .into_iter()
        .filter_map(|(_, processes)| processes)
        .max()
}

/// The runs of `expansion` that shard `i` of `n` (1-based) holds under `by`.
pub fn runs_of_shard(
    expansion: &Expansion,
    i: usize,
    n: usize,
    by: ShardBy,
    decodes: Decodes<'_>,
) -> Vec<Run> {
    expansion
        .runs
        .iter()
        .zip(shard_of_runs(expansion, n, by, decodes))
        .filter(|&(_, s)| s == i - 1)
        .map(|(run, _)| run.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expansion(manifest: &str) -> Expansion {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, manifest).unwrap();
        Manifest::load(&path).unwrap().expand(None, None).unwrap()
    }

    const MANIFEST: &str = r#"
name = "t"
[[model]]
name = "a"
spec = "smollm2-135m"
[[model]]
name = "b"
spec = "smollm2-135m"
[[dataset]]
name = "cnn_dailymail"
max_new_tokens = 32
max_source_tokens = 512
[[dataset]]
name = "e2e"
max_new_tokens = 32
[[dataset]]
name = "xsum"
max_new_tokens = 32
max_source_tokens = 384
[[strategy]]
name = "full"
[[strategy]]
name = "hsd"
target_skip_ratio = [0.25, 0.5]
"#;

    #[test]
    fn dataset_shards_keep_groups_whole_and_cover_every_run_once() {
        let expansion = expansion(MANIFEST);
        for n in 1..=4 {
            let shards = shard_of_runs(&expansion, n, ShardBy::Datasets, &|_| true);
            let mut group_shard = BTreeMap::new();
            for (run, &s) in expansion.runs.iter().zip(&shards) {
                assert!(s < n);
                let previous = group_shard.insert((run.model.clone(), run.dataset_index), s);
                assert!(previous.is_none_or(|p| p == s), "{} split", run.id);
            }
            let total: usize = (1..=n)
                .map(|i| runs_of_shard(&expansion, i, n, ShardBy::Datasets, &|_| true).len())
                .sum();
            assert_eq!(total, expansion.runs.len());
        }
    }

    #[test]
    fn dataset_shards_balance_by_cost() {
        let expansion = expansion(MANIFEST);
        // Per model: cnn 128, xsum 112, e2e 68 per run; LPT over 2 shards puts one cnn and one
        // xsum group on each side.
        let shards = shard_of_runs(&expansion, 2, ShardBy::Datasets, &|_| true);
        let mut load = [0u64; 2];
        for (run, &s) in expansion.runs.iter().zip(&shards) {
            load[s] += run_cost(&expansion.datasets[run.dataset_index]);
        }
        let (hi, lo) = (load[0].max(load[1]), load[0].min(load[1]));
        assert!(hi - lo <= 3 * 68, "{load:?}");
    }

    #[test]
    fn groups_that_do_not_decode_weigh_nothing() {
        let expansion = expansion(MANIFEST);
        // Model b has no spec here: model a's three groups are spread as if b were absent.
        let only_a = |run: &Run| run.model == "a";
        let shards = shard_of_runs(&expansion, 2, ShardBy::Datasets, &only_a);
        let mut load = [0u64; 2];
        for (run, &s) in expansion.runs.iter().zip(&shards) {
            if only_a(run) {
                load[s] += run_cost(&expansion.datasets[run.dataset_index]);
            }
        }
        // cnn (128 a run) alone against xsum (112) and e2e (68).
        assert_eq!(load.iter().max(), Some(&(3 * (112 + 68))), "{load:?}");
        assert_eq!(decoding_groups(&expansion, &only_a), 3);
        assert_eq!(decoding_groups(&expansion, &|_| true), 6);
    }

    #[test]
    fn run_shards_interleave() {
        let expansion = expansion(MANIFEST);
        let shards = shard_of_runs(&expansion, 3, ShardBy::Runs, &|_| true);
        assert!(shards.iter().enumerate().all(|(k, &s)| s == k % 3));
    }

    #[test]
    fn line_counter_reads_only_complete_lines_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut counter = LineCounter::new(path.clone());
        assert_eq!(counter.count(), 0);
        std::fs::write(&path, "a\nb\nc").unwrap();
        assert_eq!(counter.count(), 2);
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(counter.count(), 4);
    }

    #[test]
    fn the_failure_quotes_the_error_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        std::fs::write(&log, "notice: a\nError: dataset x: line 3: bad\n\n").unwrap();
        assert_eq!(last_error(&log), "Error: dataset x: line 3: bad");
        assert_eq!(last_error(&dir.path().join("none.log")), "no output");
    }
}
