# Guest job (3 VMs): corosync (knet over the VMs' bridge) reaches a membership of all the
# VMs with quorum on every VM; and the shared disk /dev/vda is shared for real: what VM 1
# writes (O_DIRECT) every VM reads back (O_DIRECT). Barriers keep every VM up until all are
# done.
set -e
. /etc/clogvm-lib.sh

corosync_start
# Each corosync-quorumtool costs a lot of emulated CPU: ask once a second.
WAIT_INTERVAL_US=1000000
want=$(seq 1 "$VM_COUNT" | tr '\n' ' ')
members_are_all() { [ "$(corosync_members)" = "$want" ]; }
wait_for "corosync membership '$want' (now '$(corosync_members)')" 120 members_are_all ||
  fail "membership not reached: $(corosync-quorumtool -s 2>&1)"
wait_for "quorum" 30 corosync_quorate || fail "not quorate: $(corosync-quorumtool -s 2>&1)"
read -r up _ </proc/uptime
echo "node $VM_ID: members $(corosync_members)quorate, ${up}s after boot"
corosync-quorumtool -s

if [ "$VM_ID" = 1 ]; then
  head -c 4096 /dev/urandom >/host/shared-block
  dd if=/host/shared-block of=/dev/vda bs=4096 count=1 oflag=direct 2>/dev/null ||
    fail "cannot write the shared disk"
fi
barrier written
dd if=/dev/vda of=/tmp/block bs=4096 count=1 iflag=direct 2>/dev/null || fail "cannot read the shared disk"
cmp /tmp/block /host/shared-block || fail "VM $VM_ID does not read what VM 1 wrote to the shared disk"
echo "node $VM_ID: reads VM 1's block from the shared disk"
barrier done
kill "$COROSYNC_PID"
