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

# The whole test suite: every workspace test on the default Flex backend, the model tests on
# libtorch, wgpu and ndarray, then fmt and clippy.
test: setup test-flex test-backends lint

# Every test of the workspace (release profile: debug-built tensor code is far too slow).
test-flex: setup
    cargo test --release --workspace

# hsd-model's tests on tch (installs torch==2.9.0 into HSD_TCH_VENV), wgpu (Mesa's CPU Vulkan
# driver, installed with apt when missing) and ndarray.
test-backends: setup
    scripts/install-vulkan.sh
    scripts/test-backends.sh

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all --check
    cargo clippy --release --workspace --all-targets -- -D warnings

# Run the main manifest's sweep at PROFILE (smoke | quick | full) and regenerate the report.
reproduce PROFILE="quick": setup
    {{hsd}} run experiments/main.toml --profile {{PROFILE}} --resume
    {{hsd}} report

# Regenerate paper/tables and paper/figures from results/ alone (no model run).
paper:
    {{hsd}} report
