"""The Hugging Face transformers peer of `hsd bench`: the same GGUF model, prompt token ids and
token counts, greedy, f32, EOS ignored (min_new_tokens = max_new_tokens), and the same JSON
(one object per batch size, one per line).

    python bench/hf_generate.py --prompts results/speed/prompts.json --batch 1,8

`--prompts` is the file `hsd bench --prompts-out` writes. Prefill time runs from the streamer
receiving the prompt to it receiving the first generated token; decode time from there to the
end, over the remaining new_tokens - 1 steps, as hsd counts them.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM
from transformers.generation.streamers import BaseStreamer

from proc_stats import load_avg, status_kb

REPO = Path(__file__).resolve().parent.parent
# The same model folder as hsd's: HSD_MODELS, else the repository's models/.
DEFAULT_MODEL = (
    Path(os.environ.get("HSD_MODELS", REPO / "models")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
)


class StepClock(BaseStreamer):
    """Timestamps each `put` (the prompt, then one per generated token) and the end."""

    def __init__(self):
        self.puts = []
        self.ended = None

    def put(self, value):
        self.puts.append(time.perf_counter())

    def end(self):
        self.ended = time.perf_counter()


def generate_once(model, input_ids, new_tokens):
    clock = StepClock()
    out = model.generate(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        do_sample=False,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        pad_token_id=model.config.eos_token_id,
        streamer=clock,
    )
    generated = out.shape[1] - input_ids.shape[1]
    if generated != new_tokens:
        raise RuntimeError(f"generated {generated} tokens, not {new_tokens}")
    if len(clock.puts) != new_tokens + 1 or clock.ended is None:
        raise RuntimeError(f"the streamer saw {len(clock.puts)} puts, not {new_tokens + 1}")
    prefill = clock.puts[1] - clock.puts[0]
    decode = clock.ended - clock.puts[1]
    return prefill, decode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", required=True, type=Path, help="hsd bench --prompts-out file")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a GGUF file")
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    prompts = json.loads(args.prompts.read_text())
    rows, prompt_tokens, new_tokens = prompts["rows"], prompts["prompt_tokens"], prompts["new_tokens"]
    batches = [int(b) for b in args.batch.split(",")]
    if max(batches) > len(rows):
        sys.exit(f"{args.prompts} holds {len(rows)} prompts; batch {max(batches)} needs more")
    if any(len(r) != prompt_tokens for r in rows):
        sys.exit(f"{args.prompts}: a row is not {prompt_tokens} tokens long")

    model = AutoModelForCausalLM.from_pretrained(
        str(args.model.parent), gguf_file=args.model.name, dtype=torch.float32
    )
    model.eval()
    for batch in batches:
        input_ids = torch.tensor(rows[:batch], dtype=torch.long)
        prefills, decodes = [], []
        with torch.inference_mode():
            for repetition in range(args.warmup + args.repetitions):
                prefill, decode = generate_once(model, input_ids, new_tokens)
                if repetition >= args.warmup:
                    prefills.append(prefill)
                    decodes.append(decode)
        prefill_s = statistics.median(prefills)
        decode_s = statistics.median(decodes)
        report = {
            "engine": "hf",
            "model": str(args.model),
            "backend": f"torch {torch.__version__} / transformers {transformers.__version__}",
            "threads": torch.get_num_threads(),
            "batch": batch,
            "prompt_tokens": prompt_tokens,
            "new_tokens": new_tokens,
            "repetitions": args.repetitions,
            "prefill_s": prefill_s,
            "decode_s": decode_s,
            "prefill_tok_s": batch * prompt_tokens / prefill_s,
            "decode_tok_s": batch * (new_tokens - 1) / decode_s,
            "peak_rss_mb": status_kb("VmHWM") / 1024,
            "load_avg": load_avg(),
        }
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
