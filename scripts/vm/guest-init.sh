#!/bin/busybox sh
# /init of the test VMs (busybox, no udev). Mounts the host's run directory (9p, tag
# "host") on /host, brings up eth0 as 10.77.0.<id>/24 when the VM has a network, runs
# /host/job.sh and leaves in /host/vm<id>/: stdout, stderr, dmesg, boot-time and, last, rc
# (the job's exit status; its absence means the VM died or timed out). Then powers off.
# Kernel command line: clogvm.id=<1..9> clogvm.count=<VMs in this run>.
/bin/busybox --install -s
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
umask 022

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp

VM_ID=1
VM_COUNT=1
for word in $(cat /proc/cmdline); do
  case $word in
    clogvm.id=*) VM_ID=${word#*=} ;;
    clogvm.count=*) VM_COUNT=${word#*=} ;;
  esac
done
export VM_ID VM_COUNT
hostname "node$VM_ID"

poweroff_now() {
  sync
  umount /host 2>/dev/null
  poweroff -f
}

for m in virtio_pci virtio_blk 9pnet_virtio 9p; do
  modprobe "$m" || echo "init: modprobe $m failed"
done
mkdir -p /host
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /host; then
  echo "init: cannot mount the host share (9p tag 'host')"
  poweroff_now
fi
export VM_OUT=/host/vm$VM_ID
mkdir -p "$VM_OUT"
read -r uptime_s _ </proc/uptime
echo "$uptime_s" >"$VM_OUT/boot-time"

ip link set lo up
if modprobe virtio_net 2>/dev/null && [ -e /sys/class/net/eth0 ]; then
  export VM_IP=10.77.0.$VM_ID
  ip addr add "$VM_IP/24" dev eth0
  ip link set eth0 up
fi
printf '127.0.0.1 localhost\n' >/etc/hosts
i=1
while [ "$i" -le "$VM_COUNT" ]; do
  printf '10.77.0.%s node%s\n' "$i" "$i" >>/etc/hosts
  i=$((i + 1))
done

# Device-mapper without udev: libdevmapper creates /dev/mapper nodes itself.
export DM_DISABLE_UDEV=1
[ -f /host/env ] && . /host/env

cd /tmp
sh /host/job.sh >"$VM_OUT/stdout" 2>"$VM_OUT/stderr"
rc=$?
dmesg >"$VM_OUT/dmesg"
echo "$rc" >"$VM_OUT/rc.tmp" && mv "$VM_OUT/rc.tmp" "$VM_OUT/rc"
poweroff_now
