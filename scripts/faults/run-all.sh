#!/usr/bin/env bash
# Every failure-injection scenario (scripts/faults/run.sh), one 3-VM run each, one after
# the other; prints the table and exits non-zero if any row failed.
#
#   scripts/faults/run-all.sh [--build-dir DIR] [--work DIR] [SCENARIO/LOG ...]
# Default: kill-vm, kill-clogd, kill-corosync, two-in-a-row for clustered-disk and
# clustered-core, log-device-fails (clustered-disk: a core log has no device), and
# leg-fails and cut-off for both, leg-replaced (clustered-disk; its stall is the operator's,
# printed, not judged). Each run takes 3-5 minutes here; the details of run N stay in
# WORK/N-<scenario>-<log>/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build_dir=$here/../../build work=""
runs=()
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -*) echo "run-all: unknown option '$1'" >&2; exit 2 ;;
    *) runs+=("$1"); shift ;;
  esac
done
if ((${#runs[@]} == 0)); then
  for log in disk core; do
    for s in kill-vm kill-clogd kill-corosync two-in-a-row; do runs+=("$s/$log"); done
  done
  runs+=(log-device-fails/disk leg-fails/disk leg-fails/core leg-replaced/disk cut-off/disk
    cut-off/core)
fi
[[ -n $work ]] || work=$(mktemp -d /var/tmp/clogd-faults-all.XXXXXX)
mkdir -p "$work"

header=$(printf '%-32s %7s %7s %9s %9s %8s %9s %9s  %s' scenario stall_s target_s resynced \
  expected matched verified timeouts result)
rows=()
failed=0 n=0
for spec in "${runs[@]}"; do
  n=$((n + 1))
  scenario=${spec%/*} log=${spec#*/}
  [[ $spec == */* ]] || log=disk
  dir=$work/$n-$scenario-$log
  echo "=== run $n of ${#runs[@]}: $scenario, clustered-$log (details in $dir)"
  rc=0
  "$here/run.sh" "$scenario" --log "$log" --build-dir "$build_dir" --work "$dir" \
    >"$dir.log" 2>&1 || rc=$?
  if [[ -s $dir/row.tsv ]]; then
    rows+=("$(cat "$dir/row.tsv")")
  else
    rows+=("$(printf '%-32s %s' "$scenario/clustered-$log" "no result (exit $rc): $(tail -n 1 "$dir.log")  FAIL")")
  fi
  ((rc == 0)) || failed=$((failed + 1))
  echo "${rows[-1]}"
done

echo
echo "$header"
printf '%s\n' "${rows[@]}"
echo "$((n - failed)) of $n scenarios passed"
((failed == 0))
