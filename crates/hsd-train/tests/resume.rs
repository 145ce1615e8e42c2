//! A run killed with SIGKILL and resumed from its last checkpoint ends with the same adapter
//! bytes as an uninterrupted one: batches, dropout and skip plans are functions of the seed
//! and the update, and the checkpoint holds the factors, the AdamW moments and the counters.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hsd_model::{Backend, load_model};
use hsd_train::{
    BEST_DIR, CHECKPOINT_DIR, Decay, FineTune, LoraConfig, SkipTraining, TrainConfig, TrainExample,
};

const STEPS: usize = 300;
const CHILD_DIR: &str = "HSD_TRAIN_CHILD_DIR";

fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hsd-model/tests/fixtures/tiny/llama")
}

fn examples(count: usize, salt: u32) -> Vec<TrainExample> {
    (0..count as u32)
        .map(|i| {
            let token = |j: u32| (i * 31 + j * 17 + salt) % 290 + 5;
            TrainExample {
                id: format!("ex{salt}-{i}"),
                prompt: (0..3 + i % 5).map(token).collect(),
                target: (10..12 + i % 4).map(token).collect(),
            }
        })
        .collect()
}

/// Trains the tiny Llama into `out`: dropout, accumulation, clipping and skip-aware plans on.
fn train(out: &Path, resume: bool) {
    let mut model = load_model(base().to_str().unwrap(), test_backend()).unwrap();
    FineTune {
        decoder: &mut model.decoder,
        lora: LoraConfig {
            rank: 2,
            alpha: 4.0,
            dropout: 0.1,
            targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
        },
        config: TrainConfig {
            steps: STEPS,
            batch_size: 3,
            grad_accum: 2,
            lr: 1e-2,
            warmup_steps: 10,
            decay: Decay::Cosine,
            weight_decay: 0.01,
            betas: [0.9, 0.999],
            eps: 1e-8,
            max_grad_norm: 0.5,
            eval_every: 7,
            eval_examples: 3,
            checkpoint_every: 5,
            seed: 11,
            max_len: 16,
            train_skip: Some(SkipTraining {
                strategy: "hsd".into(),
                target_skip_ratio: [0.2, 0.5],
                full_share: 0.3,
                settings: vec![],
                max_new_tokens: 8,
            }),
        },
        train: examples(14, 0),
        eval: examples(3, 7),
        pad_id: 0,
        out: out.to_owned(),
        init: None,
    }
    .run(resume, &mut |_| {})
    .unwrap();
}

fn checkpointed_step(out: &Path) -> usize {
    std::fs::read_to_string(out.join(CHECKPOINT_DIR).join("state.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|state| state["step"].as_u64())
        .unwrap_or(0) as usize
}

/// The child process of `a_killed_run_resumes_to_the_same_adapter_bytes`.
#[test]
#[ignore = "run as a child process by a_killed_run_resumes_to_the_same_adapter_bytes"]
fn child_training() {
    let out = std::env::var_os(CHILD_DIR).expect("set by the parent test");
    train(Path::new(&out), false);
}

#[test]
fn a_killed_run_resumes_to_the_same_adapter_bytes() {
    let whole = tempfile::tempdir().unwrap();
    train(whole.path(), false);

    let killed = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_training",
            "--ignored",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR, killed.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while checkpointed_step(killed.path()) < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint at update 20"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = checkpointed_step(killed.path());
    assert!(at_kill < STEPS, "the child finished before it was killed");

    train(killed.path(), true);
    for file in ["adapter_model.safetensors", "adapter_config.json"] {
        let a = std::fs::read(whole.path().join(BEST_DIR).join(file)).unwrap();
        let b = std::fs::read(killed.path().join(BEST_DIR).join(file)).unwrap();
        assert!(
            a == b,
            "{file} differs after a kill at update {at_kill} and --resume"
        );
    }
}

#[test]
fn a_fresh_run_refuses_to_overwrite_a_checkpoint() {
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(out.path().join(CHECKPOINT_DIR)).unwrap();
    let mut model = load_model(base().to_str().unwrap(), test_backend()).unwrap();
    let err = FineTune {
        decoder: &mut model.decoder,
        lora: LoraConfig {
            rank: 2,
            alpha: 4.0,
            dropout: 0.0,
            targets: vec!["q_proj".into()],
        },
        config: serde_json::from_str(
            r#"{"steps": 2, "batch_size": 2, "lr": 0.01, "eval_every": 1, "eval_examples": 0}"#,
        )
        .unwrap(),
        train: examples(4, 0),
        eval: Vec::new(),
        pad_id: 0,
        out: out.path().to_owned(),
        init: None,
    }
    .run(false, &mut |_| {})
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("checkpoint") && err.contains("--resume"),
        "{err}"
    );
}

/// `HSD_TEST_BACKEND` (flex | tch | wgpu | ndarray) when set, else the first compiled in, as
/// hsd-model's tests pick it.
fn test_backend() -> Backend {
    match std::env::var("HSD_TEST_BACKEND") {
        Ok(name) => name.parse().expect("HSD_TEST_BACKEND names a backend"),
        Err(_) => Backend::default(),
    }
}
