// The cluster as the core sees it: join a group, leave it, multicast in agreed (total)
// order, and be told of deliveries and membership changes with virtual synchrony (every
// member that stays sees the same messages and the same change at the same point of the
// stream). Production implements it with corosync CPG; the simulator with a seeded model.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "region/log_format.h"
#include "region/status.h"

namespace clogd::logd {

using region::NodeId;

struct Membership {
  // Identifies this change; the same on every member (corosync's ring sequence; the
  // simulator's per-group counter). Strictly increases from one change to the next.
  uint64_t view_id = 0;
  // After the change, in an order that is the same on every member. corosync's CPG lists
  // members by (node id, pid); the simulator's model lists the oldest first. The state
  // machine relies only on the order being the same everywhere.
  std::vector<NodeId> members;  // each node once, however many processes it has there
  std::vector<NodeId> left;     // left or failed since the previous change (its last process)
  // Parallel to `left`: why, as corosync says it. kProcessDown: the daemon exited, the node
  // is up and its kernel may still write. kNodeDown: the node left the ring — crashed, or
  // cut off by a partition, or its corosync died under a live daemon; only fencing (quorum
  // plus power-off) makes it "nothing more can come from it". kLeft: cpg_leave.
  enum class LeaveReason { kLeft, kProcessDown, kNodeDown };
  std::vector<LeaveReason> left_reasons;
  std::vector<NodeId> joined;  // joined since the previous change
  // Nodes in this member's totem ring (its side of a partition) after the change, the same
  // on every member; what quorum counts. A change may name nobody joined or left: the ring
  // changed under the group (a node outside it came or went), given when the count changes.
  // 0: not known (the group's members count instead).
  uint32_t ring_nodes = 0;
};

class ClusterHandler {
 public:
  virtual ~ClusterHandler() = default;
  // An agreed message, delivered to every member (the sender too) in the same order.
  virtual void OnDeliver(NodeId from, std::span<const uint8_t> message) = 0;
  // A membership change; the first one after Join includes this node in `joined`. At a
  // merge each side sees the other side in `joined`, with the same members and view_id.
  // After Leave returns ok the handler gets nothing more.
  virtual void OnMembership(const Membership& membership) = 0;
  // The transport is gone (corosync died): the group membership is lost; join again.
  virtual void OnTransportLost() = 0;
};

class ClusterTransport {
 public:
  virtual ~ClusterTransport() = default;
  virtual NodeId LocalNode() const = 0;
  // One member per node per group. kIoError while corosync is down (retry after
  // OnTransportLost).
  virtual Status Join(const std::string& group, ClusterHandler* handler) = 0;
  virtual Status Leave(const std::string& group) = 0;
  // kBusy: flow control (CS_ERR_TRY_AGAIN); the caller retries later, never fails a
  // kernel request for it. kInvalidArgument before the first membership change or for a
  // message larger than kMaxClusterMessage. A sender's messages arrive in send order.
  virtual Status Multicast(const std::string& group, std::span<const uint8_t> message) = 0;
};

// Stay under corosync's largest atomic message (1,047,552 bytes).
inline constexpr size_t kMaxClusterMessage = 1000 * 1024;

}  // namespace clogd::logd
