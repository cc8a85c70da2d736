// Data invariants of the simulator; see data_checker.h.
#include "tests/sim/data_checker.h"

#include <cstdint>
#include <string>
#include <utility>

namespace clogd::sim {

namespace {
constexpr uint64_t kForeign = UINT64_MAX;
}  // namespace

DataChecker::DataChecker(SimLegs& legs) : legs_(legs), blocks_(legs.nr_blocks()) {
  legs.AddLandingObserver([this](int node, int leg, uint64_t block, uint64_t value) {
    OnLanding(node, leg, block, value);
  });
}

void DataChecker::OnWriteIssued(int node, uint64_t block, uint64_t value) {
  if (block >= blocks_.size()) return;
  ++writes_issued_;
  if (value == 0 || values_.count(value) != 0) {
    violations_.push_back("workload: node " + std::to_string(node) + " wrote value " +
                          std::to_string(value) + " to block " + std::to_string(block) +
                          ", which is 0 or already used (values must be unique and non-zero)");
    return;
  }
  BlockHistory& history = blocks_[block];
  history.values.push_back(value);
  values_[value] = ValueInfo{block, history.values.size(), node};
}

void DataChecker::OnWriteAcked(int node, uint64_t block, uint64_t value) {
  if (block >= blocks_.size()) return;
  ++writes_acked_;
  const uint64_t position = PositionIn(block, value);
  if (position == kForeign) {
    violations_.push_back("node " + std::to_string(node) + " acked " + Describe(value) +
                          " for block " + std::to_string(block) + ", which never issued it");
    return;
  }
  BlockHistory& history = blocks_[block];
  if (position > history.acked) history.acked = position;
}

uint64_t DataChecker::OnReadIssued(uint64_t block) const {
  return block < blocks_.size() ? blocks_[block].acked : 0;
}

std::vector<std::string> DataChecker::OnReadDone(int node, uint64_t block, int leg, uint64_t floor,
                                                 uint64_t value) {
  std::vector<std::string> found;
  if (block >= blocks_.size() || floor == 0) return found;
  const uint64_t position = PositionIn(block, value);
  if (position != kForeign && position >= floor) return found;
  found.push_back("stale read: node " + std::to_string(node) + " read block " +
                  std::to_string(block) + " (region " + std::to_string(legs_.RegionOf(block)) +
                  ") from leg " + std::to_string(leg) + " and got " + Describe(value) + ", but " +
                  Describe(blocks_[block].values[floor - 1]) + " was acked before the read");
  violations_.insert(violations_.end(), found.begin(), found.end());
  return found;
}

void DataChecker::OnLanding(int node, int leg, uint64_t block, uint64_t value) {
  ++landings_;
  // Values the workload never issued (test setup, pre-existing data) may be copied by
  // resync; a value issued for another block landing here is a model bug worth naming.
  auto it = values_.find(value);
  if (it == values_.end() || it->second.block == block) return;
  violations_.push_back("node " + std::to_string(node) + " landed " + Describe(value) + " on leg " +
                        std::to_string(leg) + " block " + std::to_string(block));
}

uint64_t DataChecker::PositionIn(uint64_t block, uint64_t value) const {
  if (value == 0) return 0;
  auto it = values_.find(value);
  if (it == values_.end() || it->second.block != block) return kForeign;
  return it->second.position;
}

uint64_t DataChecker::AckedValue(uint64_t block) const {
  if (block >= blocks_.size() || blocks_[block].acked == 0) return 0;
  return blocks_[block].values[blocks_[block].acked - 1];
}

std::string DataChecker::Describe(uint64_t value) const {
  if (value == 0) return "0 (never written)";
  auto it = values_.find(value);
  if (it == values_.end())
    return "value " + std::to_string(value) + " (not written by the workload)";
  return "value " + std::to_string(value) + " (write #" + std::to_string(it->second.position) +
         " to block " + std::to_string(it->second.block) + " by node " +
         std::to_string(it->second.node) + ")";
}

std::string DataChecker::DescribeBlock(uint64_t block) const {
  return "block " + std::to_string(block) + " (region " + std::to_string(legs_.RegionOf(block)) +
         ")";
}

std::vector<std::string> DataChecker::CheckAckedWrites(
    const std::function<bool(uint64_t region)>& region_in_sync) const {
  std::vector<std::string> found;
  const std::vector<int> live = legs_.LiveLegs();
  for (uint64_t block = 0; block < blocks_.size(); ++block) {
    const BlockHistory& history = blocks_[block];
    if (history.acked == 0) continue;
    const uint64_t acked_value = history.values[history.acked - 1];
    const bool in_sync = !region_in_sync || region_in_sync(legs_.RegionOf(block));
    std::vector<int> missing;
    std::string holds;
    for (int leg : live) {
      const uint64_t value = legs_.Peek(leg, block);
      const uint64_t position = PositionIn(block, value);
      if (position != kForeign && position >= history.acked) continue;
      missing.push_back(leg);
      holds += (holds.empty() ? "" : ", ") +
               ("leg " + std::to_string(leg) + " holds " + Describe(value));
    }
    const bool violated = in_sync ? !missing.empty() : missing.size() == live.size();
    if (!violated) continue;
    found.push_back("acked write lost: " + DescribeBlock(block) + " acked " +
                    Describe(acked_value) + " but " + holds +
                    (in_sync ? " (region reported in sync)" : " (no live leg has it)"));
  }
  return found;
}

std::vector<std::string> DataChecker::CompareLegs(uint64_t region, const std::string& why) const {
  std::vector<std::string> found;
  const std::vector<int> live = legs_.LiveLegs();
  if (live.size() < 2 || region >= legs_.nr_regions()) return found;
  const uint64_t first = legs_.FirstBlockOf(region);
  size_t differing = 0;
  std::string example;
  for (uint64_t block = first; block < first + legs_.blocks_per_region(); ++block) {
    const uint64_t reference = legs_.Peek(live[0], block);
    for (size_t i = 1; i < live.size(); ++i) {
      const uint64_t value = legs_.Peek(live[i], block);
      if (value == reference) continue;
      if (differing++ == 0) {
        example = DescribeBlock(block) + ": leg " + std::to_string(live[0]) + " holds " +
                  Describe(reference) + ", leg " + std::to_string(live[i]) + " holds " +
                  Describe(value);
      }
      break;
    }
  }
  if (differing != 0) {
    found.push_back(why + ": legs differ in " + std::to_string(differing) + " block(s) of region " +
                    std::to_string(region) + ", e.g. " + example);
  }
  return found;
}

std::vector<std::string> DataChecker::CheckRegionInSyncAndClean(uint64_t region) const {
  return CompareLegs(region, "region " + std::to_string(region) + " reported in sync and clean");
}

std::vector<std::string> DataChecker::CheckQuiescent() const {
  std::vector<std::string> found;
  for (uint64_t region = 0; region < legs_.nr_regions(); ++region) {
    std::vector<std::string> more = CompareLegs(region, "at quiescence");
    found.insert(found.end(), more.begin(), more.end());
  }
  return found;
}

}  // namespace clogd::sim
