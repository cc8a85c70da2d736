# Helpers for guest job scripts (. /etc/clogvm-lib.sh). busybox sh; set -e friendly.
# Every wait is for a condition with a bound; a timeout prints what was awaited and fails.

# fail MESSAGE...: print to stderr and exit 1.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# wait_for DESCRIPTION SECONDS COMMAND...: run COMMAND every WAIT_INTERVAL_US microseconds
# (default 100000) until it succeeds; after SECONDS, say what was awaited and return 1.
wait_for() {
  _what=$1 _limit=$2
  shift 2
  _deadline=$(($(date +%s) + _limit))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$_deadline" ]; then
      echo "timed out after ${_limit}s waiting for: $_what" >&2
      return 1
    fi
    usleep "${WAIT_INTERVAL_US:-100000}"
  done
}

# True if process $1 has a NETLINK_CONNECTOR (protocol 11) socket that joined a group:
# clogd's kernel link is then open, so the kernel's userspace log finds a listener.
has_connector_socket() {
  awk -v pid="$1" '$2 == 11 && $3 == pid && $4 != "00000000" { found = 1 } END { exit !found }' \
    /proc/net/netlink
}

# clogd_start [ARGS...]: start clogd -f in the background (output in $VM_OUT/clogd.log),
# wait until it listens to the kernel; CLOGD_PID is its pid.
clogd_start() {
  modprobe dm-log-userspace || fail "modprobe dm-log-userspace"
  clogd -f "$@" >>"$VM_OUT/clogd.log" 2>&1 &
  CLOGD_PID=$!
  wait_for "clogd (pid $CLOGD_PID) to open its kernel link" 20 has_connector_socket "$CLOGD_PID" ||
    fail "clogd did not start (see clogd.log)"
}

# clogd_stop: SIGTERM clogd and wait (bounded) until it is gone.
clogd_stop() {
  kill -TERM "$CLOGD_PID" 2>/dev/null || return 0
  wait_for "clogd (pid $CLOGD_PID) to exit" 20 sh -c "! kill -0 $CLOGD_PID" ||
    fail "clogd did not exit on SIGTERM"
}

# corosync_start: write /etc/corosync/corosync.conf for nodes 1..$VM_COUNT (10.77.0.N, knet,
# votequorum expecting every node) and start corosync in the background (log in
# $VM_OUT/corosync.log). The token timeout is COROSYNC_TOKEN_MS (default 3000): TCG guests
# sharing a busy host miss 1000 ms tokens (the netns clusters' value) and keep re-forming.
corosync_start() {
  {
    echo "totem {"
    echo "  version: 2"
    echo "  cluster_name: clogvm"
    echo "  transport: knet"
    echo "  crypto_cipher: none"
    echo "  crypto_hash: none"
    echo "  token: ${COROSYNC_TOKEN_MS:-3000}"
    echo "  token_coefficient: 0"
    echo "}"
    echo "nodelist {"
    _n=1
    while [ "$_n" -le "$VM_COUNT" ]; do
      # corosync's parser wants the opening brace followed by a newline
      echo "  node {"
      echo "    ring0_addr: 10.77.0.$_n"
      echo "    name: node$_n"
      echo "    nodeid: $_n"
      echo "  }"
      _n=$((_n + 1))
    done
    echo "}"
    echo "quorum {"
    echo "  provider: corosync_votequorum"
    echo "  expected_votes: $VM_COUNT"
    echo "}"
    echo "logging {"
    echo "  to_logfile: yes"
    echo "  logfile: $VM_OUT/corosync.log"
    echo "  to_syslog: no"
    echo "  to_stderr: no"
    echo "  timestamp: hires"
    echo "}"
  } >/etc/corosync/corosync.conf
  corosync -f >>"$VM_OUT/corosync.out" 2>&1 &
  COROSYNC_PID=$!
}

# corosync_members: the node ids this node's corosync sees as members, space separated.
corosync_members() {
  corosync-quorumtool -l -p 2>/dev/null |
    awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { print $1 }' | sort -n | tr '\n' ' '
}

# corosync_quorate: true if this node's corosync reports quorum.
corosync_quorate() {
  corosync-quorumtool -s 2>/dev/null | grep -q '^Quorate: *Yes'
}

# barrier NAME: wait (bounded, 120 s) until every VM of the run reached NAME (files on the
# shared 9p directory).
barrier() {
  mkdir -p "/host/barrier-$1"
  touch "/host/barrier-$1/$VM_ID"
  wait_for "all $VM_COUNT VMs at barrier $1" 120 \
    sh -c "[ \$(ls /host/barrier-$1 | wc -l) -ge $VM_COUNT ]"
}
