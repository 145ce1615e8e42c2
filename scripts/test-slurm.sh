#!/usr/bin/env bash
# End-to-end test of `hsd slurm` on a throwaway single-node Slurm cluster on this machine.
#
# Brings up munged, slurmctld and slurmd (Debian's `slurm-wlm` and `munge`, installed with
# apt-get when missing) with a minimal slurm.conf and every state, spool, log and socket file
# under a temporary folder; submits `hsd slurm experiments/main.toml --profile smoke --shards 2
# --submit`; waits for the array and the merge job; runs the same sweep unsharded; and checks
# that the merged records.jsonl equals the unsharded one byte for byte. The daemons are stopped
# on exit, whatever happens. Needs root (slurmd starts jobs), a built release binary
# (`cargo build --release -p hsd-cli`) and the model (`just setup`).
#
# Environment: CARGO_TARGET_DIR (the binary is $CARGO_TARGET_DIR/release/hsd, default
# target/release/hsd); HSD_BIN: another hsd binary to test (e.g. a copy, where worktrees share
# one CARGO_TARGET_DIR and overwrite each other's release/hsd); HSD_MODELS, HSD_DATA, HSD_WORDNET as for hsd; HSD_SLURM_TIMEOUT: seconds
# to wait for the jobs (default 1800); HSD_SLURM_KEEP=1 keeps the temporary folder.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$SECONDS
timeout="${HSD_SLURM_TIMEOUT:-1800}"

say() { echo "== test-slurm: $*" >&2; }
fail() {
    echo "test-slurm: FAILED: $*" >&2
    echo "test-slurm: 0 passed, 1 failed" >&2
    exit 1
}

target="${CARGO_TARGET_DIR:-target}"
[[ "$target" = /* ]] || target="$root/$target"
hsd="${HSD_BIN:-$target/release/hsd}"
[[ "$hsd" = /* ]] || hsd="$root/$hsd"
[[ -x "$hsd" ]] || fail "$hsd not found: build it with cargo build --release -p hsd-cli"
"$hsd" slurm --help >/dev/null 2>&1 || fail "$hsd has no slurm subcommand: rebuild it"
[[ $EUID -eq 0 ]] || fail "needs root to start slurmd and munged (run it with sudo -E)"

# -- Slurm and MUNGE from Debian's packages, when missing.
missing=()
for tool in slurmctld slurmd sbatch squeue scontrol sinfo; do
    command -v "$tool" >/dev/null || missing=(slurm-wlm)
done
command -v munged >/dev/null || missing+=(munge)
if [[ ${#missing[@]} -gt 0 ]]; then
    say "installing ${missing[*]}"
    apt_started=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    say "installed in $((SECONDS - apt_started)) s"
fi

# -- A private cluster: its own MUNGE key and socket, its own ports, all under $tmp.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/hsd-slurm.XXXXXX")"
chmod 755 "$tmp"
cluster="$tmp/cluster"
mkdir -p "$cluster"/{munge,state,spool,log,run}
chmod 700 "$cluster/munge"
pids=()
jobs_to_cancel=()

stop_cluster() {
    local status=$?
    if [[ ${#jobs_to_cancel[@]} -gt 0 ]]; then
        scancel "${jobs_to_cancel[@]}" 2>/dev/null || true
        local deadline=$((SECONDS + 30)) left
        while ((SECONDS < deadline)); do
            left="$(squeue -h -o %i 2>/dev/null)" || break
            [[ -n "$left" ]] || break
            sleep 1
        done
    fi
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $status -eq 0 && "${HSD_SLURM_KEEP:-0}" != 1 ]]; then
        rm -rf "$tmp"
    else
        echo "test-slurm: kept $tmp (cluster logs in $cluster/log)" >&2
    fi
}
trap stop_cluster EXIT

dd if=/dev/urandom of="$cluster/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$cluster/munge/munge.key"
socket="$cluster/munge/munge.socket"
munged --foreground --force --socket="$socket" --key-file="$cluster/munge/munge.key" \
    --log-file="$cluster/log/munged.log" --pid-file="$cluster/run/munged.pid" \
    --seed-file="$cluster/munge/munged.seed" 2>>"$cluster/log/munged.log" &
pids+=($!)

# The node as slurmd sees it (its name, CPUs, sockets, cores, RealMemory): first line of -C.
node="$(slurmd -C)"
node="${node%%$'\n'*}"
[[ "$node" =~ ^NodeName=([^[:space:]]+)[[:space:]](.*)$ ]] || fail "slurmd -C printed: $node"
host="${BASH_REMATCH[1]}"
hardware="${BASH_REMATCH[2]}"
# Ports away from Slurm's defaults (6817, 6818), so that a cluster already here is left alone.
ctld_port=$((20000 + $$ % 20000))
slurmd_port=$((ctld_port + 1))

export SLURM_CONF="$cluster/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=hsdtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$cluster/state
SlurmdSpoolDir=$cluster/spool
SlurmctldPidFile=$cluster/run/slurmctld.pid
SlurmdPidFile=$cluster/run/slurmd.pid
SlurmctldLogFile=$cluster/log/slurmctld.log
SlurmdLogFile=$cluster/log/slurmd.log
# No cgroups in a container: track processes by parent and bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
# No accounting: no slurmdbd, no sacct.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Finished jobs stay visible to scontrol for 10 minutes; a merge whose array failed is
# cancelled instead of pending forever.
MinJobAge=600
DependencyParameters=kill_invalid_depend
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 $hardware State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

cluster_started=$SECONDS
deadline=$((SECONDS + 20))
until [[ -S "$socket" ]]; do
    ((SECONDS < deadline)) || fail "munged did not start: $(cat "$cluster/log/munged.log")"
    sleep 0.2
done
slurmctld -D >>"$cluster/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D >>"$cluster/log/slurmd.out" 2>&1 &
pids+=($!)

deadline=$((SECONDS + 60))
while :; do
    state="$(sinfo -h -N -n "$host" -o %T 2>/dev/null)" || state=""
    [[ "$state" == idle ]] && break
    if ((SECONDS >= deadline)); then
        tail -n 20 "$cluster/log/slurmctld.log" "$cluster/log/slurmd.log" >&2 || true
        fail "node $host is '${state:-unknown}' after 60 s, not idle"
    fi
    sleep 1
done
cluster_seconds=$((SECONDS - cluster_started))
say "cluster up in $cluster_seconds s: node $host ($hardware)"

# -- The sharded sweep, through Slurm.
sharded_started=$SECONDS
submitted="$("$hsd" slurm experiments/main.toml --profile smoke --shards 2 --cpus-per-task 1 \
    --out "$tmp/sharded" --submit)" || fail "hsd slurm --submit failed"
echo "$submitted"
[[ "$submitted" =~ array\ job:\ ([0-9]+) ]] || fail "no array job id in: $submitted"
array="${BASH_REMATCH[1]}"
[[ "$submitted" =~ merge\ job:\ ([0-9]+) ]] || fail "no merge job id in: $submitted"
merge="${BASH_REMATCH[1]}"
jobs_to_cancel=("$array" "$merge")

deadline=$((SECONDS + timeout))
last=""
while :; do
    queue="$(squeue -h -j "$array,$merge" -o '%i %T %R' 2>&1)" || queue=""
    [[ -n "$queue" ]] || break
    if [[ "$queue" != "$last" ]]; then
        printf '   [%4d s] %s\n' $((SECONDS - sharded_started)) "${queue//$'\n'/; }" >&2
        last="$queue"
    fi
    ((SECONDS < deadline)) || fail "jobs $array and $merge still queued after $timeout s"
    sleep 2
done
jobs_to_cancel=()
sharded_seconds=$((SECONDS - sharded_started))

logs="$tmp/sharded/slurm/logs"
show_logs() {
    local log
    for log in "$logs"/*; do
        [[ -f "$log" ]] || continue
        echo "--- $log" >&2
        tail -n 30 "$log" >&2
    done
}
# Every array task and the merge: COMPLETED with exit code 0:0 (no accounting, so from
# scontrol, which keeps finished jobs for MinJobAge).
states="$(scontrol -o show job "$array")" || fail "scontrol show job $array failed"
states+=$'\n'"$(scontrol -o show job "$merge")" || fail "scontrol show job $merge failed"
completed=0
while IFS= read -r line; do
    [[ -n "$line" ]] || continue
    [[ "$line" =~ JobId=([0-9]+) ]] && id="${BASH_REMATCH[1]}" || id="?"
    [[ "$line" =~ JobState=([A-Z_]+) ]] && state="${BASH_REMATCH[1]}" || state="?"
    [[ "$line" =~ ExitCode=([0-9:]+) ]] && code="${BASH_REMATCH[1]}" || code="?"
    [[ "$line" =~ ArrayTaskId=([0-9]+) ]] && task="task ${BASH_REMATCH[1]}" || task="merge"
    echo "   job $id ($task): $state, exit $code" >&2
    if [[ "$state" != COMPLETED || "$code" != 0:0 ]]; then
        show_logs
        fail "job $id ($task) ended $state with exit code $code"
    fi
    completed=$((completed + 1))
done <<<"$states"
[[ $completed -eq 3 ]] || {
    show_logs
    fail "expected 2 array tasks and 1 merge job, scontrol shows $completed"
}
for file in records.jsonl summary.csv meta.json shard-1-of-2/meta.json shard-2-of-2/meta.json; do
    [[ -s "$tmp/sharded/$file" ]] || fail "$tmp/sharded/$file is missing or empty"
done
rendered="$(find "$tmp/sharded/paper" -type f -printf . 2>/dev/null)" || rendered=""
[[ -n "$rendered" ]] || fail "the merge job's hsd report wrote nothing under $tmp/sharded/paper"
say "sharded through Slurm in $sharded_seconds s (2 tasks, then merge and report)"

# -- The same sweep, unsharded, outside Slurm.
straight_started=$SECONDS
"$hsd" run experiments/main.toml --profile smoke --out "$tmp/straight" >&2 ||
    fail "the unsharded hsd run failed"
straight_seconds=$((SECONDS - straight_started))
say "unsharded in $straight_seconds s"

if ! cmp "$tmp/sharded/records.jsonl" "$tmp/straight/records.jsonl"; then
    fail "merged records.jsonl differs from the unsharded run's (kept in $tmp)"
fi
records="$(wc -l <"$tmp/sharded/records.jsonl")"
[[ "$records" -gt 0 ]] || fail "no records"

say "timings: cluster start ${cluster_seconds} s, sharded via Slurm ${sharded_seconds} s," \
    "unsharded ${straight_seconds} s, total $((SECONDS - started)) s"
say "ok: merged records.jsonl ($records records) equals the unsharded run's byte for byte"
echo "test-slurm: 1 passed, 0 failed" >&2
