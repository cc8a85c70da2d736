# Guest job of scripts/faults/run.sh (3 VMs, fio layer): one failure scenario while every VM
# writes with fio (crc32c verify) to its own third of a clustered mirror served by
# `clogd --cluster`. busybox sh.
#
# Environment (from run.sh): SCENARIO kill-vm | kill-clogd | kill-corosync | two-in-a-row |
# log-device-fails | leg-fails | leg-replaced | cut-off (the host takes VICTIM's bridge port down and up:
# nothing to do here); LOG disk | core; VICTIM (the node the fault hits;
# two-in-a-row: SECOND's clogd first, then VICTIM's corosync); FAULT_AT seconds into the fault phase; RATE fio's
# IOPS per VM (rate-limited, so a phase lasts the same time on a slow or a fast host).
# Disks: vda = log device, vdb, vdc = legs (leg-fails: vdb, vdc, vdd, each under a linear
# layer; between the two fio phases every node swaps the one over vdd for dm-flakey, which
# fails every write from FAULT_AT s later on: the disk dies for all, with no suspend in the
# write path at that moment; once the mirror is in sync on 2 legs, the disk is back and node
# 1 adds it again with clogctl add-leg while every node writes. leg-replaced: a 2-leg
# mirror on path_vdb and path_vdc; dm-flakey under path_vdc; node 1 replaces that leg with
# path_vdd using clogctl replace-leg).
#
# Files for the host, in $VM_OUT: baseline.json, fault.json (fio, JSON), fault_lat.1.log
# (every write's latency), fio-rc (fault phase), fio-started (guest uptime at its start),
# fault-<node>.json (clogctl inspect of the log device right after that node's fault: its
# slot is what the survivors must resync), left (clogd's departure lines), timeouts
# (dm-log-userspace "Request timed out" lines in dmesg), status.json.
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

SCENARIO=${SCENARIO:?} LOG=${LOG:-disk} VICTIM=${VICTIM:-3} SECOND=${SECOND:-2}
FAULT_AT=${FAULT_AT:-10} RATE=${RATE:-40}
say() { echo "node $VM_ID: $*"; }
uptime_s() { cut -d ' ' -f 1 /proc/uptime; }

corosync_start_all

modprobe dm-mod
clogd_start --cluster --slow-request-ms 100
barrier clogd-up
logdev=/dev/vda
if [ "$SCENARIO" = log-device-fails ]; then
  # A linear layer over the log device: the victim swaps it for `error` (its path to the
  # shared log device fails; the other nodes still reach it).
  dmsetup create logpath --table "0 $(blockdev --getsz /dev/vda) linear /dev/vda 0" ||
    fail "dmsetup create logpath"
  logdev=/dev/mapper/logpath
fi
len=$(blockdev --getsz /dev/vdb)
legs="2 /dev/vdb 0 /dev/vdc 0"
if [ "$SCENARIO" = leg-fails ] || [ "$SCENARIO" = leg-replaced ]; then
  for d in vdb vdc vdd; do
    dmsetup create "path_$d" --table "0 $(blockdev --getsz /dev/$d) linear /dev/$d 0" ||
      fail "dmsetup create path_$d"
  done
  legs="3 /dev/mapper/path_vdb 0 /dev/mapper/path_vdc 0 /dev/mapper/path_vdd 0"
  # leg-replaced: a 2-leg mirror; vdd is the spare disk.
  [ "$SCENARIO" = leg-replaced ] && legs="2 /dev/mapper/path_vdb 0 /dev/mapper/path_vdc 0"
fi
case $LOG in
  disk) table="0 $len mirror cluster 5 disk faults_disk $logdev 1024 block_on_error $legs 1 handle_errors" ;;
  core) table="0 $len mirror cluster 3 core faults_core 1024 $legs 1 handle_errors" ;;
  *) fail "LOG must be disk or core, not '$LOG'" ;;
esac
dmsetup create fm --table "$table" || fail "dmsetup create refused: $table"
[ "$VM_ID" = 1 ] && say "table: $table"
wait_for "fm to be in sync ($(mirror_sync fm) now)" 300 mirror_in_sync fm ||
  fail "not in sync: $(dmsetup status fm)"
barrier synced

# This VM's third of the mirror, aligned to 1 MiB.
third=$((len * 512 / VM_COUNT / 1048576))
offset=$(((VM_ID - 1) * third))
# run_fio NAME SECONDS [FIO_ARGS...]: rate-limited 4k random writes for about SECONDS,
# then fio reads every block back and checks its crc32c.
run_fio() {
  _name=$1 _secs=$2
  shift 2
  fio "$@" --name=w --filename=/dev/mapper/fm --direct=1 --ioengine=libaio --iodepth=4 \
    --rw=randwrite --bs=4k --offset="${offset}M" --size="${third}M" \
    --io_size="$((RATE * 4 * _secs))k" --rate_iops="$RATE" --verify=crc32c --verify_fatal=1 \
    --randrepeat=0 --output-format=json --output="$VM_OUT/$_name.json"
}
run_fio baseline 8 || fail "fio (baseline phase) failed: $(tail -n 5 "$VM_OUT/baseline.json")"
say "baseline phase: fio with verify passed"
barrier baseline

# Every write's latency (fault_lat.1.log: ms since fio started, ns, ...): the host finds
# when the longest one was.
if [ "$SCENARIO" = leg-fails ] || [ "$SCENARIO" = leg-replaced ]; then
  # The leg that dies: the third (leg-fails), the second of two (leg-replaced).
  dying=vdd
  [ "$SCENARIO" = leg-replaced ] && dying=vdc
  modprobe dm-flakey || fail "modprobe dm-flakey"
  dmsetup suspend "path_$dying" &&
    dmsetup load "path_$dying" --table "0 $(blockdev --getsz /dev/$dying) flakey /dev/$dying 0 $FAULT_AT 86400 1 error_writes" &&
    dmsetup resume "path_$dying" || fail "could not put dm-flakey under the dying leg"
  leg_fails_at=$(awk -v t="$(uptime_s)" -v d="$FAULT_AT" 'BEGIN { printf "%.2f", t + d }')
fi
uptime_s >"$VM_OUT/fio-started.tmp"
run_fio fault 45 --write_lat_log="$VM_OUT/fault" --log_avg_msec=0 &
fio_pid=$!
mv "$VM_OUT/fio-started.tmp" "$VM_OUT/fio-started"

# inspect_after_fault NODE: the log device as it is right after NODE's fault.
inspect_after_fault() {
  clogctl inspect --json "$logdev" >"$VM_OUT/fault-$1.json" 2>&1 || true
}
# await_logged_by_others NODE TEXT: every other node's clogd logged TEXT about NODE.
await_logged_by_others() {
  for _n in $(seq 1 "$VM_COUNT"); do
    [ "$_n" = "$1" ] && continue
    wait_for "node $_n's clogd to log '$2'" 120 grep -q "$2" "/host/vm$_n/clogd.log" ||
      fail "node $_n did not log '$2'"
  done
}
# await_logged_by_another NODE TEXT: some other node's clogd logged TEXT about NODE (a node
# whose own clogd was restarted meanwhile may join only after NODE left, and never see it).
logged_by_another() {
  for _n in $(seq 1 "$VM_COUNT"); do
    [ "$_n" = "$1" ] && continue
    grep -q "$2" "/host/vm$_n/clogd.log" && return 0
  done
  return 1
}
await_logged_by_another() {
  wait_for "another node's clogd to log '$2'" 120 logged_by_another "$1" "$2" ||
    fail "no other node logged '$2'"
}
kill_clogd_and_restart() {
  kill -KILL "$CLOGD_PID"
  say "fault at $(uptime_s): kill -9 clogd"
  inspect_after_fault "$VM_ID"
  clogd_start --cluster --slow-request-ms 100
  say "clogd restarted at $(uptime_s)"
}
kill_corosync_and_restart() {
  kill -KILL "$COROSYNC_PID"
  say "fault at $(uptime_s): kill -9 corosync"
  inspect_after_fault "$VM_ID"
  await_logged_by_another "$VM_ID" "node $VM_ID left"
  corosync_start
  say "corosync restarted at $(uptime_s)"
}

case $SCENARIO in
  kill-vm)
    if [ "$VM_ID" = "$VICTIM" ]; then
      WAIT_INTERVAL_US=1000000
      wait_for "the host to kill this VM" 300 false
      fail "the host did not kill VM $VM_ID"
    fi
    ;;
  kill-clogd)
    if [ "$VM_ID" = "$VICTIM" ]; then
      usleep $((FAULT_AT * 1000000))
      kill_clogd_and_restart
    fi
    ;;
  kill-corosync)
    if [ "$VM_ID" = "$VICTIM" ]; then
      usleep $((FAULT_AT * 1000000))
      kill_corosync_and_restart
    fi
    ;;
  two-in-a-row)
    # SECOND's clogd dies; as soon as the others saw it go, VICTIM's corosync dies.
    if [ "$VM_ID" = "$SECOND" ]; then
      usleep $((FAULT_AT * 1000000))
      kill_clogd_and_restart
    elif [ "$VM_ID" = "$VICTIM" ]; then
      wait_for "node $SECOND's fault" 120 test -e "/host/vm$SECOND/fault-$SECOND.json" ||
        fail "node $SECOND's clogd was not killed"
      await_logged_by_others "$SECOND" "node $SECOND's clogd is gone"
      kill_corosync_and_restart
    fi
    ;;
  log-device-fails)
    if [ "$VM_ID" = "$VICTIM" ]; then
      usleep $((FAULT_AT * 1000000))
      dmsetup suspend logpath && dmsetup load logpath --table "0 $(blockdev --getsz /dev/vda) error" &&
        dmsetup resume logpath || fail "could not fail the path to the log device"
      say "fault at $(uptime_s): the path to the log device fails every I/O"
      touch "$VM_OUT/fault-$VM_ID.json"
    fi
    ;;
  leg-fails)
    # dm-flakey (loaded above) fails every write to the third leg from leg_fails_at on.
    usleep $((FAULT_AT * 1000000))
    say "fault at $leg_fails_at: the third leg fails every write (dm-flakey)"
    touch "$VM_OUT/fault-$VM_ID.json"
    ;;
  leg-replaced)
    # The second of two legs fails every write: no node can drop it (dm-raid1 keeps two),
    # so every node holds its failed writes. The operator (node 1) replaces it with the
    # spare disk once its clogd said so; the held writes then complete on the new table.
    usleep $((FAULT_AT * 1000000))
    say "fault at $leg_fails_at: the second leg fails every write (dm-flakey)"
    touch "$VM_OUT/fault-$VM_ID.json"
    if [ "$VM_ID" = 1 ]; then
      wait_for "clogd to say the failed leg needs replacing" 120 \
        grep -q "a mirror keeps at least 2 legs" "$VM_OUT/clogd.log" ||
        fail "clogd did not report the failed leg of the 2-leg mirror"
      say "operator at $(uptime_s): clogctl replace-leg fm /dev/mapper/path_vdd"
      clogctl replace-leg fm /dev/mapper/path_vdd >"$VM_OUT/replace-leg.out" 2>&1 ||
        fail "clogctl replace-leg failed: $(cat "$VM_OUT/replace-leg.out")"
      say "replaced at $(uptime_s): $(tail -n 1 "$VM_OUT/replace-leg.out")"
    fi
    ;;
  cut-off) ;;
  *) fail "unknown SCENARIO '$SCENARIO'" ;;
esac

WAIT_INTERVAL_US=1000000
wait_for "fio's fault phase to end" 400 sh -c "! kill -0 $fio_pid" ||
  fail "fio did not finish within 400 s"
fio_rc=0
wait "$fio_pid" || fio_rc=$?
echo "$fio_rc" >"$VM_OUT/fio-rc"
[ "$fio_rc" = 0 ] || fail "fio (fault phase) failed with $fio_rc: $(tail -n 5 "$VM_OUT/fault.json")"
say "fault phase: fio with verify passed"
WAIT_INTERVAL_US=500000
wait_for "fm to be in sync ($(mirror_sync fm) now)" 300 mirror_in_sync fm ||
  fail "not in sync after the fault: $(dmsetup status fm)"
expect_equal "node $VM_ID: leg health" "$(mirror_health fm)" "AA"
say "in sync: $(mirror_sync fm)"
if [ "$SCENARIO" = leg-replaced ]; then
  # Every node's table: the first leg, then the spare disk in place of the failed one.
  new_leg=$(dmsetup info -c --noheadings -o major,minor path_vdd | tr -d ' ')
  old_leg=$(dmsetup info -c --noheadings -o major,minor path_vdc | tr -d ' ')
  dmsetup table fm | grep -q " 2 [^ ]* 0 $new_leg 0 1 handle_errors" ||
    fail "fm's legs are not the first and the new disk ($new_leg): $(dmsetup table fm)"
  ! dmsetup table fm | grep -q " $old_leg 0" || fail "fm still has the failed leg $old_leg"
  say "legs now: the first and the new disk $new_leg"
fi
if [ "$SCENARIO" = leg-fails ]; then
  # The third leg's disk is back (every node drops dm-flakey under its path to it): node 1
  # puts it back into the mirror on every node (clogctl add-leg) while every node writes;
  # the mirror then copies every region to it.
  dmsetup suspend path_vdd &&
    dmsetup load path_vdd --table "0 $(blockdev --getsz /dev/vdd) linear /dev/vdd 0" &&
    dmsetup resume path_vdd || fail "could not take dm-flakey away from the third leg"
  barrier leg-back
  run_fio readd 12 &
  fio_pid=$!
  if [ "$VM_ID" = 1 ]; then
    usleep 2000000
    clogctl add-leg fm /dev/mapper/path_vdd >"$VM_OUT/add-leg.out" 2>&1 ||
      fail "clogctl add-leg failed: $(cat "$VM_OUT/add-leg.out")"
    say "clogctl add-leg: $(tail -n 1 "$VM_OUT/add-leg.out")"
  fi
  wait_for "fm to have 3 legs again" 120 \
    sh -c "dmsetup table fm | grep -q ' 3 [^ ]* 0 [^ ]* 0 [^ ]* 0 1 handle_errors'" ||
    fail "fm did not get its third leg back: $(dmsetup table fm)"
  wait "$fio_pid" || fail "fio (while the leg was added) failed: $(tail -n 5 "$VM_OUT/readd.json")"
  say "fio with verify passed while the third leg was added"
  wait_for "fm to be in sync on 3 legs ($(mirror_sync fm) now)" 300 mirror_in_sync fm ||
    fail "not in sync after the leg was added: $(dmsetup status fm)"
  expect_equal "node $VM_ID: leg health" "$(mirror_health fm)" "AAA"
  say "in sync on 3 legs: $(mirror_sync fm)"
fi
grep " left: " "$VM_OUT/clogd.log" >"$VM_OUT/left" || true
dmesg | grep -c "Request timed out" >"$VM_OUT/timeouts" || true
clogctl status --json >"$VM_OUT/status.json" || true
dmsetup table fm >"$VM_OUT/table" || true

# The live nodes' barrier (a killed VM never reaches it). The mirror stays active: see
# tests/vm/README.md on removing it everywhere.
live=$VM_COUNT
[ "$SCENARIO" = kill-vm ] && live=$((VM_COUNT - 1))
mkdir -p /host/barrier-done
touch "/host/barrier-done/$VM_ID"
wait_for "all $live live nodes done" 300 sh -c "[ \$(ls /host/barrier-done | wc -l) -ge $live ]" ||
  fail "a live node did not finish"
say "done"
