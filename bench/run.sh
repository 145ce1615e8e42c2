#!/usr/bin/env bash
# hsd against Hugging Face transformers and llama.cpp on one machine, back to back: full
# decoding at batch 1 and 8 with hsd's f32 weights and with the GGUF's own blocks
# (`--weights native`), HF at batch 1 and 8, llama.cpp at batch 1 (same GGUF, same prompts),
# then hsd's HSD strategy at target skip ratios 0.25 and 0.5 against full, with both weights.
# Writes OUT (default results/speed/): prompts.json, hsd.json, hsd-native.json, hf.json,
# llamacpp.json, hsd-skip{25,50}.json, hsd-native-skip{25,50}.json, load.txt and table.md, and
# the figures paper/figures/speed_{throughput,skip}.{png,svg}. Every hsd line carries the
# machine's measured memory read bandwidth, which batch-1 decode follows from host to host.
#
#   bench/run.sh [OUT]
#
# HSD_BENCH_REPETITIONS (default 5), HSD_BENCH_BATCH (1,8), HSD_BENCH_BACKEND (flex),
# HSD_BENCH_PYTHON (.venv-bench/bin/python: torch 2.9.0, transformers, gguf) and
# HSD_BENCH_LLAMACPP_PYTHON (a Python with llama_cpp; the peer is left out when unset)
# override the run. PyTorch's OpenMP threads spin while they wait, which on a busy shared
# machine costs HF several times its speed; OMP_WAIT_POLICY=PASSIVE (HSD_BENCH_OMP_WAIT_POLICY)
# makes them sleep instead.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/results/speed}"
repetitions="${HSD_BENCH_REPETITIONS:-5}"
batch="${HSD_BENCH_BATCH:-1,8}"
backend="${HSD_BENCH_BACKEND:-flex}"
python="${HSD_BENCH_PYTHON:-$root/.venv-bench/bin/python}"
llamacpp_python="${HSD_BENCH_LLAMACPP_PYTHON:-}"
hsd="${CARGO_TARGET_DIR:-$root/target}/release/hsd"

cargo build --release --quiet -p hsd-cli --manifest-path "$root/Cargo.toml"
mkdir -p "$out"
common=(--backend "$backend" --batch "$batch" --prompt-tokens 512 --new-tokens 128
        --repetitions "$repetitions" --json)

{ echo "start $(date -u +%FT%TZ) $(cat /proc/loadavg)"; } > "$out/load.txt"
"$hsd" bench "${common[@]}" --prompts-out "$out/prompts.json" > "$out/hsd.json"
echo "hsd done $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$out/load.txt"
"$hsd" bench "${common[@]}" --weights native > "$out/hsd-native.json"
echo "hsd native done $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$out/load.txt"
OMP_WAIT_POLICY="${HSD_BENCH_OMP_WAIT_POLICY:-PASSIVE}" "$python" "$root/bench/hf_generate.py" --prompts "$out/prompts.json" --batch "$batch" \
    --repetitions "$repetitions" > "$out/hf.json"
echo "hf done $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$out/load.txt"
if [[ -n "$llamacpp_python" ]]; then
    "$llamacpp_python" "$root/bench/llamacpp_generate.py" --prompts "$out/prompts.json" \
        --repetitions "$repetitions" > "$out/llamacpp.json"
    echo "llama.cpp done $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$out/load.txt"
fi
for target in 25 50; do
    "$hsd" bench "${common[@]}" --strategy hsd --set "target_skip_ratio=0.$target" \
        > "$out/hsd-skip$target.json"
    "$hsd" bench "${common[@]}" --weights native --strategy hsd \
        --set "target_skip_ratio=0.$target" > "$out/hsd-native-skip$target.json"
done
echo "end $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> "$out/load.txt"
python3 "$root/bench/table.py" "$out" > "$out/table.md"
"$hsd" report "$out" --paper "$root/paper"
cat "$out/table.md"
