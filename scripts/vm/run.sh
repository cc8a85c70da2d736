#!/usr/bin/env bash
# Runs a guest job script on N QEMU (TCG) VMs in parallel and brings the results back.
#
#   run.sh --build-dir DIR [--vms N] [--disk FILE]... [--fio] [--mem MB] [--timeout S]
#          [--out DIR] [--env NAME=VALUE]... [--file FILE]... [--may-die ID]... JOB
#
# Every VM boots the image of scripts/vm/build-image.sh (built or taken from the cache),
# sees the same raw disk files as /dev/vda, /dev/vdb, ... (shared, no locking, no host cache:
# what one VM writes the others read), mounts OUT on /host (9p) and runs JOB there as
# /host/job.sh with VM_ID (1..N), VM_COUNT, VM_OUT=/host/vm<id>, VM_IP (with a network) and
# the --env variables; each --file is copied to /host/<its name>. With N > 1 the VMs share a private bridge (10.77.0.<id>/24) inside a
# network namespace this script creates and deletes. Guest helpers: scripts/vm/guest-lib.sh.
#
# Results in OUT/vm<id>/: stdout, stderr, rc, dmesg, console.log, boot-time (s from kernel
# start to the job) and whatever the job wrote there. Exit status: 0 if every job exited 0;
# 1 if a job failed; 2 if a VM died, or did not finish within S seconds (default 600).
# --may-die ID: VM ID is expected to die (a test kills it, e.g. kill -9 of the pid in
# OUT/vm<ID>/qemu.pid): its stopping without an rc is reported, not counted as a failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build_dir="" vms=1 fio=0 mem="" timeout_s=600 out="" job=""
disks=() envs=() files=() may_die=" "
while (($#)); do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --vms) vms=$2; shift 2 ;;
    --disk) disks+=("$2"); shift 2 ;;
    --fio) fio=1; shift ;;
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --file) files+=("$2"); shift 2 ;;
    --may-die) may_die+="$2 "; shift 2 ;;
    -*) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
    *) job=$1; shift ;;
  esac
done
die() { echo "run.sh: $*" >&2; exit 2; }
[[ -n $build_dir ]] || die "--build-dir is required"
[[ -n $job && -f $job ]] || die "no job script given (or '$job' does not exist)"
[[ $vms =~ ^[1-9]$ ]] || die "--vms must be 1..9"
[[ $(id -u) -eq 0 ]] || die "needs root (network namespace, tap devices)"
[[ -e /dev/net/tun || $vms -eq 1 ]] || die "/dev/net/tun is missing (needed for VM networking)"
for d in "${disks[@]}"; do [[ -f $d ]] || die "disk file '$d' does not exist"; done
if [[ -z $mem ]]; then
  if ((fio)); then mem=512; else mem=256; fi
fi

image=$("$here/build-image.sh" --build-dir "$build_dir") || die "no VM image (see above)"
initrd=$image/initrd
((fio)) && initrd=$image/initrd-fio

if [[ -z $out ]]; then out=$(mktemp -d /tmp/clogvm.XXXXXX); fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
cp "$job" "$out/job.sh"
for f in "${files[@]}"; do cp "$f" "$out/"; done
: >"$out/env"
for e in "${envs[@]}"; do
  [[ $e == *=* ]] || die "--env wants NAME=VALUE, got '$e'"
  printf 'export %s=%q\n' "${e%%=*}" "${e#*=}" >>"$out/env"
done
for ((i = 1; i <= vms; i++)); do rm -rf "$out/vm$i"; mkdir -p "$out/vm$i"; done
rm -rf "$out"/barrier-*

netns=""
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n $netns ]]; then ip netns del "$netns" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

run_in=()
if ((vms > 1)); then
  netns=clogvm-$$
  ip netns add "$netns"
  ip -n "$netns" link add br0 type bridge
  ip -n "$netns" link set br0 up
  for ((i = 1; i <= vms; i++)); do
    ip -n "$netns" tuntap add dev "tap$i" mode tap
    ip -n "$netns" link set "tap$i" master br0 up
  done
  run_in=(ip netns exec "$netns")
fi

start=$(date +%s.%N)
for ((i = 1; i <= vms; i++)); do
  args=(-M pc -accel tcg -m "$mem" -smp 1 -nodefaults -no-user-config -nographic
    -no-reboot -kernel "$image/vmlinux" -initrd "$initrd"
    -append "console=ttyS0 panic=-1 quiet clogvm.id=$i clogvm.count=$vms"
    -serial "file:$out/vm$i/console.log" -pidfile "$out/vm$i/qemu.pid"
    -virtfs "local,path=$out,mount_tag=host,security_model=none,id=host")
  n=0
  for d in "${disks[@]}"; do
    args+=(-drive "file=$d,if=none,id=d$n,format=raw,cache=none,file.locking=off"
      -device "virtio-blk-pci,drive=d$n,share-rw=on")
    n=$((n + 1))
  done
  if ((vms > 1)); then
    args+=(-netdev "tap,id=n0,ifname=tap$i,script=no,downscript=no"
      -device "virtio-net-pci,netdev=n0,mac=52:54:00:77:00:0$i")
  fi
  "${run_in[@]}" timeout -s KILL "$timeout_s" qemu-system-x86_64 "${args[@]}" \
    </dev/null >"$out/vm$i/qemu.log" 2>&1 &
  pids+=($!)
done

status=0
for ((i = 1; i <= vms; i++)); do
  qemu_rc=0
  wait "${pids[$((i - 1))]}" || qemu_rc=$?
  d=$out/vm$i
  if [[ -f $d/rc ]]; then
    rc=$(cat "$d/rc")
    # Boot to job: guest uptime when the job started, and host time from QEMU's start to the
    # job's first file (boot-time) on the share.
    host_boot=$(awk -v a="$start" -v b="$(stat -c %.3Y "$d/boot-time" 2>/dev/null || echo 0)" \
      'BEGIN { if (b > 0) printf "%.1f", b - a; else printf "?" }')
    echo "vm$i: job exit $rc (boot to job: $(cat "$d/boot-time" 2>/dev/null || echo ?) s guest uptime, $host_boot s since QEMU started)"
    if [[ $rc != 0 ]]; then
      ((status == 2)) || status=1
      echo "---- vm$i stderr (last 30 lines)"; tail -n 30 "$d/stderr" || true
    fi
  elif [[ $may_die == *" $i "* ]]; then
    echo "vm$i: stopped before its job finished, as expected (--may-die; qemu exit $qemu_rc)"
  else
    status=2
    if ((qemu_rc == 137)); then
      echo "vm$i: did not finish within ${timeout_s}s (killed)"
    else
      echo "vm$i: died before its job finished (qemu exit $qemu_rc)"
    fi
    echo "---- vm$i qemu.log"; cat "$d/qemu.log" || true
    echo "---- vm$i console (last 30 lines)"; tail -n 30 "$d/console.log" || true
    echo "---- vm$i stderr (last 30 lines)"; tail -n 30 "$d/stderr" 2>/dev/null || true
  fi
done
end=$(date +%s.%N)
echo "run: $vms VM(s), $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s wall, results in $out"
exit $status
