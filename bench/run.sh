#!/usr/bin/env bash
# hsd against Hugging Face transformers on one machine, back to back: full decoding at batch 1
# and 8 on both, then hsd's HSD strategy at target skip ratios 0.25 and 0.5 against full.
# Writes OUT (default results/speed/): prompts.json, hsd.json, hf.json, hsd-skip25.json,
# hsd-skip50.json, load.txt and table.md, and the figures paper/figures/speed_{throughput,skip}.{png,svg}.
#
#   bench/run.sh [OUT]
#
# HSD_BENCH_REPETITIONS (default 5), HSD_BENCH_BATCH (1,8), HSD_BENCH_BACKEND (flex) and
# HSD_BENCH_PYTHON (.venv-core/bin/python: torch 2.9.0, transformers, gguf) override the run.
# PyTorch's OpenMP threads spin while they wait, which on a busy shared machine costs HF several
# times its speed; OMP_WAIT_POLICY=PASSIVE (HSD_BENCH_OMP_WAIT_POLICY) makes them sleep instead.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/results/speed}"
repetitions="${HSD_BENCH_REPETITIONS:-5}"
batch="${HSD_BENCH_BATCH:-1,8}"
backend="${HSD_BENCH_BACKEND:-flex}"
python="${HSD_BENCH_PYTHON:-$root/.venv-core/bin/python}"
hsd="${CARGO_TARGET_DIR:-$root/target}/release/hsd"

cargo build --release --quiet -p hsd-cli --manifest-path "$root/Cargo.toml"
mkdir -p "$out"
common=(--backend "$backend" --batch "$batch" --prompt-tokens 512 --new-tokens 128
        --repetitions "$repetitions" --json)

{ echo "start $(date -u +%FT%TZ) $(cat /proc/loadavg)"; } > "$out/load.txt"
"$hsd" bench "${common[@]}" --prompts-out "$out/prompts.json" > "$out/hsd.json"
echo "hsd done $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$out/load.txt"
OMP_WAIT_POLICY="${HSD_BENCH_OMP_WAIT_POLICY:-PASSIVE}" "$python" "$root/bench/hf_generate.py" --prompts "$out/prompts.json" --batch "$batch" \
    --repetitions "$repetitions" > "$out/hf.json"
echo "hf done $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$out/load.txt"
for target in 25 50; do
    "$hsd" bench "${common[@]}" --strategy hsd --set "target_skip_ratio=0.$target" \
        > "$out/hsd-skip$target.json"
done
echo "end $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$out/load.txt"
python3 "$root/bench/table.py" "$out" > "$out/table.md"
"$hsd" report "$out" --paper "$root/paper"
cat "$out/table.md"
