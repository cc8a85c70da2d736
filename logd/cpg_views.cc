// CpgViewSequencer: view ids and ordering for one CPG group (the scheme is in cpg_views.h).
#include "logd/cpg_views.h"

#include <algorithm>

namespace clogd::logd {
namespace {

// CPG_REASON_* from <corosync/cpg.h>, repeated here to keep this file free of corosync.
constexpr uint32_t kReasonJoin = 1;
constexpr uint32_t kReasonLeave = 2;
constexpr uint32_t kReasonNodeDown = 3;
constexpr uint32_t kReasonNodeUp = 4;
constexpr uint32_t kReasonProcDown = 5;

bool ByNodeThenPid(const CpgAddress& a, const CpgAddress& b) {
  return std::pair(a.node, a.pid) < std::pair(b.node, b.pid);
}

bool IsRingChange(const CpgConfchg& c) {
  auto node_level = [](const CpgAddress& a) {
    return a.reason == kReasonNodeDown || a.reason == kReasonNodeUp;
  };
  return std::any_of(c.left.begin(), c.left.end(), node_level) ||
         std::any_of(c.joined.begin(), c.joined.end(), node_level);
}

Membership::LeaveReason ToLeaveReason(uint32_t reason) {
  switch (reason) {
    case kReasonLeave:
      return Membership::LeaveReason::kLeft;
    case kReasonProcDown:
      return Membership::LeaveReason::kProcessDown;
    default:  // NODEDOWN, or a reason this code does not know: assume the worst
      return Membership::LeaveReason::kNodeDown;
  }
}

void PutLe(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t GetLe(std::span<const uint8_t> in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{in[at + static_cast<size_t>(i)]} << (8 * i);
  return v;
}

constexpr size_t kViewSyncSize = 1 + 4 + 4 + 8;

}  // namespace

CpgViewSequencer::CpgViewSequencer(NodeId self_node, uint32_t self_pid, CpgViewSink& sink)
    : self_node_(self_node), self_pid_(self_pid), sink_(sink) {}

std::vector<uint8_t> CpgViewSequencer::EncodeViewSync(NodeId node, uint32_t pid, uint64_t view_id) {
  std::vector<uint8_t> out;
  out.reserve(kViewSyncSize);
  out.push_back(kCpgFrameViewSync);
  PutLe(out, node, 4);
  PutLe(out, pid, 4);
  PutLe(out, view_id, 8);
  return out;
}

void CpgViewSequencer::OnConfchg(const CpgConfchg& change) {
  switch (state_) {
    case State::kWaitingJoin:
      OnOwnJoin(change);
      return;
    case State::kWaitingSync:
      held_.push_back({Held::Kind::kConfchg, change, 0, 0, 0, 0, {}});
      for (const CpgAddress& gone : change.left) stayers_.erase({gone.node, gone.pid});
      if (!alone_ && stayers_.empty()) {
        state_ = State::kWaitingJoin;  // dead: nothing more is handed on
        held_.clear();
        sink_.OnViewLost(
            "every member that was in the group at this process's join left before "
            "telling it the view id");
      }
      return;
    case State::kSynced:
      SyncedConfchg(change);
      return;
  }
}

void CpgViewSequencer::OnTotem(uint64_t ring_seq, uint32_t ring_nodes) {
  switch (state_) {
    case State::kWaitingJoin:  // the initial totem confchg may come before the join
      ring_known_ = true;
      ring_seq_ = ring_seq;
      ring_nodes_ = ring_nodes;
      return;
    case State::kWaitingSync:
      if (alone_) {
        // Alone in the group: this is the initial totem confchg naming the join's ring.
        ring_known_ = true;
        ring_seq_ = ring_seq;
        ring_nodes_ = ring_nodes;
        Resolve(MakeViewId(ring_seq, 1));
        return;
      }
      // The initial totem confchg (it follows the join's confchg) names the join's ring: its
      // count is the one the members know. A later ring's waits for its turn.
      if (!ring_known_) {
        ring_known_ = true;
        ring_seq_ = ring_seq;
      }
      if (ring_seq == ring_seq_) ring_nodes_ = ring_nodes;
      held_.push_back({Held::Kind::kTotem, {}, ring_seq, ring_nodes, 0, 0, {}});
      return;
    case State::kSynced:
      SyncedTotem(ring_seq, ring_nodes);
      return;
  }
}

void CpgViewSequencer::OnDeliver(NodeId from, uint32_t pid, std::span<const uint8_t> frame) {
  switch (state_) {
    case State::kWaitingJoin:
      return;  // corosync delivers nothing before the join; a dead sequencer drops all
    case State::kWaitingSync:
      if (frame.size() == kViewSyncSize && frame[0] == kCpgFrameViewSync &&
          GetLe(frame, 1, 4) == self_node_ && GetLe(frame, 5, 4) == self_pid_) {
        Resolve(GetLe(frame, 9, 8));
        return;
      }
      held_.push_back({Held::Kind::kDeliver, {}, 0, 0, from, pid, {frame.begin(), frame.end()}});
      return;
    case State::kSynced:
      if (batch_open_) {
        batch_deliveries_.push_back(
            {Held::Kind::kDeliver, {}, 0, 0, from, pid, {frame.begin(), frame.end()}});
        return;
      }
      SyncedDeliver(from, frame);
      return;
  }
}

void CpgViewSequencer::OnOwnJoin(const CpgConfchg& change) {
  // corosync sends a process nothing of a group before its own join, so the first confchg
  // is the join. Learn the pid corosync uses for us (it may differ from getpid() across
  // pid namespaces).
  bool found = false;
  for (const CpgAddress& j : change.joined) {
    if (j.node != self_node_) continue;
    if (!found || j.pid == self_pid_) self_pid_ = j.pid;
    found = true;
  }
  own_join_ = change;
  stayers_.clear();
  for (const CpgAddress& m : change.members) {
    const bool joining =
        std::any_of(change.joined.begin(), change.joined.end(),
                    [&](const CpgAddress& j) { return j.node == m.node && j.pid == m.pid; });
    if (!joining) stayers_.insert({m.node, m.pid});
  }
  alone_ = stayers_.empty();
  state_ = State::kWaitingSync;
  if (alone_ && ring_known_) Resolve(MakeViewId(ring_seq_, 1));
}

void CpgViewSequencer::Resolve(uint64_t join_view_id) {
  state_ = State::kSynced;
  ring_known_ = true;
  ring_seq_ = join_view_id >> 32;
  count_ = static_cast<uint32_t>(join_view_id);
  Emit(join_view_id, own_join_.members, own_join_.left, own_join_.joined);
  stayers_.clear();
  alone_ = false;
  std::vector<Held> replay = std::move(held_);
  held_.clear();
  for (const Held& h : replay) {
    switch (h.kind) {
      case Held::Kind::kConfchg:
        SyncedConfchg(h.change);
        break;
      case Held::Kind::kTotem:
        SyncedTotem(h.ring_seq, h.ring_nodes);
        break;
      case Held::Kind::kDeliver:
        OnDeliver(h.from, h.pid, h.frame);
        break;
    }
  }
}

void CpgViewSequencer::SyncedConfchg(const CpgConfchg& change) {
  if (batch_open_ || IsRingChange(change)) {
    batch_open_ = true;
    batch_members_ = change.members;
    batch_left_.insert(batch_left_.end(), change.left.begin(), change.left.end());
    batch_joined_.insert(batch_joined_.end(), change.joined.begin(), change.joined.end());
    return;
  }
  ++count_;
  const uint64_t id = MakeViewId(ring_seq_, count_);
  // Tell every process that joined here the id of its join (it cannot count it).
  for (const CpgAddress& j : change.joined) {
    if (j.reason == kReasonJoin && !(j.node == self_node_ && j.pid == self_pid_)) {
      sink_.OnViewSyncToSend(EncodeViewSync(j.node, j.pid, id));
    }
  }
  Emit(id, change.members, change.left, change.joined);
}

void CpgViewSequencer::SyncedTotem(uint64_t ring_seq, uint32_t ring_nodes) {
  if (batch_open_) {
    if (ring_nodes != 0) ring_nodes_ = ring_nodes;
    CloseBatch(ring_seq);
    return;
  }
  if (ring_seq == ring_seq_) {  // the initial totem confchg of the ring we are in
    if (ring_nodes_ == 0) ring_nodes_ = ring_nodes;
    return;
  }
  ring_seq_ = ring_seq;
  count_ = 0;
  if (ring_nodes == 0 || ring_nodes == ring_nodes_) return;
  // The ring changed under the group: quorum may have changed with it.
  ring_nodes_ = ring_nodes;
  Emit(MakeViewId(ring_seq, 0), members_, {}, {});
}

void CpgViewSequencer::CloseBatch(uint64_t ring_seq) {
  batch_open_ = false;
  ring_seq_ = ring_seq;
  count_ = 0;
  Emit(MakeViewId(ring_seq, 0), batch_members_, std::move(batch_left_), std::move(batch_joined_));
  batch_members_.clear();
  batch_left_.clear();
  batch_joined_.clear();
  std::vector<Held> deliveries = std::move(batch_deliveries_);
  batch_deliveries_.clear();
  for (const Held& h : deliveries) SyncedDeliver(h.from, h.frame);
}

void CpgViewSequencer::SyncedDeliver(NodeId from, std::span<const uint8_t> frame) {
  if (frame.empty() || frame[0] != kCpgFrameApp) return;  // view syncs (for others) end here
  sink_.OnViewDeliver(from, frame.subspan(1));
}

void CpgViewSequencer::Emit(uint64_t view_id, const std::vector<CpgAddress>& members,
                            std::vector<CpgAddress> left, std::vector<CpgAddress> joined) {
  view_id_ = view_id;
  members_ = members;
  std::vector<CpgAddress> sorted = members;
  std::sort(sorted.begin(), sorted.end(), ByNodeThenPid);
  std::sort(left.begin(), left.end(), ByNodeThenPid);
  std::sort(joined.begin(), joined.end(), ByNodeThenPid);
  // Nodes, not processes: a node with several processes in the group (another program
  // joined it, or a restarted daemon's join came before its old process's leave) is one
  // member, and leaves with its last process. Each process's join is handed on: a
  // restarted daemon must be seen to join (the others send it the state).
  Membership m;
  m.view_id = view_id;
  m.ring_nodes = ring_nodes_;
  // The lists are sorted by node: a node's processes stand together.
  auto add_once = [](std::vector<NodeId>& nodes, NodeId n) {
    if (!nodes.empty() && nodes.back() == n) return false;
    nodes.push_back(n);
    return true;
  };
  for (const CpgAddress& a : sorted) add_once(m.members, a.node);
  for (const CpgAddress& a : left) {
    if (std::binary_search(m.members.begin(), m.members.end(), a.node)) continue;
    if (add_once(m.left, a.node)) m.left_reasons.push_back(ToLeaveReason(a.reason));
  }
  for (const CpgAddress& a : joined) add_once(m.joined, a.node);
  sink_.OnViewMembership(m);
}

}  // namespace clogd::logd
