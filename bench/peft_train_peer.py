"""The Hugging Face transformers + PEFT peer of hsd's LoRA training: training tokens per second.

    python bench/peft_train_peer.py --gguf models/SmolLM2-135M-Instruct.Q4_1.gguf --out peer.json

The work: SmolLM2-135M-Instruct from its GGUF file, dequantized to f32 by transformers
(`gguf_file=`, needs the `gguf` package); a LoRA adapter (PEFT) of rank `--rank` (16), alpha
`--alpha` (32, PEFT's scaling alpha / r), dropout `--lora-dropout` (0: none), no bias, on all
seven Llama projections (q/k/v/o_proj, gate/up/down_proj); the base frozen. Each step is one
forward + backward + AdamW step (lr `--lr` 1e-4, torch's defaults otherwise, no clipping), in
train mode, on a batch of `--batch` (8) sequences of `--seq-len` (96) token ids drawn uniformly
from the vocabulary by a seeded generator (`--seed`), made before the clock starts; every
position is trained (the causal-LM loss over positions 1..seq_len-1, as transformers'
`labels=input_ids` computes it, mean over the batch). `--warmup` (1) untimed steps, then
`--steps` (6) timed ones.

tokens/s = steps * batch * seq_len / seconds of the timed steps. Printed and, with `--out`,
written as one JSON object, with the versions, the thread count (`torch.set_num_threads`,
`--threads` 2), per-step times, losses, peak RSS and /proc/loadavg (compare runs only at a
similar load: on a shared machine the number drops with the machine's other work).
"""

import argparse
import json
import os
import time
from pathlib import Path

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from proc_stats import load_avg, status_kb

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = (
    Path(os.environ.get("HSD_MODELS", REPO / "models")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, default=DEFAULT_MODEL, help="a GGUF file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=float, default=32.0)
    parser.add_argument("--lora-dropout", type=float, default=0.0,
                        help="PEFT's lora_dropout on each adapted projection's input")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the JSON report here too")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(
        str(args.gguf.parent), gguf_file=args.gguf.name, dtype=torch.float32
    )
    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=args.lora_dropout,
                        bias="none", task_type="CAUSAL_LM", target_modules=TARGETS)
    model = get_peft_model(model, config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr)

    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(args.seed)
    batches = [torch.randint(0, vocab, (args.batch, args.seq_len), generator=generator)
               for _ in range(args.warmup + args.steps)]

    step_s, losses = [], []
    for i, ids in enumerate(batches):
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - start
        losses.append(float(loss.detach()))
        if i >= args.warmup:
            step_s.append(elapsed)
        print(f"step {i}{' (warmup)' if i < args.warmup else ''}: loss {losses[-1]:.4f}, "
              f"{elapsed:.2f} s", flush=True)

    seconds = sum(step_s)
    report = {
        "engine": "hf-peft",
        "model": str(args.gguf),
        "backend": f"torch {torch.__version__} / transformers {transformers.__version__} / "
                   f"peft {peft.__version__}",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "threads": torch.get_num_threads(),
        "rank": args.rank,
        "alpha": args.alpha,
        "lora_dropout": args.lora_dropout,
        "targets": TARGETS,
        "trainable_params": sum(p.numel() for p in trainable),
        "batch": args.batch,
        "seq_len": args.seq_len,
        "lr": args.lr,
        "warmup": args.warmup,
        "steps": args.steps,
        "seconds": seconds,
        "step_s": step_s,
        "losses": losses,
        "tokens_per_s": args.steps * args.batch * args.seq_len / seconds,
        "peak_rss_mb": status_kb("VmHWM") / 1024,
        "load_avg": load_avg(),
    }
    print(json.dumps(report), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
