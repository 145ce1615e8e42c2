//! The bad-input catalogue: inputs a user gets wrong, across CLI flags, manifests, datasets,
//! models, adapters and score inputs, each run through the real binary. Every one must fail
//! with exit status 1 and one line that names the file, field, line or flag at fault (clap's
//! own flag errors exit 2 and name the flag on their first line); none may panic. The cases that
//! load SmolLM2 are skipped with a notice when its GGUF is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

const HSD: &str = env!("CARGO_BIN_EXE_hsd");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn models_dir() -> PathBuf {
    std::env::var_os("HSD_MODELS").map_or_else(|| workspace().join("models"), PathBuf::from)
}

fn wordnet_dir() -> PathBuf {
    std::env::var_os("HSD_WORDNET").map_or_else(|| models_dir().join("wordnet"), PathBuf::from)
}

fn data_dir() -> PathBuf {
    std::env::var_os("HSD_DATA").map_or_else(|| workspace().join("../shared/data"), PathBuf::from)
}

/// How a case must fail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fails {
    /// Our error: status 1, `Error: ...` on exactly one line.
    OneLine,
    /// clap's: status 2, the flag on the first line.
    Flag,
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    /// Substrings the first line of stderr must hold.
    expect: Vec<&'static str>,
    fails: Fails,
    needs_model: bool,
}

fn case(name: &'static str, args: &[&str], expect: &[&'static str]) -> Case {
    Case {
        name,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        expect: expect.to_vec(),
        fails: Fails::OneLine,
        needs_model: false,
    }
}

impl Case {
    fn flag(mut self) -> Self {
        self.fails = Fails::Flag;
        self
    }

    fn model(mut self) -> Self {
        self.needs_model = true;
        self
    }
}

const MODEL_BLOCK: &str = "name = \"x\"\n[[model]]\nname = \"m\"\nspec = \"smollm2-135m\"\n";

/// A manifest with one E2E dataset block holding `dataset`, one strategy block and a `quick`
/// profile.
fn manifest(dataset: &str, strategy: &str) -> String {
    format!(
        "{MODEL_BLOCK}[[dataset]]\nname = \"e2e\"\nmax_new_tokens = 8\n{dataset}\n[[strategy]]\n{strategy}\n\
         [profile.quick]\nlimit = 2\n"
    )
}

/// Writes the files the cases read into `dir`.
fn write_inputs(dir: &Path) {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    let files: [(&str, String); 18] = [
        ("syntax.toml", "name = \"x\"\n[[dataset]\n".into()),
        ("unknown_key.toml", "name = \"x\"\nbogus = 1\n".into()),
        (
            "bad_weights.toml",
            "name = \"x\"\nweights = \"fp8\"\n".into(),
        ),
        (
            "unknown_dataset.toml",
            format!(
                "{MODEL_BLOCK}[[dataset]]\nname = \"nope\"\nmax_new_tokens = 8\n[[strategy]]\nname = \"full\"\n"
            ),
        ),
        ("no_strategy_name.toml", manifest("", "max = 1")),
        (
            "duplicate_label.toml",
            manifest("", "name = \"hsd\"\n[[strategy]]\nname = \"hsd\""),
        ),
        (
            "cycle_a.toml",
            "include = [\"cycle_b.toml\"]\nname = \"a\"\n".into(),
        ),
        ("cycle_b.toml", "include = [\"cycle_a.toml\"]\n".into()),
        ("ok.toml", manifest("", "name = \"full\"")),
        (
            "target.toml",
            manifest("", "name = \"hsd\"\ntarget_skip_ratio = 1.2"),
        ),
        (
            "batch.toml",
            format!("batch_size = 0\n{}", manifest("", "name = \"full\"")),
        ),
        (
            "speculative.toml",
            manifest("", "name = \"hsd\"\nspeculative = 0"),
        ),
        (
            "plan_file.toml",
            manifest("", "name = \"hsd\"\nplan_file = \"plans.json\""),
        ),
        (
            "unknown_knob.toml",
            manifest("", "name = \"hsd\"\nlevelz = 3"),
        ),
        (
            "missing_data.toml",
            manifest("path = \"missing.jsonl\"", "name = \"full\""),
        ),
        (
            "bad_jsonl.toml",
            manifest("path = \"bad.jsonl\"", "name = \"full\""),
        ),
        (
            "bad_csv.toml",
            manifest("path = \"bad.csv\"", "name = \"full\""),
        ),
        (
            "missing_template.toml",
            manifest("template = \"missing-template.toml\"", "name = \"full\""),
        ),
    ];
    for (name, text) in &files {
        write(name, text.as_bytes());
    }
    write(
        "bad.jsonl",
        b"{\"meaning_representation\": \"name[A]\", \"human_reference\": \"A.\"}\n{not json\n",
    );
    write("bad.csv", b"mr,wrong\nname[A],x\n");
    write(
        "junk.gguf",
        &[0x41, 0x36, 0xf5, 0xc4, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    write("truncated.gguf", b"GGUF\x03\x00\x00\x00");
    write("predictions.txt", b"a\nb\n");
    write("one_reference.jsonl", b"[\"a\"]\n");
    write("references.jsonl", b"[\"a\"]\n[\"b\"]\n");
    std::fs::create_dir_all(dir.join("no_config")).unwrap();
    std::fs::create_dir_all(dir.join("mamba")).unwrap();
    write("mamba/config.json", b"{\"model_type\": \"mamba\"}");
    // Adapters: broken copies of a committed one.
    let adapter = workspace().join("adapters/plain/e2e");
    for broken in [
        "adapter_json",
        "adapter_rank",
        "adapter_weights",
        "adapter_base",
    ] {
        let to = dir.join(broken);
        std::fs::create_dir_all(&to).unwrap();
        for file in ["adapter_config.json", "adapter_model.safetensors"] {
            std::fs::copy(adapter.join(file), to.join(file)).unwrap();
        }
    }
    write("adapter_json/adapter_config.json", b"{");
    let config = std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap();
    write(
        "adapter_rank/adapter_config.json",
        config.replace("\"r\": 8", "\"r\": 4").as_bytes(),
    );
    write("adapter_weights/adapter_model.safetensors", b"\x05\x00");
    write(
        "adapter_base/adapter_config.json",
        config
            .replace("\"target_modules\": [", "\"target_modules\": [\"wq\", ")
            .as_bytes(),
    );
}

/// `generate`'s model and prompt flags followed by `rest`.
fn with(rest: &[&'static str]) -> Vec<&'static str> {
    ["--model", "smollm2-135m", "--prompt", "x"]
        .into_iter()
        .chain(rest.iter().copied())
        .collect()
}

fn catalogue() -> Vec<Case> {
    vec![
        // CLI flags
        case(
            "unknown backend",
            &with(&["--backend", "cuda"]),
            &["--backend", "cuda"],
        )
        .flag(),
        case(
            "unknown weights",
            &with(&["--weights", "fp8"]),
            &["--weights", "fp8"],
        )
        .flag(),
        case("adaptive without k", &with(&["--adaptive"]), &["required"]).flag(),
        case(
            "unknown metric",
            &[
                "score",
                "--metric",
                "nope",
                "--predictions",
                "p",
                "--references",
                "r",
            ],
            &["--metric", "nope"],
        )
        .flag(),
        case("batch 0", &["bench", "--batch", "0"], &["--batch"]),
        case(
            "speculative 0",
            &["bench", "--strategy", "hsd", "--speculative", "0"],
            &["--speculative"],
        ),
        case(
            "search ratio",
            &["search", "ok.toml", "--max-skip-ratio", "1.5"],
            &["--max-skip-ratio"],
        ),
        case(
            "unknown strategy",
            &[
                "plan",
                "--strategy",
                "nope",
                "--layers",
                "30",
                "--max-new-tokens",
                "8",
            ],
            &["strategy `nope`", "hsd"],
        ),
        case(
            "setting without =",
            &[
                "plan",
                "--strategy",
                "hsd",
                "--layers",
                "30",
                "--max-new-tokens",
                "8",
                "--set",
                "target_skip_ratio",
            ],
            &["target_skip_ratio", "key=value"],
        ),
        case(
            "unknown knob",
            &[
                "plan",
                "--strategy",
                "hsd",
                "--layers",
                "30",
                "--max-new-tokens",
                "8",
                "--set",
                "bogus=1",
            ],
            &["unknown field `bogus`"],
        ),
        case(
            "target out of range",
            &[
                "plan",
                "--strategy",
                "hsd",
                "--layers",
                "30",
                "--max-new-tokens",
                "8",
                "--set",
                "target_skip_ratio=1.5",
            ],
            &["1.5", "[0, 1)"],
        ),
        case(
            "bad shard",
            &["run", "ok.toml", "--shard", "3/2"],
            &["--shard", "3/2"],
        ),
        // Manifests
        case("missing manifest", &["check", "nope.toml"], &["nope.toml"]),
        case(
            "TOML syntax",
            &["check", "syntax.toml"],
            &["syntax.toml:2:"],
        ),
        case(
            "unknown key",
            &["check", "unknown_key.toml"],
            &["unknown_key.toml:2:1", "bogus"],
        ),
        case(
            "unknown weights mode",
            &["check", "bad_weights.toml"],
            &["bad_weights.toml:2:", "fp8", "f32 or native"],
        ),
        case(
            "unknown dataset",
            &["check", "unknown_dataset.toml"],
            &["unknown_dataset.toml:", "nope"],
        ),
        case(
            "strategy without name",
            &["check", "no_strategy_name.toml"],
            &["no_strategy_name.toml:", "name"],
        ),
        case(
            "duplicate label",
            &["check", "duplicate_label.toml"],
            &["duplicate_label.toml", "label"],
        ),
        case(
            "include cycle",
            &["check", "cycle_a.toml"],
            &["cycle_b.toml", "include cycle"],
        ),
        case(
            "unknown profile",
            &["check", "ok.toml", "--profile", "nope"],
            &["ok.toml", "[profile.nope]"],
        ),
        case(
            "target in manifest",
            &["check", "target.toml"],
            &["target.toml:", "1.2"],
        ),
        case(
            "batch size 0",
            &["check", "batch.toml"],
            &["batch.toml", "batch_size"],
        ),
        case(
            "speculative = 0",
            &["check", "speculative.toml"],
            &["speculative.toml:", "speculative"],
        ),
        case(
            "plan_file off searched",
            &["check", "plan_file.toml"],
            &["plan_file.toml:", "plan_file"],
        ),
        case(
            "unknown strategy knob",
            &["check", "unknown_knob.toml"],
            &["unknown_knob.toml:", "levelz"],
        ),
        // Datasets
        case(
            "missing dataset file",
            &["check", "missing_data.toml"],
            &["missing_data.toml", "missing.jsonl"],
        ),
        case(
            "malformed JSONL",
            &["check", "bad_jsonl.toml"],
            &["bad.jsonl", "line 2"],
        ),
        case(
            "CSV without its column",
            &["check", "bad_csv.toml"],
            &["bad.csv", "line 2", "`ref`"],
        ),
        case(
            "missing template",
            &["check", "missing_template.toml"],
            &["missing-template.toml"],
        ),
        // Models
        case(
            "missing model file",
            &["logits", "--model", "absent.gguf", "--prompt", "x"],
            &["absent.gguf"],
        ),
        case(
            "not a GGUF",
            &["logits", "--model", "junk.gguf", "--prompt", "x"],
            &["junk.gguf", "magic", "GGUF"],
        ),
        case(
            "truncated GGUF",
            &["logits", "--model", "truncated.gguf", "--prompt", "x"],
            &["truncated.gguf", "truncated"],
        ),
        case(
            "HF folder without config",
            &["logits", "--model", "no_config", "--prompt", "x"],
            &["no_config/config.json"],
        ),
        case(
            "unsupported architecture",
            &["logits", "--model", "mamba", "--prompt", "x"],
            &["mamba/config.json", "mamba"],
        ),
        // Adapters
        case(
            "missing adapter",
            &with(&["--adapter", "absent_adapter"]),
            &["absent_adapter", "adapter_config.json"],
        )
        .model(),
        case(
            "adapter config not JSON",
            &with(&["--adapter", "adapter_json"]),
            &["adapter_json/adapter_config.json"],
        )
        .model(),
        case(
            "adapter rank mismatch",
            &with(&["--adapter", "adapter_rank"]),
            &["adapter_rank/adapter_model.safetensors", "r = 4"],
        )
        .model(),
        case(
            "adapter weights torn",
            &with(&["--adapter", "adapter_weights"]),
            &["adapter_weights/adapter_model.safetensors"],
        )
        .model(),
        case(
            "adapter target unknown",
            &with(&["--adapter", "adapter_base"]),
            &["adapter_base", "wq"],
        )
        .model(),
        // Score inputs
        case(
            "unpaired lines",
            &[
                "score",
                "--metric",
                "rouge",
                "--predictions",
                "predictions.txt",
                "--references",
                "one_reference.jsonl",
            ],
            &["predictions.txt", "one_reference.jsonl"],
        ),
        case(
            "missing references",
            &[
                "score",
                "--metric",
                "rouge",
                "--predictions",
                "predictions.txt",
                "--references",
                "absent.jsonl",
            ],
            &["absent.jsonl"],
        ),
        case(
            "missing predictions",
            &[
                "score",
                "--metric",
                "bleu",
                "--predictions",
                "absent.txt",
                "--references",
                "references.jsonl",
            ],
            &["absent.txt"],
        ),
    ]
}

#[test]
fn every_bad_input_is_one_line_naming_its_cause_and_nothing_panics() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let have_model = models_dir()
        .join("SmolLM2-135M-Instruct.Q4_1.gguf")
        .exists();
    let cases = catalogue();
    assert!(
        cases.len() >= 30,
        "the catalogue holds {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut skipped = 0;
    for case in &cases {
        if case.needs_model && !have_model {
            skipped += 1;
            continue;
        }
        // A subcommand's arguments are the case's; `generate` is implied by a leading flag.
        let mut args = case.args.clone();
        if args[0].starts_with("--") {
            args.insert(0, "generate".into());
        }
        let out = Command::new(HSD)
            .args(&args)
            .env("HSD_MODELS", models_dir())
            .env("HSD_DATA", data_dir())
            .env("HSD_WORDNET", wordnet_dir())
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or("");
        let code = out.status.code();
        let shape_ok = match case.fails {
            Fails::OneLine => {
                code == Some(1) && first.starts_with("Error: ") && stderr.lines().count() == 1
            }
            Fails::Flag => code == Some(2) && first.starts_with("error: "),
        };
        let missing: Vec<&str> = case
            .expect
            .iter()
            .copied()
            .filter(|e| !first.contains(e))
            .collect();
        if !shape_ok || !missing.is_empty() || stderr.contains("panicked") {
            failures.push(format!(
                "{} (hsd {}): status {code:?}, missing {missing:?} in:\n{stderr}",
                case.name,
                args.join(" ")
            ));
        }
    }
    if skipped > 0 {
        eprintln!("skipped {skipped} cases: SmolLM2's GGUF is absent");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
