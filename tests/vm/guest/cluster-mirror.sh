# Guest job (3 VMs): the seed-syntax mirror active on all three VMs at once over the same
# shared disks, served by `clogd --cluster` (corosync CPG): every VM sees it reach in sync,
# each writes its own 1 MiB slice through it (the host checks both legs are identical and
# hold every slice). The mirror stays active until the VMs stop: removing it on every node
# can hang the last one (a log is served only while a majority holds it, logd/CLUSTER.md). Disks: vda = log device, vdb, vdc = legs.
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

corosync_start
WAIT_INTERVAL_US=1000000
want=$(seq 1 "$VM_COUNT" | tr '\n' ' ')
members_are_all() { [ "$(corosync_members)" = "$want" ]; }
wait_for "corosync membership '$want' (now '$(corosync_members)')" 120 members_are_all ||
  fail "membership not reached: $(corosync-quorumtool -s 2>&1)"
WAIT_INTERVAL_US=100000

modprobe dm-mod
clogd_start --cluster
barrier clogd-up
len=$(blockdev --getsz /dev/vdb)
dmsetup create cm --table \
  "0 $len mirror cluster 5 disk cl_uuid /dev/vda 1024 block_on_error 2 /dev/vdb 0 /dev/vdc 0 1 handle_errors" ||
  fail "dmsetup create refused the seed table"
echo "node $VM_ID: created: $(dmsetup status cm)"
wait_for "cm to be in sync ($(mirror_sync cm) now)" 240 mirror_in_sync cm ||
  fail "not in sync: $(dmsetup status cm)"
expect_equal "node $VM_ID: leg health" "$(mirror_health cm)" "AA"
echo "node $VM_ID: in sync: $(dmsetup status cm)"

dd if=/dev/urandom of=/tmp/slice bs=1M count=1 2>/dev/null
dd if=/tmp/slice of=/dev/mapper/cm bs=1M seek=$((VM_ID * 4)) count=1 oflag=direct 2>/dev/null ||
  fail "write through the mirror"
cp /tmp/slice "/host/slice$VM_ID"
barrier written
echo "node $VM_ID: done"
