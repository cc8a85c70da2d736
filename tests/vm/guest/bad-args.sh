# Guest job (1 VM): bad `mirror cluster` tables are refused, dmesg names the bad argument,
# and a refused table leaves nothing behind. Disks: vda = log device, vdb, vdc = legs.
set -e
. /etc/clogvm-lib.sh
. /host/common.sh

len=$(blockdev --getsz /dev/vdb)
legs="2 /dev/vdb 0 /dev/vdc 0"
modprobe dm-mod
modprobe dm-mirror
modprobe dm-log-cluster
clogd_start --node-id 1

# refused LOG_ARGS EXPECTED_DMESG: "0 <len> mirror cluster LOG_ARGS <legs>" must be refused
# and the kernel log must contain "cluster log: EXPECTED_DMESG".
refused() {
  dmesg -c >/dev/null
  if dmsetup create bad --table "0 $len mirror cluster $1 $legs" 2>/dev/null; then
    fail "accepted: cluster $1"
  fi
  if ! dmesg | grep -qF "cluster log: $2"; then
    echo "FAIL: cluster $1: dmesg does not say: $2" >&2
    dmesg | grep -i "device-mapper" >&2
    exit 1
  fi
  [ -z "$(dmsetup ls 2>/dev/null | grep -v 'No devices found')" ] ||
    fail "cluster $1: a device was left behind: $(dmsetup ls)"
  echo "ok: refused 'cluster $1': $2"
}

refused "2 disk u" \
  "wrong number of log arguments for a disk log: 2 given, expected 4 to 6"
refused "7 disk u /dev/vda 1024 sync block_on_error more" \
  "wrong number of log arguments for a disk log: 7 given, expected 4 to 6"
refused "2 core u" \
  "wrong number of log arguments for a core log: 2 given, expected 3 to 5"
refused "4 flat u /dev/vda 1024" \
  "unknown log kind 'flat' (log argument 1): expected disk or core"
refused "3 disk u 1024" \
  "disk log: missing log device (log argument 3 is '1024', a number)"
refused "4 disk u /dev/vda 1000" \
  "region size 1000 (log argument 4) is not a power of two"
refused "4 disk u /dev/vda 1k" \
  "region size '1k' (log argument 4) is not a number"
refused "3 core u 0" \
  "region size 0 (log argument 3) is not a power of two"
refused "4 disk u /dev/vda 1073741824" \
  "region size 1073741824 (log argument 4) out of range: 2 to $len sectors"
refused "5 disk u /dev/vda 1024 fast" \
  "unknown option 'fast' (log argument 5): expected sync, nosync or block_on_error"
refused "5 core u 1024 sync nosync" \
  "'nosync' (log argument 5) conflicts with 'sync' given before"
refused "5 core u 1024 block_on_error block_on_error" \
  "'block_on_error' (log argument 5) given twice"
long=$(printf 'u%.0s' $(seq 1 129))
refused "3 core $long 1024" \
  "uuid (log argument 2) is 129 characters long, at most 128 allowed"
refused "4 disk u /dev/nonexistent 1024" \
  "u: log device '/dev/nonexistent' (log argument 3) cannot be opened"

# Without a daemon the table is refused too, and says why.
clogd_stop
refused "4 disk u /dev/vda 1024" \
  "u: the userspace log serving this log could not be created: is the log daemon (clogd) running?"

# With the daemon back, the same table loads (nothing was left half-made).
clogd_start --node-id 1
dmsetup create good --table "0 $len mirror cluster 4 disk u /dev/vda 1024 $legs" ||
  fail "a good table was refused after the refusals"
dmsetup remove good
clogd_stop
echo "all refusals passed"
