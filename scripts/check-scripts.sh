#!/usr/bin/env bash
# Fail on shell pipelines that can die of SIGPIPE under `set -o pipefail`: a producer piped
# into `grep -q`, `head` or `grep -m` may still be writing when the reader exits, and the
# pipeline then fails at random (seen: `ldconfig -p | grep -q`, 18 failures in 300 tries).
# Capture the producer's output first (`out="$(cmd)"; grep -q pat <<<"$out"`).
set -euo pipefail
cd "$(dirname "$0")/.."

files=(.ci/run justfile)
while IFS= read -r -d '' file; do
    files+=("$file")
done < <(find scripts bench -name '*.sh' ! -name check-scripts.sh -print0)

status=0
for file in "${files[@]}"; do
    if found="$(grep -nE '^[^#]*\|[[:space:]]*(grep[[:space:]]+(-[a-zA-Z]*[qm]|--quiet|--max-count)|head\b)' "$file")"; then
        while IFS= read -r line; do
            echo "$file:$line: a pipe into an early-exiting reader fails under pipefail" >&2
        done <<<"$found"
        status=1
    fi
done
exit "$status"
