#!/usr/bin/env bash
# request-path.sh: the write path's request latency through a real `clogd --cluster` on a
# 3-node corosync cluster (scripts/cluster-netns.sh), beside the raw CPG agreed round trip
# measured in the same run. Prints a table: per log type the latency of MARK+FLUSH (what
# dm-raid1 waits for before a write, as separate requests: LVM's `mirror userspace` tables),
# the FLUSH carrying the mark (dm-log-cluster's integrated_flush), and CLEAR+FLUSH (a region
# going idle), median and p99,
# requests per second, the ratio to one CPG round trip, the mean time per FLUSH of each
# path, and `<type>: CPG messages per FLUSH`.
#
#   sudo scripts/bench/request-path.sh [cycles]        (default 2000 cycles per log type)
#
# Builds what it needs (clogd, clogctl, clog-cpg-probe, clog-request-load) in
# $CLOG_BUILD_DIR (default build), brings its own cluster up (CLOG_NETNS_DIR=/run/clog-netns-bench,
# prefix clogb) and down. The load runs from node 1, one request at a time, while the log is
# active on all three nodes (clog-request-load plays the kernel on each clogd's test socket).
# Targets: clustered-disk sends no CPG message on the write path; clustered-core at most
# 1.2 x one CPG round trip per FLUSH.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cycles=${1:-2000}
build=${CLOG_BUILD_DIR:-build}
[[ $build = /* ]] || build="$root/$build"

die() {
  echo "request-path: $*" >&2
  exit 1
}
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces)"
command -v jq >/dev/null || die "needs jq (scripts/install-deps.sh installs it)"

if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j1 --target clogd clogctl clog-cpg-probe clog-request-load >/dev/null
clogd=$build/logd/clogd
probe=$build/tests/cluster/clog-cpg-probe
load=$build/tests/cluster/clog-request-load

export CLOG_NETNS_DIR=/run/clog-netns-bench CLOG_NETNS_PREFIX=clogb
net=$root/scripts/cluster-netns.sh
exec 9>/run/clog-netns-bench.lock
flock -w 600 9 || die "another run holds /run/clog-netns-bench.lock"
work=$(mktemp -d /tmp/clog-bench.XXXXXX)
cleanup() {
  "$net" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$net" down >/dev/null
"$net" up >/dev/null

# The reference: CPG agreed round trip of a 64-byte message with 3 members, one at a time,
# measured before, between and after the log types' runs (the machine's load drifts, by a
# third within a run at times): each type is compared with the mean of the two beside it.
reference() {
  local n out
  for n in 2 3; do "$net" start-bg "$n" bench-probe "$probe" --group bench --quiet >/dev/null; done
  out=$("$net" exec 1 "$probe" --group bench --quiet --pingpong "$cycles" --size 64 --members 3 |
    jq -c 'select(.event == "pingpong")')
  for n in 2 3; do "$net" kill-bg "$n" bench-probe >/dev/null; done
  [[ -n $out ]] || die "clog-cpg-probe --pingpong printed no result"
  echo "$out"
}
refs=("$(reference)")

image=$work/log.img
truncate -s 4M "$image"
regions=$((cycles * 2 > 1024 ? cycles * 2 : 1024)) # no region marked twice within a linger
len=$((regions * 1024))
results=()
for type in clustered-disk clustered-core; do
  sockets=() controls=()
  for n in 1 2 3; do
    "$net" start-bg "$n" "clogd-$type" "$clogd" -f --cluster \
      --kernel-socket "$work/$type-n$n.kernel" --control-socket "$work/$type-n$n.ctl" \
      --pidfile "$work/$type-n$n.pid" >/dev/null
    sockets+=("$work/$type-n$n.kernel")
    controls+=("$work/$type-n$n.ctl")
  done
  if [[ $type == clustered-disk ]]; then ctr="$len clustered-disk $image 1024 nosync"; else ctr="$len clustered-core 1024 nosync"; fi
  out=$("$load" --sockets "$(
    IFS=,
    echo "${sockets[*]}"
  )" --controls "$(
    IFS=,
    echo "${controls[*]}"
  )" --uuid "LVM-bench-$type" --ctr "$ctr" --cycles "$cycles" --regions "$regions") ||
    die "clog-request-load failed for $type (clogd logs: $CLOG_NETNS_DIR/node*/clogd-$type.log)"
  results+=("$type $out")
  for n in 1 2 3; do "$net" kill-bg "$n" "clogd-$type" >/dev/null; done
  refs+=("$(reference)")
done

# mean FIELD I J: the mean of FIELD over references I..J
mean() {
  local k sum=0
  for ((k = $2; k <= $3; k++)); do sum=$(jq -n "$sum + $(jq -r ".$1" <<<"${refs[k]}")"); done
  jq -n "$sum / ($3 - $2 + 1)"
}

echo "request path through clogd --cluster, 3 corosync nodes in netns, $cycles cycles, load from node 1"
printf '%-38s %10s %10s %10s\n' "path (latency in µs)" "median" "p99" "/CPG_rtt"
row() { printf '%-38s %10.0f %10.0f %10.2f\n' "$1" "$2" "$3" "$(jq -n "$2 / $rtt_median")"; }
rtt_median=$(mean rtt_median_us 0 $((${#refs[@]} - 1)))
for ((i = 0; i < ${#refs[@]}; i++)); do
  when="between"
  ((i == 0)) && when="first"
  ((i == ${#refs[@]} - 1)) && when="last"
  row "CPG agreed round trip 64 B, $when" "$(jq .rtt_median_us <<<"${refs[i]}")" \
    "$(jq .rtt_p99_us <<<"${refs[i]}")"
done
for ((i = 0; i < ${#results[@]}; i++)); do
  r=${results[i]}
  type=${r%% *}
  json=${r#* }
  rtt_median=$(mean rtt_median_us "$i" $((i + 1))) # the round trips measured beside it
  for step in mark_flush flush_after_mark integrated_mark_flush clear_flush flush_after_clear; do
    case $step in
      mark_flush) name="MARK+FLUSH" ;;
      flush_after_mark) name="  FLUSH alone (after MARK)" ;;
      integrated_mark_flush) name="FLUSH carrying the MARK" ;;
      clear_flush) name="CLEAR+FLUSH" ;;
      flush_after_clear) name="  FLUSH alone (after CLEAR)" ;;
    esac
    row "$type $name" "$(jq ".${step}_median_us" <<<"$json")" "$(jq ".${step}_p99_us" <<<"$json")"
  done
done
printf '%-38s %10.0f req/s (one at a time)\n' "CPG agreed round trips" \
  "$(mean rtt_msgs_per_s 0 $((${#refs[@]} - 1)))"
for r in "${results[@]}"; do
  printf '%-38s %10.0f req/s (one at a time)\n' "${r%% *} write path" \
    "$(jq .requests_per_s <<<"${r#* }")"
done
# Per FLUSH on average, tails included, against the round trips' mean (one at a time):
# dm-log-cluster's path (a FLUSH carrying the marks, then CLEAR + FLUSH) and LVM's
# `mirror userspace` path (MARK + FLUSH, CLEAR + FLUSH). And the FLUSH carrying the mark less
# a FLUSH with nothing to send right after a CLEAR (medians): the multicast's own cost apart
# from the trip through the kernel link and clogd's loop.
for ((i = 0; i < ${#results[@]}; i++)); do
  r=${results[i]}
  type=${r%% *}
  json=${r#* }
  rtt_mean=$(jq -n "1000000 / $(mean rtt_msgs_per_s "$i" $((i + 1)))")
  rtt_median=$(mean rtt_median_us "$i" $((i + 1)))
  for pass in integrated_per_flush_mean_us per_flush_mean_us; do
    v=$(jq ".$pass" <<<"$json")
    what="FLUSH carrying the marks, CLEAR, FLUSH"
    [[ $pass == per_flush_mean_us ]] && what="MARK, FLUSH, CLEAR, FLUSH"
    printf '%s: mean time per FLUSH (%s): %.0f µs = %.2f CPG round trips (mean %.0f µs)\n' \
      "$type" "$what" "$v" "$(jq -n "$v / $rtt_mean")" "$rtt_mean"
  done
  v=$(jq '.integrated_mark_flush_median_us - .flush_after_integrated_clear_median_us' <<<"$json")
  printf '%s: FLUSH carrying the MARK less a FLUSH with nothing to send: %.0f µs = %.2f CPG round trips\n' \
    "$type" "$v" "$(jq -n "$v / $rtt_median")"
done
for r in "${results[@]}"; do
  type=${r%% *}
  json=${r#* }
  printf '%s: CPG messages per FLUSH: %.2f (%s messages sent by the 3 clogds, %s FLUSHes)\n' "$type" \
    "$(jq -r '.cluster_messages_sent / .flushes' <<<"$json")" \
    "$(jq -r .cluster_messages_sent <<<"$json")" "$(jq -r .flushes <<<"$json")"
done
