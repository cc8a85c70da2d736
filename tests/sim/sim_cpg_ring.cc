// SimCpg, part 2: the totem rings. A sequencer per ring orders requests; deliveries fan out
// to members in that order; faults freeze a ring until detection, then it splits; reachable
// rings merge. See sim_cpg.h for the model.
#include <algorithm>
#include <utility>

#include "tests/sim/sim_cpg.h"

namespace clogd::sim {

namespace {

template <typename Members>
std::vector<NodeId> NodesOf(const Members& members) {
  std::vector<NodeId> out;
  out.reserve(members.size());
  for (const auto& m : members) out.push_back(m.node);
  return out;
}

std::string List(const std::vector<NodeId>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i != 0) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "]";
}

// A change as every receiver of it sees it; view_id is its agreed-order position;
// ring_nodes the size of the receivers' ring after it.
std::shared_ptr<const logd::Membership> MakeChange(uint64_t view_id, size_t ring_nodes,
                                                   std::vector<NodeId> members,
                                                   std::vector<NodeId> left,
                                                   std::vector<LeaveReason> reasons,
                                                   std::vector<NodeId> joined) {
  auto m = std::make_shared<logd::Membership>();
  m->view_id = view_id;
  m->ring_nodes = static_cast<uint32_t>(ring_nodes);
  m->members = std::move(members);
  m->left = std::move(left);
  m->left_reasons = std::move(reasons);
  m->joined = std::move(joined);
  return m;
}

std::string Why(const std::vector<LeaveReason>& reasons) {
  std::string out = "[";
  for (size_t i = 0; i < reasons.size(); ++i) {
    if (i != 0) out += ',';
    out += LeaveReasonName(reasons[i]);
  }
  return out + "]";
}

}  // namespace

uint64_t SimCpg::NewRing(std::set<NodeId> nodes) {
  const uint64_t id = next_ring_++;
  Ring& ring = rings_[id];
  ring.nodes = std::move(nodes);
  for (NodeId n : ring.nodes) nodes_.at(n).ring = id;
  if (Tracing()) {
    Trace(0, "",
          "ring " + std::to_string(id) +
              " nodes=" + List(std::vector<NodeId>(ring.nodes.begin(), ring.nodes.end())));
  }
  return id;
}

void SimCpg::Arrive(Request request) {
  auto it = nodes_.find(request.node);
  if (it == nodes_.end()) return;
  Node& node = it->second;
  if (!node.up || !node.corosync_up || node.session != request.session || node.ring == 0) {
    // The sender died (or lost corosync) before its request was ordered: nobody gets it.
    if (Tracing()) Trace(request.node, request.group, "dropped unordered request");
    return;
  }
  Ring& ring = rings_.at(node.ring);
  if (ring.frozen) {
    ring.held.push_back(std::move(request));
    return;
  }
  Sequence(ring, std::move(request));
}

void SimCpg::Sequence(Ring& ring, Request request) {
  std::vector<Member>& members = ring.groups[request.group];
  auto self = std::find_if(members.begin(), members.end(),
                           [&](const Member& m) { return m.member_id == request.member_id; });
  Delivery proto;
  proto.group = request.group;
  proto.from = request.node;
  switch (request.kind) {
    case Kind::kMessage:
      if (self == members.end()) break;  // it left first: not a member, not delivered
      proto.position = next_position_++;
      proto.payload = std::move(request.payload);
      Fanout(members, proto);
      break;
    case Kind::kJoin: {
      const Node& node = nodes_.at(request.node);
      auto b = node.bindings.find(request.group);
      if (b == node.bindings.end() || b->second.member_id != request.member_id) break;
      members.push_back(Member{request.node, request.member_id, next_stamp_++});
      proto.position = next_position_++;
      proto.membership =
          MakeChange(proto.position, ring.nodes.size(), NodesOf(members), {}, {}, {request.node});
      Fanout(members, proto);
      break;
    }
    case Kind::kLeave:
      if (self == members.end()) break;
      members.erase(self);
      if (members.empty()) break;
      proto.position = next_position_++;
      proto.membership = MakeChange(proto.position, ring.nodes.size(), NodesOf(members),
                                    {request.node}, {request.reason}, {});
      proto.why = Why({request.reason});
      Fanout(members, proto);
      break;
  }
  if (members.empty()) ring.groups.erase(request.group);
}

void SimCpg::Fanout(const std::vector<Member>& receivers, const Delivery& proto) {
  for (const Member& m : receivers) {
    Node& node = nodes_.at(m.node);
    Delivery d = proto;
    d.node = m.node;
    d.session = node.session;
    d.member_id = m.member_id;
    // Per-receiver jitter, but never before this receiver's previous delivery: every
    // receiver sees the agreed order.
    const SimTime at =
        std::max(loop_.Now() + rng_.Range(0, timing_.jitter_max_us), node.deliver_at);
    node.deliver_at = at;
    Post(at, [this, d = std::move(d)] { Deliver(d); });
  }
}

void SimCpg::Deliver(const Delivery& d) {
  auto it = nodes_.find(d.node);
  if (it == nodes_.end()) return;
  Node& node = it->second;
  if (!node.up || !node.corosync_up || node.session != d.session) return;
  auto b = node.bindings.find(d.group);
  if (b == node.bindings.end() || b->second.member_id != d.member_id) return;  // left
  logd::ClusterHandler* handler = b->second.handler;
  if (d.membership) {
    b->second.installed = true;
    if (Tracing()) {
      Trace(d.node, d.group,
            "membership view=" + std::to_string(d.position) +
                " members=" + List(d.membership->members) + " left=" + List(d.membership->left) +
                (d.why.empty() ? "" : " why=" + d.why) + " joined=" + List(d.membership->joined));
    }
    if (tap_) tap_(d.node, d.group, d.position);
    handler->OnMembership(*d.membership);  // may Join/Leave/Multicast: touch nothing after
  } else {
    if (Tracing()) {
      Trace(d.node, d.group,
            "deliver pos=" + std::to_string(d.position) + " from=n" + std::to_string(d.from) +
                " len=" + std::to_string(d.payload->size()));
    }
    if (tap_) tap_(d.node, d.group, d.position);
    handler->OnDeliver(d.from, std::span<const uint8_t>(*d.payload));
  }
}

void SimCpg::RemoveFromRing(NodeId id, Node& node) {
  if (node.ring == 0) return;
  const uint64_t ring_id = node.ring;
  node.ring = 0;
  Ring& ring = rings_.at(ring_id);
  ring.nodes.erase(id);
  if (ring.nodes.empty()) {
    // Nobody left to tell; its held requests all came from departed sessions.
    rings_.erase(ring_id);
    return;
  }
  // Its members stay in the groups until the survivors detect the failure.
  MarkFault(ring_id);
}

void SimCpg::MarkFault(uint64_t ring_id) {
  Ring& ring = rings_.at(ring_id);
  ring.frozen = true;
  // A new fault while one is being detected restarts detection (totem starts its gather
  // again), and the one reconfiguration then covers both: several nodes leave at once.
  const uint64_t token = ++ring.reconfig_token;
  if (Tracing()) Trace(0, "", "ring " + std::to_string(ring_id) + " fault");
  Post(loop_.Now() + timing_.detection_us, [this, ring_id, token] { Reconfigure(ring_id, token); });
}

void SimCpg::Reconfigure(uint64_t ring_id, uint64_t token) {
  auto it = rings_.find(ring_id);
  if (it == rings_.end() || it->second.reconfig_token != token) return;  // superseded
  Ring old = std::move(it->second);
  rings_.erase(it);
  // Nodes still in the ring are alive with corosync up; split them by reachability.
  std::map<uint64_t, std::set<NodeId>> parts;
  for (NodeId id : old.nodes) parts[nodes_.at(id).component].insert(id);
  for (auto& [label, part] : parts) {
    const uint64_t new_id = NewRing(part);
    Ring& ring = rings_.at(new_id);
    for (const auto& [group, members] : old.groups) {
      std::vector<Member> kept;
      std::vector<Member> gone;
      for (const Member& m : members) (ring.nodes.count(m.node) != 0 ? kept : gone).push_back(m);
      if (kept.empty()) continue;
      ring.groups[group] = kept;
      // A group nobody left still hears of the smaller ring (corosync's totem confchg).
      if (gone.empty() && ring.nodes.size() == old.nodes.size()) continue;
      Delivery proto;
      proto.group = group;
      proto.position = next_position_++;
      // Crash, corosync death and partition look the same from here (CPG_REASON_NODEDOWN).
      const std::vector<LeaveReason> reasons(gone.size(), LeaveReason::kNodeDown);
      proto.membership =
          MakeChange(proto.position, ring.nodes.size(), NodesOf(kept), NodesOf(gone), reasons, {});
      proto.why = Why(reasons);
      Fanout(kept, proto);
    }
  }
  // Requests that waited out the detection are ordered after the change, in arrival order.
  for (Request& request : old.held) Arrive(std::move(request));
  MergeRings();
}

void SimCpg::ScheduleMergeCheck() {
  Post(loop_.Now() + timing_.merge_us, [this] { MergeRings(); });
}

void SimCpg::MergeRings() {
  // Working rings that can reach each other merge; frozen ones wait for their
  // reconfiguration, which checks again.
  std::map<uint64_t, std::vector<uint64_t>> by_component;
  for (const auto& [id, ring] : rings_) {
    if (!ring.frozen) by_component[nodes_.at(*ring.nodes.begin()).component].push_back(id);
  }
  for (const auto& [label, ids] : by_component) {
    if (ids.size() > 1) Merge(ids);
  }
}

void SimCpg::Merge(const std::vector<uint64_t>& ring_ids) {
  std::set<NodeId> nodes;
  std::set<std::string> groups;
  for (uint64_t id : ring_ids) {
    const Ring& ring = rings_.at(id);
    nodes.insert(ring.nodes.begin(), ring.nodes.end());
    for (const auto& [group, members] : ring.groups) groups.insert(group);
  }
  std::map<std::string, std::vector<Member>> merged;
  for (const std::string& group : groups) {
    std::vector<Member> all;
    for (uint64_t id : ring_ids) {
      const Ring& ring = rings_.at(id);
      auto g = ring.groups.find(group);
      if (g != ring.groups.end()) all.insert(all.end(), g->second.begin(), g->second.end());
    }
    std::sort(all.begin(), all.end(),
              [](const Member& a, const Member& b) { return a.stamp < b.stamp; });
    // One position for the merge: it is the same point in the merged stream for both sides,
    // though each side sees the other side in `joined`.
    const uint64_t position = next_position_++;
    for (uint64_t id : ring_ids) {
      const Ring& ring = rings_.at(id);
      auto g = ring.groups.find(group);
      if (g == ring.groups.end()) continue;
      std::vector<NodeId> joined;
      for (const Member& m : all) {
        const bool here = std::any_of(g->second.begin(), g->second.end(),
                                      [&](const Member& x) { return x.member_id == m.member_id; });
        if (!here) joined.push_back(m.node);
      }
      // A side nobody joined still hears of the larger ring (corosync's totem confchg).
      if (joined.empty() && ring.nodes.size() == nodes.size()) continue;
      Delivery proto;
      proto.group = group;
      proto.position = position;
      proto.membership = MakeChange(position, nodes.size(), NodesOf(all), {}, {}, joined);
      Fanout(g->second, proto);
    }
    merged[group] = std::move(all);
  }
  for (uint64_t id : ring_ids) rings_.erase(id);
  const uint64_t new_id = NewRing(std::move(nodes));
  rings_.at(new_id).groups = std::move(merged);
}

void SimCpg::CorosyncStart(NodeId id, uint64_t session) {
  Node& node = nodes_.at(id);
  if (!node.up || node.session != session) return;  // crashed (or rebooted) meanwhile
  node.corosync_up = true;
  if (Tracing()) Trace(id, "", "corosync start");
  // It forms a ring of its own first (a Join now sees only itself), then merges.
  NewRing({id});
  ScheduleMergeCheck();
}

}  // namespace clogd::sim
