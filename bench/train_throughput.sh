#!/usr/bin/env bash
# LoRA training throughput, hsd against Hugging Face transformers + PEFT, back to back on one
# machine. Writes OUT/train.json (default results/speed/; see HSD_BENCH_BACKEND) and prints a
# one-line summary.
#
#   bench/train_throughput.sh [OUT]
#
# Run it on a quiet machine: with other work on the cores both numbers drop, and not equally
# (PyTorch's OpenMP threads suffer most), so only the ratio of one run is worth keeping, and
# only at a low load (the JSON records /proc/loadavg around each side).
#
# The work, the same on both sides where it can be:
# - base: SmolLM2-135M-Instruct from models/SmolLM2-135M-Instruct.Q4_1.gguf ($HSD_MODELS),
#   dequantized to f32 by both (transformers through `gguf_file=`), frozen;
# - LoRA: rank 8, alpha 16, dropout 0.05, no bias, on all seven Llama projections
#   (q/k/v/o_proj, gate/up/down_proj); AdamW; batch 8; 2 threads (hsd: RAYON_NUM_THREADS=2;
#   the peer: torch.set_num_threads(2));
# - hsd: `hsd finetune experiments/finetune.toml --profile bench --dataset e2e --variant plain`,
#   8 updates (1 warm-up) on real E2E prompts + targets. Its train_log.csv gives, per update,
#   `tokens` (the update's input tokens, padding left out) and `seconds` (forward, backward and
#   AdamW; the evaluation after the last update is not in it). hsd tokens/s = sum(tokens) /
#   sum(seconds) over updates 3..8 (the first two warm up: allocator and thread pools settle).
# - peer: bench/peft_train_peer.py, 2 untimed + 6 timed steps on batches of 8 sequences of
#   random token ids, each exactly the mean sequence length hsd trained on (sum(tokens) over all
#   8 updates / (8 * 8), rounded): unpadded, so the peer never computes on padding, while hsd's
#   length-bucketed batches of real examples may pad the shorter rows (their tokens not counted).
# - the loss differs: the peer computes logits (the 49,152-wide LM head) and the loss on every
#   position (transformers' `labels=input_ids`), hsd only on the target positions, which saves it
#   most of the LM head's work. Both count every input token in tokens/s.
#
# First a memory read bandwidth probe (numpy, one thread, the sum of and a copy of a 1 GiB
# array, best of 5): these speeds are bandwidth-bound, so the machine's bandwidth is reported
# with them, but only the hsd/peer ratio compares across machines.
#
# HSD_BENCH_PYTHON: a Python with torch, transformers, peft, gguf and numpy (default:
# .venv-bench, else $HSD_TCH_VENV or .venv-tch, under the repository root). HSD_BIN: the hsd binary
# (default: ${CARGO_TARGET_DIR:-target}/release/hsd, built here first). HSD_BENCH_OMP_WAIT_POLICY
# (default PASSIVE, as bench/run.sh) sets the peer's OMP_WAIT_POLICY. HSD_BENCH_BACKEND (default
# flex) is hsd's backend; any other writes OUT/train-<backend>.json and needs HSD_BIN built with
# that feature (for tch, with `eval "$(scripts/setup-tch.sh)"` in the shell).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${1:-$root/results/speed}"
export HSD_MODELS="${HSD_MODELS:-$root/models}"
gguf="$HSD_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
work="$root/target/bench-finetune"
log="$work/plain/e2e/train_log.csv"
backend="${HSD_BENCH_BACKEND:-flex}"
report_name="train.json"
[[ "$backend" == flex ]] || report_name="train-$backend.json"
readonly batch=8 threads=2 rank=8 alpha=16 dropout=0.05 peer_steps=6 peer_warmup=2 hsd_warmup=2

if [[ -n "${HSD_BENCH_PYTHON:-}" ]]; then
    python="$HSD_BENCH_PYTHON"
else
    python=""
    for venv in "$root/.venv-bench" "${HSD_TCH_VENV:-$root/.venv-tch}"; do
        if [[ -x "$venv/bin/python" ]]; then
            python="$venv/bin/python"
            break
        fi
    done
    if [[ -z "$python" ]]; then
        echo "train_throughput: no Python venv found; set HSD_BENCH_PYTHON" >&2
        exit 1
    fi
fi
if [[ -n "${HSD_BIN:-}" ]]; then
    hsd="$HSD_BIN"
else
    target="${CARGO_TARGET_DIR:-$root/target}"
    [[ "$target" = /* ]] || target="$root/$target"
    hsd="$target/release/hsd"
    cargo build --release --quiet -p hsd-cli --manifest-path "$root/Cargo.toml"
fi
if [[ ! -f "$gguf" ]]; then
    echo "train_throughput: no $gguf (scripts/fetch-model.sh, or set HSD_MODELS)" >&2
    exit 1
fi
mkdir -p "$out"

echo "train_throughput: memory bandwidth probe" >&2
bandwidth="$("$python" - <<'EOF'
import json, time
import numpy as np

n = (1 << 30) // 8                      # 1 GiB of float64
src = np.ones(n)                         # touched: every page is mapped before timing
dst = np.zeros(n)
def best(f, reps=5):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)
read_s = best(lambda: src.sum())
copy_s = best(lambda: np.copyto(dst, src))
print(json.dumps({"read_bandwidth_gb_s": src.nbytes / read_s / 1e9,
                  "copy_bandwidth_gb_s": 2 * src.nbytes / copy_s / 1e9,
                  "probe": "numpy, 1 thread, 1 GiB float64: sum (read) and copyto (read + write), "
                           "best of 5", "numpy": np.__version__}))
EOF
)"

echo "train_throughput: hsd finetune (profile bench)" >&2
rm -rf "$work"
load_hsd_before="$(cat /proc/loadavg)"
RAYON_NUM_THREADS="$threads" "$hsd" finetune "$root/experiments/finetune.toml" --profile bench \
    --dataset e2e --variant plain --backend "$backend" --out "$work"
load_hsd_after="$(cat /proc/loadavg)"
if [[ ! -f "$log" ]]; then
    echo "train_throughput: hsd finetune wrote no $log" >&2
    exit 1
fi

hsd_stats="$("$python" - "$log" "$batch" "$hsd_warmup" <<'EOF'
import csv, json, sys

path, batch, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path) as f:
    rows = [r for r in csv.DictReader(f)]
if len(rows) <= warmup:
    sys.exit(f"train_throughput: {path} has {len(rows)} updates, need more than {warmup}")
tokens = [int(r["tokens"]) for r in rows]
seconds = [float(r["seconds"]) for r in rows]
timed_tokens, timed_seconds = sum(tokens[warmup:]), sum(seconds[warmup:])
print(json.dumps({
    "tokens_per_s": timed_tokens / timed_seconds,
    "steps": len(rows),
    "timed_steps": len(rows) - warmup,
    "mean_seq_len": sum(tokens) / (batch * len(rows)),
    "peer_seq_len": round(sum(tokens) / (batch * len(rows))),
    "timed_tokens": timed_tokens,
    "timed_seconds": timed_seconds,
    "tokens": tokens,
    "step_s": seconds,
    "train_loss": [float(r["train_loss"]) for r in rows],
}))
EOF
)"
seq_len="$("$python" -c 'import json, sys; print(json.loads(sys.argv[1])["peer_seq_len"])' "$hsd_stats")"

echo "train_throughput: HF transformers + PEFT peer, seq len $seq_len" >&2
load_peer_before="$(cat /proc/loadavg)"
OMP_WAIT_POLICY="${HSD_BENCH_OMP_WAIT_POLICY:-PASSIVE}" "$python" "$root/bench/peft_train_peer.py" \
    --gguf "$gguf" --threads "$threads" --rank "$rank" --alpha "$alpha" --lora-dropout "$dropout" \
    --batch "$batch" --seq-len "$seq_len" --steps "$peer_steps" --warmup "$peer_warmup" \
    --out "$work/peer.json" >&2
load_peer_after="$(cat /proc/loadavg)"

hsd_version="$("$hsd" --version)"
git_commit="$(git -C "$root" rev-parse HEAD)"
"$python" - "$out/$report_name" "$bandwidth" "$hsd_stats" "$work/peer.json" "$hsd_version" \
    "$git_commit" "$load_hsd_before" "$load_hsd_after" "$load_peer_before" "$load_peer_after" \
    "$threads" "$batch" "$rank" "$alpha" "$dropout" "$backend" <<'EOF'
import json, os, sys

(path, bandwidth, hsd_stats, peer_path, hsd_version, git_commit, load_hsd_before, load_hsd_after,
 load_peer_before, load_peer_after, threads, batch, rank, alpha, dropout, backend) = sys.argv[1:]
cpu = "unknown"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
loads = lambda text: [float(x) for x in text.split()[:3]]
hsd = json.loads(hsd_stats)
peer = json.load(open(peer_path))
report = {
    "machine": {**json.loads(bandwidth), "cpu": cpu, "cores": len(os.sched_getaffinity(0))},
    "work": {"model": "SmolLM2-135M-Instruct Q4_1 GGUF, dequantized to f32",
             "lora": {"rank": int(rank), "alpha": float(alpha), "dropout": float(dropout),
                      "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                  "down_proj"]},
             "batch": int(batch), "threads": int(threads)},
    "hsd": {**hsd, "backend": backend, "version": hsd_version, "git_commit": git_commit,
            "data": "E2E dev prompts + targets (finetune.toml profile bench), logits on target "
                    "positions only",
            "load_avg": {"before": loads(load_hsd_before), "after": loads(load_hsd_after)}},
    "peer": {"tokens_per_s": peer["tokens_per_s"], "steps": peer["steps"],
             "seq_len": peer["seq_len"], "step_s": peer["step_s"],
             "peak_rss_mb": peer["peak_rss_mb"],
             "versions": {k: peer[k] for k in ("torch", "transformers", "peft")},
             "data": "random token ids, every row the mean length, logits and loss on every "
                     "position",
             "load_avg": {"before": loads(load_peer_before), "after": loads(load_peer_after)}},
    "ratio": hsd["tokens_per_s"] / peer["tokens_per_s"],
}
with open(path, "w") as f:
    f.write(json.dumps(report, indent=1) + "\n")
m = report["machine"]
print(f"train throughput ({m['cpu']}, {m['cores']} cores, {m['read_bandwidth_gb_s']:.1f} GB/s "
      f"read): hsd ({backend}) {hsd['tokens_per_s']:.1f} tok/s (mean seq {hsd['mean_seq_len']:.1f}), "
      f"HF+PEFT {peer['tokens_per_s']:.1f} tok/s (seq {peer['seq_len']}), "
      f"ratio {report['ratio']:.2f} -> {path}")
EOF
