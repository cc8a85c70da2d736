# Guest job (3 VMs, fio layer) of vm_cluster_fio_3_nodes: two clustered mirrors active on
# every VM at once, served by `clogd --cluster` over corosync: LVM's userspace form with a
# clustered-disk log (vda = log device, legs vdb, vdc) and the seed core form
# (clustered-core, legs vdd, vde). Every VM runs fio with crc32c verify on its own third of
# each mirror, all VMs and both mirrors at once; then each waits until both are in sync,
# both legs alive (the host then compares the legs). Then the VMs remove both mirrors one
# after another; the last one, alone in the logs' groups but in a whole corosync ring (quorum
# counts the ring), writes and verifies a little more first; every removal must finish
# within 60 s.
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

# dmsetup remove, which must finish within 60 s.
remove_bounded() {
  dmsetup remove "$1" &
  pid=$!
  wait_for "dmsetup remove $1 to finish" 60 sh -c "! kill -0 $pid 2>/dev/null" ||
    fail "dmsetup remove $1 hangs: $(tail -3 "$VM_OUT/clogd.log")"
  wait $pid || fail "dmsetup remove $1 failed"
}
i=1
while [ $i -le "$VM_COUNT" ]; do
  if [ "$i" = "$VM_ID" ]; then
    if [ "$i" = "$VM_COUNT" ]; then
      fio --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite --bs=4k \
        --offset="${offset}M" --size="${third}M" --io_size=1M --verify=crc32c \
        --verify_fatal=1 --randrepeat=0 --output="$VM_OUT/fio-alone.txt" \
        --name=disk --filename=/dev/mapper/cdisk --name=core --filename=/dev/mapper/ccore ||
        { cat "$VM_OUT/fio-alone.txt" >&2; fail "fio on the last VM with the mirrors failed"; }
      echo "node $VM_ID: alone with the mirrors, fio with verify passed"
    fi
    for m in cdisk ccore; do remove_bounded $m; done
    echo "node $VM_ID: removed cdisk and ccore"
  fi
  barrier "removed-$i"
  i=$((i + 1))
done
echo "node $VM_ID: done"
