#!/usr/bin/env python3
"""Check that PEFT reads an hsd LoRA adapter as hsd means it: same logits as `hsd logits --adapter`.

    python scripts/check-peft-adapter.py --adapter adapters/plain/e2e [--out report.json]

Needs a Python with torch, transformers (GGUF loading: the `gguf` package), peft and safetensors.

For each of four fixed prompts (two wrapped in the chat template with `--chat`, two plain), hsd
prints the prompt's token ids and the last position's top-5 logits with the adapter merged into
the base weights (`hsd logits --model GGUF --adapter DIR --json`). transformers loads the same
GGUF (dequantized to f32), PEFT puts the adapter on it (`PeftModel.from_pretrained`, unmerged:
base(x) + scale * B(A(x))), and the exact same ids go through it. The check passes when, for
every prompt,

- hsd's top-5 ids are PEFT's top-5 in the same order (a swap between two logits that PEFT
  itself puts within the tolerance of each other, a near tie, is allowed and reported), and
- each of those ids' logits agrees: |hsd - peft| <= tol * max(|hsd|, |peft|), or <= 1e-3
  absolutely for logits near zero.

Before that, the adapter's tensors as PEFT loaded them are compared with the file's (same keys,
same values), so a naming mismatch that would leave PEFT's zero-initialised B in place fails
loudly instead of turning the check into a comparison of two base models. The base model's
logits (the adapter disabled) are reported for the same ids, and the largest |adapted - base|
over the whole vocabulary: an adapter whose effect is below the tolerance cannot tell a correct
merge from an ignored one, which the report flags (`discriminating: false`) and prints.

Prints a table; exits 1 on a mismatch. `--out` writes a JSON report: versions, the adapter's
sha256, and every prompt's numbers.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_GGUF = (
    Path(os.environ.get("HSD_MODELS", REPO / "models")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
)
E2E_INSTRUCTION = (
    "Write a short restaurant description that expresses every attribute of the meaning "
    "representation."
)
# (chat, text): E2E-style prompts as the E2E template words them, and two unrelated ones.
PROMPTS = [
    (True, f"{E2E_INSTRUCTION}\n\nMeaning representation: name[The Eagle], eatType[coffee shop], "
           "food[French], priceRange[moderate], area[riverside]\n\nDescription:"),
    (True, f"{E2E_INSTRUCTION}\n\nMeaning representation: name[Zizzi], eatType[pub], "
           "customer rating[5 out of 5], familyFriendly[no], near[The Sorrento]\n\nDescription:"),
    (False, f"{E2E_INSTRUCTION}\n\nMeaning representation: name[The Wrestlers], food[Japanese], "
            "priceRange[cheap], area[city centre]\n\nDescription: The Wrestlers is a"),
    (False, "The capital of France is Paris, and the capital of Germany is"),
]


def default_hsd():
    found = shutil.which("hsd")
    if found:
        return found
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return str(target / "release" / "hsd")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hsd_logits(hsd, gguf, adapter, text, chat):
    command = [hsd, "logits", "--model", str(gguf), "--prompt", text, "--top", "5", "--json",
               "--adapter", str(adapter)]
    if chat:
        command.append("--chat")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"check-peft-adapter: {' '.join(command[:2])} failed ({done.returncode}):\n"
                 f"{done.stderr}")
    return json.loads(done.stdout)


def close(a, b, tol):
    """|a - b| <= tol * max(|a|, |b|), the scale floored at 1: absolute `tol` near zero."""
    return abs(a - b) <= tol * max(abs(a), abs(b), 1.0)


def check_loaded_adapter(model, adapter_dir):
    """The adapter's tensors as PEFT holds them equal the file's: same keys, same values."""
    import torch
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    on_disk = load_file(str(adapter_dir / "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    problems = []
    missing = sorted(set(on_disk) - set(loaded))
    extra = sorted(set(loaded) - set(on_disk))
    if missing:
        problems.append(f"{len(missing)} tensors of the file PEFT did not load, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{len(extra)} LoRA tensors PEFT has that the file lacks "
                        f"(left at their initial values), e.g. {extra[:3]}")
    for key in sorted(set(on_disk) & set(loaded)):
        a = on_disk[key]
        b = loaded[key].detach().to(a.dtype)
        if a.shape != b.shape or not torch.equal(a, b):
            problems.append(f"{key}: the loaded tensor differs from the file's")
    nonzero_b = sum(1 for k, t in on_disk.items() if "lora_B" in k and bool(t.abs().max() > 0))
    n_b = sum(1 for k in on_disk if "lora_B" in k)
    return problems, {"tensors": len(on_disk), "lora_B": n_b, "lora_B_nonzero": nonzero_b}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, required=True, help="a PEFT adapter directory")
    parser.add_argument("--gguf", type=Path, default=DEFAULT_GGUF, help="the base model's GGUF")
    parser.add_argument("--hsd", default=None, help="the hsd binary (default: hsd on PATH, else "
                        "$CARGO_TARGET_DIR or target/release/hsd)")
    parser.add_argument("--out", type=Path, help="write a JSON report here")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="relative logit tolerance")
    args = parser.parse_args()
    hsd = args.hsd or default_hsd()
    adapter = args.adapter.resolve()
    gguf = args.gguf.resolve()
    for path in (adapter / "adapter_config.json", adapter / "adapter_model.safetensors", gguf):
        if not path.is_file():
            sys.exit(f"check-peft-adapter: {path} does not exist")
    if not (Path(hsd).is_file() or shutil.which(hsd)):
        sys.exit(f"check-peft-adapter: no hsd binary at {hsd} (build it or pass --hsd)")

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF conversion bar
    import gguf as gguf_pkg
    import peft
    import safetensors
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    # hsd first: all its subprocesses before the model takes memory.
    hsd_runs = [hsd_logits(hsd, gguf, adapter, text, chat) for chat, text in PROMPTS]

    base = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter))
    model.eval()
    load_problems, tensor_info = check_loaded_adapter(model, adapter)

    failures = list(load_problems)
    rows = []
    for (chat, text), run in zip(PROMPTS, hsd_runs):
        ids = torch.tensor([run["prompt_ids"]])
        with torch.no_grad():
            adapted = model(input_ids=ids, use_cache=False).logits[0, -1].double()
            with model.disable_adapter():
                plain = model(input_ids=ids, use_cache=False).logits[0, -1].double()
        hsd_ids = [t["id"] for t in run["top"]]
        hsd_vals = [float(t["logit"]) for t in run["top"]]
        peft_top = torch.topk(adapted, len(hsd_ids))
        peft_ids = peft_top.indices.tolist()
        peft_sorted = peft_top.values.tolist()
        peft_vals = [float(adapted[i]) for i in hsd_ids]
        base_vals = [float(plain[i]) for i in hsd_ids]
        logits_ok = [close(a, b, args.tolerance) for a, b in zip(hsd_vals, peft_vals)]
        # Rank r of hsd's list must hold a logit (PEFT's) within tolerance of PEFT's r-th largest.
        order_ok = all(close(v, s, args.tolerance) for v, s in zip(peft_vals, peft_sorted))
        ids_equal = hsd_ids == peft_ids
        ok = all(logits_ok) and order_ok
        row = {
            "text": text,
            "chat": chat,
            "prompt_tokens": len(run["prompt_ids"]),
            "hsd_top_ids": hsd_ids,
            "hsd_top_tokens": [t["token"] for t in run["top"]],
            "hsd_logits": hsd_vals,
            "peft_top_ids": peft_ids,
            "peft_logits_at_hsd_ids": peft_vals,
            "base_logits_at_hsd_ids": base_vals,
            "ids_equal": ids_equal,
            "near_tie_swap": (not ids_equal) and order_ok,
            "max_abs_diff_hsd_peft": max(abs(a - b) for a, b in zip(hsd_vals, peft_vals)),
            "max_rel_diff_hsd_peft": max(abs(a - b) / max(abs(a), abs(b), 1e-12)
                                         for a, b in zip(hsd_vals, peft_vals)),
            "max_abs_delta_adapter_top5": max(abs(a - b) for a, b in zip(peft_vals, base_vals)),
            "max_abs_delta_adapter_vocab": float((adapted - plain).abs().max()),
            "base_top_ids": torch.topk(plain, len(hsd_ids)).indices.tolist(),
            "pass": ok,
        }
        rows.append(row)
        if not ok:
            failures.append(f"prompt {len(rows)}: top-5 ids hsd {hsd_ids} vs PEFT {peft_ids}, "
                            f"max |diff| {row['max_abs_diff_hsd_peft']:.3g}")

    print(f"adapter {adapter}\nbase    {gguf}\nhsd     {hsd}\n"
          f"tolerance: relative {args.tolerance:g} (absolute below |logit| 1); "
          f"PEFT loaded {tensor_info['tensors']} tensors, "
          f"{tensor_info['lora_B_nonzero']}/{tensor_info['lora_B']} lora_B nonzero")
    header = f"{'#':>2} {'mode':5} {'rank':>4} {'id':>6} {'token':14} {'hsd':>11} {'peft':>11} " \
             f"{'|diff|':>9} {'base':>11} {'adapter Δ':>10}"
    print(header)
    for n, row in enumerate(rows, 1):
        for r, token_id in enumerate(row["hsd_top_ids"]):
            h, p, b = row["hsd_logits"][r], row["peft_logits_at_hsd_ids"][r], \
                row["base_logits_at_hsd_ids"][r]
            token = json.dumps(row["hsd_top_tokens"][r], ensure_ascii=False)[:14]
            print(f"{n:>2} {'chat' if row['chat'] else 'plain':5} {r + 1:>4} {token_id:>6} "
                  f"{token:14} {h:11.5f} {p:11.5f} {abs(h - p):9.2e} {b:11.5f} {p - b:10.4f}")
        verdict = "ok" if row["pass"] else "MISMATCH"
        if row["near_tie_swap"]:
            verdict += f" (near-tie swap: PEFT order {row['peft_top_ids']})"
        print(f"   prompt {n}: {row['prompt_tokens']} tokens, max rel diff "
              f"{row['max_rel_diff_hsd_peft']:.2e}, adapter's max |Δ| over the vocabulary "
              f"{row['max_abs_delta_adapter_vocab']:.4f}: {verdict}")

    max_delta = max(row["max_abs_delta_adapter_vocab"] for row in rows)
    max_diff = max(row["max_abs_diff_hsd_peft"] for row in rows)
    discriminating = max_delta > 10 * max(max_diff, args.tolerance)
    if not discriminating:
        print(f"warning: the adapter moves the logits by at most {max_delta:.3g}, not clearly more "
              f"than hsd and PEFT differ ({max_diff:.3g}): this adapter cannot tell a correct "
              "merge from an ignored one", file=sys.stderr)

    hsd_version = subprocess.run([hsd, "--version"], capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    report = {
        "pass": not failures,
        "failures": failures,
        # Relative to the repository when inside it, so reports do not name this machine.
        "adapter": str(adapter.relative_to(REPO)) if adapter.is_relative_to(REPO) else str(adapter),
        "adapter_sha256": sha256(adapter / "adapter_model.safetensors"),
        "adapter_config_sha256": sha256(adapter / "adapter_config.json"),
        "adapter_tensors": tensor_info,
        "gguf": gguf.name,
        "gguf_sha256": sha256(gguf),
        "tolerance": {"relative": args.tolerance, "absolute_below_1": args.tolerance},
        "discriminating": discriminating,
        "max_abs_diff_hsd_peft": max_diff,
        "max_abs_delta_adapter": max_delta,
        "versions": {
            "hsd": hsd_version,
            "git_commit": git,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "gguf": getattr(gguf_pkg, "__version__", None) or _dist_version("gguf"),
            "safetensors": safetensors.__version__,
        },
        "prompts": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    if failures:
        for failure in failures:
            print(f"check-peft-adapter: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"check-peft-adapter: ok, {len(rows)} prompts, max |hsd - peft| {max_diff:.2e}, "
          f"adapter's max |Δ| {max_delta:.4f}")


def _dist_version(name):
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
