// The corosync CPG model of the deterministic simulator: implements logd::ClusterTransport
// for any number of simulated nodes in one process, on virtual time, with faults on demand.
//
// Model (DESIGN.md §3): nodes that can reach each other form a totem "ring"; each ring has
// one sequencer that gives every multicast, join and leave a position in one agreed order
// when the request reaches it (after a random latency, FIFO per sender), and fans it out to
// the current group members, in that order on every receiver (per-receiver jitter, never
// reordering). A membership change takes a position in the same order, so every member sees
// it at the same point of its stream (virtual synchrony). A fault (crash, corosync death,
// partition) freezes the ring: requests wait, as they do while totem has lost its token,
// until the detection delay (token + consensus) has passed; then the ring splits into the
// reachable components, the survivors of each group get one change naming everybody who
// left, and the held requests of live senders are sequenced in the new rings. Requests not
// yet sequenced when their sender died are dropped; sequenced ones reach every survivor.
// Healed components (and a node whose corosync came back) merge after a merge delay; each
// side sees the other side's members in `joined`. Member lists are ordered by join order
// (oldest first), identical everywhere. Every change carries the size of the receivers' ring
// (Membership::ring_nodes); a ring that splits or merges under a group that did not change
// gives that group a change naming nobody (as corosync's totem confchg does). Quorum is the
// user's to compute from it: the model itself lets every side of a partition go on.
// A change's view_id is its position in the agreed order: the same on every member (both
// sides of a merge too), growing along every stream, unique across groups. Leave reasons are
// what corosync would say: kLeft (Leave), kProcessDown (the transport was destroyed on a live
// node), kNodeDown (crash, corosync death, partition: a kNodeDown member may be alive).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "logd/cluster_transport.h"
#include "region/status.h"
#include "tests/sim/event_loop.h"
#include "tests/sim/sim_rng.h"

namespace clogd::sim {

using region::NodeId;
using LeaveReason = logd::Membership::LeaveReason;

// corosync's words for a leave: "left" (cpg_leave), "procdown" (the process exited, corosync
// on its node still up), "nodedown" (crash, corosync death or partition).
const char* LeaveReasonName(LeaveReason reason);

struct CpgTiming {
  SimTime multicast_min_us = 300;  // sender -> sequencer; the order is fixed on arrival
  SimTime multicast_max_us = 500;
  SimTime jitter_max_us = 100;  // sequencer -> each receiver, on top (never reorders)
  SimTime join_min_us = 500;    // join/leave request -> sequencer
  SimTime join_max_us = 1500;
  SimTime detection_us = 2'000'000;  // token + consensus with `token: 1000`
  SimTime restart_us = 1'000'000;    // corosync (or a crashed node) back after a restart
  SimTime merge_us = 500'000;        // reachable rings merge after this long
};

// CPG_MAX_NAME_LENGTH.
inline constexpr size_t kMaxGroupName = 128;

class SimCpg {
 public:
  using TraceSink = std::function<void(const std::string&)>;
  // Called just before each OnDeliver/OnMembership with the event's position in the
  // simulator's agreed order: the same number on every receiver of that event, growing along
  // every receiver's stream. For checkers that need to name "the same change" on two nodes.
  using DeliveryTap = std::function<void(NodeId node, const std::string& group, uint64_t position)>;

  SimCpg(EventLoop& loop, SimRng& rng, CpgTiming timing = {});
  ~SimCpg();
  SimCpg(const SimCpg&) = delete;
  SimCpg& operator=(const SimCpg&) = delete;

  // The transport of one daemon process on `node` (node ids are never 0). Nodes come into
  // existence on first mention, up, with corosync running, in the ring of whoever they can
  // reach. Destroying the transport is the process exiting: its groups are left. A node
  // may have several transports over time (daemon restarts); one member per node per group.
  // Transports of a crashed node are dead: every call fails with kIoError.
  std::unique_ptr<logd::ClusterTransport> TransportFor(NodeId node);

  // --- faults (each refused with kInvalidArgument when it makes no sense, e.g. crashing a
  // node that is down)
  // The node stops at once: it sends and receives nothing more, its handlers are never
  // called again; the others see it leave after the detection delay.
  Status CrashNode(NodeId node);
  // A crashed node boots; corosync is up after restart_us. Old transports stay dead.
  Status RestartNode(NodeId node);
  // corosync dies under the daemon: every handler of the node gets OnTransportLost (as an
  // event), its groups are gone, the others see it leave after the detection delay. Join and
  // Multicast fail with kIoError until corosync is back (restart_us); it starts in a ring of
  // its own and merges with the others after merge_us.
  Status RestartCorosync(NodeId node);
  // Splits the network: each listed component reaches only itself; unlisted nodes are
  // isolated. Each side sees the others leave after the detection delay.
  Status Partition(const std::vector<std::vector<NodeId>>& components);
  // Everybody reaches everybody again; components merge after merge_us.
  void Heal();
  // Multicast from `node` returns kBusy (CS_ERR_TRY_AGAIN) with this probability.
  Status SetFlowControl(NodeId node, double busy_probability);
  // Sender -> sequencer latency range.
  void SetDeliverLatency(SimTime min_us, SimTime max_us);
  void SetTiming(const CpgTiming& timing);
  const CpgTiming& timing() const { return timing_; }

  // One line per event: "<seconds.micros> n<node> <group|-> <event ...>".
  void SetTraceSink(TraceSink sink) { trace_ = std::move(sink); }
  void SetDeliveryTap(DeliveryTap tap) { tap_ = std::move(tap); }

  // --- inspection (tests)
  bool NodeUp(NodeId node) const;
  bool CorosyncUp(NodeId node) const;
  // The rings (node sets), lowest node first.
  std::vector<std::vector<NodeId>> Rings() const;

 private:
  class Transport;

  struct Binding {  // a Join of one process on this node
    uint64_t member_id = 0;
    uint64_t transport_id = 0;
    logd::ClusterHandler* handler = nullptr;
    bool installed = false;  // got its first membership: may multicast
  };
  struct Node {
    bool up = true;
    bool corosync_up = true;
    uint64_t boot = 0;     // bumped when the node crashes or boots: transports die with it
    uint64_t session = 0;  // bumped when the node or corosync goes away: stale requests drop
    uint64_t ring = 0;     // 0: in no ring (down)
    uint64_t component = 0;
    double busy = 0;
    SimTime submit_at = 0;   // last request arrival: keeps a node's requests FIFO
    SimTime deliver_at = 0;  // last delivery: keeps a node's deliveries in agreed order
    std::map<std::string, Binding> bindings;  // by group
  };
  struct Member {
    NodeId node = 0;
    uint64_t member_id = 0;
    uint64_t stamp = 0;  // join order: the member list is sorted by it (oldest first)
  };
  enum class Kind { kMessage, kJoin, kLeave };
  struct Request {  // on its way to the sequencer
    Kind kind = Kind::kMessage;
    NodeId node = 0;
    uint64_t session = 0;
    uint64_t member_id = 0;
    LeaveReason reason = LeaveReason::kLeft;  // kLeave: cpg_leave or the process exited
    std::string group;
    std::shared_ptr<const std::vector<uint8_t>> payload;
  };
  struct Ring {
    std::set<NodeId> nodes;                             // reachable, alive, corosync up
    std::map<std::string, std::vector<Member>> groups;  // may hold departed members until
                                                        // the reconfiguration removes them
    bool frozen = false;                                // a fault is being detected
    uint64_t reconfig_token = 0;
    std::deque<Request> held;  // arrived while frozen
  };
  struct Delivery {  // one event for one receiver
    NodeId node = 0;
    uint64_t session = 0;
    uint64_t member_id = 0;
    uint64_t position = 0;
    std::string group;
    NodeId from = 0;
    std::shared_ptr<const std::vector<uint8_t>> payload;  // message, or
    std::shared_ptr<const logd::Membership> membership;   // membership change
    std::string why;                                      // leave reasons, for the trace
  };

  // sim_cpg.cc: API, processes, faults.
  Node& NodeAt(NodeId id);
  const Node* FindNode(NodeId id) const;
  Status CheckProcess(const Transport& t) const;
  Status DoJoin(const Transport& t, const std::string& group, logd::ClusterHandler* handler);
  Status DoLeave(const Transport& t, const std::string& group);
  Status DoMulticast(const Transport& t, const std::string& group,
                     std::span<const uint8_t> message);
  void DropTransport(const Transport& t);
  void Submit(Node& node, Request request, SimTime min_us, SimTime max_us);
  void Post(SimTime at, std::function<void()> fn);
  bool Tracing() const { return static_cast<bool>(trace_); }
  void Trace(NodeId node, std::string_view group, const std::string& what) const;

  // sim_cpg_ring.cc: sequencing, delivery, reconfiguration.
  uint64_t NewRing(std::set<NodeId> nodes);
  void Arrive(Request request);
  void Sequence(Ring& ring, Request request);
  void Fanout(const std::vector<Member>& receivers, const Delivery& proto);
  void Deliver(const Delivery& d);
  void RemoveFromRing(NodeId id, Node& node);
  void MarkFault(uint64_t ring_id);
  void Reconfigure(uint64_t ring_id, uint64_t token);
  void MergeRings();
  void Merge(const std::vector<uint64_t>& ring_ids);
  void ScheduleMergeCheck();
  void CorosyncStart(NodeId id, uint64_t session);

  EventLoop& loop_;
  SimRng& rng_;
  CpgTiming timing_;
  TraceSink trace_;
  DeliveryTap tap_;
  std::shared_ptr<char> life_;  // events hold a weak_ptr: none runs after we are gone
  std::map<NodeId, Node> nodes_;
  std::map<uint64_t, Ring> rings_;             // by id; iteration order is creation order
  std::map<uint64_t, Transport*> transports_;  // live transports, to detach on destruction
  uint64_t next_ring_ = 1;
  uint64_t next_member_ = 1;
  uint64_t next_stamp_ = 1;
  uint64_t next_position_ = 1;
  uint64_t next_transport_ = 1;
  uint64_t next_label_ = 1;
};

}  // namespace clogd::sim
