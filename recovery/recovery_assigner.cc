// Recovery assignment: priority regions first, then a rotating scan of the in-sync map
// (RegionBitmap::FindNextClear skips in-sync stretches quickly).
#include "recovery/recovery_assigner.h"

namespace clogd::recovery {

bool RecoveryAssigner::Usable(RegionNo r, const region::LogState& state,
                              const Eligible& eligible) const {
  return r < state.nr_regions() && !state.InSync(r) && !owners_.contains(r) &&
         (!eligible || eligible(r));
}

RegionNo RecoveryAssigner::Assign(NodeId node, const region::LogState& state,
                                  const Eligible& eligible) {
  for (auto it = priority_.begin(); it != priority_.end();) {
    RegionNo r = *it;
    if (r >= state.nr_regions() || state.InSync(r)) {
      it = priority_.erase(it);  // nothing to do for it any more
      continue;
    }
    if (Usable(r, state, eligible)) {
      priority_.erase(it);
      owners_[r] = node;
      return r;
    }
    ++it;
  }
  const uint64_t n = state.nr_regions();
  if (n == 0 || state.SyncCount() == n) return region::kNoRegion;
  if (cursor_ >= n) cursor_ = 0;
  // Two passes: from the cursor to the end, then from 0 up to the cursor.
  for (int pass = 0; pass < 2; ++pass) {
    RegionNo from = pass == 0 ? cursor_ : 0;
    RegionNo limit = pass == 0 ? n : cursor_;
    for (RegionNo r = state.NextOutOfSync(from); r != region::kNoRegion && r < limit;
         r = state.NextOutOfSync(r + 1)) {
      if (Usable(r, state, eligible)) {
        owners_[r] = node;
        cursor_ = r + 1;
        return r;
      }
    }
  }
  return region::kNoRegion;
}

void RecoveryAssigner::SetOwner(RegionNo r, NodeId node) {
  owners_[r] = node;
  priority_.erase(r);
}

void RecoveryAssigner::Release(RegionNo r) { owners_.erase(r); }

std::vector<RegionNo> RecoveryAssigner::ReleaseNode(NodeId node) {
  std::vector<RegionNo> released;
  for (auto it = owners_.begin(); it != owners_.end();) {
    if (it->second == node) {
      released.push_back(it->first);
      it = owners_.erase(it);
    } else {
      ++it;
    }
  }
  return released;
}

void RecoveryAssigner::Prioritize(RegionNo r) {
  if (!owners_.contains(r)) priority_.insert(r);
}

std::optional<NodeId> RecoveryAssigner::Owner(RegionNo r) const {
  auto it = owners_.find(r);
  if (it == owners_.end()) return std::nullopt;
  return it->second;
}

bool RecoveryAssigner::IsRecoveringByOther(RegionNo r, NodeId node) const {
  auto it = owners_.find(r);
  return it != owners_.end() && it->second != node;
}

void RecoveryAssigner::Clear() {
  owners_.clear();
  priority_.clear();
  cursor_ = 0;
}

}  // namespace clogd::recovery
