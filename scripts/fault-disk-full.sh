#!/usr/bin/env bash
# A disk that fills up mid-run: `hsd run` of the main manifest's smoke profile writes into a
# 40 KiB tmpfs, which its records (about 47 KB) outgrow. The run must stop with one clear error
# naming the file, leave no torn record, and finish with `--resume` once the file system is
# grown; the records must then equal an uninterrupted run's byte for byte.
#
#   scripts/fault-disk-full.sh [HSD_BINARY]     # as root (it mounts a tmpfs); about a minute
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hsd="${1:-${CARGO_TARGET_DIR:-target}/release/hsd}"
if [[ $(id -u) -ne 0 ]]; then
    echo "fault-disk-full: needs root to mount a tmpfs" >&2
    exit 1
fi

work="$(mktemp -d)"
mount_point="$work/small"
mkdir -p "$mount_point"
cleanup() {
    umount "$mount_point" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
[[ -n "${HSD_FAULT_KEEP:-}" ]] && trap - EXIT

"$hsd" run experiments/main.toml --profile smoke --out "$work/reference" >/dev/null 2>&1

mount -t tmpfs -o size=40k tmpfs "$mount_point"
set +e
"$hsd" run experiments/main.toml --profile smoke --out "$mount_point/run" >"$work/out.txt" 2>"$work/err.txt"
status=$?
set -e
error="$(grep -v '^notice:' "$work/err.txt" || true)"
echo "full disk: exit status $status; $error"
if [[ $status -ne 1 ]] || ! grep -q 'No space left on device' <<<"$error"; then
    echo "fault-disk-full: expected exit status 1 and ENOSPC, got $status" >&2
    exit 1
fi
if ! grep -q "$mount_point/run" <<<"$error"; then
    echo "fault-disk-full: the error does not name the file" >&2
    exit 1
fi
written=$(wc -l <"$mount_point/run/records.jsonl")
# Every line on disk is a whole record: JSON, newline-terminated.
python3 - "$mount_point/run/records.jsonl" <<'EOF'
import json, sys
data = open(sys.argv[1], "rb").read()
lines = data.split(b"\n")
torn = lines[-1]
whole = [json.loads(line) for line in lines[:-1]]
print(f"records on the full disk: {len(whole)} whole, torn tail of {len(torn)} bytes")
EOF

mount -o remount,size=10m "$mount_point"
"$hsd" run experiments/main.toml --profile smoke --out "$mount_point/run" --resume >/dev/null 2>&1
total=$(wc -l <"$mount_point/run/records.jsonl")
if ! cmp -s "$work/reference/records.jsonl" "$mount_point/run/records.jsonl"; then
    echo "fault-disk-full: resumed records differ from an uninterrupted run's" >&2
    exit 1
fi
echo "fault-disk-full: ok: stopped after $written of $total records with ENOSPC naming the file; --resume completed them, byte-identical to an uninterrupted run"
