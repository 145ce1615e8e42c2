"""Turns the JSON lines `bench/run.sh` writes into the Markdown table of results/speed/.

    python3 bench/table.py results/speed > results/speed/table.md

Standard library only. Every ratio is between lines of the same run on the same machine.
"""

import json
import sys
from pathlib import Path


def read_lines(path):
    with open(path) as f:
        return {row["batch"]: row for row in map(json.loads, filter(str.strip, f))}


def load_cell(row):
    return f"{row['load_avg'][0]:.2f}"


def engines_table(engines):
    """One row per engine and batch size; `engines` maps a label to its lines by batch."""
    lines = [
        "| batch | engine | prefill tok/s | decode tok/s | peak RSS MB | read bandwidth GB/s | load |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    batches = sorted({b for rows in engines.values() for b in rows})
    for batch in batches:
        for label, rows in engines.items():
            r = rows.get(batch)
            if r is None:
                continue
            bandwidth = r.get("read_bandwidth_gb_s")
            lines.append(
                f"| {batch} | {label} | {r['prefill_tok_s']:.0f} | {r['decode_tok_s']:.1f} "
                f"| {r['peak_rss_mb']:.0f} | {'' if bandwidth is None else f'{bandwidth:.1f}'} "
                f"| {load_cell(r)} |"
            )
    return lines


def ratio(numerator, denominator, key):
    if numerator is None or denominator is None:
        return None
    return numerator[key] / denominator[key]


def ratios_table(engines):
    """The ratios the targets are stated in, each from lines of this one run."""
    f32, native = engines.get("hsd f32", {}), engines.get("hsd native", {})
    hf, llama = engines.get("HF transformers", {}), engines.get("llama.cpp", {})
    wanted = [
        ("decode, native / f32", native, f32, "decode_tok_s"),
        ("decode, native / llama.cpp", native, llama, "decode_tok_s"),
        ("decode, native / HF", native, hf, "decode_tok_s"),
        ("decode, f32 / HF", f32, hf, "decode_tok_s"),
        ("prefill, native / HF", native, hf, "prefill_tok_s"),
        ("prefill, native / llama.cpp", native, llama, "prefill_tok_s"),
    ]
    batches = sorted({b for rows in engines.values() for b in rows})
    lines = ["| ratio | " + " | ".join(f"batch {b}" for b in batches) + " |"]
    lines.append("|---|" + "---:|" * len(batches))
    for name, top, bottom, key in wanted:
        cells = [ratio(top.get(b), bottom.get(b), key) for b in batches]
        if all(c is None for c in cells):
            continue
        lines.append(
            f"| {name} | " + " | ".join("" if c is None else f"{c:.2f}x" for c in cells) + " |"
        )
    return lines


def strategy_table(runs):
    lines = [
        "| strategy | weights | target | batch | skip ratio | FLOPs ratio | FLOP-predicted speed-up | Amdahl bound | LM-head FLOP share | wall-clock speed-up | of predicted | full / skip decode tok/s | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for rows in runs:
        for batch in sorted(rows):
            r = rows[batch]
            target = r["knobs"].get("target_skip_ratio", "")
            lines.append(
                f"| {r['strategy']} | {r.get('weights', 'f32')} | {target} | {batch} | {r['skip_ratio']:.3f} "
                f"| {r['flops_ratio']:.3f} | {r['flops_speedup']:.2f}x | {r['amdahl_speedup']:.2f}x "
                f"| {r['lm_head_share']:.3f} | {r['speedup']:.2f}x | {100 * r['speedup_efficiency']:.0f}% "
                f"| {r['full_decode_tok_s']:.1f} / {r['decode_tok_s']:.1f} | {load_cell(r)} |"
            )
    return lines


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "results/speed")
    engines = {}
    for label, name in [
        ("hsd f32", "hsd.json"),
        ("hsd native", "hsd-native.json"),
        ("HF transformers", "hf.json"),
        ("llama.cpp", "llamacpp.json"),
    ]:
        if (out / name).is_file():
            engines[label] = read_lines(out / name)
    skips = [read_lines(p) for p in sorted(out.glob("hsd-skip*.json"))]
    skips += [read_lines(p) for p in sorted(out.glob("hsd-native-skip*.json"))]
    hsd = engines["hsd f32"]
    any_row = next(iter(hsd.values()))
    threads = {label: next(iter(rows.values()))["threads"] for label, rows in engines.items()}
    print("# Decode speed: hsd against Hugging Face transformers and llama.cpp\n")
    print(
        f"SmolLM2-135M-Instruct Q4_1 GGUF, greedy, {any_row['prompt_tokens']}-token CNN/DailyMail "
        f"prompts (one article per row), exactly {any_row['new_tokens']} new tokens (EOS ignored), "
        f"median of {any_row['repetitions']} repetitions after a warm-up; hsd on "
        f"`{any_row['backend']}`, threads "
        + ", ".join(f"{label} {n}" for label, n in threads.items())
        + ". *hsd f32* multiplies by the dequantized weights; *hsd native* reads the file's Q4_1 "
        "and Q8_0 blocks in decode passes of up to 16 tokens (activations stay f32; prefill "
        "multiplies by the f32 copy), attends over the cache without a score tensor (per head "
        "in decode, in tiles of query rows in prefill) and runs softmax and SwiGLU with an "
        "`exp` over SIMD lanes (f32 keeps burn's batched products and libm); llama.cpp "
        "reads the same blocks and quantizes activations to 8 bits; HF dequantizes to f32. "
        "Tokens/s count every row of the batch; decode is the steps after the first generated "
        "token. The read bandwidth is the machine's, measured by `hsd bench` (every thread, "
        "1 GiB): batch-1 decode streams every weight once a token and follows it from host to "
        "host. Made by `bench/run.sh`; load averages (1 min) beside each row, more in "
        "`load.txt`.\n"
    )
    print("\n".join(engines_table(engines)))
    print()
    print("\n".join(ratios_table(engines)))
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
