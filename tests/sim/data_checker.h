// The simulator's data oracle: it records every write issued and acknowledged and every
// value that lands on a leg, and checks the data invariants of DESIGN.md §5 against the
// shared legs. Per block it keeps the ordered history of the values written to it (the
// workload has one writer per block at a time and never reuses a value), so "the acked
// value or a later one" is a position comparison. A "live" leg is one that has not failed
// (SimLegs::IsLive). Violations are strings naming the node, region, block, legs and
// values; nothing here aborts.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tests/sim/legs.h"

namespace clogd::sim {

class DataChecker {
 public:
  // Registers a landing observer on `legs`; both must outlive every event that may write.
  explicit DataChecker(SimLegs& legs);
  DataChecker(const DataChecker&) = delete;
  DataChecker& operator=(const DataChecker&) = delete;

  // The workload's side (MirrorModel calls these).
  void OnWriteIssued(int node, uint64_t block, uint64_t value);
  void OnWriteAcked(int node, uint64_t block, uint64_t value);
  // A read is issued: returns the floor its result must reach (the acked position now).
  uint64_t OnReadIssued(uint64_t block) const;
  // A read of `block` on `leg` returned `value`; records and returns a stale-read violation.
  std::vector<std::string> OnReadDone(int node, uint64_t block, int leg, uint64_t floor,
                                      uint64_t value);

  // (a) Every acked write is on every live leg: each holds the acked value or a later one.
  // `region_in_sync` is the log's view, if known: for a region it calls out of sync only
  // one live leg must hold it (NOSYNC writes go to the primary alone until resync).
  std::vector<std::string> CheckAckedWrites(
      const std::function<bool(uint64_t region)>& region_in_sync = {}) const;
  // (b) The log reports `region` in sync and clean: every live leg holds the same blocks.
  std::vector<std::string> CheckRegionInSyncAndClean(uint64_t region) const;
  // (c) Quiescence (no I/O, no recovery, all in sync): all live legs identical.
  std::vector<std::string> CheckQuiescent() const;

  // Violations found as events happened (stale reads, unknown values landing).
  const std::vector<std::string>& violations() const { return violations_; }
  uint64_t writes_issued() const { return writes_issued_; }
  uint64_t writes_acked() const { return writes_acked_; }
  uint64_t landings() const { return landings_; }
  // The acked value of a block (0 if none).
  uint64_t AckedValue(uint64_t block) const;
  // "value 7 (write #2 to block 5 by node 1)", "0 (never written)", "value 9 (unknown)".
  std::string Describe(uint64_t value) const;

 private:
  struct ValueInfo {
    uint64_t block = 0;
    uint64_t position = 0;  // 1-based in the block's history
    int node = 0;
  };
  struct BlockHistory {
    std::vector<uint64_t> values;  // in issue order
    uint64_t acked = 0;            // position of the latest acked write, 0 = none
  };

  // Position of `value` in `block`'s history: 0 for 0, UINT64_MAX if it does not belong.
  uint64_t PositionIn(uint64_t block, uint64_t value) const;
  std::string DescribeBlock(uint64_t block) const;
  std::vector<std::string> CompareLegs(uint64_t region, const std::string& why) const;
  void OnLanding(int node, int leg, uint64_t block, uint64_t value);

  const SimLegs& legs_;
  std::vector<BlockHistory> blocks_;
  std::unordered_map<uint64_t, ValueInfo> values_;  // looked up, never iterated
  std::vector<std::string> violations_;
  uint64_t writes_issued_ = 0;
  uint64_t writes_acked_ = 0;
  uint64_t landings_ = 0;
};

}  // namespace clogd::sim
