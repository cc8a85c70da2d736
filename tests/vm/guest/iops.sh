# Guest job (3 VMs, fio layer) of scripts/bench/vm-iops.sh: fio 4k randwrite, iodepth 16,
# libaio, direct, RUNTIME seconds (after a 2 s ramp) on each configuration, first on VM 1
# alone (the other two are cluster members, idle), then on all three at once, each VM on its
# own third of the device. fio's JSON goes to $VM_OUT/fio-<config>-<one|all>.json.
# Disks: vda = clustered-disk log device, vdb = local disk logs (1 MiB per VM, a linear
# part), vdc, vdd = the legs. Mirrors are created with nosync: the write path, not a resync.
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

CONFIGS=${CONFIGS:-raw core disk cdisk ccore}
RUNTIME=${RUNTIME:-10}

corosync_start_all

modprobe dm-mod
modprobe dm-mirror
clogd_start --cluster
dmsetup create locallog --table "0 2048 linear /dev/vdb $((VM_ID * 2048))" ||
  fail "dmsetup create locallog"
barrier clogd-up

len=$(blockdev --getsz /dev/vdc)
third_mib=$((len * 512 / VM_COUNT / 1048576))
legs="2 /dev/vdc 0 /dev/vdd 0"
table_of() {
  case $1 in
    core) echo "0 $len mirror core 2 1024 nosync $legs" ;;
    disk) echo "0 $len mirror disk 3 /dev/mapper/locallog 1024 nosync $legs" ;;
    cdisk) echo "0 $len mirror cluster 5 disk bench_cdisk /dev/vda 1024 nosync $legs" ;;
    ccore) echo "0 $len mirror cluster 4 core bench_ccore 1024 nosync $legs" ;;
  esac
}

for cfg in $CONFIGS; do
  dev=/dev/vdc
  if [ "$cfg" != raw ]; then
    dmsetup create "b_$cfg" --table "$(table_of "$cfg")" || fail "$cfg: dmsetup create refused"
    wait_for "b_$cfg to be in sync ($(mirror_sync "b_$cfg") now)" 120 mirror_in_sync "b_$cfg" ||
      fail "$cfg: not in sync: $(dmsetup status "b_$cfg")"
    dev=/dev/mapper/b_$cfg
  fi
  for phase in one all; do
    barrier "$cfg-$phase-start"
    if [ "$phase" = all ] || [ "$VM_ID" = 1 ]; then
      fio --name="$cfg" --filename="$dev" --direct=1 --ioengine=libaio --iodepth=16 \
        --rw=randwrite --bs=4k --offset="$(((VM_ID - 1) * third_mib))M" --size="${third_mib}M" \
        --time_based --runtime="$RUNTIME" --ramp_time=2 --randrepeat=0 \
        --output-format=json --output="$VM_OUT/fio-$cfg-$phase.json" ||
        fail "$cfg: fio failed"
    fi
    barrier "$cfg-$phase-done"
  done
  # Clustered mirrors stay active (idle) to the end: removing one on every VM hangs the
  # last VM's DTR once the others left the log's group (1 of 3 is no quorum; tests/vm/README).
  case $cfg in core | disk) dmsetup remove "b_$cfg" || fail "$cfg: dmsetup remove" ;; esac
  barrier "$cfg-removed"
  echo "node $VM_ID: $cfg done"
done
echo "node $VM_ID: done"
