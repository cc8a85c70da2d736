#!/usr/bin/env bash
# cluster-netns.sh: a real corosync cluster (3 nodes by default) on this one host, one
# network namespace and one mount namespace per node, for the cluster tests and by hand.
#
#   cluster-netns.sh up                  create the nodes, start corosync, wait for membership
#   cluster-netns.sh down                kill everything started here, remove namespaces, mounts
#   cluster-netns.sh status              membership as each node sees it
#   cluster-netns.sh exec N CMD...       run CMD in node N (foreground, exit status passed on)
#   cluster-netns.sh start-bg N NAME CMD...   run CMD in node N in the background (log: NAME.log)
#   cluster-netns.sh kill-bg N NAME [SIG]     signal it (default KILL) and wait until it is gone
#   cluster-netns.sh kill N              kill -9 node N's corosync and every process in node N
#   cluster-netns.sh kill-corosync N     kill -9 node N's corosync only (its programs live on)
#   cluster-netns.sh start N             start node N's corosync, wait until it is a member again
#   cluster-netns.sh isolate N           cut node N off the network (a partition; it keeps running)
#   cluster-netns.sh heal N              connect node N again
#   cluster-netns.sh wait                wait until the running nodes all see each other
#   cluster-netns.sh restore             heal every node, start every corosync, wait
#   cluster-netns.sh dir N               print node N's state directory (its /run inside)
#
# Layout (everything under $CLOG_NETNS_DIR, default /run/clog-netns):
#   network: namespace <prefix>-br holds bridge br0; node N is namespace <prefix>N with eth0
#   (10.77.0.N/24) on a veth whose peer is on br0. Nothing is added to the host's namespace.
#   mounts: node N has its own mount namespace (bind-mounted at ns/mntN) in which /run is
#   nodeN/ (corosync's pid lock, config, log, state) and /dev/shm is a fresh tmpfs (libqb's
#   ring buffers); libqb's sockets are abstract, so the network namespace separates them.
#   Programs run with exec/start-bg see the same /run and /dev/shm as their node's corosync.
# Environment: CLOG_NETNS_DIR, CLOG_NETNS_PREFIX (default clog; namespace names),
# CLOG_NETNS_NODES (default 3, at most 9), CLOG_NETNS_TIMEOUT (seconds to wait, default 30).
set -euo pipefail

DIR=${CLOG_NETNS_DIR:-/run/clog-netns}
PREFIX=${CLOG_NETNS_PREFIX:-clog}
NODES=${CLOG_NETNS_NODES:-3}
TIMEOUT=${CLOG_NETNS_TIMEOUT:-30}
BR_NS="${PREFIX}-br"
SUBNET=10.77.0

die() {
  echo "cluster-netns: $*" >&2
  exit 1
}

node_ns() { echo "${PREFIX}$1"; }

check_prereqs() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (network and mount namespaces need CAP_SYS_ADMIN)"
  local tool
  for tool in ip nsenter unshare mount umount corosync corosync-quorumtool; do
    command -v "$tool" >/dev/null || die "missing program '$tool' (scripts/install-deps.sh installs it)"
  done
  ip netns list >/dev/null 2>&1 || die "'ip netns' does not work here (iproute2 without netns support?)"
  [[ $NODES =~ ^[1-9]$ ]] || die "CLOG_NETNS_NODES must be 1..9, not '$NODES'"
}

check_node() {
  if ! [[ ${1:-} =~ ^[1-9]$ ]] || ((${1} > NODES)); then die "no node '${1:-}' (nodes are 1..$NODES)"; fi
  [[ -f $DIR/up ]] || die "the cluster is not up (run: $0 up)"
}

# Runs "$@" inside node $1's network and mount namespaces, replacing this shell.
enter() {
  local n=$1
  shift
  exec nsenter --net="/run/netns/$(node_ns "$n")" --mount="$DIR/ns/mnt$n" --wd="$PWD" -- "$@"
}

# Every process in node $1's network namespace (corosync and whatever was started there).
node_pids() { ip netns pids "$(node_ns "$1")" 2>/dev/null || true; }

corosync_pid() {
  local pid
  for pid in $(node_pids "$1"); do
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == corosync ]]; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# A process that has not exited (a zombie has: its parent just did not reap it yet).
running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# Waits (bounded) until none of the given pids runs.
wait_gone() {
  local deadline=$((SECONDS + TIMEOUT)) pid alive
  while :; do
    alive=0
    for pid in "$@"; do
      if running "$pid"; then alive=1; fi
    done
    ((alive)) || return 0
    ((SECONDS < deadline)) || die "processes $* still alive after ${TIMEOUT}s"
    sleep 0.05
  done
}

kill_pids() {
  local sig=$1
  shift
  (($#)) || return 0
  kill "-$sig" "$@" 2>/dev/null || true
  wait_gone "$@"
}

write_config() {
  local n=$1 i
  {
    echo "# corosync.conf for node $n of the clogd netns cluster (scripts/cluster-netns.sh)"
    echo "totem {"
    echo "  version: 2"
    echo "  cluster_name: ${PREFIX}"
    echo "  transport: knet"
    echo "  crypto_cipher: none"
    echo "  crypto_hash: none"
    echo "  # member failure seen after token + consensus (~2 s), not 650 ms more per node"
    echo "  token: 1000"
    echo "  token_coefficient: 0"
    echo "}"
    echo "nodelist {"
    for ((i = 1; i <= NODES; i++)); do
      # corosync's parser wants the opening brace followed by a newline
      echo "  node {"
      echo "    ring0_addr: $SUBNET.$i"
      echo "    name: node$i"
      echo "    nodeid: $i"
      echo "  }"
    done
    echo "}"
    echo "quorum {"
    echo "  provider: corosync_votequorum"
    echo "  expected_votes: $NODES"
    echo "}"
    echo "logging {"
    echo "  to_logfile: yes"
    echo "  logfile: /run/corosync.log"
    echo "  to_syslog: no"
    echo "  to_stderr: no"
    echo "  timestamp: hires"
    echo "}"
    echo "system {"
    echo "  state_dir: /run/corosync-state"
    echo "}"
  } >"$DIR/node$n/corosync.conf"
}

create_node() {
  local n=$1 ns
  ns=$(node_ns "$n")
  mkdir -p "$DIR/node$n/corosync-state"
  write_config "$n"
  ip netns add "$ns"
  ip -n "$BR_NS" link add "veth$n" type veth peer name eth0 netns "$ns" ||
    die "cannot create a veth pair for node $n (kernel without veth support?)"
  ip -n "$BR_NS" link set "veth$n" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$SUBNET.$n/24" dev eth0
  ip -n "$ns" link set eth0 up
  # A persistent mount namespace: bind-mounted on a file in a private mount.
  touch "$DIR/ns/mnt$n"
  unshare --mount="$DIR/ns/mnt$n" --propagation private true ||
    die "cannot create a persistent mount namespace for node $n"
  nsenter --mount="$DIR/ns/mnt$n" -- sh -c \
    "mount --bind '$DIR/node$n' /run && mount -t tmpfs -o mode=1777,size=64m tmpfs /dev/shm"
}

start_corosync() {
  local n=$1
  if corosync_pid "$n" >/dev/null; then return 0; fi
  # Detached from our session and stdio, so callers waiting on our output do not hang.
  setsid nsenter --net="/run/netns/$(node_ns "$n")" --mount="$DIR/ns/mnt$n" -- \
    corosync -f -c /run/corosync.conf </dev/null >>"$DIR/node$n/corosync.out" 2>&1 &
}

# The node ids node $1's corosync sees as members (empty when it does not answer).
members_of() {
  ( nsenter --net="/run/netns/$(node_ns "$1")" --mount="$DIR/ns/mnt$1" -- \
    corosync-quorumtool -l -p 2>/dev/null || true ) |
    awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ { print $1 }' | sort -n | tr '\n' ' '
}

running_nodes() {
  local i
  for ((i = 1; i <= NODES; i++)); do
    if corosync_pid "$i" >/dev/null; then echo -n "$i "; fi
  done
}

# Waits (bounded) until every running node sees exactly the running nodes as members.
wait_membership() {
  local deadline=$((SECONDS + TIMEOUT)) want i ok
  while :; do
    want=$(running_nodes)
    ok=1
    for i in $want; do
      [[ $(members_of "$i") == "$want" ]] || ok=0
    done
    ((ok)) && return 0
    if ((SECONDS >= deadline)); then
      status >&2
      die "nodes [${want}] did not all become members within ${TIMEOUT}s (logs: $DIR/node*/corosync.log)"
    fi
    sleep 0.1
  done
}

status() {
  local i pid
  echo "cluster $PREFIX in $DIR: $NODES nodes"
  for ((i = 1; i <= NODES; i++)); do
    if pid=$(corosync_pid "$i"); then
      echo "node $i ($SUBNET.$i, netns $(node_ns "$i")): corosync pid $pid, members: $(members_of "$i")"
    else
      echo "node $i ($SUBNET.$i, netns $(node_ns "$i")): corosync not running"
    fi
  done
}

cmd_up() {
  check_prereqs
  if [[ -f $DIR/up ]]; then
    echo "cluster-netns: already up"
    status
    return 0
  fi
  cmd_down >/dev/null  # leftovers of an interrupted run
  mkdir -p "$DIR/ns"
  mount --bind "$DIR/ns" "$DIR/ns"
  mount --make-private "$DIR/ns"
  ip netns add "$BR_NS" || die "cannot create network namespace $BR_NS"
  ip -n "$BR_NS" link add br0 type bridge || die "cannot create a bridge (kernel without bridge support?)"
  ip -n "$BR_NS" link set br0 up
  local i
  for ((i = 1; i <= NODES; i++)); do create_node "$i"; done
  touch "$DIR/up"
  for ((i = 1; i <= NODES; i++)); do start_corosync "$i"; done
  wait_membership
  status
}

cmd_down() {
  local i pids=() ns
  for ((i = 1; i <= NODES; i++)); do
    # shellcheck disable=SC2207
    pids+=($(node_pids "$i"))
  done
  kill_pids KILL "${pids[@]}"
  for ((i = 1; i <= NODES; i++)); do
    ns=$(node_ns "$i")
    if [[ -e $DIR/ns/mnt$i ]]; then umount "$DIR/ns/mnt$i" 2>/dev/null || true; fi
    if ip netns list | grep -qw "^$ns"; then ip netns del "$ns"; fi
  done
  if ip netns list | grep -qw "^$BR_NS"; then ip netns del "$BR_NS"; fi
  if mountpoint -q "$DIR/ns" 2>/dev/null; then umount "$DIR/ns"; fi
  rm -rf "$DIR"
  echo "cluster-netns: down"
}

cmd_start_bg() {
  local n=$1 name=$2
  shift 2
  [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad name '$name' (letters, digits, _ . -)"
  (($#)) || die "start-bg: no command"
  setsid nsenter --net="/run/netns/$(node_ns "$n")" --mount="$DIR/ns/mnt$n" --wd="$PWD" -- \
    "$@" </dev/null >"$DIR/node$n/$name.log" 2>&1 &
  echo $! >"$DIR/node$n/$name.pid"
  echo "node $n: $name pid $! (log: $DIR/node$n/$name.log)"
}

cmd_kill_bg() {
  local n=$1 name=$2 sig=${3:-KILL} pid
  [[ -f $DIR/node$n/$name.pid ]] || die "node $n has no background program '$name'"
  pid=$(cat "$DIR/node$n/$name.pid")
  kill_pids "$sig" "$pid"
  rm -f "$DIR/node$n/$name.pid"
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    up) cmd_up ;;
    down) check_prereqs && cmd_down ;;
    status)
      [[ -f $DIR/up ]] || die "the cluster is not up"
      status
      ;;
    exec)
      check_node "${1:-}"
      (($# > 1)) || die "exec: no command"
      enter "$@"
      ;;
    start-bg)
      check_node "${1:-}"
      (($# > 2)) || die "usage: start-bg N NAME CMD..."
      cmd_start_bg "$@"
      ;;
    kill-bg)
      check_node "${1:-}"
      (($# >= 2)) || die "usage: kill-bg N NAME [SIGNAL]"
      cmd_kill_bg "$@"
      ;;
    kill)
      check_node "${1:-}"
      # shellcheck disable=SC2046
      kill_pids KILL $(node_pids "$1")
      rm -f "$DIR/node$1"/*.pid
      echo "node $1: killed"
      ;;
    kill-corosync)
      check_node "${1:-}"
      local pid
      if pid=$(corosync_pid "$1"); then kill_pids KILL "$pid"; fi
      echo "node $1: corosync killed"
      ;;
    start)
      check_node "${1:-}"
      start_corosync "$1"
      wait_membership
      echo "node $1: member again ($(members_of "$1"))"
      ;;
    isolate | heal)
      check_node "${1:-}"
      ip -n "$BR_NS" link set "veth$1" "$([[ $cmd == isolate ]] && echo down || echo up)"
      echo "node $1: $([[ $cmd == isolate ]] && echo isolated || echo connected)"
      ;;
    wait)
      [[ -f $DIR/up ]] || die "the cluster is not up"
      wait_membership
      status
      ;;
    restore)
      [[ -f $DIR/up ]] || die "the cluster is not up"
      local i
      for ((i = 1; i <= NODES; i++)); do
        ip -n "$BR_NS" link set "veth$i" up
        start_corosync "$i"
      done
      wait_membership
      status
      ;;
    dir)
      check_node "${1:-}"
      echo "$DIR/node$1"
      ;;
    *)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
