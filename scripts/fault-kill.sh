#!/usr/bin/env bash
# kill -9 at random points: KILLS times (default 10), `hsd run` of the main manifest's smoke
# profile starts in a fresh folder, is killed with SIGKILL at a seeded random moment within an
# uninterrupted run's length, and finishes with `--resume`. Each time its records must equal the
# uninterrupted run's byte for byte (no record lost, none duplicated) and its summary must too,
# wall-clock columns aside.
#
#   scripts/fault-kill.sh [HSD_BINARY] [KILLS] [SEED]     # about 40 s a kill on 2 cores
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hsd="${1:-${CARGO_TARGET_DIR:-target}/release/hsd}"
kills="${2:-10}"
RANDOM="${3:-20240322}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sweep=(run experiments/main.toml --profile smoke)

started=$SECONDS
"$hsd" "${sweep[@]}" --out "$work/reference" >/dev/null 2>>"$work/log.txt"
baseline=$((SECONDS - started))
total=$(wc -l <"$work/reference/records.jsonl")
echo "uninterrupted run: ${baseline} s, $total records"

without_timing() {
    python3 - "$1" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
drop = {i for i, name in enumerate(rows[0]) if name in ("decode_seconds", "tokens_per_second", "speedup")}
for row in rows:
    print(",".join(v for i, v in enumerate(row) if i not in drop))
EOF
}

landed=0
for point in $(seq 1 "$kills"); do
    out="$work/killed-$point"
    tenths=$((5 + RANDOM % (baseline * 10)))
    "$hsd" "${sweep[@]}" --out "$out" >/dev/null 2>>"$work/log.txt" &
    pid=$!
    sleep "$((tenths / 10)).$((tenths % 10))"
    alive=no
    if kill -9 "$pid" 2>/dev/null; then
        alive=yes
        landed=$((landed + 1))
    fi
    wait "$pid" 2>/dev/null || true
    on_disk=$(wc -l <"$out/records.jsonl" 2>/dev/null || echo 0)
    "$hsd" "${sweep[@]}" --out "$out" --resume >/dev/null 2>>"$work/log.txt"
    if ! cmp -s "$work/reference/records.jsonl" "$out/records.jsonl"; then
        echo "fault-kill: kill $point at ${tenths}00 ms: records differ from an uninterrupted run's" >&2
        exit 1
    fi
    if ! diff -q <(without_timing "$work/reference/summary.csv") <(without_timing "$out/summary.csv") >/dev/null; then
        echo "fault-kill: kill $point: summary.csv differs (wall-clock columns aside)" >&2
        exit 1
    fi
    echo "kill $point at ${tenths}00 ms (process alive: $alive): $on_disk of $total records on disk; after --resume byte-identical"
    rm -rf "$out"
done
echo "fault-kill: ok: $landed of $kills SIGKILLs landed in a running sweep; every resumed run equals the uninterrupted one (0 lost, 0 duplicated)"
