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
// awaiting_reports keys with this bit set are not departed nodes but regions that went out
// of sync by a failed write (ClusterLog::OutOfSyncByFailedWrite); node ids stay below
// kFenceGrace.
inline constexpr NodeId kFailedWriteReports = 0x80000000;
// awaiting_reports keys with this bit (and not the top one) set are a departed node's fence
// grace (ClusterLog::AwaitFenceGrace): each member "reports" when its grace has run out.
inline constexpr NodeId kFenceGrace = 0x40000000;

struct ClusterState {
  // In-sync map; for clustered-core also every member's dirty set (marks are replicated).
  region::LogState log;
  recovery::RecoveryAssigner recovery;
  std::vector<NodeId> members;  // ready-or-joining members, CPG order (oldest first)
  NodeId server = 0;
  uint64_t generation = 0;
  // Names the in-sync map's history (set when the log is bootstrapped) and counts its
  // changes since: a member that left holding (history, version) can be sent the changes
  // since instead of the whole state (see DeltaMsg).
  uint64_t history = 0;
  uint64_t sync_version = 0;
  // clustered-disk: some member's log device failed (DEVICE_FAILED) since the bootstrap:
  // marks may live only in memory, so the device's in-sync map must not be trusted by a
  // later bootstrap; the server writes it as all out of sync.
  bool device_suspect = false;
  // clustered-disk: which member owns each slot.
  std::map<uint32_t, NodeId> slot_owner;
  // clustered-disk: slots of departed nodes (slot -> node) not merged yet (OUT_OF_SYNC not
  // delivered), and merged but not yet freed. A node that comes back meanwhile gets a
  // new slot; these stay reserved until freed.
  std::map<uint32_t, NodeId> awaiting_merge;
  std::map<uint32_t, NodeId> awaiting_free;
  // Members whose daemon died on a live node: they keep slot, marks and recovery
  // ownership. clustered-disk: `awaiting_absent` until the server published their slot.
  std::set<NodeId> absent;
  std::set<NodeId> awaiting_absent;
  // Out-of-sync regions each member still has marked (writes may be in flight).
  std::map<NodeId, std::set<RegionNo>> busy;
  // After a failed node's regions went out of sync: members that have not yet re-armed
  // their kernel and reported. Recovery waits for these.
  std::map<NodeId, std::set<NodeId>> awaiting_reports;
  // Leg removals the cluster committed (CLUSTER.md "Leg removal"): the mirror's leg count
  // before the first one (0: none yet) and each removed leg's index in the table it was
  // removed from, in order. A node whose table has more legs catches up. A committed
  // replacement (CLUSTER.md "Leg replacement") starts this record again: first_legs is
  // then the new leg count, and nothing is removed since.
  uint32_t first_legs = 0;
  std::vector<uint32_t> removed_legs;
  // Regions not copied since the last committed leg replacement (CLUSTER.md "Leg
  // replacement"): its new leg holds nothing there. Every kernel has been told they are
  // out of sync since, on a table loaded at that commit, so they are never hidden from a
  // kernel (answered "in sync", as after a merge or for a restarted daemon): a kernel
  // reads an in-sync region from any leg, the empty one too. Empty (size 0) when none.
  region::RegionBitmap uncopied;
  bool Uncopied(RegionNo r) const { return r < uncopied.size() && uncopied.Test(r); }
  // Counts the committed leg changes (removals and replacements, not catch-ups): a
  // proposal names the epoch it saw, and one made against an older table is set aside.
  uint32_t leg_epoch = 0;
  // The leg count every node's table has now (0: as loaded, never reconfigured).
  uint32_t CurrentLegs() const {
    return first_legs == 0 ? 0 : first_legs - static_cast<uint32_t>(removed_legs.size());
  }

  uint32_t SlotOf(NodeId node) const;
  // The lowest slot nobody owns, or kNoSlot.
  uint32_t FreeSlot(uint32_t slot_count) const;
  bool IsBusy(RegionNo r) const;
  // Recovery may be handed out at all: no merge or report outstanding.
  bool RecoveryGateOpen() const {
    return awaiting_merge.empty() && awaiting_reports.empty() && awaiting_absent.empty();
  }

  // Without `with_in_sync` the in-sync map is left out (it decodes as all in sync): the
  // state part of a DeltaMsg.
  std::vector<uint8_t> EncodeCheckpoint(bool with_in_sync = true) const;
  static Result<ClusterState> DecodeCheckpoint(std::span<const uint8_t> bytes, uint64_t nr_regions,
                                               uint32_t region_size);
};

}  // namespace clogd::logd
