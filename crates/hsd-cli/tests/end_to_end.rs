//! `hsd run` on the real model end to end, `--resume` after SIGKILL, and `hsd report` from
//! the results alone. Skipped with a notice when the SmolLM2 GGUF or the shared data is absent.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HSD: &str = env!("CARGO_BIN_EXE_hsd");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn models_dir() -> PathBuf {
    std::env::var_os("HSD_MODELS").map_or_else(|| workspace().join("models"), PathBuf::from)
}

/// Why the model tests cannot run here, if they cannot.
fn missing_inputs() -> Option<String> {
    let gguf = models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if !gguf.exists() {
        return Some(format!("{} is absent", gguf.display()));
    }
    let data = std::env::var_os("HSD_DATA")
        .map_or_else(|| workspace().join("../shared/data"), PathBuf::from);
    if !data.join("e2e").is_dir() {
        return Some(format!("no E2E data under {}", data.display()));
    }
    None
}

fn hsd(args: &[&str]) -> Command {
    let mut command = Command::new(HSD);
    command
        .args(args)
        .env("HSD_MODELS", models_dir())
        .current_dir(workspace());
    command
}

fn run_ok(args: &[&str]) -> String {
    let out = hsd(args).output().unwrap();
    assert!(
        out.status.success(),
        "hsd {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn manifest() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/smoke.toml")
        .display()
        .to_string()
}

/// `summary.csv` without the wall-clock columns, which legitimately differ between runs.
fn summary_without_timing(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !["decode_seconds", "tokens_per_second", "speedup"].contains(&header[i]))
        .collect();
    std::iter::once(header.join(","))
        .chain(lines.map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",")
        }))
        .collect()
}

#[test]
fn check_prints_the_expanded_runs_and_their_cost_without_a_model() {
    let out = run_ok(&["check", &manifest(), "--profile", "smoke"]);
    assert!(
        out.contains("10 runs (profile smoke, examples per dataset: 3)"),
        "{out}"
    );
    assert!(out.contains("smollm2-135m/e2e/skipdecode@0.50"), "{out}");
    assert!(out.contains("generated tokens: 240"), "{out}");
    assert!(out.contains("smollm2-135m-plain/e2e/hsd@0.25"), "{out}");
}

#[test]
fn a_smoke_sweep_runs_resumes_after_sigkill_and_reports() {
    if let Some(why) = missing_inputs() {
        eprintln!("notice: skipping the end-to-end test: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    let resumed = dir.path().join("resumed");
    let manifest = manifest();
    run_ok(&[
        "run",
        &manifest,
        "--profile",
        "smoke",
        "--out",
        straight.to_str().unwrap(),
    ]);

    // Kill a second run once it has written part of its records, then resume it.
    let mut child = hsd(&[
        "run",
        &manifest,
        "--profile",
        "smoke",
        "--out",
        resumed.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let records = resumed.join("records.jsonl");
    let started = Instant::now();
    while std::fs::metadata(&records).map_or(0, |m| m.len()) == 0
        && started.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    // A random moment within the next half second: mid-batch, mid-write or between writes.
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 500;
    std::thread::sleep(Duration::from_millis(u64::from(jitter)));
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = std::fs::read_to_string(&records).unwrap_or_default();
    let straight_records = std::fs::read_to_string(straight.join("records.jsonl")).unwrap();
    assert!(
        partial.len() < straight_records.len(),
        "the kill came after the run finished"
    );
    let refused = hsd(&[
        "run",
        &manifest,
        "--profile",
        "smoke",
        "--out",
        resumed.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        !refused.status.success(),
        "an existing folder needs --resume"
    );
    run_ok(&[
        "run",
        &manifest,
        "--profile",
        "smoke",
        "--resume",
        "--out",
        resumed.to_str().unwrap(),
    ]);

    assert_eq!(
        std::fs::read_to_string(&records).unwrap(),
        straight_records,
        "records differ after resume"
    );
    assert_eq!(
        summary_without_timing(&resumed),
        summary_without_timing(&straight)
    );
    assert_eq!(straight_records.lines().count(), 2 * 5 * 3);
    let first: serde_json::Value =
        serde_json::from_str(straight_records.lines().next().unwrap()).unwrap();
    assert_eq!(first["run"], "smollm2-135m/e2e/full");
    assert_eq!(first["layers"][0].as_str().unwrap().len(), 30);
    let summary = summary_without_timing(&straight);
    assert_eq!(summary.len(), 1 + 2 * 5);
    assert!(
        summary[0].contains("bleu_ci_lo") && summary[0].contains("rougeL_retained"),
        "{}",
        summary[0]
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("meta.json")).unwrap())
            .unwrap();
    assert_eq!(
        meta["models"][0]["files"][0]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(
        meta["metric_signatures"]["bleu"]
            .as_str()
            .unwrap()
            .contains("2.6.0")
    );
    // Every run's solved knobs, the same after a kill and a resume.
    let knobs = &meta["solved_knobs"];
    assert_eq!(knobs.as_object().unwrap().len(), 2 * 5, "{knobs}");
    let hsd_knobs = &knobs["smollm2-135m/e2e/hsd@0.50"];
    assert!(
        hsd_knobs["levels"].is_u64() && hsd_knobs["max_skip"].is_u64(),
        "{knobs}"
    );
    let resumed_meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(resumed.join("meta.json")).unwrap()).unwrap();
    assert_eq!(&resumed_meta["solved_knobs"], knobs);
    // The tuned arm: its adapter is recorded, and it decodes otherwise than the base model.
    let tuned = &meta["models"][1];
    assert_eq!(tuned["name"], "smollm2-135m-plain", "{tuned}");
    assert!(
        tuned["files"].as_array().unwrap().iter().any(|f| f["path"]
            == "adapters/plain/e2e/adapter_model.safetensors"
            && f["sha256"].as_str().unwrap().len() == 64),
        "{tuned}"
    );
    let records: Vec<serde_json::Value> = straight_records
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let tokens_of = |run: &str| -> Vec<&serde_json::Value> {
        records
            .iter()
            .filter(|r| r["run"] == run)
            .map(|r| &r["tokens"])
            .collect()
    };
    assert_ne!(
        tokens_of("smollm2-135m/e2e/full"),
        tokens_of("smollm2-135m-plain/e2e/full")
    );
    // Teacher forcing along each arm's own vanilla tokens: every skipping record of both arms
    // carries it, vanilla none.
    for record in &records {
        let forced = &record["teacher_forced"];
        if record["run"].as_str().unwrap().ends_with("/full") {
            assert!(forced.is_null(), "{record}");
            continue;
        }
        let agreement = forced["top1_agreement"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&agreement), "{record}");
        assert!(forced["mean_kl"].as_f64().unwrap() >= 0.0, "{record}");
        assert!(forced["positions"].as_u64().unwrap() > 0, "{record}");
    }
    let columns: Vec<&str> = summary[0].split(',').collect();
    let forced_column = columns
        .iter()
        .position(|c| *c == "forced_agreement")
        .unwrap();
    for row in &summary[1..] {
        let cells: Vec<&str> = row.split(',').collect();
        let forced: Option<f64> = cells[forced_column].parse().ok();
        if cells[0].ends_with("/full") {
            assert!(forced.is_none(), "{row}");
        } else {
            assert!(forced.is_some_and(|f| (0.0..=1.0).contains(&f)), "{row}");
        }
    }
    // Faithfulness beside the metrics: vanilla agrees with itself.
    assert!(
        summary[0].contains("vanilla_agreement") && summary[0].contains("repeated_4grams"),
        "{}",
        summary[0]
    );

    let paper = dir.path().join("paper");
    let out = run_ok(&[
        "report",
        straight.to_str().unwrap(),
        "--paper",
        paper.to_str().unwrap(),
    ]);
    assert!(
        out.contains("straight.md") && out.contains("straight_quality.png"),
        "{out}"
    );
    let faithfulness =
        std::fs::read_to_string(paper.join("tables/straight_faithfulness.md")).unwrap();
    assert!(
        faithfulness.contains("| full | – | 0.000 | 1.000 |"),
        "{faithfulness}"
    );
    let table = std::fs::read_to_string(paper.join("tables/straight.md")).unwrap();
    assert!(
        table.contains("### e2e (smollm2-135m, 3 examples)")
            && table.contains("| skipdecode | 0.50 |"),
        "{table}"
    );
    for figure in [
        "straight_quality.png",
        "straight_retained.svg",
        "straight_speed.png",
        "straight_layers_e2e.png",
    ] {
        assert!(
            std::fs::metadata(paper.join("figures").join(figure))
                .unwrap()
                .len()
                > 1000,
            "{figure}"
        );
    }
}

/// `hsd run --jobs 2`: the same records and summary as one process, a `kill -9` of the parent
/// leaves nothing running, and `--resume` with the same process count finishes the same bytes
/// (without it, resuming refuses).
#[test]
fn a_sweep_in_two_processes_equals_one_and_resumes_after_sigkill() {
    if let Some(why) = missing_inputs() {
        eprintln!("notice: skipping the two-process test: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (single, parallel) = (dir.path().join("single"), dir.path().join("parallel"));
    let manifest = manifest();
    let sweep = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["run", &manifest, "--profile", "smoke", "--out"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.push(out.display().to_string());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    run_ok(&as_strs(&sweep(&single, &[])));

    let mut parent = hsd(&as_strs(&sweep(&parallel, &["--jobs", "2"])))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let shard_records = |i: usize| parallel.join(format!("jobs/shard-{i}-of-2/records.jsonl"));
    let started = Instant::now();
    while (1..=2).all(|i| std::fs::metadata(shard_records(i)).map_or(0, |m| m.len()) == 0)
        && started.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    parent.kill().unwrap();
    parent.wait().unwrap();
    assert!(
        !parallel.join("records.jsonl").exists(),
        "the kill came after the merge"
    );
    // The processes die with their parent: their folders stop growing.
    let sizes = || -> Vec<u64> {
        (1..=2)
            .map(|i| std::fs::metadata(shard_records(i)).map_or(0, |m| m.len()))
            .collect()
    };
    std::thread::sleep(Duration::from_millis(300));
    let after_kill = sizes();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sizes(), after_kill, "a process outlived its parent");

    let refused = hsd(&as_strs(&sweep(&parallel, &["--resume"])))
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && message.contains("--jobs 2 --resume"),
        "{message}"
    );
    run_ok(&as_strs(&sweep(&parallel, &["--jobs", "2", "--resume"])));
    assert_eq!(
        std::fs::read_to_string(parallel.join("records.jsonl")).unwrap(),
        std::fs::read_to_string(single.join("records.jsonl")).unwrap(),
        "two processes wrote other records than one"
    );
    assert_eq!(
        summary_without_timing(&parallel),
        summary_without_timing(&single)
    );
    let meta = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap()
    };
    let (one, two) = (meta(&single), meta(&parallel));
    assert_eq!(two["solved_knobs"], one["solved_knobs"]);
    assert_eq!(two["models"], one["models"]);
    assert_eq!(two["merged_from"].as_array().unwrap().len(), 2);
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
