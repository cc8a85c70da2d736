#!/usr/bin/env bash
# Benchmark: what the clustered log costs a mirror's random writes in the real kernel.
# fio 4k randwrite, iodepth 16, libaio, direct, a fixed runtime, in QEMU (TCG) VMs over
# the same shared disk files, for: the raw leg, `mirror core`, `mirror disk` (the kernel's
# single-node logs), and dm-log-cluster's clustered-disk and clustered-core (seed syntax,
# clogd --cluster over corosync on 3 VMs); first on VM 1 alone (the others idle members),
# then on all three at once (each its own third). --rounds N goes through every configuration
# N times in turn (default 3): TCG on a shared host drifts by tens of percent within minutes, so
# each round's IOPS is divided by the reference's in the same round, and the table prints the
# median IOPS and the median ratio with the rounds' lowest and highest in brackets.
# Root; image as for the vm tests.
#
#   scripts/bench/vm-iops.sh [--build-dir DIR] [--work DIR] [--runtime S] [--rounds N]
#                            [--configs "raw core ..."]
# cdisk0 and ccore0 are cdisk and ccore with dm-log-cluster's in-sync cache off.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=$repo/build work="" runtime=10 rounds=3 configs="raw core disk cdisk ccore cdisk0 ccore0"
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    *) echo "vm-iops: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
fail() { echo "vm-iops: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "needs root (QEMU with tap networking, network namespaces)"
command -v jq >/dev/null || fail "jq is not installed (scripts/install-deps.sh)"
[[ " $configs " == *" disk "* ]] || fail "--configs must include disk (the reference)"
[[ $rounds =~ ^[1-9][0-9]?$ ]] || fail "--rounds must be a number from 1 to 99, not '$rounds'"
[[ $runtime =~ ^[1-9][0-9]*$ ]] || fail "--runtime must be a whole number of seconds, not '$runtime'"
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

echo "vm-iops: 3 VMs, fio 4k randwrite iodepth 16 libaio direct, ${runtime} s each (+2 s ramp), $rounds rounds"
ncfg=$(wc -w <<<"$configs")
"$repo/scripts/vm/run.sh" --build-dir "$build_dir" --vms 3 --fio \
  --timeout $((300 + rounds * ncfg * (2 * runtime + 100))) \
  --out "$work/out" --env RUNTIME="$runtime" --env ROUNDS="$rounds" --env CONFIGS="$configs" \
  --file "$repo/tests/vm/guest/common.sh" --disk "$work/clog.img" --disk "$work/locallogs.img" \
  --disk "$work/a.img" --disk "$work/b.img" "$repo/tests/vm/guest/iops.sh" >"$work/run.log" 2>&1 ||
  {
    cat "$work/run.log" >&2
    for f in "$work"/out/vm*/hang-*.txt; do [[ -e $f ]] && echo "vm-iops: stuck fio, blocked tasks: $f" >&2; done
    trap - EXIT # keep what the VMs brought back
    fail "the VMs' run failed (results in $work/out)"
  }

iops() { # CONFIG PHASE ROUND: summed write IOPS of the VMs that ran it
  local sum=0 f
  for f in "$work"/out/vm*/fio-"$1"-"$2"-r"$3".json; do
    sum=$(jq -r --argjson s "$sum" '$s + ([.jobs[].write.iops] | add)' "$f")
  done
  printf '%.0f' "$sum"
}
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# cell CONFIG PHASE: "<median IOPS> <median ratio>x [<lowest>-<highest>]" over the rounds
cell() {
  local r v values="" ratios=""
  for ((r = 1; r <= rounds; r++)); do
    v=$(iops "$1" "$2" "$r")
    values+="$v "
    ratios+="$(jq -n "$v / $(iops disk "$2" "$r")") "
  done
  local lo hi
  lo=$(tr ' ' '\n' <<<"$ratios" | grep . | sort -g | head -1)
  hi=$(tr ' ' '\n' <<<"$ratios" | grep . | sort -g | tail -1)
  printf '%6.0f %5.2fx [%.2f-%.2f]' "$(median <<<"${values% }")" "$(median <<<"${ratios% }")" "$lo" "$hi"
}
declare -A name=([raw]="raw leg" [core]="mirror core" [disk]="mirror disk (reference)"
  [cdisk]="cluster disk" [ccore]="cluster core"
  [cdisk0]="cluster disk, cache off" [ccore0]="cluster core, cache off")
printf '%-24s %-25s %-25s\n' "" "1 VM: IOPS ratio [range]" "3 VMs: IOPS ratio [range]"
for c in $configs; do
  printf '%-24s %-25s %-25s\n' "${name[$c]}" "$(cell "$c" one)" "$(cell "$c" all)"
done
# clustered logs: FLUSHes that sent a CPG message, summed over the VMs and rounds (clogd's counters).
for c in $configs; do
  case $c in cdisk* | ccore*) ;; *) continue ;; esac
  flushes=0 messages=0
  for f in "$work"/out/vm*/status-"$c"-r*.json; do
    [[ -s $f ]] || continue
    flushes=$((flushes + $(jq '[.logs[] | select(.uuid == "bench_'"$c"'") | .counters.flushes] | add // 0' "$f")))
    messages=$((messages + $(jq '[.logs[] | select(.uuid == "bench_'"$c"'") | .counters.flush_messages] | add // 0' "$f")))
  done
  echo "${name[$c]}: $messages of $flushes FLUSHes sent a CPG message"
done
grep '^run:' "$work/run.log"
