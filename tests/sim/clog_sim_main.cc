// clog-sim: runs the deterministic cluster simulator over many seeds.
//   clog-sim --seeds N [--first S] [--nodes K] [--logs L] [--type T] [--break NAME]
//   clog-sim --seed S --trace          one run, every event printed
//   clog-sim --break NAME --seeds N --expect-caught
//                                      a broken variant must be caught within N seeds
// Prints one line per failing seed with the command that reproduces it, then
// "seeds: N, violations: V"; exits non-zero when V > 0 (or, with --expect-caught, when
// nothing was caught).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <optional>

#include "tests/sim/sim_world.h"

int main(int argc, char** argv) {
  CLI::App app{"clog-sim: deterministic simulation of the clogd cluster"};
  uint64_t seeds = 100, first = 1;
  std::optional<uint64_t> seed;
  clogd::sim::SimConfig base;
  std::string break_name = "none";
  bool trace = false, expect_caught = false, determinism = false, no_faults = false;
  double workload_s = 8;
  app.add_option("--seeds", seeds, "how many seeds to run");
  app.add_option("--first", first, "first seed");
  app.add_option("--seed", seed, "run this one seed");
  app.add_option("--nodes", base.nodes, "nodes (1-16)")->check(CLI::Range(1, 16));
  app.add_option("--logs", base.logs, "mirror logs per node")->check(CLI::Range(1, 8));
  app.add_option("--type", base.log_type, "clustered-disk, clustered-core or mixed")
      ->check(CLI::IsMember({"clustered-disk", "clustered-core", "mixed"}));
  app.add_option("--regions", base.regions, "regions per mirror")->check(CLI::Range(1, 1 << 20));
  app.add_option("--workload-s", workload_s, "seconds of writes and faults per run");
  app.add_option("--legs", base.legs, "legs per mirror (2-9); with 3 or more, legs fail too")
      ->check(CLI::Range(2, 9));
  app.add_flag("--no-faults", no_faults, "inject no faults");
  bool no_leg_failures = false;
  app.add_flag("--no-leg-failures", no_leg_failures, "random faults without failed legs");
  bool no_corosync_restarts = false;
  bool no_log_faults = false;
  app.add_flag("--no-corosync-restarts", no_corosync_restarts,
               "random faults without corosync restarts (the fault mix before they existed)");
  app.add_flag("--no-log-faults", no_log_faults,
               "random faults without failed or torn log device writes");
  app.add_option("--break", break_name, "run a deliberately broken variant")
      ->check(CLI::IsMember([] {
        auto names = clogd::sim::BreakVariantNames();
        names.push_back("none");
        return names;
      }()));
  app.add_option("--scenario", base.scenario, "a scripted fault schedule for one hazard")
      ->check(CLI::IsMember(clogd::sim::ScenarioNames()));
  uint64_t fence_grace_ms = 0;
  app.add_option("--fence-grace-ms", fence_grace_ms,
                 "every daemon's fence grace (clogd --fence-grace-ms); default 0, and 2000 "
                 "under --scenario partition")
      ->check(CLI::Range(uint64_t{0}, uint64_t{600'000}));
  app.add_flag("--in-sync-cache", base.in_sync_cache,
               "about half the kernels run the cluster module's in-sync cache");
  app.add_flag("--trace", trace, "print every event of the run");
  app.add_flag("--expect-caught", expect_caught, "succeed only if some seed shows a violation");
  app.add_flag("--check-determinism", determinism, "run each seed twice and compare traces");
  CLI11_PARSE(app, argc, argv);

  clogd::sim::ParseBreakVariant(break_name, base.break_variant);
  base.faults = !no_faults;
  base.corosync_restarts = !no_corosync_restarts;
  base.log_device_faults = !no_log_faults;
  base.leg_failures = !no_leg_failures;
  base.workload_us = static_cast<uint64_t>(workload_s * 1e6);
  base.fence_grace_us = fence_grace_ms * 1000;
  if (seed) {
    first = *seed;
    seeds = 1;
  }
  if (trace) base.trace = [](const std::string& line) { std::cout << line << "\n"; };
  auto repro = [&](uint64_t s) {
    std::string cmd = "clog-sim --seed " + std::to_string(s) + " --nodes " +
                      std::to_string(base.nodes) + " --logs " + std::to_string(base.logs) +
                      " --type " + base.log_type + " --regions " + std::to_string(base.regions) +
                      " --workload-s " + std::to_string(workload_s);
    if (no_faults) cmd += " --no-faults";
    if (no_corosync_restarts) cmd += " --no-corosync-restarts";
    if (no_log_faults) cmd += " --no-log-faults";
    if (base.legs != 2) cmd += " --legs " + std::to_string(base.legs);
    if (no_leg_failures) cmd += " --no-leg-failures";
    if (base.in_sync_cache) cmd += " --in-sync-cache";
    if (!base.scenario.empty()) cmd += " --scenario " + base.scenario;
    if (break_name != "none") cmd += " --break " + break_name;
    if (fence_grace_ms != 0) cmd += " --fence-grace-ms " + std::to_string(fence_grace_ms);
    return cmd + " --trace";
  };
  uint64_t failing = 0;
  uint64_t checkpoints = 0, deltas = 0, deltas_refused = 0, legs_replaced = 0;
  uint64_t in_sync_sent = 0, in_sync_cached = 0;
  std::optional<uint64_t> first_caught;
  for (uint64_t s = first; s < first + seeds; ++s) {
    clogd::sim::SimConfig c = base;
    c.seed = s;
    c.hash_trace = determinism;
    clogd::sim::SimResult r = clogd::sim::RunSimulation(c);
    checkpoints += r.checkpoints_taken;
    deltas += r.deltas_taken;
    deltas_refused += r.deltas_refused;
    legs_replaced += r.legs_replaced;
    in_sync_sent += r.in_sync_sent;
    in_sync_cached += r.in_sync_cache_hits;
    if (determinism) {
      clogd::sim::SimResult again = clogd::sim::RunSimulation(c);
      if (again.trace_hash != r.trace_hash || again.events != r.events) {
        r.violations.push_back("not deterministic: two runs of the seed differ");
      }
    }
    if (!r.violations.empty()) {
      ++failing;
      if (!first_caught) first_caught = s;
      std::cout << "seed " << s << ": " << r.violations.size()
                << " violation(s); first: " << r.violations.front() << "\n  reproduce: " << repro(s)
                << "\n";
      if (expect_caught) break;
    }
  }
  std::cout << "state transfers to joiners: " << checkpoints << " full checkpoints, " << deltas
            << " deltas (" << deltas_refused << " refused)\n";
  if (base.in_sync_cache) {
    std::cout << "IN_SYNC (kernels alive at the end): " << in_sync_sent << " sent, "
              << in_sync_cached << " answered by the module's cache\n";
  }
  if (legs_replaced > 0) std::cout << "leg replacements committed: " << legs_replaced << "\n";
  std::cout << "seeds: " << (first_caught && expect_caught ? *first_caught - first + 1 : seeds)
            << ", violations: " << failing << "\n";
  if (expect_caught) {
    if (first_caught) {
      std::cout << "caught " << break_name << " at seed " << *first_caught << "\n";
      return 0;
    }
    std::cout << "NOT caught: " << break_name << " survived " << seeds << " seeds\n";
    return 1;
  }
  return failing == 0 ? 0 : 1;
}
