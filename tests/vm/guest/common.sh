# Shared by the guest scripts of tests/vm (sourced after /etc/clogvm-lib.sh).

# major:minor of a block device, as dm-raid1 prints legs.
majmin() {
  cat "/sys/class/block/${1#/dev/}/dev"
}

# mirror_sync NAME: "<in sync>/<regions>" from `dmsetup status` (mirror status:
# <start> <len> mirror <#legs> <legs...> <in sync>/<regions> 1 <health> <log status...>).
mirror_sync() {
  dmsetup status "$1" | awk '{ print $(5 + $4) }'
}

# mirror_health NAME: one letter per leg (A = alive).
mirror_health() {
  dmsetup status "$1" | awk '{ print $(7 + $4) }'
}

# mirror_log_status NAME: the log's part of `dmsetup status` (what the log type reports).
mirror_log_status() {
  dmsetup status "$1" | awk '{ s = ""; for (i = 8 + $4; i <= NF; i++) s = s (s ? " " : "") $i; print s }'
}

# True when every region of mirror NAME is in sync.
mirror_in_sync() {
  _s=$(mirror_sync "$1") || return 1
  [ -n "$_s" ] && [ "${_s%/*}" = "${_s#*/}" ]
}

# expect_equal WHAT ACTUAL EXPECTED
expect_equal() {
  if [ "$2" != "$3" ]; then
    echo "FAIL: $1" >&2
    echo "  got:      '$2'" >&2
    echo "  expected: '$3'" >&2
    exit 1
  fi
  echo "ok: $1: $2"
}

# corosync_start_all: start this VM's corosync and wait (bounded, 180 s) until it sees every
# VM of the run as a member; leaves WAIT_INTERVAL_US at 200 ms.
corosync_members_are_all() { [ "$(corosync_members)" = "$_corosync_want" ]; }
corosync_start_all() {
  corosync_start
  WAIT_INTERVAL_US=1000000
  _corosync_want=$(seq 1 "$VM_COUNT" | tr '\n' ' ')
  wait_for "corosync membership '$_corosync_want' (now '$(corosync_members)')" 180 \
    corosync_members_are_all || fail "membership not reached: $(corosync-quorumtool -s 2>&1)"
  WAIT_INTERVAL_US=200000
}

# check_mirror NAME TABLE EXPECTED_TABLE EXPECTED_LOG_STATUS: create NAME from TABLE; its
# `dmsetup table` must read EXPECTED_TABLE; wait (bounded) until it is in sync with both legs
# alive and the log reporting EXPECTED_LOG_STATUS; then remove it, load what `dmsetup table`
# printed, and that must print the same table again (the table round-trips).
check_mirror() {
  _name=$1 _table=$2 _expect=$3 _log_status=$4
  dmsetup create "$_name" --table "$_table" || fail "$_name: dmsetup create refused: $_table"
  _got=$(dmsetup table "$_name")
  expect_equal "$_name: dmsetup table" "$_got" "$_expect"
  wait_for "$_name to be in sync ($(mirror_sync "$_name") now)" 180 mirror_in_sync "$_name" ||
    fail "$_name: not in sync: $(dmsetup status "$_name")"
  expect_equal "$_name: leg health" "$(mirror_health "$_name")" "AA"
  expect_equal "$_name: log status" "$(mirror_log_status "$_name")" "$_log_status"
  echo "ok: $_name: in sync: $(dmsetup status "$_name")"
  dmsetup remove "$_name" || fail "$_name: dmsetup remove"
  dmsetup create "$_name" --table "$_got" || fail "$_name: its own table output was refused: $_got"
  expect_equal "$_name: table after reloading the table output" "$(dmsetup table "$_name")" "$_got"
  wait_for "$_name to be in sync again" 180 mirror_in_sync "$_name" ||
    fail "$_name: not in sync after reload: $(dmsetup status "$_name")"
  dmsetup remove "$_name" || fail "$_name: dmsetup remove"
}
