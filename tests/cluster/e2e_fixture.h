// The end-to-end cluster test's fixture: a real 3-node corosync cluster in network
// namespaces (its own directory and prefix, brought up once per test binary under a lock),
// a real `clogd --cluster` per node, and the dm-raid1 model of every node driven in real
// time by one ModelDriver, with two mirrors — one clustered-disk (its log device a file all
// three clogds share), one clustered-core. Helpers wait for conditions with bounds and
// compare what every node's `clogctl status --json` says.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/cluster/clogd_nodes.h"
#include "tests/cluster/model_driver.h"

namespace clogd::cluster_test {

inline constexpr int kNodes = 3;
inline constexpr size_t kDisk = 0;  // mirror indexes in the driver
inline constexpr size_t kCore = 1;
inline constexpr uint64_t kRegions = 64;
inline constexpr uint64_t kRegionSectors = 1024;

using Statuses = std::vector<nlohmann::json>;  // index = node id (0 unused; null if down)

class E2eClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  ModelDriver& driver() { return *driver_; }
  ClogdNodes& clogd() { return *clogd_; }
  const std::string& uuid(size_t mirror) const { return uuids_[mirror]; }
  static const char* TypeName(size_t mirror) {
    return mirror == kDisk ? "clustered-disk" : "clustered-core";
  }

  // Starts clogd on every node and boots every node's kernel model; waits (bounded)
  // until every node serves both logs with all three members.
  void StartCluster();
  // Extra clogd arguments for every node StartNode starts (set before StartCluster).
  std::vector<std::string> clogd_args_;
  // clogd on `node` again, and a freshly booted kernel there if `boot_kernel`.
  void StartNode(int node, bool boot_kernel);
  // Runs `cluster-netns.sh args` while the driver keeps the models running (the script
  // may wait for a membership for seconds); fails the test if it fails.
  void RunScriptDriving(const std::string& args);
  // Every up node's status (clogctl), null for nodes not in `nodes`.
  Statuses StatusOf(const std::vector<int>& nodes, std::string* error = nullptr);
  // Runs the driver until `done(statuses)` holds for the statuses of `nodes` (asked every
  // `every`), at most `bound`. Returns whether it held; `last` gets the last statuses.
  bool RunUntilStatus(const std::vector<int>& nodes,
                      const std::function<bool(const Statuses&)>& done,
                      std::chrono::milliseconds bound, Statuses* last = nullptr,
                      std::chrono::milliseconds every = std::chrono::milliseconds(250));
  // Every node in `nodes` serves both logs with exactly `members`.
  bool Serving(const Statuses& s, const std::vector<int>& nodes, const std::vector<int>& members);
  // Stops the workload and waits (bounded) until every model on `nodes` is quiet and every
  // clogd there reports both logs fully in sync with nothing pending.
  void Settle(const std::vector<int>& nodes, std::chrono::milliseconds bound);
  // Asserts that the statuses of `nodes` agree on each log's in-sync count, out-of-sync
  // count, server, members and generation (waiting, bounded, for them to converge).
  void ExpectStatusesAgree(const std::vector<int>& nodes);
  // No data checker violation, no protocol error, acked writes on every live leg, and
  // (everything quiet) all legs identical.
  void ExpectDataIntact();
  // The dirty regions of node `of` in one log of a status (`source`: where they come from).
  static std::vector<uint64_t> DirtyOf(const nlohmann::json& log, int of, std::string* source);
  // Counter `name` of log `uuid` in a status.
  static uint64_t Counter(const nlohmann::json& status, const std::string& uuid,
                          const std::string& name);
  std::string Diagnostics();

  static std::string error_;
  static int lock_fd_;
  std::string dir_;
  std::vector<std::string> uuids_;
  std::unique_ptr<ClogdNodes> clogd_;
  std::unique_ptr<ModelDriver> driver_;
};

std::vector<int> AllNodes();
// Every node but `node`.
std::vector<int> Others(int node);

}  // namespace clogd::cluster_test
