// The in-memory state of one mirror log: the cluster-wide in-sync map and the per-node
// dirty maps (who has which region marked). Pure data, no I/O, deterministic iteration.
// A region is clean when it is in sync and no node has it marked (H3: a region one node
// clears stays dirty while another node still holds it marked).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "region/log_format.h"
#include "region/region_bitmap.h"
#include "region/status.h"

namespace clogd::region {

using DirtySet = std::set<RegionNo>;

class LogState {
 public:
  LogState() = default;
  LogState(uint64_t nr_regions, uint32_t region_size);

  uint64_t nr_regions() const { return in_sync_.size(); }
  uint32_t region_size() const { return region_size_; }

  // kOutOfRange naming the region and the region count if r >= nr_regions().
  Status CheckRegion(RegionNo r) const;

  // --- in-sync map (bit set = the legs agree on this region)
  bool InSync(RegionNo r) const { return in_sync_.Test(r); }
  uint64_t SyncCount() const { return in_sync_.count(); }
  // Returns true if the bit changed.
  bool SetInSync(RegionNo r, bool in_sync);
  const RegionBitmap& in_sync() const { return in_sync_; }
  void ReplaceInSync(RegionBitmap bits) { in_sync_ = std::move(bits); }
  // First region at or after `from` that is out of sync, or kNoRegion.
  RegionNo NextOutOfSync(RegionNo from) const { return in_sync_.FindNextClear(from); }

  // --- per-node dirty maps
  // Returns true if the node did not have it marked before.
  bool Mark(NodeId node, RegionNo r);
  // Returns true if the node had it marked.
  bool Clear(NodeId node, RegionNo r);
  bool IsMarkedBy(NodeId node, RegionNo r) const;
  bool IsMarkedByAny(RegionNo r) const { return mark_refs_.contains(r); }
  // Number of nodes holding r marked.
  uint32_t MarkCount(RegionNo r) const;
  bool IsClean(RegionNo r) const { return InSync(r) && !IsMarkedByAny(r); }
  // The node's dirty set (empty set if it has none).
  const DirtySet& DirtyOf(NodeId node) const;
  // Replaces a node's whole dirty set (checkpoint load, slot load).
  void SetDirty(NodeId node, DirtySet regions);
  // Nodes with a non-empty dirty set, ascending.
  std::vector<NodeId> NodesWithMarks() const;
  uint64_t TotalMarked() const { return mark_refs_.size(); }

  // Node failure: every region `node` had marked becomes out of sync, its dirty map is
  // dropped. Returns the regions that were marked (sorted).
  std::vector<RegionNo> MergeFailedNode(NodeId node);
  // The same for a node whose slot overflowed: every region becomes out of sync.
  void MarkAllOutOfSync();

  // The clean map for a clean shutdown: in sync and marked by nobody.
  RegionBitmap CleanMap() const;

  bool operator==(const LogState& other) const;

 private:
  uint32_t region_size_ = 0;
  RegionBitmap in_sync_;
  std::map<NodeId, DirtySet> dirty_;
  std::unordered_map<RegionNo, uint32_t> mark_refs_;  // region -> number of nodes marking it
};

}  // namespace clogd::region
