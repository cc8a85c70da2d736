# Guest job (1 VM), phase 2: the disks of a cleanly shut down clustered mirror assemble as a
# plain single-node `mirror disk` that is in sync at once (the log device's part 1 is a
# valid dm-log disk log). The host planted one differing byte in leg B before this run: if
# the kernel resynced anything it would copy leg A over it, so the host checks it survived.
# Nothing writes to the mirror. Disks: vda = log device, vdb, vdc = legs.
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

len=$(blockdev --getsz /dev/vdb)
regions=$(( (len + 1023) / 1024 ))
modprobe dm-mod
dmsetup create plain --table "0 $len mirror disk 2 /dev/vda 1024 2 /dev/vdb 0 /dev/vdc 0" ||
  fail "dmsetup create refused the plain mirror"
expect_equal "in sync right after activation" "$(mirror_sync plain)" "$regions/$regions"
expect_equal "log status" "$(mirror_log_status plain)" "3 disk $(majmin /dev/vda) A"
dmsetup suspend plain
dmsetup resume plain
expect_equal "in sync after suspend/resume" "$(mirror_sync plain)" "$regions/$regions"
dmsetup remove plain
sync
echo "phase 2 done"
