"""The llama.cpp peer of `hsd bench` (through llama-cpp-python): the same GGUF file in its own
Q4_1/Q8_0 blocks, the same prompt token ids and token counts, greedy, EOS ignored, and the same
JSON (one object per batch size, one per line). Batch 1 only: llama-cpp-python decodes one
sequence.

    python bench/llamacpp_generate.py --prompts results/speed/prompts.json

Prefill time is the evaluation of the prompt (which yields the first token's logits); decode
time is the remaining new_tokens - 1 steps, each an argmax over the last logits and an
evaluation of that token, as hsd counts them. llama.cpp quantizes activations to 8 bits inside
its matrix products; hsd's `--weights native` keeps them in f32.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import llama_cpp

from proc_stats import load_avg, status_kb

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = (
    Path(os.environ.get("HSD_MODELS", REPO / "models")) / "SmolLM2-135M-Instruct.Q4_1.gguf"
)


def generate_once(llm, prompt, new_tokens):
    """(prefill seconds, decode seconds, generated ids) for one greedy continuation."""
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    first = int(llm.scores[llm.n_tokens - 1].argmax())
    prefilled = time.perf_counter()
    generated = [first]
    for _ in range(new_tokens - 1):
        llm.eval([generated[-1]])
        generated.append(int(llm.scores[llm.n_tokens - 1].argmax()))
    done = time.perf_counter()
    return prefilled - start, done - prefilled, generated


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", required=True, type=Path, help="hsd bench --prompts-out file")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a GGUF file")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    prompts = json.loads(args.prompts.read_text())
    rows, prompt_tokens, new_tokens = prompts["rows"], prompts["prompt_tokens"], prompts["new_tokens"]
    if any(len(r) != prompt_tokens for r in rows):
        sys.exit(f"{args.prompts}: a row is not {prompt_tokens} tokens long")
    if not args.model.is_file():
        sys.exit(f"{args.model}: no such file (set HSD_MODELS or pass --model)")
    llm = llama_cpp.Llama(
        model_path=str(args.model),
        n_ctx=prompt_tokens + new_tokens,
        # llama-cpp-python keeps the last logits at row n_tokens - 1 of an n_batch-row array.
        n_batch=prompt_tokens + new_tokens,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        logits_all=False,
        verbose=False,
    )
    prefills, decodes = [], []
    for repetition in range(args.warmup + args.repetitions):
        prefill, decode, generated = generate_once(llm, rows[0], new_tokens)
        if len(generated) != new_tokens:
            sys.exit(f"generated {len(generated)} tokens, not {new_tokens}")
        if repetition >= args.warmup:
            prefills.append(prefill)
            decodes.append(decode)
    prefill_s = statistics.median(prefills)
    decode_s = statistics.median(decodes)
    print(
        json.dumps(
            {
                "engine": "llama.cpp",
                "model": str(args.model),
                "backend": f"llama-cpp-python {llama_cpp.__version__}",
                "threads": args.threads,
                "batch": 1,
                "prompt_tokens": prompt_tokens,
                "new_tokens": new_tokens,
                "repetitions": args.repetitions,
                "prefill_s": prefill_s,
                "decode_s": decode_s,
                "prefill_tok_s": prompt_tokens / prefill_s,
                "decode_tok_s": (new_tokens - 1) / decode_s,
                "peak_rss_mb": status_kb("VmHWM") / 1024,
                "load_avg": load_avg(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
