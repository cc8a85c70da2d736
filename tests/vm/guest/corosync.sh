# Guest job (3 VMs): corosync (knet over the VMs' bridge) reaches a membership of all the
# VMs with quorum on every VM. A barrier keeps every VM up until all have seen it.
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
barrier seen-all
kill "$COROSYNC_PID"
