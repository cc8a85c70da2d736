#!/usr/bin/env bash
# The main job end to end: a clustered mirror (seed syntax, clustered-disk log) active on 3
# QEMU VMs that boot the Debian kernel, served by `clogd --cluster` over corosync. Every
# node writes its own range; node 3 is killed (QEMU kill -9) while it writes; the two
# survivors resync exactly the regions node 3 had marked; the host checks the legs are
# byte-identical. Root on Debian 12 with QEMU; without QEMU: scripts/demo-single-node.sh.
#
#   scripts/demo.sh [--build-dir DIR] [--work DIR] [--no-deps] [--no-build]
# Also the body of the vm test vm_cluster_node_dies (tests/vm/vm-test.sh node-dies).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$repo/build work="" deps=1 build=1
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --no-deps) deps=0; shift ;;
    --no-build) build=0; shift ;;
    *) echo "demo: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
step() { printf '\n== [%3ds] %s\n' "$((SECONDS - t0))" "$*"; }
t0=$SECONDS
[[ $(id -u) -eq 0 ]] || fail "needs root (QEMU with tap networking, network namespaces)"

if ((deps)); then
  step "installing Debian packages (scripts/install-deps.sh)"
  "$repo/scripts/install-deps.sh"
fi
if ((build)); then
  step "building clogd, clogctl and dm-log-cluster.ko in $build_dir"
  cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" -j "$(nproc)" --target clogd clogctl kmod
fi
clogctl=$build_dir/logd/clogctl
for f in "$build_dir/logd/clogd" "$clogctl" "$build_dir/kmod/src/dm-log-cluster.ko"; do
  [[ -f $f ]] || fail "$f is missing (build the clogd, clogctl and kmod targets)"
done
for tool in qemu-system-x86_64 jq cmp; do
  command -v "$tool" >/dev/null || fail "'$tool' is not installed (scripts/install-deps.sh)"
done

if [[ -z $work ]]; then
  work=$(mktemp -d /var/tmp/clogd-demo.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
rm -rf "$work"
mkdir -p "$work/out"
out=$work/out
MiB=$((1024 * 1024))
log=$work/log.img a=$work/a.img b=$work/b.img
truncate -s $((4 * MiB)) "$log"
truncate -s $((32 * MiB)) "$b"
# Leg A starts with data leg B lacks: the initial resync has to copy it.
head -c $((32 * MiB)) /dev/urandom >"$a"
victim=3

step "starting 3 VMs (corosync, clogd --cluster, the mirror on all three); node $victim will be killed"
"$repo/scripts/vm/run.sh" --build-dir "$build_dir" --vms 3 --may-die "$victim" --timeout 600 \
  --out "$out" --env VICTIM=$victim --env COROSYNC_TOKEN_MS=5000 --file "$repo/tests/vm/guest/common.sh" \
  --disk "$log" --disk "$a" --disk "$b" "$repo/tests/vm/guest/cluster-node-dies.sh" \
  >"$work/run.log" 2>&1 &
run_pid=$!

# wait_host WHAT SECONDS CMD...: poll CMD every 0.2 s; fail naming WHAT after SECONDS or when
# the VMs' run ended first.
wait_host() {
  local what=$1 limit=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "$run_pid" 2>/dev/null; then
      cat "$work/run.log" >&2
      fail "the VMs' run ended while waiting for: $what"
    fi
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for: $what"
    sleep 0.2
  done
}
victim_marks() {
  "$clogctl" inspect --json "$log" 2>/dev/null |
    jq -c --argjson n "$victim" '[.slots[] | select(.node == $n) | .dirty[]] | sort'
}

wait_host "every node in sync and writing, node 1 showing clogctl status" 540 \
  test -e "$out/status-shown"
sed 's/^/   /' "$out/vm1/stdout"
# Kill right after a read of the log image shows node 3's slot holding marks.
deadline=$((SECONDS + 60))
while :; do
  seen=$(victim_marks) || seen=""
  [[ -n $seen && $seen != "[]" ]] && break
  ((SECONDS < deadline)) || fail "node $victim's slot held no marks within 60 s"
  kill -0 "$run_pid" 2>/dev/null || { cat "$work/run.log" >&2; fail "the VMs' run ended early"; }
done
kill -KILL "$(cat "$out/vm$victim/qemu.pid")"
step "killed node $victim (kill -9 of its QEMU) in the middle of its writes; its slot just before: $seen"
marks=$(victim_marks)
nmarks=$(jq length <<<"$marks")
echo "   node $victim's slot on the log device after it died (host: clogctl inspect): $nmarks regions $marks"
((nmarks > 0)) || fail "node $victim died with no region marked: nothing to show (run again)"

step "survivors: node $victim leaves the membership; its marked regions are resynced"
wait_host "the survivors to finish" 400 test -e "$out/barrier-survivors-done/2"
run_rc=0
wait "$run_pid" || run_rc=$?
cat "$work/run.log"
((run_rc == 0)) || fail "the VMs' run failed (exit $run_rc; results in $out)"
for i in 1 2; do
  echo "   node $i: clogd: $(cat "$out/vm$i/left")"
done
sed -n '/ left: /,$p' "$out/vm1/stdout" | sed 's/^/   /'

step "checks on the host"
ok=1
for i in 1 2; do
  k=$(sed -n 's/.* left: \([0-9]*\) of its regions are out of sync.*/\1/p' "$out/vm$i/left")
  if [[ $k == "$nmarks" ]]; then
    echo "   ok: node $i made exactly node $victim's $nmarks marked regions out of sync"
  else
    echo "   MISMATCH: node $i made '$k' regions out of sync, node $victim had $nmarks marked" >&2
    ok=0
  fi
done
if cmp "$a" "$b"; then
  echo "   ok: legs byte-identical (cmp, 32 MiB)"
else
  ok=0
fi
for i in 1 2 3; do
  if cmp <(dd if="$a" bs=64k skip=$((i * 128 + 16)) count=16 status=none) "$out/vm$i/chunk"; then
    echo "   ok: node $i's 1 MiB is on the legs"
  else
    ok=0
  fi
done
after=$(grep -h 'in sync again' "$out"/vm[12]/stdout | head -n 1)

step "summary ($((SECONDS - t0)) s)"
echo "   3 VMs, clustered-disk mirror, 64 regions; node $victim killed with $nmarks regions marked $marks"
echo "   survivors resynced them: $after"
((ok)) || fail "see the checks above (results in $out)"
echo "demo: OK"
