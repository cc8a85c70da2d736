// LogState: the in-sync map plus who has which region marked. Mark owners are kept per
// node (not just a union) so that one node's CLEAR never cleans a region another node
// still holds marked (H3), and a failed node's marks can be turned into resync work.
#include "region/log_state.h"

#include <string>

namespace clogd::region {

LogState::LogState(uint64_t nr_regions, uint32_t region_size)
    : region_size_(region_size), in_sync_(nr_regions, false) {}

Status LogState::CheckRegion(RegionNo r) const {
  if (r < nr_regions()) return Status::Ok();
  return OutOfRange("region " + std::to_string(r) + " is past the end (" +
                    std::to_string(nr_regions()) + " regions)");
}

bool LogState::SetInSync(RegionNo r, bool in_sync) {
  return in_sync ? in_sync_.Set(r) : in_sync_.Clear(r);
}

// Out-of-range regions and node 0 are ignored (false): callers validate kernel input with
// CheckRegion first, and a mark on a region that does not exist protects nothing.
bool LogState::Mark(NodeId node, RegionNo r) {
  if (node == 0 || r >= nr_regions()) return false;
  if (!dirty_[node].insert(r).second) return false;
  ++mark_refs_[r];
  return true;
}

bool LogState::Clear(NodeId node, RegionNo r) {
  auto it = dirty_.find(node);
  if (it == dirty_.end() || it->second.erase(r) == 0) return false;
  if (it->second.empty()) dirty_.erase(it);  // keeps operator== independent of history
  auto ref = mark_refs_.find(r);
  if (--ref->second == 0) mark_refs_.erase(ref);
  return true;
}

bool LogState::IsMarkedBy(NodeId node, RegionNo r) const {
  auto it = dirty_.find(node);
  return it != dirty_.end() && it->second.contains(r);
}

uint32_t LogState::MarkCount(RegionNo r) const {
  auto it = mark_refs_.find(r);
  return it == mark_refs_.end() ? 0 : it->second;
}

const DirtySet& LogState::DirtyOf(NodeId node) const {
  static const DirtySet kEmpty;
  auto it = dirty_.find(node);
  return it == dirty_.end() ? kEmpty : it->second;
}

void LogState::SetDirty(NodeId node, DirtySet regions) {
  if (node == 0) return;
  auto it = dirty_.find(node);
  if (it != dirty_.end()) {
    for (RegionNo r : it->second) {
      auto ref = mark_refs_.find(r);
      if (--ref->second == 0) mark_refs_.erase(ref);
    }
    dirty_.erase(it);
  }
  // Regions past the end cannot be written, so they need no mark.
  for (auto r = regions.lower_bound(nr_regions()); r != regions.end();) r = regions.erase(r);
  if (regions.empty()) return;
  for (RegionNo r : regions) ++mark_refs_[r];
  dirty_.emplace(node, std::move(regions));
}

std::vector<NodeId> LogState::NodesWithMarks() const {
  std::vector<NodeId> nodes;
  nodes.reserve(dirty_.size());
  for (const auto& [node, set] : dirty_) {
    if (!set.empty()) nodes.push_back(node);
  }
  return nodes;
}

std::vector<RegionNo> LogState::MergeFailedNode(NodeId node) {
  auto it = dirty_.find(node);
  if (it == dirty_.end()) return {};
  std::vector<RegionNo> regions(it->second.begin(), it->second.end());  // sorted: std::set
  for (RegionNo r : regions) {
    // The node may have written r on some legs only: r must be resynced.
    in_sync_.Clear(r);
    auto ref = mark_refs_.find(r);
    if (--ref->second == 0) mark_refs_.erase(ref);
  }
  dirty_.erase(it);
  return regions;
}

void LogState::MarkAllOutOfSync() { in_sync_.ClearAll(); }

RegionBitmap LogState::CleanMap() const {
  RegionBitmap clean = in_sync_;
  for (const auto& [r, refs] : mark_refs_) clean.Clear(r);
  return clean;
}

bool LogState::operator==(const LogState& other) const {
  // mark_refs_ is derived from dirty_, so comparing dirty_ covers it.
  return region_size_ == other.region_size_ && in_sync_ == other.in_sync_ && dirty_ == other.dirty_;
}

}  // namespace clogd::region
