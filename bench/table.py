"""Turns the JSON lines `bench/run.sh` writes into the Markdown table of results/speed/.

    python3 bench/table.py results/speed > results/speed/table.md

Standard library only. Ratios are hsd over HF from the same run on the same machine.
"""

import json
import sys
from pathlib import Path


def read_lines(path):
    with open(path) as f:
        return {row["batch"]: row for row in map(json.loads, filter(str.strip, f))}


def load_cell(row):
    return f"{row['load_avg'][0]:.2f}"


def engines_table(hsd, hf):
    lines = [
        "| batch | hsd prefill tok/s | HF prefill tok/s | ratio | hsd decode tok/s | HF decode tok/s | ratio | hsd peak RSS MB | HF peak RSS MB | load (hsd / HF) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for batch in sorted(hsd):
        h, f = hsd[batch], hf.get(batch)
        if f is None:
            continue
        lines.append(
            f"| {batch} | {h['prefill_tok_s']:.0f} | {f['prefill_tok_s']:.0f} "
            f"| {h['prefill_tok_s'] / f['prefill_tok_s']:.2f}x "
            f"| {h['decode_tok_s']:.1f} | {f['decode_tok_s']:.1f} "
            f"| {h['decode_tok_s'] / f['decode_tok_s']:.2f}x "
            f"| {h['peak_rss_mb']:.0f} | {f['peak_rss_mb']:.0f} | {load_cell(h)} / {load_cell(f)} |"
        )
    return lines


def strategy_table(runs):
    lines = [
        "| strategy | target | batch | skip ratio | FLOPs ratio | FLOP-predicted speed-up | Amdahl bound | LM-head FLOP share | wall-clock speed-up | of predicted | full / skip decode tok/s | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for rows in runs:
        for batch in sorted(rows):
            r = rows[batch]
            target = r["knobs"].get("target_skip_ratio", "")
            lines.append(
                f"| {r['strategy']} | {target} | {batch} | {r['skip_ratio']:.3f} "
                f"| {r['flops_ratio']:.3f} | {r['flops_speedup']:.2f}x | {r['amdahl_speedup']:.2f}x "
                f"| {r['lm_head_share']:.3f} | {r['speedup']:.2f}x | {100 * r['speedup_efficiency']:.0f}% "
                f"| {r['full_decode_tok_s']:.1f} / {r['decode_tok_s']:.1f} | {load_cell(r)} |"
            )
    return lines


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "results/speed")
    hsd = read_lines(out / "hsd.json")
    hf = read_lines(out / "hf.json")
    skips = [read_lines(p) for p in sorted(out.glob("hsd-skip*.json"))]
    any_row = next(iter(hsd.values()))
    print("# Decode speed: hsd against Hugging Face transformers\n")
    print(
        f"SmolLM2-135M-Instruct Q4_1 GGUF, f32, greedy, {any_row['prompt_tokens']}-token CNN/DailyMail "
        f"prompts (one article per row), exactly {any_row['new_tokens']} new tokens (EOS ignored), "
        f"median of {any_row['repetitions']} repetitions after a warm-up; hsd on `{any_row['backend']}` "
        f"with {any_row['threads']} threads, HF with {next(iter(hf.values()))['threads']} "
        "(`torch.set_num_threads`). Tokens/s count every row of the batch; decode is the steps after "
        "the first generated token. Made by `bench/run.sh`; load averages (1 min) beside each row, "
        "more in `load.txt`.\n"
    )
    print("\n".join(engines_table(hsd, hf)))
    if skips:
        print(
            "\n## Layer skipping against full decoding (hsd)\n\n"
            "Skip and FLOPs ratios are measured over the timed decode steps; the Amdahl bound is "
            "`1 / (h + (1 - h)(1 - skip ratio))` with `h` the LM head's share of full decoding's "
            "FLOPs; *of predicted* is the wall-clock speed-up over `1 / FLOPs ratio`.\n"
        )
        print("\n".join(strategy_table(skips)))


if __name__ == "__main__":
    main()
