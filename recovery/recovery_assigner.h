// Recovery bookkeeping: which out-of-sync regions are being resynced and by whom. One
// owner per region at a time; regions a write is waiting on are handed out first; a node
// that leaves gives its regions back. Pure and deterministic (ordered containers only).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "region/log_state.h"

namespace clogd::recovery {

using region::NodeId;
using region::RegionNo;

class RecoveryAssigner {
 public:
  // Returns false for a region that must not be handed out now (e.g. another node may
  // still have writes to it in flight).
  using Eligible = std::function<bool(RegionNo)>;

  // The next out-of-sync region for `node` that nobody owns and `eligible` accepts:
  // prioritised regions first, then from a rotating cursor (so nodes asking in turn get
  // different regions). Records `node` as its owner. kNoRegion if there is none.
  RegionNo Assign(NodeId node, const region::LogState& state, const Eligible& eligible = {});
  // Records an owner chosen elsewhere (a checkpoint or an agreed message).
  void SetOwner(RegionNo r, NodeId node);
  // The region is done (in sync again) or abandoned; it loses its owner.
  void Release(RegionNo r);
  // `node` left: its regions lose their owner. Returns them, ascending.
  std::vector<RegionNo> ReleaseNode(NodeId node);
  // A write is waiting on r: hand it out before anything else.
  void Prioritize(RegionNo r);

  std::optional<NodeId> Owner(RegionNo r) const;
  bool IsRecovering(RegionNo r) const { return owners_.contains(r); }
  // Regions owned by someone other than `node`.
  bool IsRecoveringByOther(RegionNo r, NodeId node) const;
  size_t InFlight() const { return owners_.size(); }
  const std::map<RegionNo, NodeId>& owners() const { return owners_; }
  void Clear();

 private:
  bool Usable(RegionNo r, const region::LogState& state, const Eligible& eligible) const;

  RegionNo cursor_ = 0;
  std::map<RegionNo, NodeId> owners_;
  std::set<RegionNo> priority_;
};

}  // namespace clogd::recovery
