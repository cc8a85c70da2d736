// The replicated state of one clustered log: what every ready member holds identically,
// because each applies the same agreed messages and membership changes in the same order.
// A joiner receives it as a checkpoint (encoded here, chunked by the caller).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <vector>

#include "recovery/recovery_assigner.h"
#include "region/log_state.h"
#include "region/status.h"

namespace clogd::logd {

using region::NodeId;
using region::RegionNo;

inline constexpr uint32_t kNoSlot = 0xFFFFFFFF;

struct ClusterState {
  // In-sync map; for clustered-core also every member's dirty set (marks are replicated).
  region::LogState log;
  recovery::RecoveryAssigner recovery;
  std::vector<NodeId> members;  // ready-or-joining members, CPG order (oldest first)
  NodeId server = 0;
  uint64_t generation = 0;
  // clustered-disk: which node owns each slot (departed nodes keep theirs until freed).
  std::map<uint32_t, NodeId> slot_owner;
  // clustered-disk: departed nodes whose slot has not been merged yet (OUT_OF_SYNC not
  // delivered), and those merged but whose slot is not yet freed.
  std::set<NodeId> awaiting_merge;
  std::set<NodeId> awaiting_free;
  // Out-of-sync regions each member still has marked (writes may be in flight).
  std::map<NodeId, std::set<RegionNo>> busy;
  // After a failed node's regions went out of sync: members that have not yet re-armed
  // their kernel and reported. Recovery waits for these.
  std::map<NodeId, std::set<NodeId>> awaiting_reports;

  uint32_t SlotOf(NodeId node) const;
  // The lowest slot nobody owns, or kNoSlot.
  uint32_t FreeSlot(uint32_t slot_count) const;
  bool IsBusy(RegionNo r) const;
  // Recovery may be handed out at all: no merge or report outstanding.
  bool RecoveryGateOpen() const { return awaiting_merge.empty() && awaiting_reports.empty(); }

  std::vector<uint8_t> EncodeCheckpoint() const;
  static Result<ClusterState> DecodeCheckpoint(std::span<const uint8_t> bytes, uint64_t nr_regions,
                                               uint32_t region_size);
};

}  // namespace clogd::logd
