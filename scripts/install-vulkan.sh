#!/usr/bin/env bash
# Make sure a Vulkan loader and driver exist for the wgpu backend. On a machine without a GPU
# that is Mesa's CPU driver (lavapipe). Installs with apt (as root, or through sudo) when missing.
set -euo pipefail

# The loader list is read whole before grep sees it: `ldconfig -p | grep -q` under pipefail
# fails whenever grep exits at its first match before ldconfig has written everything.
libraries="$(ldconfig -p 2>/dev/null || true)"
if grep -q 'libvulkan\.so\.1' <<<"$libraries" && compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null; then
    exit 0
fi
packages=(mesa-vulkan-drivers libvulkan1)
as_root=()
[[ "$(id -u)" -eq 0 ]] || as_root=(sudo)
if ! command -v apt-get >/dev/null; then
    echo "install-vulkan: no apt-get here; install a Vulkan driver (e.g. ${packages[*]}) by hand" >&2
    exit 1
fi
echo "install-vulkan: installing ${packages[*]}" >&2
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
