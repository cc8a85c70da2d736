// SimCpg, part 1: the transports handed to simulated daemon processes, the node-level fault
// calls and the trace. Sequencing and reconfiguration are in sim_cpg_ring.cc.
#include "tests/sim/sim_cpg.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

namespace clogd::sim {

namespace {
std::string NodeName(NodeId id) { return "node " + std::to_string(id); }
}  // namespace

const char* LeaveReasonName(LeaveReason reason) {
  switch (reason) {
    case LeaveReason::kLeft:
      return "left";
    case LeaveReason::kProcessDown:
      return "procdown";
    case LeaveReason::kNodeDown:
      return "nodedown";
  }
  return "?";
}

// One daemon process's view of the cluster. A thin handle: all state lives in SimCpg, so a
// transport can outlive the simulator (its calls then fail) and vice versa.
class SimCpg::Transport final : public logd::ClusterTransport {
 public:
  Transport(SimCpg* cpg, NodeId node, uint64_t id, uint64_t boot)
      : cpg_(cpg), node_(node), id_(id), boot_(boot) {}
  ~Transport() override {
    if (cpg_ != nullptr) cpg_->DropTransport(*this);
  }
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  NodeId LocalNode() const override { return node_; }
  Status Join(const std::string& group, logd::ClusterHandler* handler) override {
    return cpg_ == nullptr ? Gone() : cpg_->DoJoin(*this, group, handler);
  }
  Status Leave(const std::string& group) override {
    return cpg_ == nullptr ? Gone() : cpg_->DoLeave(*this, group);
  }
  Status Multicast(const std::string& group, std::span<const uint8_t> message) override {
    return cpg_ == nullptr ? Gone() : cpg_->DoMulticast(*this, group, message);
  }

  static Status Gone() { return IoError("the simulated cluster is gone"); }

  SimCpg* cpg_;
  const NodeId node_;
  const uint64_t id_;
  const uint64_t boot_;
};

SimCpg::SimCpg(EventLoop& loop, SimRng& rng, CpgTiming timing)
    : loop_(loop), rng_(rng), life_(std::make_shared<char>(0)) {
  SetTiming(timing);
}

SimCpg::~SimCpg() {
  for (auto& [id, transport] : transports_) transport->cpg_ = nullptr;
}

void SimCpg::SetTiming(const CpgTiming& timing) {
  timing_ = timing;
  timing_.multicast_max_us = std::max(timing_.multicast_max_us, timing_.multicast_min_us);
  timing_.join_max_us = std::max(timing_.join_max_us, timing_.join_min_us);
  // OnTransportLost is posted "now"; corosync must come back strictly later so that a
  // handler never sees its old session's loss after it joined again.
  timing_.restart_us = std::max<SimTime>(timing_.restart_us, 1);
}

void SimCpg::SetDeliverLatency(SimTime min_us, SimTime max_us) {
  CpgTiming t = timing_;
  t.multicast_min_us = min_us;
  t.multicast_max_us = max_us;
  SetTiming(t);
}

std::unique_ptr<logd::ClusterTransport> SimCpg::TransportFor(NodeId node) {
  uint64_t boot = 0;
  if (node != 0) boot = NodeAt(node).boot;
  auto transport = std::make_unique<Transport>(this, node, next_transport_++, boot);
  transports_[transport->id_] = transport.get();
  return transport;
}

SimCpg::Node& SimCpg::NodeAt(NodeId id) {
  auto it = nodes_.find(id);
  if (it != nodes_.end()) return it->second;
  Node& node = nodes_[id];
  // A node present from the start has been in the cluster since boot: it goes straight
  // into a working ring it can reach (it has no members yet, so nobody sees a change).
  for (auto& [ring_id, ring] : rings_) {
    if (!ring.frozen && nodes_.at(*ring.nodes.begin()).component == node.component) {
      ring.nodes.insert(id);
      node.ring = ring_id;
      return node;
    }
  }
  node.ring = NewRing({id});
  return node;
}

const SimCpg::Node* SimCpg::FindNode(NodeId id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

bool SimCpg::NodeUp(NodeId node) const {
  const Node* n = FindNode(node);
  return n != nullptr && n->up;
}

bool SimCpg::CorosyncUp(NodeId node) const {
  const Node* n = FindNode(node);
  return n != nullptr && n->up && n->corosync_up;
}

std::vector<std::vector<NodeId>> SimCpg::Rings() const {
  std::vector<std::vector<NodeId>> out;
  for (const auto& [id, ring] : rings_) out.emplace_back(ring.nodes.begin(), ring.nodes.end());
  std::sort(out.begin(), out.end());
  return out;
}

Status SimCpg::CheckProcess(const Transport& t) const {
  if (t.node_ == 0) return InvalidArgument("node id 0 is not a node");
  const Node* n = FindNode(t.node_);
  if (n == nullptr || !n->up || n->boot != t.boot_) {
    return IoError(NodeName(t.node_) + " crashed: this transport's process died with it");
  }
  return Status::Ok();
}

Status SimCpg::DoJoin(const Transport& t, const std::string& group, logd::ClusterHandler* handler) {
  if (group.empty() || group.size() > kMaxGroupName) {
    return InvalidArgument("group name must be 1.." + std::to_string(kMaxGroupName) +
                           " bytes, not " + std::to_string(group.size()));
  }
  if (handler == nullptr) return InvalidArgument("Join(" + group + ") without a handler");
  CLOG_RETURN_IF_ERROR(CheckProcess(t));
  Node& node = nodes_.at(t.node_);
  if (!node.corosync_up) {
    return IoError("corosync is not running on " + NodeName(t.node_) + " (Join " + group + ")");
  }
  if (node.bindings.count(group) != 0) {
    return InvalidArgument(NodeName(t.node_) + " is already a member of group " + group);
  }
  const uint64_t member_id = next_member_++;
  node.bindings[group] = Binding{member_id, t.id_, handler, false};
  if (Tracing()) Trace(t.node_, group, "join member=" + std::to_string(member_id));
  Submit(node,
         Request{Kind::kJoin, t.node_, node.session, member_id, LeaveReason::kLeft, group, nullptr},
         timing_.join_min_us, timing_.join_max_us);
  return Status::Ok();
}

Status SimCpg::DoLeave(const Transport& t, const std::string& group) {
  CLOG_RETURN_IF_ERROR(CheckProcess(t));
  Node& node = nodes_.at(t.node_);
  auto it = node.bindings.find(group);
  if (it == node.bindings.end() || it->second.transport_id != t.id_) {
    return NotFound(NodeName(t.node_) + " is not a member of group " + group);
  }
  const uint64_t member_id = it->second.member_id;
  // The handler is detached at once: nothing more reaches it for this group.
  node.bindings.erase(it);
  if (Tracing()) Trace(t.node_, group, "leave member=" + std::to_string(member_id));
  Submit(
      node,
      Request{Kind::kLeave, t.node_, node.session, member_id, LeaveReason::kLeft, group, nullptr},
      timing_.join_min_us, timing_.join_max_us);
  return Status::Ok();
}

Status SimCpg::DoMulticast(const Transport& t, const std::string& group,
                           std::span<const uint8_t> message) {
  if (message.size() > logd::kMaxClusterMessage) {
    return InvalidArgument("message of " + std::to_string(message.size()) + " bytes for group " +
                           group + " exceeds the largest cluster message (" +
                           std::to_string(logd::kMaxClusterMessage) + " bytes)");
  }
  CLOG_RETURN_IF_ERROR(CheckProcess(t));
  Node& node = nodes_.at(t.node_);
  if (!node.corosync_up) {
    return IoError("corosync is not running on " + NodeName(t.node_) + " (Multicast " + group +
                   ")");
  }
  auto it = node.bindings.find(group);
  if (it == node.bindings.end() || it->second.transport_id != t.id_ || !it->second.installed) {
    return InvalidArgument(NodeName(t.node_) + " has not joined group " + group +
                           " (Multicast before the first membership of its Join)");
  }
  if (node.busy > 0 && rng_.Chance(node.busy)) {
    if (Tracing()) Trace(t.node_, group, "mcast busy");
    return Busy("flow control (CS_ERR_TRY_AGAIN) on " + NodeName(t.node_) + ", group " + group +
                ": retry later");
  }
  auto payload = std::make_shared<const std::vector<uint8_t>>(message.begin(), message.end());
  if (Tracing()) {
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a: names the payload in the trace
    for (uint8_t b : message) h = (h ^ b) * 0x100000001b3ULL;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
    Trace(t.node_, group, "mcast len=" + std::to_string(message.size()) + " h=" + buf);
  }
  Submit(node,
         Request{Kind::kMessage, t.node_, node.session, it->second.member_id, LeaveReason::kLeft,
                 group, std::move(payload)},
         timing_.multicast_min_us, timing_.multicast_max_us);
  return Status::Ok();
}

void SimCpg::DropTransport(const Transport& t) {
  transports_.erase(t.id_);
  if (t.node_ == 0) return;
  Node& node = nodes_.at(t.node_);
  if (!node.up || !node.corosync_up || node.boot != t.boot_) return;
  // The process exited: corosync notices the closed connection and leaves its groups, after
  // whatever the process had sent (the requests share the node's FIFO).
  for (auto it = node.bindings.begin(); it != node.bindings.end();) {
    if (it->second.transport_id != t.id_) {
      ++it;
      continue;
    }
    const uint64_t member_id = it->second.member_id;
    const std::string group = it->first;
    it = node.bindings.erase(it);
    if (Tracing()) Trace(t.node_, group, "process exit member=" + std::to_string(member_id));
    Submit(node,
           Request{Kind::kLeave, t.node_, node.session, member_id, LeaveReason::kProcessDown, group,
                   nullptr},
           timing_.join_min_us, timing_.join_max_us);
  }
}

void SimCpg::Submit(Node& node, Request request, SimTime min_us, SimTime max_us) {
  const SimTime at = std::max(loop_.Now() + rng_.Range(min_us, max_us), node.submit_at);
  node.submit_at = at;
  Post(at, [this, r = std::move(request)]() mutable { Arrive(std::move(r)); });
}

void SimCpg::Post(SimTime at, std::function<void()> fn) {
  loop_.ScheduleAt(at, [alive = std::weak_ptr<char>(life_), fn = std::move(fn)] {
    if (!alive.expired()) fn();
  });
}

void SimCpg::Trace(NodeId node, std::string_view group, const std::string& what) const {
  if (!trace_) return;
  const SimTime now = loop_.Now();
  char head[64];
  std::snprintf(head, sizeof head, "%" PRIu64 ".%06" PRIu64 " n%" PRIu32 " ", now / 1'000'000,
                now % 1'000'000, node);
  std::string line(head);
  line.append(group.empty() ? std::string_view("-") : group);
  line += ' ';
  line += what;
  trace_(line);
}

// --- faults

Status SimCpg::CrashNode(NodeId id) {
  if (id == 0) return InvalidArgument("node id 0 is not a node");
  Node& node = NodeAt(id);
  if (!node.up) return InvalidArgument("cannot crash " + NodeName(id) + ": it is down");
  node.up = false;
  node.corosync_up = false;
  ++node.boot;
  ++node.session;
  node.bindings.clear();  // its handlers get nothing more
  if (Tracing()) Trace(id, "", "crash");
  RemoveFromRing(id, node);
  return Status::Ok();
}

Status SimCpg::RestartNode(NodeId id) {
  if (id == 0) return InvalidArgument("node id 0 is not a node");
  Node& node = NodeAt(id);
  if (node.up) return InvalidArgument("cannot restart " + NodeName(id) + ": it is up");
  node.up = true;
  ++node.boot;
  ++node.session;
  if (Tracing()) Trace(id, "", "boot");
  Post(loop_.Now() + timing_.restart_us,
       [this, id, session = node.session] { CorosyncStart(id, session); });
  return Status::Ok();
}

Status SimCpg::RestartCorosync(NodeId id) {
  if (id == 0) return InvalidArgument("node id 0 is not a node");
  Node& node = NodeAt(id);
  if (!node.up || !node.corosync_up) {
    return InvalidArgument("cannot restart corosync on " + NodeName(id) + ": it is not running");
  }
  node.corosync_up = false;
  ++node.session;
  if (Tracing()) Trace(id, "", "corosync stop");
  for (const auto& [group, binding] : node.bindings) {
    Post(loop_.Now(), [this, id, boot = node.boot, group = group, tid = binding.transport_id,
                       handler = binding.handler] {
      const Node* n = FindNode(id);
      if (n == nullptr || !n->up || n->boot != boot || transports_.count(tid) == 0) return;
      if (Tracing()) Trace(id, group, "transport lost");
      handler->OnTransportLost();
    });
  }
  node.bindings.clear();
  RemoveFromRing(id, node);
  Post(loop_.Now() + timing_.restart_us,
       [this, id, session = node.session] { CorosyncStart(id, session); });
  return Status::Ok();
}

Status SimCpg::Partition(const std::vector<std::vector<NodeId>>& components) {
  std::set<NodeId> seen;
  for (const auto& component : components) {
    for (NodeId id : component) {
      if (id == 0) return InvalidArgument("node id 0 is not a node");
      if (!seen.insert(id).second) {
        return InvalidArgument(NodeName(id) + " is listed in two partition components");
      }
    }
  }
  for (NodeId id : seen) NodeAt(id);
  std::map<NodeId, uint64_t> label;
  for (const auto& component : components) {
    const uint64_t l = next_label_++;
    for (NodeId id : component) label[id] = l;
  }
  std::string what = "partition";
  for (auto& [id, node] : nodes_) {
    auto it = label.find(id);
    node.component = it != label.end() ? it->second : next_label_++;
    what += " n" + std::to_string(id) + ":" + std::to_string(node.component);
  }
  if (Tracing()) Trace(0, "", what);
  std::vector<uint64_t> split;
  for (const auto& [ring_id, ring] : rings_) {
    for (NodeId id : ring.nodes) {
      if (nodes_.at(id).component != nodes_.at(*ring.nodes.begin()).component) {
        split.push_back(ring_id);
        break;
      }
    }
  }
  for (uint64_t ring_id : split) MarkFault(ring_id);
  ScheduleMergeCheck();  // the new split may also join formerly separate components
  return Status::Ok();
}

void SimCpg::Heal() {
  for (auto& [id, node] : nodes_) node.component = 0;
  if (Tracing()) Trace(0, "", "heal");
  ScheduleMergeCheck();
}

Status SimCpg::SetFlowControl(NodeId id, double busy_probability) {
  if (id == 0) return InvalidArgument("node id 0 is not a node");
  if (!(busy_probability >= 0 && busy_probability <= 1)) {
    return InvalidArgument("flow control probability must be in [0, 1]");
  }
  NodeAt(id).busy = busy_probability;
  return Status::Ok();
}

}  // namespace clogd::sim
