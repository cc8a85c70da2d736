#!/usr/bin/env bash
# One failure-injection scenario on 3 QEMU VMs (scripts/vm/run.sh): a clustered mirror
# served by `clogd --cluster`, fio with crc32c verify on every VM (each its own third), a
# fault in the middle of the writes, then the checks a storage administrator relies on.
# Prints the evidence and, last, one table row (also written to WORK/row.tsv):
#   scenario  stall_s  target_s  resynced  expected  matched  verified  timeouts  PASS|FAIL
#
#   scripts/faults/run.sh SCENARIO [--log disk|core] [--build-dir DIR] [--work DIR]
#                         [--stall-not-judged]
# --stall-not-judged: the stall is printed but does not decide the row (CTest: a timing
# target is a measurement there, never an assertion; run-all.sh judges it).
# SCENARIO: kill-vm | kill-clogd | kill-corosync | two-in-a-row | log-device-fails |
# leg-fails | leg-replaced | cut-off (guest.sh says what each does; leg-fails: a 3-leg
# mirror whose third leg dies on every node, and must be removed from every node's table,
# then is added back; leg-replaced: the second leg of a 2-leg mirror dies, every node holds
# its writes until the operator's clogctl replace-leg puts a spare disk in; cut-off: the host
# takes node 3's bridge port down until the others have resynced its regions, then heals). Exit 0 when the row passes,
# 1 when it fails, 2 on bad use.
#
# Checks: fio's verify passed on every live VM; the legs are byte-identical (host cmp);
# the regions the survivors made out of sync equal the failed node's slot on the log device
# right after its fault (clustered-disk; clustered-core keeps marks in memory only, and a
# cut-off node writes its slot until it sees the others go, so there the check is that
# every such region lies in the node's own third); no "Request
# timed out" retry in any live guest's dmesg; the survivors' write stall (the longest write
# fio saw on a VM the fault did not hit) within target: clustered-disk 0.5 s (its write
# path needs no cluster message), clustered-core corosync's detection time (token +
# consensus) + 0.5 s.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
scenario=${1:-}
shift || true
log=disk build_dir=$repo/build work="" judge_stall=1
while (($#)); do
  case $1 in
    --log) log=$2; shift 2 ;;
    --stall-not-judged) judge_stall=0; shift ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "faults: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case $scenario in
  kill-vm | kill-clogd | kill-corosync | two-in-a-row | log-device-fails | leg-fails | leg-replaced | cut-off) ;;
  *) echo "faults: unknown scenario '$scenario' (kill-vm, kill-clogd, kill-corosync, two-in-a-row, log-device-fails, leg-fails, leg-replaced, cut-off)" >&2
     exit 2 ;;
esac
[[ $log == disk || $log == core ]] || { echo "faults: --log must be disk or core, not '$log'" >&2; exit 2; }
fail() { echo "faults: FAILED: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "needs root (QEMU with tap networking, network namespaces)"
clogctl=$build_dir/logd/clogctl
for f in "$build_dir/logd/clogd" "$clogctl" "$build_dir/kmod/src/dm-log-cluster.ko"; do
  [[ -f $f ]] || fail "$f is missing (build the clogd, clogctl and kmod targets)"
done
for tool in qemu-system-x86_64 jq cmp; do
  command -v "$tool" >/dev/null || fail "'$tool' is not installed (scripts/install-deps.sh)"
done
[[ -n $work ]] || work=$(mktemp -d /var/tmp/clogd-faults.XXXXXX)
rm -rf "$work"
mkdir -p "$work/out"
out=$work/out
name=$scenario/clustered-$log

MiB=$((1024 * 1024))
logdev=$work/log.img a=$work/a.img b=$work/b.img c=$work/c.img
truncate -s $((4 * MiB)) "$logdev"
truncate -s $((48 * MiB)) "$a"
truncate -s $((48 * MiB)) "$b"
disks=(--disk "$logdev" --disk "$a" --disk "$b")
if [[ $scenario == leg-fails || $scenario == leg-replaced ]]; then
  truncate -s $((48 * MiB)) "$c"
  disks+=(--disk "$c")
fi
victim=3 second=2 token_ms=5000
may_die=()
[[ $scenario == kill-vm ]] && may_die=(--may-die "$victim")
# The nodes the fault hits (their slot must be resynced), and the ones it does not (a
# failed leg hits no node: every node's writes wait for its removal).
hit=("$victim")
[[ $scenario == two-in-a-row ]] && hit=("$second" "$victim")
[[ $scenario == leg-fails || $scenario == leg-replaced ]] && hit=()
untouched=()
for i in 1 2 3; do [[ " ${hit[*]} " == *" $i "* ]] || untouched+=("$i"); done

echo "== $name: 3 VMs, fio with verify on each; fault on node(s) ${hit[*]}"
"$repo/scripts/vm/run.sh" --build-dir "$build_dir" --vms 3 --fio "${may_die[@]}" --timeout 900 \
  --out "$out" --env SCENARIO="$scenario" --env LOG="$log" --env VICTIM=$victim \
  --env SECOND=$second --env COROSYNC_TOKEN_MS=$token_ms \
  --file "$repo/tests/vm/guest/common.sh" "${disks[@]}" \
  "$repo/scripts/faults/guest.sh" >"$work/run.log" 2>&1 &
run_pid=$!

# Waits until the victim has started its fault phase (its fio-started file), failing when
# the VMs' run ends first or after 600 s.
await_fault_phase() {
  local deadline=$((SECONDS + 600))
  until [[ -e $out/vm$victim/fio-started ]]; do
    kill -0 "$run_pid" 2>/dev/null || { cat "$work/run.log" >&2; fail "the VMs' run ended early"; }
    ((SECONDS < deadline)) || fail "node $victim did not start its fault phase within 600 s"
    sleep 0.5
  done
}

if [[ $scenario == kill-vm ]]; then
  # Kill while the victim's slot holds marks, FAULT_AT (10) s into the fault phase.
  await_fault_phase
  sleep 10
  deadline=$((SECONDS + 60))
  until "$clogctl" inspect --json "$logdev" 2>/dev/null |
    jq -e --argjson n $victim '[.slots[] | select(.node == $n) | .dirty[]] | length > 0' >/dev/null ||
    [[ $log == core ]]; do
    ((SECONDS < deadline)) || fail "node $victim's slot held no marks within 60 s"
    sleep 0.05
  done
  kill -KILL "$(cat "$out/vm$victim/qemu.pid")"
  echo "killed node $victim (kill -9 of its QEMU)"
  "$clogctl" inspect --json "$logdev" >"$out/vm$victim/fault-$victim.json" 2>&1 || true
fi
if [[ $scenario == cut-off ]]; then
  # The victim's bridge port goes down FAULT_AT (10) s into the fault phase: it and the
  # others each see the other side leave after corosync's detection time; the victim has
  # no quorum and freezes its mirror. Healed once the others resynced what its slot held.
  netns=clogvm-$run_pid
  await_fault_phase
  ip netns list | grep -qw "$netns" || fail "no network namespace $netns (scripts/vm/run.sh names it after its pid)"
  sleep 10
  ip -n "$netns" link set "tap$victim" down || fail "could not take tap$victim down in $netns"
  echo "cut off node $victim (its bridge port tap$victim down) at $(date +%T.%N)"
  # The regions the others must resync: the victim's slot once both sides have noticed
  # (the victim writes its slot until it sees the others go, and freezes then).
  deadline=$((SECONDS + 120))
  until grep -q "node $victim left: " "$out/vm1/clogd.log" 2>/dev/null &&
    grep -q "no quorum" "$out/vm$victim/clogd.log" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "the split was not seen on both sides within 120 s"
    sleep 0.05
  done
  "$clogctl" inspect --json "$logdev" >"$out/vm$victim/fault-$victim.json" 2>&1 || true
  echo "both sides saw the split at $(date +%T.%N)"
  # Healed 8 s later: past the others' fence grace (3 s), while their resync may still run
  # (the fault schedule, not a condition: the merge must work at any point).
  sleep 8
  ip -n "$netns" link set "tap$victim" up || fail "could not bring tap$victim back up"
  echo "healed node $victim at $(date +%T.%N)"
fi
run_rc=0
wait "$run_pid" || run_rc=$?
cat "$work/run.log"

# ---- checks ---------------------------------------------------------------------------
ok=1
problems=()
problem() { ok=0; problems+=("$*"); }
((run_rc == 0)) || problem "the VMs' run failed (exit $run_rc)"
live=(1 2 3)
[[ $scenario == kill-vm ]] && live=(1 2)

# Regions: the survivors' departure lines name the regions they made out of sync.
expand() { # "3-5,9" -> "3 4 5 9"
  local part out=()
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then out+=($(seq "${part%-*}" "${part#*-}")); else out+=("$part"); fi
  done
  echo "${out[*]}"
}
resynced_total=0 expected_total=0 matched=yes
third_regions=$((48 / 3 * 2)) # 512 KiB regions in 16 MiB
# What the fault does to node n: "node" (it leaves the cluster: the others resync what its
# slot held), "daemon" (only its clogd dies: the node's kernel keeps its marked regions and
# may still write them, so nothing is resynced and the restarted clogd reports them) or
# "device" (its path to the log device fails: nobody leaves).
fault_kind() {
  case $scenario/$1 in
    kill-clogd/* | two-in-a-row/$second) echo daemon ;;
    log-device-fails/*) echo device ;;
    *) echo node ;;
  esac
}
# The exact set is known when the node's slot stops changing at its fault: clustered-disk,
# except cut-off, whose node writes its slot until it sees the others go, so no snapshot
# the host takes is the one the others read. Otherwise every resynced region must lie in
# the node's own third (fio writes only there).
exact=0
[[ $log == disk && $scenario != cut-off ]] && exact=1
for n in "${hit[@]}"; do
  kind=$(fault_kind "$n")
  expected=""
  if [[ $kind == node ]] && ((exact)); then
    expected=$(jq -r --argjson n "$n" '[.slots[] | select(.node == $n) | .dirty[]] | sort | map(tostring) | join(" ")' \
      "$out/vm$n/fault-$n.json" 2>/dev/null) || { problem "no readable log device image after node $n's fault"; matched=no; }
    echo "node $n's slot right after its fault: ${expected:-empty}"
  fi
  seen_by=0
  for i in "${live[@]}"; do
    [[ $i == "$n" ]] && continue
    line=$(grep "node $n left: " "$out/vm$i/left" 2>/dev/null | head -n 1 || true)
    if [[ $kind != node ]]; then
      if [[ -n $line ]]; then
        problem "node $i resynced for node $n, whose node never left ($kind fault): $line"
        matched=no
      fi
      continue
    fi
    if [[ -z $line ]]; then
      # A node whose own clogd restarted meanwhile (two-in-a-row) may join after node n
      # left and take the merged state instead; at least one survivor must have seen it.
      echo "node $i: no departure line for node $n"
      continue
    fi
    seen_by=$((seen_by + 1))
    echo "node $i: $line"
    ranges=$(sed -n 's/.*(regions \([^)]*\)).*/\1/p' <<<"$line")
    got=$(expand "$ranges")
    if ((exact)); then
      if [[ $got != "$expected" ]]; then
        problem "node $i resynced regions '$got' for node $n, its slot held '$expected'"
        matched=no
      fi
    else
      lo=$(((n - 1) * third_regions)) hi=$((n * third_regions - 1))
      for r in $got; do
        if ((r < lo || r > hi)); then
          problem "node $i resynced region $r for node $n, outside its range $lo-$hi"
          matched=no
        fi
      done
    fi
    ((seen_by == 1)) && resynced_total=$((resynced_total + $(wc -w <<<"$got")))
  done
  if [[ $kind == node ]] && ((seen_by == 0)); then
    problem "no survivor logged node $n's departure"
    matched=no
  fi
  ((exact)) && expected_total=$((expected_total + $(wc -w <<<"$expected")))
  if [[ $kind == daemon ]]; then
    # The restarted daemon took its state back from the others.
    # (A delta when its map could be used, else a full checkpoint: clustered-core.)
    if ! grep -qE "node $n (rejoins|joins with a full checkpoint)" "$out"/vm*/clogd.log; then
      problem "no node logged node $n's restarted clogd rejoining"
      matched=no
    fi
  fi
done
((exact)) || expected_total="n/a"
# expect_logged NODE TEXT WHAT: NODE's clogd logged TEXT (its first such line is shown),
# else a problem "NODE's clogd did not log WHAT".
expect_logged() {
  local line
  line=$(grep -h "$2" "$out/vm$1/clogd.log" 2>/dev/null | head -n 1 || true)
  if [[ -z $line ]]; then
    problem "node $1's clogd did not log $3"
    matched=no
  else
    echo "node $1: $line"
  fi
}
if [[ $scenario == leg-fails ]]; then
  # Nobody left: nothing resynced for a node. Every node removed the leg in one transaction.
  expected_total="n/a"
  for i in "${live[@]}"; do
    expect_logged "$i" "removed on every node" "the leg's removal"
    # Then clogctl add-leg put the disk back, as a third leg again, on every node.
    expect_logged "$i" "added on every node" "the leg added back"
    echo "node $i: table now: $(cat "$out/vm$i/table" 2>/dev/null || echo none)"
    if ! grep -q " 3 [^ ]* 0 [^ ]* 0 [^ ]* 0 1 handle_errors" "$out/vm$i/table" 2>/dev/null; then
      problem "node $i's table does not have 3 legs again: $(cat "$out/vm$i/table" 2>/dev/null)"
      matched=no
    fi
  done
fi
if [[ $scenario == leg-replaced ]]; then
  # Nobody left: nothing resynced for a node. The operator's replacement, on every node.
  expected_total="n/a"
  for i in "${live[@]}"; do
    expect_logged "$i" "replaced by /dev/mapper/path_vdd on every node" "the replacement"
    echo "node $i: table now: $(cat "$out/vm$i/table" 2>/dev/null || echo none)"
  done
  grep -h "operator at\|replaced at" "$out/vm1/stdout" 2>/dev/null || true
fi
verified=yes
for i in "${live[@]}"; do
  if [[ $(cat "$out/vm$i/fio-rc" 2>/dev/null) != 0 ]]; then
    verified=no
    problem "node $i: fio's fault phase did not pass its verify (rc $(cat "$out/vm$i/fio-rc" 2>/dev/null || echo none))"
  fi
done
if [[ $scenario == leg-replaced ]]; then
  # The failed leg ($b) missed the writes since; the first and the new one must agree.
  if ! cmp "$a" "$c"; then
    verified=no
    problem "the new leg differs from the first after its resync"
  fi
elif ! cmp "$a" "$b"; then
  verified=no
  problem "the legs differ after the resync"
fi
if [[ $scenario == leg-fails ]] && ! cmp "$a" "$c"; then
  verified=no
  problem "the leg added back differs from the first after its resync"
fi

# Only the scenario that fails a path to the log device may fail it: a daemon that takes
# its device for failed otherwise serves on with its marks replicated, so its writes wait
# for the cluster, and a server in that state resyncs every region of a departed node.
if [[ $scenario != log-device-fails ]]; then
  for i in 1 2 3; do
    line=$(grep -h "log device failed" "$out/vm$i/clogd.log" 2>/dev/null | head -n 1 || true)
    [[ -z $line ]] || problem "node $i's clogd took its log device for failed: $line"
  done
fi

timeouts=0
for i in "${live[@]}"; do
  t=$(grep -c "Request timed out" "$out/vm$i/dmesg" 2>/dev/null || true)
  timeouts=$((timeouts + ${t:-0}))
  ((${t:-0} == 0)) || problem "node $i's kernel logged $t 'Request timed out' retries"
done

# Stall: the longest write on a node the fault did not hit (fio's completion latency max).
stall_ns=0 baseline_ns=0
for i in "${untouched[@]}"; do
  s=$(jq '[.jobs[].write.clat_ns.max] | max' "$out/vm$i/fault.json" 2>/dev/null || echo 0)
  bl=$(jq '[.jobs[].write.clat_ns.max] | max' "$out/vm$i/baseline.json" 2>/dev/null || echo 0)
  # When (guest uptime) the longest write of the fault phase completed: fio's log has ms
  # since its start, the latency in ns and the direction (1 = write).
  at=$(awk -F', *' -v t0="$(cat "$out/vm$i/fio-started" 2>/dev/null || echo 0)" \
    '$3 == 1 && $2 > max { max = $2; at = $1 } END { printf "%.2f", t0 + at / 1000 }' \
    "$out/vm$i/fault_lat.1.log" 2>/dev/null || echo "?")
  echo "node $i: longest write: $(awk -v n="$bl" 'BEGIN { printf "%.3f", n / 1e9 }') s before the fault phase," \
    "$(awk -v n="$s" 'BEGIN { printf "%.3f", n / 1e9 }') s in it (completed at $at s guest uptime)"
  ((s > stall_ns)) && stall_ns=$s
  ((bl > baseline_ns)) && baseline_ns=$bl
done
stall=$(awk -v n="$stall_ns" 'BEGIN { printf "%.2f", n / 1e9 }')
if [[ $scenario == leg-replaced ]]; then
  # Writes wait for the operator, by design: printed, not judged.
  target=n/a
elif [[ $log == disk ]]; then
  target=0.50
else
  # corosync's detection: the token timeout plus the consensus timeout (1.2 x token).
  target=$(awk -v t=$token_ms 'BEGIN { printf "%.2f", t * 2.2 / 1000 + 0.5 }')
fi
baseline=$(awk -v n="$baseline_ns" 'BEGIN { printf "%.2f", n / 1e9 }')
echo "survivors' write stall: ${stall} s (target ${target} s; longest write of the baseline phase ${baseline} s)"
if ((judge_stall)) && [[ $target != n/a ]]; then
  awk -v s="$stall" -v t="$target" 'BEGIN { exit !(s <= t) }' ||
    problem "the survivors' write stall ${stall} s is over the target ${target} s"
fi

verdict=PASS
((ok)) || verdict=FAIL
for p in "${problems[@]}"; do echo "  problem: $p"; done
if ((!ok)); then
  # What a failed row needs to be understood where its work directory is gone (CI): every
  # warning and error each daemon logged.
  for i in 1 2 3; do
    grep -hE "\] (warning|error):" "$out/vm$i/clogd.log" 2>/dev/null | sed "s/^/  node $i: /" || true
  done
fi
row=$(printf '%-32s %7s %7s %9s %9s %8s %9s %9s  %s' "$name" "$stall" "$target" \
  "$resynced_total" "$expected_total" "$matched" "$verified" "$timeouts" "$verdict")
echo "$row" | tee "$work/row.tsv"
[[ $verdict == PASS ]]
