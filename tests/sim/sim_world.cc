// Entry points of the simulator: one run, and the names of the broken variants.
#include <map>

#include "tests/sim/sim_world_internal.h"

namespace clogd::sim {

SimResult RunSimulation(const SimConfig& config) {
  if (config.scenario == "h6-leg-fails" && config.legs < 4) {
    SimConfig four = config;  // two failures, and two legs left to run on
    four.legs = 4;
    World world(four);
    return world.Run();
  }
  if ((config.scenario == "partition" || config.scenario == "deactivate") &&
      config.fence_grace_us == 0) {
    SimConfig graced = config;
    graced.fence_grace_us = 2'000'000;
    World world(graced);
    return world.Run();
  }
  World world(config);
  return world.Run();
}

bool ParseBreakVariant(const std::string& name, logd::BreakVariant& out) {
  static const std::map<std::string, logd::BreakVariant> kNames = {
      {"none", logd::BreakVariant::kNone},
      {"skip-failed-node-resync", logd::BreakVariant::kSkipFailedNodeResync},
      {"recover-while-marked", logd::BreakVariant::kRecoverWhileMarked},
      {"no-flush-durability", logd::BreakVariant::kNoFlushDurability},
  };
  auto it = kNames.find(name);
  if (it == kNames.end()) return false;
  out = it->second;
  return true;
}

std::vector<std::string> BreakVariantNames() {
  return {"skip-failed-node-resync", "recover-while-marked", "no-flush-durability"};
}

}  // namespace clogd::sim
