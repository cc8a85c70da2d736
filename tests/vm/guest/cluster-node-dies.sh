# Guest job (3 VMs) of scripts/demo.sh and vm_cluster_node_dies: the seed-syntax clustered
# mirror on all VMs (clogd --cluster over corosync), every VM writes its own range, then the
# victim (VM $VICTIM, default the last) keeps writing until the host kills its QEMU (-9); the
# survivors see it leave, resync what it had marked, reach in sync and remove the mirror.
# Disks: vda = log device, vdb, vdc = legs (32 MiB: 64 regions of 512 KiB).
#
# Ranges, in 64 KiB units (a region is 8): VM i owns [i*128, i*128+128) (8 MiB); it writes a
# 1 MiB chunk at i*128+16 (saved as $VM_OUT/chunk for the host's check); the victim's
# endless writers (one per region) rewrite the 8 regions from i*128+64.
# Files for the host: $VM_OUT/writing (victim: writers started), /host/status-shown (VM 1
# printed `clogctl status` while the victim wrote), $VM_OUT/left (survivors: clogd's line).
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

VICTIM=${VICTIM:-$VM_COUNT}
MIRROR_UUID=${MIRROR_UUID:-demo_cluster_mirror}
say() { echo "node $VM_ID: $*"; }

corosync_start_all

modprobe dm-mod
clogd_start --cluster
barrier clogd-up
len=$(blockdev --getsz /dev/vdb)
table="0 $len mirror cluster 5 disk $MIRROR_UUID /dev/vda 1024 block_on_error 2 /dev/vdb 0 /dev/vdc 0 1 handle_errors"
dmsetup create cm --table "$table" || fail "dmsetup create refused: $table"
[ "$VM_ID" = 1 ] && say "table: $table"
wait_for "cm to be in sync ($(mirror_sync cm) now)" 300 mirror_in_sync cm ||
  fail "not in sync: $(dmsetup status cm)"
expect_equal "node $VM_ID: leg health" "$(mirror_health cm)" "AA"
say "initial sync done: $(mirror_sync cm) regions in sync"
barrier synced

base=$((VM_ID * 128))
dd if=/dev/urandom of="$VM_OUT/chunk" bs=64k count=16 2>/dev/null
dd if="$VM_OUT/chunk" of=/dev/mapper/cm bs=64k seek=$((base + 16)) count=16 oflag=direct \
  2>/dev/null || fail "write through the mirror"
say "wrote 1 MiB at $((base / 16 + 1)) MiB (regions $(((base + 16) / 8))-$(((base + 31) / 8)))"
barrier written

if [ "$VM_ID" = "$VICTIM" ]; then
  # Eight writers, one per region, each rewriting its region over and over: most of the 8
  # regions have a write in flight (are marked) at any time.
  dd if=/dev/urandom of=/tmp/rand bs=64k count=8 2>/dev/null
  for r in 0 1 2 3 4 5 6 7; do
    (
      while :; do
        dd if=/tmp/rand of=/dev/mapper/cm bs=64k seek=$((base + 64 + r * 8)) count=8 \
          oflag=direct 2>/dev/null || exit 1
      done
    ) &
  done
  touch "$VM_OUT/writing"
  say "writing in a loop to regions $(((base + 64) / 8))-$(((base + 127) / 8)) until killed"
  WAIT_INTERVAL_US=1000000
  wait_for "the host to kill this VM" 300 false
  fail "the host did not kill VM $VM_ID"
fi

if [ "$VM_ID" = 1 ]; then
  wait_for "VM $VICTIM to start writing" 120 test -e "/host/vm$VICTIM/writing" ||
    fail "VM $VICTIM did not start writing"
  victim_marked() { clogctl status | grep -qE "node $VICTIM \(device\): [1-9]"; }
  wait_for "clogctl status to show node $VICTIM's marks" 60 victim_marked ||
    say "(node $VICTIM's marks did not show in clogctl status within 60 s)"
  say "clogctl status while node $VICTIM writes:"
  clogctl status | tee "$VM_OUT/status-before.txt"
  touch /host/status-shown
fi

left_logged() { grep -q "node $VICTIM left" "$VM_OUT/clogd.log"; }
wait_for "clogd to log that node $VICTIM left" 180 left_logged ||
  fail "node $VICTIM's departure was not logged (clogd.log tail: $(tail -n 5 "$VM_OUT/clogd.log"))"
grep "node $VICTIM left" "$VM_OUT/clogd.log" | tail -n 1 | tee "$VM_OUT/left"
clogctl status --json >"$VM_OUT/status-after-left.json" || true
if [ "$VM_ID" = 1 ]; then
  say "resync progress (clogctl status --watch):"
  clogctl status --watch --interval 1 --count 3 || true
fi
wait_for "cm to be in sync again ($(mirror_sync cm) now)" 300 mirror_in_sync cm ||
  fail "not in sync after node $VICTIM died: $(dmsetup status cm)"
say "in sync again: $(mirror_sync cm), legs $(mirror_health cm)"
if [ "$VM_ID" = 1 ]; then
  say "clogctl status after the resync:"
  clogctl status | tee "$VM_OUT/status-after.txt"
fi

# The survivors' own barrier (the victim never reaches it). The mirror stays active: the
# second survivor to remove it would be alone in the log's group, 1 of 3 nodes, no quorum,
# and its DTR would wait (see tests/vm/README.md). The host compares the legs: no I/O is in
# flight and the mirror is in sync.
mkdir -p /host/barrier-survivors-done
touch "/host/barrier-survivors-done/$VM_ID"
wait_for "both survivors done" 120 \
  sh -c "[ \$(ls /host/barrier-survivors-done | wc -l) -ge $((VM_COUNT - 1)) ]" ||
  fail "the other survivor did not finish"
say "done"
