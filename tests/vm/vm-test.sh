#!/usr/bin/env bash
# Host side of the vm tests (CTest label `vm`): checks what the tests need, prepares raw disk
# files, runs a guest script on QEMU VMs (scripts/vm/run.sh) and checks the results on the
# host. A missing prerequisite is a failure that names it, never a skip.
#
#   vm-test.sh TEST --build-dir DIR --work DIR [--ko FILE] [--missing TEXT]
# TEST: tables | bad-args | fio | corosync | cluster-mirror | cluster-fio | node-dies. --missing: why CMake could not build the module.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
test_name=${1:-}
shift || true
build_dir="" work="" ko="" missing=""
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --ko) ko=$2; shift 2 ;;
    --missing) missing=$2; shift 2 ;;
    *) echo "vm-test: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- prerequisites -----------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || fail "the vm tests need root (QEMU with tap networking, network namespaces)"
if [[ -z $ko || ! -f $ko ]]; then
  fail "dm-log-cluster.ko was not built${missing:+: $missing}" \
    "(install linux-headers-amd64 with scripts/install-deps.sh, re-run cmake, build target kmod)"
fi
for tool in qemu-system-x86_64 busybox fio cpio depmod corosync dmsetup cmp jq; do
  command -v "$tool" >/dev/null ||
    fail "'$tool' is not installed (scripts/install-deps.sh installs the vm test packages)"
done
for f in "$build_dir/logd/clogd" "$build_dir/logd/clogctl"; do
  [[ -x $f ]] || fail "$f is missing (build the clogd and clogctl targets)"
done

rm -rf "$work"
mkdir -p "$work/out"
run=("$repo/scripts/vm/run.sh" --build-dir "$build_dir" --out "$work/out"
  --file "$here/guest/common.sh")
MiB=$((1024 * 1024))

# new_disk NAME MiB: a zeroed raw disk file.
new_disk() {
  truncate -s "$(($2 * MiB))" "$work/$1"
  echo "$work/$1"
}

case $test_name in
  tables)
    log=$(new_disk log.img 4) a=$(new_disk a.img 32) b=$(new_disk b.img 32) log2=$(new_disk log2.img 4)
    # Leg A holds data leg B lacks: only a real resync makes them equal.
    head -c $((32 * MiB)) /dev/urandom >"$a"
    "${run[@]}" --disk "$log" --disk "$a" --disk "$b" --disk "$log2" --timeout 300 \
      "$here/guest/tables.sh" || fail "guest job failed (results in $work/out)"
    cat "$work/out/vm1/stdout"
    cmp "$a" "$b" || fail "the legs differ after the mirrors were in sync and removed"
    echo "ok: legs byte-identical after the resyncs (host cmp)"
    ;;

  bad-args)
    log=$(new_disk log.img 4) a=$(new_disk a.img 32) b=$(new_disk b.img 32)
    "${run[@]}" --disk "$log" --disk "$a" --disk "$b" --timeout 200 \
      "$here/guest/bad-args.sh" || fail "guest job failed (results in $work/out)"
    cat "$work/out/vm1/stdout"
    ;;

  fio)
    log=$(new_disk log.img 4) a=$(new_disk a.img 64) b=$(new_disk b.img 64)
    # Leg A starts with data leg B lacks, so the initial resync has something to copy.
    head -c $((64 * MiB)) /dev/urandom >"$a"
    "${run[@]}" --fio --disk "$log" --disk "$a" --disk "$b" --timeout 400 \
      "$here/guest/fio-write.sh" || fail "phase 1 (fio) failed (results in $work/out)"
    cat "$work/out/vm1/stdout"
    cmp "$a" "$b" || fail "after fio and resync the legs are not byte-identical"
    echo "ok: legs byte-identical after fio with verify (host cmp)"
    inspect=$("$build_dir/logd/clogctl" inspect "$log" --json) ||
      fail "clogctl inspect found damage: $inspect"
    echo "log device: $inspect"
    jq -e '.dm_log_valid and .bitmap_set == .regions and all(.slots[]; (.dirty | length) == 0)' \
      <<<"$inspect" >/dev/null ||
      fail "the log device is not a clean dm-log after deactivation (want dm_log_valid," \
        "every region clean, no dirty slot)"
    echo "ok: log device part 1 is a valid dm-log with every region clean"

    # Phase 2: plant one differing byte in leg B; a plain mirror must not resync it away.
    plant=$((40 * MiB + 12345))
    byte=$(od -A n -t u1 -j "$plant" -N 1 "$a" | tr -d ' ')
    printf "\\$(printf %o $((255 - byte)))" |
      dd of="$b" bs=1 seek="$plant" conv=notrunc status=none
    "${run[@]}" --disk "$log" --disk "$a" --disk "$b" --timeout 200 \
      "$here/guest/plain-mirror.sh" || fail "phase 2 (plain mirror disk) failed (results in $work/out)"
    cat "$work/out/vm1/stdout"
    diffs=$( (cmp -l "$a" "$b" || true) | awk '{ print $1 - 1 }' | tr '\n' ' ')
    [[ $diffs == "$plant " ]] ||
      fail "after the plain mirror ran, the legs differ at byte(s) '${diffs:0:200}'," \
        "expected only the planted byte $plant: the plain mirror resynced (or wrote)"
    echo "ok: plain mirror disk in sync without a resync (planted byte $plant untouched)"
    ;;

  corosync)
    shared=$(new_disk shared.img 1)
    "${run[@]}" --vms 3 --disk "$shared" --timeout 300 "$here/guest/corosync.sh" ||
      fail "guest job failed (results in $work/out)"
    for i in 1 2 3; do grep "^node $i:" "$work/out/vm$i/stdout"; done
    cmp <(head -c 4096 "$shared") "$work/out/shared-block" ||
      fail "the shared disk file does not hold what VM 1 wrote"
    ;;

  cluster-mirror)
    log=$(new_disk log.img 4) a=$(new_disk a.img 32) b=$(new_disk b.img 32)
    head -c $((32 * MiB)) /dev/urandom >"$a"
    "${run[@]}" --vms 3 --disk "$log" --disk "$a" --disk "$b" --timeout 400 \
      "$here/guest/cluster-mirror.sh" || fail "guest job failed (results in $work/out)"
    for i in 1 2 3; do grep "^node $i: in sync" "$work/out/vm$i/stdout"; done
    cmp "$a" "$b" || fail "the legs differ after every VM wrote through the clustered mirror"
    for i in 1 2 3; do
      cmp <(dd if="$a" bs=1M skip=$((i * 4)) count=1 status=none) "$work/out/slice$i" ||
        fail "VM $i's slice is not on the legs"
    done
    echo "ok: legs byte-identical and holding every VM's slice (host cmp)"
    ;;

  cluster-fio)
    log=$(new_disk log.img 4)
    a=$(new_disk a.img 24) b=$(new_disk b.img 24) c=$(new_disk c.img 24) d=$(new_disk d.img 24)
    head -c $((24 * MiB)) /dev/urandom >"$a"
    head -c $((24 * MiB)) /dev/urandom >"$c"
    # A 5 s token: a VM starved of CPU by fio on a loaded host must not drop out of the ring.
    "${run[@]}" --vms 3 --fio --env COROSYNC_TOKEN_MS=5000 --disk "$log" --disk "$a" --disk "$b" --disk "$c" --disk "$d" \
      --timeout 600 "$here/guest/cluster-fio.sh" || fail "guest job failed (results in $work/out)"
    for i in 1 2 3; do
      grep "^node $i: fio with verify passed" "$work/out/vm$i/stdout" ||
        fail "VM $i did not report fio's verify"
      grep "^node $i: cdisk in sync" "$work/out/vm$i/stdout" || fail "VM $i: cdisk not in sync"
      grep "^node $i: ccore in sync" "$work/out/vm$i/stdout" || fail "VM $i: ccore not in sync"
      grep "^node $i: removed cdisk and ccore" "$work/out/vm$i/stdout" ||
        fail "VM $i did not remove its mirrors"
    done
    grep "^node 3: alone with the mirrors, fio with verify passed" "$work/out/vm3/stdout" ||
      fail "VM 3, the last with the mirrors, did not write and verify alone"
    cmp "$a" "$b" || fail "the clustered-disk mirror's legs differ after fio from 3 nodes"
    cmp "$c" "$d" || fail "the clustered-core mirror's legs differ after fio from 3 nodes"
    echo "ok: both mirrors' legs byte-identical after fio from 3 nodes and their removal everywhere (host cmp)"
    ;;

  node-dies)
    # The 3-VM demo is this test: node 3 killed while writing, survivors resync its marks.
    "$repo/scripts/demo.sh" --build-dir "$build_dir" --work "$work" --no-deps --no-build ||
      fail "the node-death demo failed (results in $work/out)"
    ;;

  *)
    echo "vm-test: unknown test '$test_name' (tables, bad-args, fio, corosync, cluster-mirror, cluster-fio, node-dies)" >&2
    exit 2
    ;;
esac
echo "PASS: vm $test_name"
