//! `hsd finetune` on the real model: a smoke adapter, decoding with it, the runner's refusal
//! of examples it was trained on, and one-line errors for bad adapters. Skipped with a notice
//! when the SmolLM2 GGUF or the shared data is absent.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hsd_model::weights::{ADAPTER_CONFIG, PeftAdapter};

const HSD: &str = env!("CARGO_BIN_EXE_hsd");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn models_dir() -> PathBuf {
    std::env::var_os("HSD_MODELS").map_or_else(|| workspace().join("models"), PathBuf::from)
}

fn available() -> bool {
    let gguf = models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let data = std::env::var_os("HSD_DATA")
        .map_or_else(|| workspace().join("../shared/data"), PathBuf::from);
    let ok = gguf.exists() && data.join("e2e").is_dir();
    if !ok {
        eprintln!("notice: SmolLM2 GGUF or shared data absent; fine-tuning CLI tests skipped");
    }
    ok
}

fn hsd(args: &[&str]) -> Output {
    Command::new(HSD)
        .args(args)
        .env("HSD_MODELS", models_dir())
        .env("RUST_BACKTRACE", "0")
        .current_dir(workspace())
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = hsd(args);
    assert!(
        out.status.success(),
        "hsd {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first line of a failing command's error, checked to be its only line and no panic.
fn error_line(args: &[&str]) -> String {
    let out = hsd(args);
    assert!(!out.status.success(), "hsd {args:?} succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line:\n{stderr}");
    lines[0].to_string()
}

fn logits(adapter: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "logits",
        "--model",
        "smollm2-135m",
        "--prompt",
        "name[The Eagle], food[French]",
        "--chat",
        "--top",
        "3",
    ];
    let dir;
    if let Some(path) = adapter {
        dir = path.display().to_string();
        args.extend(["--adapter", &dir]);
    }
    ok(&args).lines().map(str::to_string).collect()
}

fn copy_adapter(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn a_smoke_adapter_trains_decodes_and_is_refused_on_its_training_examples() {
    if !available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let out_arg = out.path().display().to_string();
    ok(&[
        "finetune",
        "experiments/finetune.toml",
        "--profile",
        "smoke",
        "--variant",
        "plain",
        "--out",
        &out_arg,
    ]);
    let adapter = out.path().join("plain/e2e");
    for file in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "hsd.json",
        "train_log.csv",
    ] {
        assert!(adapter.join(file).is_file(), "{file}");
    }
    assert!(
        !adapter.join("training").exists(),
        "the checkpoint is cleaned up"
    );
    assert!(out.path().join("paper/figures/finetune_loss.svg").is_file());
    assert_ne!(
        logits(None),
        logits(Some(&adapter)),
        "the adapter changes nothing"
    );

    // A manifest that evaluates E2E dev, the split the adapter trained on.
    let manifest = out.path().join("dev.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
seed = 7
backend = "flex"
batch_size = 2

[[model]]
name = "tuned"
spec = "smollm2-135m"
prompt_mode = "chat"
adapter = "{}/plain/{{dataset}}"

[[dataset]]
name = "e2e"
split = "dev"
max_new_tokens = 4
metrics = ["bleu"]

[[strategy]]
name = "full"

[profile.smoke]
limit = 40
"#,
            out.path().display()
        ),
    )
    .unwrap();
    let manifest_arg = manifest.display().to_string();
    let out = hsd(&["check", &manifest_arg, "--profile", "smoke"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("model tuned on e2e: example `") && stderr.contains("trained on"),
        "{stderr}"
    );

    bad_adapters(&adapter);
}

/// Every way an adapter can be wrong fails `hsd logits --adapter` with one line naming the
/// file or the module and the field.
fn bad_adapters(good: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let case = |name: &str| {
        let path = dir.path().join(name);
        copy_adapter(good, &path);
        path
    };
    let run = |path: &Path| {
        let arg = path.display().to_string();
        error_line(&[
            "logits",
            "--model",
            "smollm2-135m",
            "--prompt",
            "x",
            "--adapter",
            &arg,
        ])
    };

    let missing = dir.path().join("nowhere");
    let line = run(&missing);
    assert!(
        line.contains("nowhere") && line.contains("adapter_config.json"),
        "{line}"
    );

    let malformed = case("malformed");
    std::fs::write(malformed.join(ADAPTER_CONFIG), "{\"r\": 8,").unwrap();
    let line = run(&malformed);
    assert!(line.contains(ADAPTER_CONFIG), "{line}");

    let rank = case("rank");
    let text = std::fs::read_to_string(rank.join(ADAPTER_CONFIG)).unwrap();
    std::fs::write(
        rank.join(ADAPTER_CONFIG),
        text.replace("\"r\": 8", "\"r\": 4"),
    )
    .unwrap();
    let line = run(&rank);
    assert!(
        line.contains("adapter_model.safetensors") && line.contains("r = 4"),
        "{line}"
    );

    let shape = case("shape");
    let mut adapter = PeftAdapter::read(&shape).unwrap();
    let (module, factors) = adapter.factors.iter_mut().next().unwrap();
    let module = module.clone();
    factors.a.shape[1] -= 1;
    factors
        .a
        .data
        .truncate(factors.a.shape[0] * factors.a.shape[1]);
    adapter.write(&shape).unwrap();
    let line = run(&shape);
    assert!(line.contains(&module) && line.contains("lora_A"), "{line}");

    let stranger = case("stranger");
    let mut adapter = PeftAdapter::read(&stranger).unwrap();
    let factors = adapter.factors.pop_first().unwrap().1;
    adapter
        .factors
        .insert("model.layers.99.self_attn.q_proj".into(), factors);
    adapter.write(&stranger).unwrap();
    let line = run(&stranger);
    assert!(line.contains("model.layers.99.self_attn.q_proj"), "{line}");

    let base = case("base");
    let text = std::fs::read_to_string(base.join("hsd.json")).unwrap();
    let provenance: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sha = provenance["base_sha256"][0].as_str().unwrap();
    std::fs::write(base.join("hsd.json"), text.replace(sha, &"0".repeat(64))).unwrap();
    let line = run(&base);
    assert!(
        line.contains("hsd.json") && line.contains("base_sha256"),
        "{line}"
    );
}
