#!/usr/bin/env bash
# Create the Python venv whose torch 2.9.0 the `tch` backend builds and runs against, and print
# the environment it needs, so that `eval "$(scripts/setup-tch.sh)"` prepares a shell.
#
# Usage: scripts/setup-tch.sh
#   HSD_TCH_VENV          the venv (default: .venv-tch in the repository root)
#   HSD_TORCH_INDEX_URL   a pip index to take torch from instead of PyPI, e.g.
#                         https://download.pytorch.org/whl/cpu for the CPU-only wheel
#                         (about 200 MB instead of PyPI's CUDA build and its ~3 GB of libraries)
#
# tch 0.22 (burn-tch 0.22.1) accepts exactly torch 2.9.0; any local build tag (+cpu, +cu128)
# is fine. Idempotent: a venv that already imports torch 2.9.0 is left alone. Progress goes to
# stderr, the exports to stdout.
set -euo pipefail

readonly TORCH_VERSION="2.9.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HSD_TCH_VENV:-$root/.venv-tch}"
[[ "$venv" = /* ]] || venv="$root/$venv"

torch_version() {
    "$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null
}

if [[ "$(torch_version || true)" != "$TORCH_VERSION" ]]; then
    echo "setup-tch: installing torch==$TORCH_VERSION into $venv" >&2
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" >&2
    index=()
    [[ -n "${HSD_TORCH_INDEX_URL:-}" ]] && index=(--index-url "$HSD_TORCH_INDEX_URL")
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "${index[@]}" \
        "torch==$TORCH_VERSION" >&2; then
        echo "setup-tch: pip could not install torch==$TORCH_VERSION" \
            "from ${HSD_TORCH_INDEX_URL:-PyPI}" >&2
        exit 1
    fi
    found="$(torch_version || true)"
    if [[ "$found" != "$TORCH_VERSION" ]]; then
        echo "setup-tch: $venv/bin/python imports torch '${found:-none}', not $TORCH_VERSION" >&2
        exit 1
    fi
else
    echo "setup-tch: $venv has torch $TORCH_VERSION" >&2
fi

torch_lib="$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"

# torch-sys's build script runs `python` from PATH when VIRTUAL_ENV is set.
cat <<EXPORTS
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:\$PATH"
export LIBTORCH_USE_PYTORCH=1
export LD_LIBRARY_PATH="$torch_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EXPORTS
