# Guest job (3 VMs, fio layer) of vm_cluster_fio_3_nodes: two clustered mirrors active on
# every VM at once, served by `clogd --cluster` over corosync: LVM's userspace form with a
# clustered-disk log (vda = log device, legs vdb, vdc) and the seed core form
# (clustered-core, legs vdd, vde). Every VM runs fio with crc32c verify on its own third of
# each mirror, all VMs and both mirrors at once; then each waits until both are in sync,
# both legs alive (the host then compares the legs). The mirrors are left active: removing
# them on every VM hangs the last VM's DTR once the others have left the log's group
# (a view of 1 of 3 nodes has no quorum; see tests/vm/README.md).
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

corosync_start_all

modprobe dm-mod
clogd_start --cluster
barrier clogd-up
len=$(blockdev --getsz /dev/vdb)
dmsetup create cdisk --table \
  "0 $len mirror userspace 4 LVM-fio_disk clustered-disk /dev/vda 1024 2 /dev/vdb 0 /dev/vdc 0 1 handle_errors" ||
  fail "dmsetup create refused the userspace clustered-disk table"
dmsetup create ccore --table \
  "0 $len mirror cluster 3 core fio_core 1024 2 /dev/vdd 0 /dev/vde 0 1 handle_errors" ||
  fail "dmsetup create refused the seed core table"
for m in cdisk ccore; do
  wait_for "$m to be in sync ($(mirror_sync $m) now)" 300 mirror_in_sync $m ||
    fail "$m not in sync: $(dmsetup status $m)"
done
echo "node $VM_ID: both mirrors in sync before fio"
barrier synced

# This VM's third of each mirror, aligned to 1 MiB.
third=$((len * 512 / VM_COUNT / 1048576))
offset=$(((VM_ID - 1) * third))
fio --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite --bsrange=4k-64k \
  --offset="${offset}M" --size="${third}M" --io_size="${FIO_IO_SIZE:-4M}" \
  --verify=crc32c --verify_fatal=1 --randrepeat=0 --output="$VM_OUT/fio.txt" \
  --name=disk --filename=/dev/mapper/cdisk --name=core --filename=/dev/mapper/ccore ||
  { cat "$VM_OUT/fio.txt" >&2; fail "fio reported an error"; }
grep -E "WRITE:|READ:" "$VM_OUT/fio.txt"
echo "node $VM_ID: fio with verify passed on ${offset}M+${third}M of cdisk and ccore"
barrier fio-done

for m in cdisk ccore; do
  wait_for "$m to be in sync ($(mirror_sync $m) now)" 300 mirror_in_sync $m ||
    fail "$m not in sync after fio: $(dmsetup status $m)"
  expect_equal "node $VM_ID: $m leg health" "$(mirror_health $m)" "AA"
  echo "node $VM_ID: $m in sync: $(dmsetup status $m)"
done
barrier checked
echo "node $VM_ID: done"
