# Guest job (3 VMs, fio layer) of scripts/bench/vm-iops.sh: fio 4k randwrite, iodepth 16,
# libaio, direct, RUNTIME seconds (after a 2 s ramp) on each configuration, first on VM 1
# alone (the other two are cluster members, idle), then on all three at once, each VM on its
# own third of the device. ROUNDS rounds, each through every configuration in turn, so each
# configuration is measured beside the reference several times as the host's load drifts.
# fio's JSON goes to $VM_OUT/fio-<config>-<one|all>-r<round>.json. A fio still running
# RUNTIME + 90 s after it started is stuck: requests in flight per disk, fio's kernel
# stacks, the blocked tasks (sysrq w), dmesg and the device-mapper status go to
# $VM_OUT/hang-<config>-<phase>-r<round>.txt and the job fails.
# cdisk0 and ccore0 are cdisk and ccore with dm-log-cluster's in-sync cache off (module
# parameter in_sync_cache=0 when the table is created): every IN_SYNC goes to clogd, as for
# an LVM `mirror userspace` table.
# Disks: vda = the clustered-disk log devices (two linear parts), vdb = local disk logs (1 MiB per VM, a linear
# part), vdc, vdd = the legs. Mirrors are created with nosync: the write path, not a resync.
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

CONFIGS=${CONFIGS:-raw core disk cdisk ccore}
RUNTIME=${RUNTIME:-10}
ROUNDS=${ROUNDS:-1}

corosync_start_all

modprobe dm-mod
modprobe dm-mirror
clogd_start --cluster
dmsetup create locallog --table "0 2048 linear /dev/vdb $((VM_ID * 2048))" ||
  fail "dmsetup create locallog"
# Two clustered-disk log devices (4 MiB each): cdisk and cdisk0 stay active side by side.
dmsetup create clog_a --table "0 8192 linear /dev/vda 0" || fail "dmsetup create clog_a"
dmsetup create clog_b --table "0 8192 linear /dev/vda 8192" || fail "dmsetup create clog_b"
barrier clogd-up

len=$(blockdev --getsz /dev/vdc)
third_mib=$((len * 512 / VM_COUNT / 1048576))
legs="2 /dev/vdc 0 /dev/vdd 0"
table_of() {
  case $1 in
    core) echo "0 $len mirror core 2 1024 nosync $legs" ;;
    disk) echo "0 $len mirror disk 3 /dev/mapper/locallog 1024 nosync $legs" ;;
    cdisk) echo "0 $len mirror cluster 5 disk bench_cdisk /dev/mapper/clog_a 1024 nosync $legs" ;;
    ccore) echo "0 $len mirror cluster 4 core bench_ccore 1024 nosync $legs" ;;
    cdisk0) echo "0 $len mirror cluster 5 disk bench_cdisk0 /dev/mapper/clog_b 1024 nosync $legs" ;;
    ccore0) echo "0 $len mirror cluster 4 core bench_ccore0 1024 nosync $legs" ;;
  esac
}

# hang_report FILE: what a fio that never finished waits for: requests in flight
# per block device (a completion the disk never delivered shows here), fio's processes'
# states and kernel stacks, the device-mapper state, and dmesg with the blocked tasks.
hang_report() {
  echo w >/proc/sysrq-trigger 2>/dev/null || true
  {
    echo "== in flight (reads writes) per block device"
    for d in /sys/block/*; do echo "${d##*/}: $(cat "$d/inflight" 2>&1)"; done
    echo "== fio processes: state, wchan, kernel stack"
    for c in /proc/[0-9]*/comm; do
      [ "$(cat "$c" 2>/dev/null)" = fio ] || continue
      for t in "${c%/comm}"/task/*; do
        echo "-- $t: $(awk '{ print $3 }' "$t/stat" 2>&1) $(cat "$t/wchan" 2>&1)"
        cat "$t/stack" || true
      done
    done
    echo "== dmsetup status"
    dmsetup status || true
    echo "== dmsetup table"
    dmsetup table || true
    echo "== dmesg (blocked tasks last)"
    dmesg || true
  } >"$1" 2>&1
}

# exited PID: the process is gone or a zombie (fio's comm has no space, so field 3 is the state).
exited() {
  [ ! -e "/proc/$1/stat" ] || [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# run_fio CFG PHASE ROUND DEV: fio on this VM's third of DEV, bounded.
run_fio() {
  fio --name="$1" --filename="$4" --direct=1 --ioengine=libaio --iodepth=16 \
    --rw=randwrite --bs=4k --offset="$(((VM_ID - 1) * third_mib))M" --size="${third_mib}M" \
    --time_based --runtime="$RUNTIME" --ramp_time=2 --randrepeat=0 \
    --output-format=json --output="$VM_OUT/fio-$1-$2-r$3.json" &
  _fio=$!
  if ! wait_for "fio on $1 ($2, round $3) to finish" $((RUNTIME + 90)) exited "$_fio"; then
    hang_report "$VM_OUT/hang-$1-$2-r$3.txt"
    fail "$1: fio stuck (round $3, $2); blocked tasks in hang-$1-$2-r$3.txt"
  fi
  wait "$_fio" || fail "$1: fio failed (round $3, $2)"
}

round=1
while [ "$round" -le "$ROUNDS" ]; do
  for cfg in $CONFIGS; do
    dev=/dev/vdc
    if [ "$cfg" != raw ]; then
      cache=1
      case $cfg in cdisk0 | ccore0) cache=0 ;; esac
      case $cfg in cdisk* | ccore*)
        modprobe dm-log-cluster || fail "modprobe dm-log-cluster"
        echo $cache >/sys/module/dm_log_cluster/parameters/in_sync_cache ||
          fail "cannot set dm-log-cluster's in_sync_cache"
        ;;
      esac
      dmsetup create "b_$cfg" --table "$(table_of "$cfg")" || fail "$cfg: dmsetup create refused"
      wait_for "b_$cfg to be in sync ($(mirror_sync "b_$cfg") now)" 120 mirror_in_sync "b_$cfg" ||
        fail "$cfg: not in sync: $(dmsetup status "b_$cfg")"
      dev=/dev/mapper/b_$cfg
    fi
    for phase in one all; do
      barrier "$cfg-$phase-start-r$round"
      if [ "$phase" = all ] || [ "$VM_ID" = 1 ]; then run_fio "$cfg" "$phase" "$round" "$dev"; fi
      barrier "$cfg-$phase-done-r$round"
    done
    # clogd's counters of the clustered logs (FLUSHes, and those that sent a CPG message).
    case $cfg in cdisk* | ccore*) clogctl status --json >"$VM_OUT/status-$cfg-r$round.json" || true ;; esac
    [ "$cfg" = raw ] || dmsetup remove "b_$cfg" || fail "$cfg: dmsetup remove"
    barrier "$cfg-removed-r$round"
    echo "node $VM_ID: $cfg done (round $round)"
  done
  round=$((round + 1))
done
echo "node $VM_ID: done"
