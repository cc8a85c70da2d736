# Guest job (1 VM): the mirror table forms served by clogd (single-node mode) with
# dm-log-cluster.ko: seed disk form, seed core form, and LVM's userspace clustered-disk form.
# Disks: vda = log device, vdb, vdc = legs, vdd = a second log device (LVM form).
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

len=$(blockdev --getsz /dev/vdb)
a=$(majmin /dev/vdb)
b=$(majmin /dev/vdc)
modprobe dm-mod
clogd_start --node-id 1

# Nothing loads dm-log-cluster by hand: dm-raid1 asks for "dm-log-cluster" itself.
check_mirror seed \
  "0 $len mirror cluster 5 disk seed_uuid /dev/vda 1024 block_on_error 2 /dev/vdb 0 /dev/vdc 0 1 handle_errors" \
  "0 $len mirror cluster 5 disk seed_uuid /dev/vda 1024 block_on_error 2 $a 0 $b 0 1 handle_errors" \
  "3 clustered-disk /dev/vda A"
grep -q "^dm_log_cluster " /proc/modules || fail "dm_log_cluster is not loaded after a cluster table"
dmesg | grep -q "cluster log: seed_uuid: block_on_error holds failed writes only if" ||
  fail "no warning about block_on_error in dmesg"

check_mirror core \
  "0 $len mirror cluster 3 core core_uuid 1024 2 /dev/vdb 0 /dev/vdc 0 1 handle_errors" \
  "0 $len mirror cluster 3 core core_uuid 1024 2 $a 0 $b 0 1 handle_errors" \
  "1 clustered-core"

# Options in another order come back in canonical order.
check_mirror opts \
  "0 $len mirror cluster 5 core opts_uuid 1024 block_on_error nosync 2 /dev/vdb 0 /dev/vdc 0" \
  "0 $len mirror cluster 5 core opts_uuid 1024 nosync block_on_error 2 $a 0 $b 0" \
  "1 clustered-core"

check_mirror lvm \
  "0 $len mirror userspace 4 lvm_uuid clustered-disk /dev/vdd 1024 2 /dev/vdb 0 /dev/vdc 0 1 handle_errors" \
  "0 $len mirror userspace 4 lvm_uuid clustered-disk /dev/vdd 1024 2 $a 0 $b 0 1 handle_errors" \
  "3 clustered-disk /dev/vdd A"

clogd_stop
echo "all table forms passed"
