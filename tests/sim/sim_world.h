// One simulated cluster run (FoundationDB style): N nodes in one process on virtual time,
// each with the real daemon core (logd::LogEngine serving clustered logs through
// logd::ClusterLog) over the CPG model, and a dm-raid1 kernel model per mirror writing to
// shared legs. A seeded schedule drives writes, reads and faults (node crash, daemon crash
// and restart, corosync restart under the daemon, slow legs, failed and torn log device
// writes, failed legs); the invariants of DESIGN.md §5 are
// checked as the run goes and at quiescence. The same seed gives the same run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "logd/local_log.h"

namespace clogd::sim {

struct SimConfig {
  uint64_t seed = 1;
  int nodes = 3;
  int logs = 1;
  // "clustered-disk", "clustered-core", or "mixed" (alternating per log, starting by seed).
  std::string log_type = "mixed";
  uint64_t regions = 32;
  uint64_t blocks_per_region = 4;
  uint64_t workload_us = 20'000'000;  // writes and faults happen in this window
  uint64_t quiesce_us = 120'000'000;  // then everything recovers within this bound
  bool faults = true;
  // Also restart corosync under a running daemon (in about half the seeds, drawn from a
  // stream of its own so the other faults of a seed stay what they were without it).
  bool corosync_restarts = true;
  // Also fail clustered-disk log devices (one node's path, or the device, for a while) or
  // tear a node's log write by crashing it (about half the seeds, a stream of its own).
  bool log_device_faults = true;
  // Legs per mirror (2-9). With 3 or more, a leg also fails in about half the seeds (a
  // stream of its own), at most as many as leave 2 legs, and the cluster removes it
  // (DESIGN.md §4.6, H6).
  int legs = 2;
  bool leg_failures = true;
  // A scripted fault schedule that drives into one hazard of DESIGN.md §5 on purpose
  // (ScenarioNames()); empty: random faults.
  std::string scenario;
  // EngineOptions::fence_grace_us of every daemon. 0: none, except 2 s under the
  // "partition" and "deactivate" scenarios (a cut-off node's writes race the others' copies
  // without it).
  uint64_t fence_grace_us = 0;
  logd::BreakVariant break_variant = logd::BreakVariant::kNone;
  // About half the kernels run a `mirror cluster` table (dm-log-cluster.ko: integrated_flush
  // and its in-sync cache, MirrorConfig::in_sync_cache), drawn from a stream of its own; the
  // others the stock userspace log as without it.
  bool in_sync_cache = false;
  // One line per event (CPG, kernel requests, daemon log lines) when set.
  std::function<void(const std::string&)> trace;
  // Hash every trace line into SimResult::trace_hash (for determinism checks).
  bool hash_trace = false;
};

struct SimResult {
  std::vector<std::string> violations;  // empty: the run kept every invariant
  uint64_t events = 0;
  uint64_t writes_acked = 0;
  uint64_t regions_recovered = 0;
  uint64_t faults_injected = 0;
  uint64_t legs_replaced = 0;  // operators' replacements that committed
  // IN_SYNC requests of the kernels alive at the end: sent, and answered by the cluster
  // module's cache (SimConfig::in_sync_cache).
  uint64_t in_sync_sent = 0;
  uint64_t in_sync_cache_hits = 0;
  // How members that were not ready got the state (summed over every daemon of the run).
  uint64_t checkpoints_taken = 0;
  uint64_t deltas_taken = 0;
  uint64_t deltas_refused = 0;
  uint64_t trace_hash = 0;  // of the whole event trace: equal for equal runs
};

SimResult RunSimulation(const SimConfig& config);

// "skip-failed-node-resync" -> kSkipFailedNodeResync, ...; false for an unknown name.
bool ParseBreakVariant(const std::string& name, logd::BreakVariant& out);
std::vector<std::string> BreakVariantNames();
// "h1-resync-vs-writes", ...: what --scenario accepts.
std::vector<std::string> ScenarioNames();

}  // namespace clogd::sim
