#!/usr/bin/env bash
# Run hsd-model's tests on the backends besides the default flex: every test on LibTorch (tch),
# with hsd-train's LoRA training tests there too,
# one tiny-model test on wgpu, and the tiny-model tests on ndarray.
#
# Usage: scripts/test-backends.sh [tch] [wgpu] [ndarray]     (default: all three)
#
# tch needs torch 2.9.0 in a venv: scripts/setup-tch.sh makes one (HSD_TCH_VENV, default
# .venv-tch). wgpu needs a Vulkan driver; on a machine without a GPU that is Mesa's CPU driver
# (Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1). Each backend builds its own
# feature set of hsd-model in the shared target directory; cargo keeps each set's artifacts, so
# the default build is not rebuilt. Exits non-zero when any backend fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

test_on() {
    local backend="$1"
    shift
    HSD_TEST_BACKEND="$backend" cargo test --release -p hsd-model \
        --no-default-features --features "$backend" "$@"
}

# Each runs in a subshell inside `if`, where errexit is off: every step checks its own status.
run_tch() {
    local exports
    exports="$(scripts/setup-tch.sh)" || return 1
    eval "$exports"
    test_on tch || return 1
    # LoRA training (gradients, AdamW, skip-aware forward, kill -9 and resume) on LibTorch.
    HSD_TEST_BACKEND=tch cargo test --release -p hsd-train --no-default-features --features tch
}

run_wgpu() {
    # Read whole, then searched: `ldconfig -p | grep -q` fails under pipefail (SIGPIPE).
    local libraries
    libraries="$(ldconfig -p 2>/dev/null || true)"
    if ! grep -q 'libvulkan\.so\.1' <<<"$libraries"; then
        echo "test-backends: libvulkan.so.1 not found; install a Vulkan driver" \
            "(apt-get install mesa-vulkan-drivers libvulkan1)" >&2
        return 1
    fi
    test_on wgpu --test tiny_reference -- --exact full_forward_matches_transformers
}

run_ndarray() {
    test_on ndarray --test tiny_reference
}

backends=("$@")
[[ ${#backends[@]} -gt 0 ]] || backends=(tch wgpu ndarray)

failed=()
summary=()
for backend in "${backends[@]}"; do
    case "$backend" in
        tch | wgpu | ndarray) ;;
        *)
            echo "test-backends: unknown backend '$backend' (expected tch, wgpu or ndarray)" >&2
            exit 2
            ;;
    esac
    echo "== test-backends: $backend" >&2
    start=$SECONDS
    if ("run_$backend"); then
        status=ok
    else
        status=FAILED
        failed+=("$backend")
    fi
    summary+=("$backend: $status in $((SECONDS - start)) s")
done

echo "== test-backends summary" >&2
printf '   %s\n' "${summary[@]}" >&2
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "test-backends: failed on ${failed[*]}" >&2
    exit 1
fi
