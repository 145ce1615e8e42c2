# hsd: `just setup && just reproduce` on a fresh machine; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

export HSD_MODELS := env_var_or_default("HSD_MODELS", justfile_directory() / "models")
export HSD_WORDNET := env_var_or_default("HSD_WORDNET", HSD_MODELS / "wordnet")

hsd := "cargo run --release --quiet -p hsd-cli --"

# List the recipes.
default:
    @just --list

# Fetch the model (SmolLM2-135M-Instruct GGUF) and WordNet 3.0, and build the release binary.
setup:
    scripts/fetch-model.sh "$HSD_MODELS"
    scripts/fetch-wordnet.sh "$HSD_WORDNET"
    cargo build --release -p hsd-cli

# Every workspace test on the default Flex backend, the model tests on libtorch, wgpu and
# ndarray, a sharded sweep through a one-node Slurm, then fmt, clippy and the structure checks.
# The whole test suite.
test: setup test-flex test-backends test-slurm lint

# Every test of the workspace (release profile: debug-built tensor code is far too slow).
test-flex: setup
    cargo test --release --workspace

# tch installs torch==2.9.0 into HSD_TCH_VENV; wgpu uses Mesa's CPU Vulkan driver, installed
# with apt when missing.
# hsd-model's tests on the tch, wgpu and ndarray backends.
test-backends: setup
    scripts/install-vulkan.sh
    scripts/test-backends.sh

# Installs slurm-wlm and munge with apt when missing (as root); about 1.5 minutes.
# `hsd slurm` on a one-node Slurm: the smoke sweep in 2 shards, merged, equals an unsharded run.
test-slurm: setup
    scripts/test-slurm.sh

# No import cycles between a crate's files; no shell pipelines that SIGPIPE can fail.
# Formatting and lints, warnings as errors, and the structure checks.
lint:
    cargo fmt --all --check
    cargo clippy --release --workspace --all-targets -- -D warnings
    python3 scripts/check-module-cycles.py
    scripts/check-scripts.sh

# As root (a tmpfs is mounted); about 8 minutes on 2 cores.
# Fault injection: kill -9 at 10 random points of a sweep, and a disk that fills up mid-run.
faults: setup
    scripts/fault-kill.sh "${CARGO_TARGET_DIR:-target}/release/hsd"
    scripts/fault-disk-full.sh "${CARGO_TARGET_DIR:-target}/release/hsd"

# FLAGS: --resume continues an interrupted reproduction; --adopt replaces the committed run
# with the fresh one and regenerates its tables and figures; --jobs N sets the processes
# (default one per core; 44 minutes for quick on 2 cores).
# Run the main sweep at PROFILE afresh (target/reproduce/) and compare with the committed run.
reproduce PROFILE="quick" *FLAGS: setup
    {{hsd}} reproduce experiments/main.toml --profile {{PROFILE}} {{FLAGS}}

# FLAGS as for reproduce. Each manifest prints its verdict and its wall-clock minutes.
# Run the five ablation manifests (tuned arm) afresh and compare each with its committed run.
ablations PROFILE="quick" *FLAGS: setup
    for manifest in kv_fill levels keep oracle layer_importance; do {{hsd}} reproduce "experiments/$manifest.toml" --profile {{PROFILE}} {{FLAGS}}; done

# FLAGS: --resume continues runs from their checkpoints; --dataset NAME and --variant NAME
# select. About 30-45 minutes per adapter on 2 cores (`paper/README.md` has the times).
# Regenerate the LoRA adapters (adapters/<variant>/<dataset>/) and their loss curves.
finetune PROFILE="full" *FLAGS: setup
    {{hsd}} finetune experiments/finetune.toml --profile {{PROFILE}} {{FLAGS}}

# Regenerate paper/tables and paper/figures from results/ alone (no model run).
paper:
    {{hsd}} report

# The peers need torch 2.9.0, transformers and gguf in a venv (HSD_BENCH_PYTHON, default
# .venv-bench) and llama-cpp-python built from source (.venv-llamacpp), both made here when
# missing. Writes results/speed/ (JSON and table.md) and paper/figures/speed_*.{png,svg}.
# Decode speed with f32 and native (GGUF block) weights against HF transformers and
# llama.cpp on the same GGUF, and HSD's skip speed-ups with both weights.
bench: setup
    python="$(scripts/bench-python.sh torch transformers gguf)" && llamacpp="$(scripts/llamacpp-python.sh)" && HSD_BENCH_PYTHON="$python" HSD_BENCH_LLAMACPP_PYTHON="$llamacpp" bench/run.sh

# The peer needs torch 2.9.0, transformers, peft and gguf in a venv (HSD_BENCH_PYTHON,
# default .venv-bench, made here when missing). Writes results/speed/train.json.
# LoRA training tokens/s, `hsd finetune` against transformers + PEFT, back to back.
bench-train: setup
    python="$(scripts/bench-python.sh torch transformers peft gguf)" && HSD_BENCH_PYTHON="$python" bench/train_throughput.sh

# Needs the bench venv (see bench-train). Writes results/adapters/peft-check-<variant>-<dataset>.json.
# PEFT loads every committed adapter onto the same base and gives hsd's logits.
check-adapters: setup
    #!/usr/bin/env bash
    set -euo pipefail
    python="$(scripts/bench-python.sh torch transformers peft gguf)"
    mkdir -p results/adapters
    for config in adapters/*/*/adapter_config.json; do
        dir="$(dirname "$config")"
        variant="$(basename "$(dirname "$dir")")"
        "$python" scripts/check-peft-adapter.py --adapter "$dir" \
            --hsd "${CARGO_TARGET_DIR:-target}/release/hsd" \
            --out "results/adapters/peft-check-$variant-$(basename "$dir").json"
    done
