#!/usr/bin/env bash
# Print the path of a Python that imports llama_cpp, for the llama.cpp peer of `just bench`:
# $HSD_LLAMACPP_PYTHON (default .venv-llamacpp/bin/python) when it does, else .venv-llamacpp,
# made here with llama-cpp-python built from its PyPI source distribution (a few minutes on two
# cores). The build targets AVX2, and AVX-512 where the CPU has it, but never `-march=native`:
# a native build that enabled AMX crashed in this project's VMs. Progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${HSD_LLAMACPP_PYTHON:-$root/.venv-llamacpp/bin/python}"
if ! "$python" -c "import llama_cpp" 2>/dev/null; then
    avx512=OFF
    if grep -qw avx512f /proc/cpuinfo; then avx512=ON; fi
    python3 -m venv "$root/.venv-llamacpp" >&2
    # Only the build tools come as wheels; llama.cpp itself compiles here.
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=$avx512 -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF" \
        "$root/.venv-llamacpp/bin/pip" install --quiet --disable-pip-version-check \
        --no-binary llama-cpp-python llama-cpp-python >&2
    python="$root/.venv-llamacpp/bin/python"
fi
echo "$python"
