#!/usr/bin/env bash
# The engine on a real O_DIRECT log file: marks survive a crash (exit without DTR), the
# restart resyncs exactly them, and a clean shutdown leaves a valid dm-log part 1.
# Usage: drive_crash_test.sh <clog-drive> <clogctl> <scratch dir>
set -euo pipefail
drive=$1 clogctl=$2 dir=$3
mkdir -p "$dir"
log="$dir/crash-test.img"
rm -f "$log"
truncate -s 4M "$log"
ctr="$((4096 * 1024)) clustered-disk $log 1024 nosync"

"$drive" <<EOF2 >/dev/null
ctr 1 $ctr
resume 1
mark 1 7 4000 11
flush 1
clear 1 11
flush 1
mark 1 12
crash
EOF2

json=$("$clogctl" inspect --json "$log")
grep -q '"dm_log_valid": false' <<<"$json" || { echo "FAIL: part 1 valid while active"; exit 1; }
# 11 was cleared and flushed; 12 was marked (durable once answered) but never flushed.
tr -d ' \n' <<<"$json" | grep -q '"dirty":\[7,12,4000\]' ||
  { echo "FAIL: slot should hold exactly 7, 12 and 4000:"; echo "$json"; exit 1; }

out=$("$drive" <<EOF2
ctr 1 $ctr
resume 1
resync 1
count 1
presuspend 1
postsuspend 1
dtr 1
EOF2
)
grep -qx 'resynced: 7 12 4000' <<<"$out" || { echo "FAIL: expected 'resynced: 7 12 4000', got:"; echo "$out"; exit 1; }
grep -qx 'in sync: 4096' <<<"$out" || { echo "FAIL: not all in sync:"; echo "$out"; exit 1; }
json=$("$clogctl" inspect --json "$log")
grep -q '"dm_log_valid": true' <<<"$json" || { echo "FAIL: no valid dm-log after clean shutdown"; exit 1; }
grep -q '"bitmap_set": 4096' <<<"$json" || { echo "FAIL: clean map incomplete"; echo "$json"; exit 1; }
echo "PASS"
