#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus (fuzz/corpus/<target>/), deterministically.

Dataset seeds keep the structure of the first two records of every split in ../shared/data
(keys, nesting, punctuation, digits, XML elements and attributes) with every run of letters
replaced by x's and texts cut to 300 characters, so that the loaders' schemas are covered and no source text is committed.
Manifest seeds are hsd's own manifests with their includes inlined; the adapter seed is the
PEFT adapter made for the tiny Llama fixture (crates/hsd-train/tests/fixtures); the GGUF and
safetensors seeds are tiny files written here; inputs that once crashed a target are kept as
seeds too (REGRESSIONS).

    python3 fuzz/make_corpus.py [--data ../shared/data]
"""

import argparse
import csv
import hashlib
import io
import json
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

# The order of hsd_data::DatasetName::ALL and of the dataset target's extension list.
DATASETS = ["cnn_dailymail", "xsum", "e2e", "common_gen", "samsum", "dialogsum", "dart",
            "webnlg2017", "scitldr"]
EXTENSIONS = ["jsonl", "json", "csv", "xml", "parquet"]
FILES = {
    "cnn_dailymail": ["cnn_dailymail/cnndm-test-frank250.jsonl"],
    "xsum": ["xsum/xsum-test-1000.jsonl"],
    "e2e": ["e2e/devset.csv", "e2e/testset_w_refs.csv"],
    "common_gen": ["commongen/commongen.dev.jsonl", "commongen/commongen.test.jsonl"],
    "samsum": ["samsum/validation.json", "samsum/test.json"],
    "dialogsum": ["dialogsum/dialogsum.dev.jsonl", "dialogsum/dialogsum.test.jsonl"],
    "dart": ["dart/dart-v1.1.1-full-dev.json", "dart/dart-v1.1.1-full-test.xml"],
    "webnlg2017": ["webnlg2017/testdata_with_lex.xml"],
    "scitldr": ["scitldr/dev.jsonl", "scitldr/test.jsonl"],
}
RECORDS = 2
# Longer texts are cut: a seed's size bounds the inputs libFuzzer tries.
MAX_TEXT = 300


def scrub(text: str) -> str:
    return re.sub(r"[A-Za-z]+", lambda m: "x" * len(m.group(0)), text[:MAX_TEXT])


def scrub_value(value):
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    return value


def dataset_seed(path: Path) -> tuple[str, bytes]:
    suffix = path.suffix.lstrip(".")
    text = path.read_text(encoding="utf-8")
    if suffix == "jsonl":
        lines = [json.loads(line) for line in text.splitlines() if line.strip()][:RECORDS]
        body = "".join(json.dumps(scrub_value(r), ensure_ascii=False) + "\n" for r in lines)
    elif suffix == "json":
        data = json.loads(text)
        if isinstance(data, list):
            data = data[:RECORDS]
        body = json.dumps(scrub_value(data), ensure_ascii=False, indent=1)
    elif suffix == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(rows[0])
        for row in rows[1:RECORDS + 1]:
            writer.writerow([scrub(cell) for cell in row])
        body = out.getvalue()
    elif suffix == "xml":
        tree = ET.parse(path)
        root = tree.getroot()
        for entries in root.iter("entries"):
            for extra in list(entries)[RECORDS:]:
                entries.remove(extra)
        for element in root.iter():
            if element.text and element.text.strip():
                element.text = scrub(element.text)
            for key in ("comment",):
                if key in element.attrib:
                    element.attrib[key] = scrub(element.attrib[key])
        body = ET.tostring(root, encoding="unicode")
    else:
        raise SystemExit(f"{path}: no seed for .{suffix}")
    return suffix, body.encode("utf-8")


def write_seed(target: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def manifest_seeds() -> None:
    """hsd's manifests, each with its includes inlined (the fuzzed file stands alone)."""
    experiments = ROOT / "experiments"
    for path in [ROOT / "crates/hsd-cli/tests/fixtures/smoke.toml", *sorted(experiments.glob("*.toml"))]:
        text = path.read_text(encoding="utf-8")
        match = re.search(r'^include\s*=\s*\[(.*?)\]\s*$', text, flags=re.M)
        if match:
            included = [s.strip().strip('"') for s in match.group(1).split(",") if s.strip()]
            parts = [(path.parent / name).read_text(encoding="utf-8") for name in included]
            text = "\n".join(parts + [text[: match.start()] + text[match.end():]])
        write_seed("manifest", text.encode("utf-8"))


def adapter_seed() -> None:
    folder = ROOT / "crates/hsd-train/tests/fixtures/llama/adapter_init"
    config = (folder / "adapter_config.json").read_bytes()
    weights = (folder / "adapter_model.safetensors").read_bytes()
    write_seed("adapter", struct.pack("<H", len(config)) + config + weights)


def safetensors_bytes(tensors: dict[str, tuple[list[int], list[float]]]) -> bytes:
    header, data, offset = {}, b"", 0
    for name, (shape, values) in tensors.items():
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def gguf_bytes() -> bytes:
    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    metadata = [
        ("general.architecture", 8, string("llama")),
        ("llama.block_count", 4, struct.pack("<I", 1)),
        ("llama.embedding_length", 4, struct.pack("<I", 4)),
        ("general.alignment", 4, struct.pack("<I", 32)),
    ]
    tensors = [("token_embd.weight", [4, 2], 0, [0.5 * i for i in range(8)])]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, kind, value in metadata:
        out += string(key) + struct.pack("<I", kind) + value
    offset = 0
    for name, dims, kind, _ in tensors:
        out += string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", kind, offset)
    out += b"\0" * (-len(out) % 32)
    for _, _, _, values in tensors:
        out += struct.pack(f"<{len(values)}f", *values)
    return out


# Inputs that once crashed a target, kept as seeds so that every run starts from them.
REGRESSIONS = {
    # 2026-12-04: a JSON integer past i64 made polars type the column Int128 and panic.
    "dataset": [b"8G" + b"8" * 26 + b"s"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    # Seeds of files that changed since the last writing go with them.
    for stale in CORPUS.glob("*/*"):
        stale.unlink()
    for dataset, files in FILES.items():
        for relative in files:
            suffix, body = dataset_seed(args.data / relative)
            write_seed("dataset", bytes([DATASETS.index(dataset), EXTENSIONS.index(suffix)]) + body)
    manifest_seeds()
    adapter_seed()
    write_seed("safetensors", safetensors_bytes({"w": ([2, 2], [1.0, -2.0, 0.25, 4.0]), "b": ([2], [0.0, 1.0])}))
    write_seed("gguf", gguf_bytes())
    for target, inputs in REGRESSIONS.items():
        for data in inputs:
            write_seed(target, data)
    for folder in sorted(CORPUS.iterdir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()
