// Test-only: the world of one mirror model test (loop, PRNG, legs, data checker, fake log,
// nodes) and small helpers shared by the mirror model's test files.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "logd/ulog_codec.h"
#include "tests/sim/data_checker.h"
#include "tests/sim/event_loop.h"
#include "tests/sim/legs.h"
#include "tests/sim/mirror_model.h"
#include "tests/sim/mirror_model_fake_log.h"
#include "tests/sim/sim_rng.h"

namespace clogd::sim::testing {

inline constexpr uint64_t kRegionSectors = 1024;

// The CTR string the kernel would send for a mirror of `nr_regions` regions.
inline std::string Ctr(uint64_t nr_regions) {
  return std::to_string(nr_regions * kRegionSectors) + " clustered-disk /dev/simlog " +
         std::to_string(kRegionSectors);
}

inline std::vector<uint8_t> RegionList(const std::vector<uint64_t>& regions) {
  std::vector<uint8_t> out;
  for (uint64_t r : regions) {
    std::vector<uint8_t> one = logd::U64Payload(r);
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

struct Rig {
  explicit Rig(uint64_t seed = 1, uint64_t nr_regions = 8, uint64_t blocks_per_region = 4,
               int nr_legs = 2, LegTiming timing = {})
      : rng(seed),
        legs(loop, rng, nr_legs, nr_regions, blocks_per_region, timing),
        checker(legs),
        log(loop, nr_regions, kRegionSectors) {}

  // A node on the shared legs and log; unset config fields get the rig's defaults.
  MirrorModel& AddNode(int node, MirrorConfig config = {}) {
    config.node = node;
    if (config.ctr.empty()) config.ctr = Ctr(legs.nr_regions());
    if (config.legs.empty()) {
      for (int leg = 0; leg < legs.nr_legs(); ++leg) config.legs.push_back(leg);
    }
    nodes.push_back(
        std::make_unique<MirrorModel>(loop, rng, legs, config, log.Sender(node), &checker));
    log.Attach(node, nodes.back().get());
    return *nodes.back();
  }

  // AddNode, Start, and one virtual second to settle.
  MirrorModel& StartNode(int node, MirrorConfig config = {}) {
    MirrorModel& m = AddNode(node, std::move(config));
    Status started = m.Start();
    if (!started.ok()) ADD_FAILURE() << started.ToString();
    loop.RunFor(1'000'000);
    return m;
  }

  EventLoop loop;
  SimRng rng;
  SimLegs legs;
  DataChecker checker;
  FakeLog log;
  std::vector<std::unique_ptr<MirrorModel>> nodes;
};

}  // namespace clogd::sim::testing
