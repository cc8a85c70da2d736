# Guest job (1 VM, fio layer), phase 1: fio writes with verify through a seed-syntax
# clustered mirror (clogd single-node) while its initial resync runs; then the mirror is
# in sync, is removed, and clogd (its DTR) writes the clean shutdown to the log device.
# Disks: vda = log device, vdb, vdc = legs. The host then compares the legs.
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

len=$(blockdev --getsz /dev/vdb)
modprobe dm-mod
clogd_start --node-id 1
dmsetup create fiom --table \
  "0 $len mirror cluster 5 disk fio_uuid /dev/vda 1024 block_on_error 2 /dev/vdb 0 /dev/vdc 0 1 handle_errors" ||
  fail "dmsetup create refused the seed table"
echo "at start: $(dmsetup status fiom)"

fio --name=verify --filename=/dev/mapper/fiom --direct=1 --ioengine=libaio --iodepth=8 \
  --rw=randwrite --bsrange=4k-64k --size=100% --io_size="${FIO_IO_SIZE:-16M}" \
  --verify=crc32c --verify_fatal=1 --randrepeat=0 --output="$VM_OUT/fio.txt" ||
  { cat "$VM_OUT/fio.txt" >&2; fail "fio reported an error"; }
grep -E "WRITE:|READ:" "$VM_OUT/fio.txt"
echo "after fio: $(dmsetup status fiom)"

wait_for "fiom to be in sync ($(mirror_sync fiom) now)" 300 mirror_in_sync fiom ||
  fail "not in sync: $(dmsetup status fiom)"
expect_equal "leg health" "$(mirror_health fiom)" "AA"
dmsetup remove fiom || fail "dmsetup remove"
clogd_stop
sync
echo "phase 1 done"
