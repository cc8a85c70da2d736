#!/usr/bin/env bash
# Benchmark: what the clustered log costs a mirror's random writes in the real kernel.
# fio 4k randwrite, iodepth 16, libaio, direct, a fixed runtime, in QEMU (TCG) VMs over
# the same shared disk files, for: the raw leg, `mirror core`, `mirror disk` (the kernel's
# single-node logs), and dm-log-cluster's clustered-disk and clustered-core (seed syntax,
# clogd --cluster over corosync on 3 VMs); first on VM 1 alone (the others idle members),
# then on all three at once (each its own third). Prints a table with each configuration's
# ratio to `mirror disk` measured in the same run. Root; image as for the vm tests.
#
#   scripts/bench/vm-iops.sh [--build-dir DIR] [--work DIR] [--runtime S] [--configs "raw core ..."]
# cdisk0 and ccore0 are cdisk and ccore with dm-log-cluster's in-sync cache off.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=$repo/build work="" runtime=10 configs="raw core disk cdisk ccore cdisk0 ccore0"
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    *) echo "vm-iops: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
fail() { echo "vm-iops: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "needs root (QEMU with tap networking, network namespaces)"
command -v jq >/dev/null || fail "jq is not installed (scripts/install-deps.sh)"
[[ " $configs " == *" disk "* ]] || fail "--configs must include disk (the reference)"
if [[ -z $work ]]; then
  work=$(mktemp -d /var/tmp/clogd-vm-iops.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
rm -rf "$work"
mkdir -p "$work/out"
MiB=$((1024 * 1024))
truncate -s $((8 * MiB)) "$work/clog.img"
truncate -s $((8 * MiB)) "$work/locallogs.img"
truncate -s $((48 * MiB)) "$work/a.img"
truncate -s $((48 * MiB)) "$work/b.img"

echo "vm-iops: 3 VMs, fio 4k randwrite iodepth 16 libaio direct, ${runtime} s each (+2 s ramp)"
"$repo/scripts/vm/run.sh" --build-dir "$build_dir" --vms 3 --fio --timeout 1200 \
  --out "$work/out" --env RUNTIME="$runtime" --env CONFIGS="$configs" \
  --file "$repo/tests/vm/guest/common.sh" --disk "$work/clog.img" --disk "$work/locallogs.img" \
  --disk "$work/a.img" --disk "$work/b.img" "$repo/tests/vm/guest/iops.sh" >"$work/run.log" 2>&1 ||
  { cat "$work/run.log" >&2; fail "the VMs' run failed (results in $work/out)"; }

iops() { # CONFIG PHASE: summed write IOPS of the VMs that ran it
  local sum=0 f
  for f in "$work"/out/vm*/fio-"$1"-"$2".json; do
    sum=$(jq -r --argjson s "$sum" '$s + ([.jobs[].write.iops] | add)' "$f")
  done
  printf '%.0f' "$sum"
}
declare -A name=([raw]="raw leg" [core]="mirror core" [disk]="mirror disk (reference)"
  [cdisk]="cluster disk (clustered-disk)" [ccore]="cluster core (clustered-core)"
  [cdisk0]="cluster disk, in-sync cache off" [ccore0]="cluster core, in-sync cache off")
ref1=$(iops disk one) ref3=$(iops disk all)
printf '%-32s %12s %10s %18s %10s\n' configuration "IOPS (1 VM)" ratio "IOPS (3 VMs, sum)" ratio
for c in $configs; do
  one=$(iops "$c" one) all=$(iops "$c" all)
  printf '%-32s %12s %9.2fx %18s %9.2fx\n' "${name[$c]}" "$one" \
    "$(jq -n "$one / $ref1")" "$all" "$(jq -n "$all / $ref3")"
done
# clustered logs: FLUSHes that sent a CPG message, summed over the VMs (clogd's counters).
for c in $configs; do
  case $c in cdisk* | ccore*) ;; *) continue ;; esac
  flushes=0 messages=0
  for f in "$work"/out/vm*/status-"$c".json; do
    [[ -s $f ]] || continue
    flushes=$((flushes + $(jq '[.logs[] | select(.uuid == "bench_'"$c"'") | .counters.flushes] | add // 0' "$f")))
    messages=$((messages + $(jq '[.logs[] | select(.uuid == "bench_'"$c"'") | .counters.flush_messages] | add // 0' "$f")))
  done
  echo "${name[$c]}: $messages of $flushes FLUSHes sent a CPG message"
done
grep '^run:' "$work/run.log"
