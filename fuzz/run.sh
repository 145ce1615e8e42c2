#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, JOBS at a time (default 1), from the
# committed seeds in fuzz/corpus/<target> plus what earlier runs found (fuzz/work/<target>,
# ignored by git), and appends one line per target to fuzz/runs.tsv: date, commit, target,
# seconds, executions, corpus size, crashes (files libFuzzer left in fuzz/artifacts/<target>).
#
#   fuzz/run.sh [SECONDS] [JOBS] [TARGET ...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain (`rustup toolchain
# install nightly`); builds into $CARGO_TARGET_DIR (fuzz/target by default).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
jobs="${2:-1}"
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(gguf safetensors adapter dataset manifest)
fi
commit="$(git rev-parse --short HEAD)"
cargo +nightly fuzz build -O
[ -f runs.tsv ] || printf 'date\tcommit\ttarget\tseconds\texecutions\tcorpus\tcrashes\n' > runs.tsv

run_one() {
    local target="$1"
    local log="work/$target.log"
    mkdir -p "work/$target" "artifacts/$target"
    local before
    before="$(find "artifacts/$target" -type f | wc -l)"
    # libFuzzer exits non-zero on a crash; the count below records it.
    cargo +nightly fuzz run -O "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 \
        > "$log" 2>&1 || true
    local executions corpus crashes
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    corpus="$(find "work/$target" -type f | wc -l)"
    crashes=$(( $(find "artifacts/$target" -type f | wc -l) - before ))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%F)" "$commit" "$target" "$seconds" \
        "${executions:-?}" "$corpus" "$crashes" >> runs.tsv
    echo "$target: ${executions:-?} executions in ${seconds}s, $crashes crashes (log: fuzz/$log)"
}

running=0
for target in "${targets[@]}"; do
    run_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
