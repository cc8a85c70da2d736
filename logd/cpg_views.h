// Turns one CPG group's raw callback stream (confchg, totem confchg, deliveries) into the
// Membership stream ClusterTransport promises: a view id that is the same on every member
// for the same change and increases from change to change, sorted member lists, one change
// per ring change. Pure (no corosync calls), so unit tests can drive it with made-up streams;
// CpgTransport feeds it from libcpg and carries out what it asks for.
//
// View ids: high 32 bits = totem ring sequence, low 32 bits = number of process-level
// changes of this group within that ring. What real corosync 3.1.7 does (checked with
// scripts/cluster-netns.sh, and in its cpg.c) and how the scheme uses it:
//  * A ring change reaches a client as the group's NODEDOWN confchg, then NODEUP confchg(s)
//    (3.1.7 listed both nodes of the other side in one), then PROCDOWNs for processes that
//    vanished meanwhile, and last the totem confchg carrying the new ring id — the cpg
//    confchgs come BEFORE the ring id. No delivery comes in between. So confchgs with
//    NODEDOWN/NODEUP open a batch that the totem confchg closes: one Membership, view id =
//    new ring << 32, to every member of both sides of a merge (each side sees the other side
//    in `joined`). A vanished-process PROCDOWN without a node-level change of the group is
//    counted like an in-ring change: all members of the group are on one side then.
//  * Process joins/leaves (JOIN, LEAVE, PROCDOWN) are agreed messages inside a ring: every
//    member counts them, view id = ring << 32 | count. A member that stays saw every such
//    change since the ring began, so all of them agree; ring sequences only grow, so ids
//    increase.
//  * A process joining mid-ring cannot know the count. Every member that knows it multicasts
//    a small view-sync message naming the joiner (node, pid) and the id of its join; the
//    joiner holds its join and everything after it until the first such message, then
//    replays them in order. Its own join's Membership is therefore delivered late, but at
//    the same point of the stream as everywhere else. A process that finds the group empty
//    (it is alone in its join) numbers its join 1 in the ring its initial totem confchg names.
//    If every member that was there at its join leaves before telling it, the view is lost:
//    the sequencer reports Lost and the transport makes the handler join again.
//  * The totem ring sequence is per partition: two sides of a split can use the same id for
//    different changes (only one side can hold quorum, and they exchange nothing meanwhile).
//    A group that empties and is created again within one ring numbers from 1 again: an id
//    names one change within one unbroken life of the group (a member that stays never sees
//    an id twice). Ring sequences stay far below 2^32 (corosync adds a few per ring change).
//  * Ring size (Membership::ring_nodes, what quorum counts): the node count of the totem
//    confchg, which every client of corosync gets at every ring change, at the same point of
//    every member's stream (it closes the change). A ring change that leaves the group as it
//    was is handed on as a Membership naming nobody, view id = new ring << 32, when the node
//    count changed. A joiner takes the count from its initial totem confchg (the flag
//    CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF), which names the ring its join is in.
//  * Member lists: corosync keeps group members sorted by (node id, pid) and so does this
//    sequencer (members, joined and left alike): the order is ascending node id on every
//    node, not age of membership.
//  * Nodes, not processes: a Membership names each node once. A node with several
//    processes in the group (another program joined it, or a restarted daemon's join came
//    before its old process's leave) leaves only with its last process; every process's
//    join names its node in `joined` (a restarted daemon must be seen to join). So a
//    foreign process's exit or leave changes nothing; the cost: a daemon that dies while
//    another process of its node stays in the group is taken for gone only when that one
//    goes too (logd/CLUSTER.md, "Not done yet").
// Wire framing (every message of the group): 1 byte kind (0 application, 1 view sync);
// a view sync carries u32 node, u32 pid, u64 view id, little-endian.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "logd/cluster_transport.h"

namespace clogd::logd {

// One process as CPG names it (struct cpg_address), with the confchg reason code.
struct CpgAddress {
  NodeId node = 0;
  uint32_t pid = 0;
  uint32_t reason = 0;  // CPG_REASON_* (JOIN 1, LEAVE 2, NODEDOWN 3, NODEUP 4, PROCDOWN 5)
};

struct CpgConfchg {
  std::vector<CpgAddress> members;
  std::vector<CpgAddress> left;
  std::vector<CpgAddress> joined;
};

inline constexpr uint8_t kCpgFrameApp = 0;
inline constexpr uint8_t kCpgFrameViewSync = 1;

// What the sequencer hands on, in stream order.
class CpgViewSink {
 public:
  virtual ~CpgViewSink() = default;
  virtual void OnViewMembership(const Membership& membership) = 0;
  virtual void OnViewDeliver(NodeId from, std::span<const uint8_t> payload) = 0;
  // Multicast these bytes (a complete frame) to the group.
  virtual void OnViewSyncToSend(std::vector<uint8_t> frame) = 0;
  // This process can never learn its view: leave and join again.
  virtual void OnViewLost(const std::string& why) = 0;
};

class CpgViewSequencer {
 public:
  // `self_pid`: this process as corosync names it (getpid()); if the first confchg (which
  // is always this process's join) lists another pid for this node, that one is used.
  CpgViewSequencer(NodeId self_node, uint32_t self_pid, CpgViewSink& sink);

  void OnConfchg(const CpgConfchg& change);
  // `ring_nodes`: the totem confchg's node count; 0 if not known (Memberships then carry 0).
  void OnTotem(uint64_t ring_seq, uint32_t ring_nodes = 0);
  void OnDeliver(NodeId from, uint32_t pid, std::span<const uint8_t> frame);

  // A Membership was handed on (multicasts make sense from now on).
  bool has_view() const { return state_ == State::kSynced; }
  uint64_t view_id() const { return view_id_; }

  static uint64_t MakeViewId(uint64_t ring_seq, uint32_t count) { return (ring_seq << 32) | count; }
  static std::vector<uint8_t> EncodeViewSync(NodeId node, uint32_t pid, uint64_t view_id);

 private:
  enum class State { kWaitingJoin, kWaitingSync, kSynced };
  // A held event, replayed once the view is known.
  struct Held {
    enum class Kind { kConfchg, kTotem, kDeliver } kind;
    CpgConfchg change;
    uint64_t ring_seq = 0;
    uint32_t ring_nodes = 0;
    NodeId from = 0;
    uint32_t pid = 0;
    std::vector<uint8_t> frame;
  };

  void OnOwnJoin(const CpgConfchg& change);
  void Resolve(uint64_t join_view_id);
  void SyncedConfchg(const CpgConfchg& change);
  void SyncedTotem(uint64_t ring_seq, uint32_t ring_nodes);
  void SyncedDeliver(NodeId from, std::span<const uint8_t> frame);
  void CloseBatch(uint64_t ring_seq);
  void Emit(uint64_t view_id, const std::vector<CpgAddress>& members, std::vector<CpgAddress> left,
            std::vector<CpgAddress> joined);

  const NodeId self_node_;
  uint32_t self_pid_;
  CpgViewSink& sink_;
  State state_ = State::kWaitingJoin;

  bool ring_known_ = false;
  uint64_t ring_seq_ = 0;
  uint32_t count_ = 0;  // process-level changes in this ring
  uint32_t ring_nodes_ = 0;
  std::vector<CpgAddress> members_;  // of the last Membership handed on
  uint64_t view_id_ = 0;

  // Waiting for the view: this process's join, who was there, and what came after it.
  CpgConfchg own_join_;
  std::set<std::pair<NodeId, uint32_t>> stayers_;
  bool alone_ = false;  // nobody was there: the join is numbered from the ring alone
  std::vector<Held> held_;

  // A ring change in progress (its confchgs came, its totem confchg not yet).
  bool batch_open_ = false;
  std::vector<CpgAddress> batch_members_;
  std::vector<CpgAddress> batch_left_;
  std::vector<CpgAddress> batch_joined_;
  std::vector<Held> batch_deliveries_;  // never seen with corosync 3.1.7; kept in order
};

}  // namespace clogd::logd
