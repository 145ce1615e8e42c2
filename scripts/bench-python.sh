#!/usr/bin/env bash
# Print the path of a Python that imports MODULES, for the peer benchmarks and the PEFT check:
# $HSD_BENCH_PYTHON (default .venv-bench/bin/python) when it does, else .venv-bench, made or
# completed here with torch==2.9.0, MODULES and accelerate. Progress goes to stderr.
#
# Usage: HSD_BENCH_PYTHON="$(scripts/bench-python.sh torch transformers gguf)" bench/run.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${HSD_BENCH_PYTHON:-.venv-bench/bin/python}"
imports="$(IFS=,; echo "$*")"
if ! "$python" -c "import $imports" 2>/dev/null; then
    packages=()
    for module in "$@"; do
        if [[ "$module" == torch ]]; then packages+=(torch==2.9.0); else packages+=("$module"); fi
    done
    python3 -m venv "$root/.venv-bench" >&2
    "$root/.venv-bench/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" \
        accelerate >&2
    python="$root/.venv-bench/bin/python"
fi
echo "$python"
