// End to end on a real cluster: three real corosync nodes (scripts/cluster-netns.sh), a real
// `clogd --cluster` on each, and each node's dm-raid1 modelled by tests/sim's MirrorModel in
// real time (ModelDriver), writing to shared legs that a DataChecker watches. Every test
// runs a clustered-disk and a clustered-core mirror side by side and asserts what a user of
// a clustered mirror relies on: acked writes are on every leg, the nodes agree, a dead
// node's dirty regions (exactly those) are resynced, a new log server serves within the
// failure detection time, a restarted clogd or corosync loses no request, and a rogue CPG
// member changes nothing.
#include <linux/dm-log-userspace.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <set>

#include "logd/cluster_msg.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/e2e_fixture.h"

namespace clogd::cluster_test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// corosync's failure detection with the script's totem settings: token 1000 ms + consensus
// 1200 ms (cpg_cluster_test measures ~2.2 s).
constexpr int64_t kDetectionMs = 2200;

// "node 3 left: 5 of its regions are out of sync" -> 5, for log `uuid` (-1 if absent).
int64_t MergedCount(const std::vector<std::string>& lines, int gone) {
  const std::string needle = "node " + std::to_string(gone) + " left: ";
  for (const auto& line : lines) {
    const size_t at = line.find(needle);
    if (at != std::string::npos) return std::stoll(line.substr(at + needle.size()));
  }
  return -1;
}

// A region `node`'s kernel holds clean (so a write to it needs a MARK and a FLUSH) and no
// write of the node is under way in, searched from the top, away from the workload's hot
// set at the bottom. (A write the kernel requeued is in no region's count: a test write to
// its block would race it, and the legs could end up in either order.)
uint64_t FreshRegion(ModelDriver& d, int node, size_t mirror) {
  for (uint64_t r = kRegions; r-- > 0;) {
    const auto state = d.model(node, mirror)->CachedState(r);
    if ((!state || *state == sim::RegionState::kClean) && !d.WritingIn(node, mirror, r)) return r;
  }
  return kRegions - 1;
}

std::string Join(const std::set<uint64_t>& s) {
  std::string out;
  for (uint64_t r : s) out += (out.empty() ? "" : " ") + std::to_string(r);
  return "{" + out + "}";
}

TEST_F(E2eClusterTest, WritesFromAllNodesAgreeAndKeepTheDataIntact) {
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(4000));
  Settle(AllNodes(), milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  for (int n = 1; n <= kNodes; ++n) {
    for (size_t m = 0; m < 2; ++m) {
      EXPECT_GT(driver().writes_ok(n, m), 20u) << TypeName(m) << " node " << n;
      EXPECT_EQ(driver().writes_ok(n, m), driver().writes_issued(n, m))
          << TypeName(m) << " node " << n << ": every write completes without error";
    }
  }
  ExpectStatusesAgree(AllNodes());
  ExpectDataIntact();
  std::cout << driver().Summary();
}

// A node dies with writes in flight: the survivors resync exactly the regions its slot
// (clustered-disk) or the replicated marks (clustered-core) held, keep serving, the legs are
// identical after resync; the node comes back and serves.
TEST_F(E2eClusterTest, KilledNodesDirtyRegionsAreResyncedExactly) {
  constexpr int kVictim = 3;
  const std::vector<int> survivors = Others(kVictim);
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(1500));
  // A burst of the victim to 4 regions off the hot set, on slow legs (20-400 ms a write), so
  // it dies with several regions marked. Stop the models (time stands still outside Run*)
  // once the burst's writes are in flight in both mirrors (marked and flushed) and no
  // request waits: what its clogd published cannot change between the snapshot and the kill.
  driver().SetWorkload(kVictim, false);
  for (size_t m = 0; m < 2; ++m) {
    for (int leg = 0; leg < 2; ++leg) driver().legs(m).SetSlowFactor(leg, 200);
  }
  std::set<uint64_t> burst;
  for (uint64_t r = kRegions - 4; r < kRegions; ++r) burst.insert(r);
  size_t burst_done[2] = {0, 0};
  for (size_t m = 0; m < 2; ++m) {
    for (uint64_t r : burst) {
      driver().Write(kVictim, m, driver().BlockOf(kVictim, r),
                     [&burst_done, m](Status, SimTime) { ++burst_done[m]; });
    }
  }
  const bool caught = driver().RunUntil(
      [&] {
        for (size_t m = 0; m < 2; ++m) {
          if (burst_done[m] > 0 || driver().Outstanding(kVictim, m) != 0) return false;
          for (uint64_t r : burst) {
            if (driver().model(kVictim, m)->CachedState(r) != sim::RegionState::kDirty)
              return false;
          }
        }
        return true;
      },
      milliseconds(20'000));
  ASSERT_TRUE(caught) << "node " << kVictim << "'s burst was never in flight in both mirrors";
  const Statuses before = StatusOf(AllNodes());
  std::set<uint64_t> expected[2];
  for (size_t m = 0; m < 2; ++m) {
    std::string source;
    const auto dirty = DirtyOf(ClogdNodes::LogOf(before[1], uuid(m)), kVictim, &source);
    expected[m] = {dirty.begin(), dirty.end()};
    EXPECT_EQ(source, m == kDisk ? "device" : "replica") << TypeName(m);
    for (uint64_t r : burst) {
      EXPECT_TRUE(expected[m].contains(r))
          << TypeName(m) << ": node " << kVictim << " writes region " << r << ", unmarked";
    }
    const auto seen_by_2 = DirtyOf(ClogdNodes::LogOf(before[2], uuid(m)), kVictim, nullptr);
    EXPECT_EQ(std::set<uint64_t>(seen_by_2.begin(), seen_by_2.end()), expected[m])
        << TypeName(m) << ": nodes 1 and 2 see node " << kVictim << "'s marks differently";
    // The victim's own marks are all published (its slot may still hold lazily cleared ones).
    for (uint64_t r : DirtyOf(ClogdNodes::LogOf(before[kVictim], uuid(m)), kVictim, nullptr)) {
      EXPECT_TRUE(expected[m].contains(r)) << TypeName(m) << ": own mark " << r << " unpublished";
    }
    ASSERT_EQ(ClogdNodes::LogOf(before[1], uuid(m))["out_of_sync"], 0) << TypeName(m);
  }
  const SimTime killed_at = driver().Now();
  uint64_t ok_at_kill[kNodes + 1][2] = {};
  for (int n : survivors) {
    for (size_t m = 0; m < 2; ++m) ok_at_kill[n][m] = driver().writes_ok(n, m);
  }
  driver().CrashNode(kVictim);
  CommandResult kill = RunScript("kill " + std::to_string(kVictim));
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  clogd().Forget(kVictim);
  for (size_t m = 0; m < 2; ++m) {
    for (int leg = 0; leg < 2; ++leg) driver().legs(m).SetSlowFactor(leg, 1);
  }

  // The survivors see it leave, resync, and serve on.
  Statuses last;
  const bool recovered = RunUntilStatus(
      survivors,
      [&](const Statuses& s) {
        if (!Serving(s, survivors, survivors)) return false;
        for (size_t m = 0; m < 2; ++m) {
          if (driver().RecoveredSince(m, killed_at) != expected[m]) return false;
          for (int n : survivors) {
            if (driver().writes_ok(n, m) <= ok_at_kill[n][m] + 5) return false;
          }
        }
        return true;
      },
      milliseconds(30'000), &last);
  for (size_t m = 0; m < 2; ++m) {
    EXPECT_EQ(Join(driver().RecoveredSince(m, killed_at)), Join(expected[m]))
        << TypeName(m) << ": the survivors must resync exactly node " << kVictim
        << "'s dirty regions";
    for (int n : survivors) {
      EXPECT_EQ(MergedCount(clogd().Lines(n, {"log " + uuid(m) + " "}), kVictim),
                static_cast<int64_t>(expected[m].size()))
          << TypeName(m) << ": node " << n << "'s 'node " << kVictim << " left: K ...' line";
      EXPECT_GT(driver().writes_ok(n, m), ok_at_kill[n][m] + 5)
          << TypeName(m) << ": node " << n << " kept writing";
    }
  }
  for (size_t m = 0; m < 2; ++m) {
    std::cout << TypeName(m) << ": node " << kVictim << " died with regions " << Join(expected[m])
              << " marked; the survivors resynced " << Join(driver().RecoveredSince(m, killed_at))
              << "\n";
  }
  ASSERT_TRUE(recovered) << "survivors did not serve and resync within 30 s; node 1: "
                         << last[1].dump();
  Settle(survivors, milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  ExpectStatusesAgree(survivors);
  ExpectDataIntact();

  // It comes back: rejoins and serves.
  RunScriptDriving("start " + std::to_string(kVictim));
  StartNode(kVictim, true);
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  ASSERT_TRUE(RunUntilStatus(
      AllNodes(), [&](const Statuses& s) { return Serving(s, AllNodes(), AllNodes()); },
      milliseconds(30'000)))
      << "node " << kVictim << " did not rejoin";
  driver().RunUntil(
      [&] {
        return driver().writes_ok(kVictim, kDisk) > 10 && driver().writes_ok(kVictim, kCore) > 10;
      },
      milliseconds(10'000));
  Settle(AllNodes(), milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  for (size_t m = 0; m < 2; ++m) {
    EXPECT_GT(driver().writes_ok(kVictim, m), 10u) << TypeName(m) << ": the rejoined node writes";
  }
  // How it got the state: clustered-disk as a delta against the map on the shared device;
  // clustered-core's map lived only in the killed daemon, so a full checkpoint.
  const Statuses rejoined = StatusOf({kVictim});
  for (size_t m = 0; m < 2; ++m) {
    const uint64_t deltas = Counter(rejoined[kVictim], uuid(m), "deltas_taken");
    const uint64_t full = Counter(rejoined[kVictim], uuid(m), "checkpoints_taken");
    std::cout << TypeName(m) << ": node " << kVictim << " rejoined with " << deltas << " delta(s), "
              << full << " full checkpoint(s)\n";
    EXPECT_EQ(deltas, m == kDisk ? 1u : 0u) << TypeName(m);
    EXPECT_EQ(full, m == kDisk ? 0u : 1u) << TypeName(m);
  }
  ExpectStatusesAgree(AllNodes());
  ExpectDataIntact();
}

// The log server's node dies: a survivor takes over and serves a MARK+FLUSH within the
// failure detection time + 1 s of the kill.
TEST_F(E2eClusterTest, NewLogServerServesWithinDetectionPlusOneSecond) {
  // As where real fencing exists: without it, the fence grace (3 s by default) holds the
  // copy of the dead node's regions, and a write requeued on one of them keeps the merge's
  // suspend, and so every write issued meanwhile, waiting until it has run out (a CI run
  // saw 3292 ms). The grace is tested by NothingIsCopiedUntilEveryMembersFenceGrace... and
  // scripts/faults cut-off.
  clogd_args_ = {"--fence-grace-ms", "0"};
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(1000));
  const Statuses before = StatusOf({1});
  const int server = ClogdNodes::LogOf(before[1], uuid(kDisk))["server"].get<int>();
  ASSERT_EQ(ClogdNodes::LogOf(before[1], uuid(kCore))["server"], server)
      << "both logs were bootstrapped by the oldest member";
  const std::vector<int> survivors = Others(server);
  const int writer = survivors[0];

  // A write of the survivor to a region it has not marked, issued at the kill: it needs a
  // MARK and a FLUSH (clustered-core: one agreed multicast, held by corosync until the new
  // ring forms).
  const auto kill_wall = std::chrono::steady_clock::now();
  const SimTime killed_at = driver().Now();
  driver().CrashNode(server);
  CommandResult kill = RunScript("kill " + std::to_string(server));
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  clogd().Forget(server);
  SimTime served_at[2] = {0, 0};
  for (size_t m = 0; m < 2; ++m) {
    const uint64_t region = FreshRegion(driver(), writer, m);
    driver().Write(writer, m, driver().BlockOf(writer, region),
                   [&served_at, m](Status s, SimTime t) {
                     EXPECT_TRUE(s.ok()) << s.ToString();
                     served_at[m] = t;
                   });
  }
  // The survivors name a new server.
  int64_t new_server_ms = -1;
  Statuses last;
  RunUntilStatus(
      survivors,
      [&](const Statuses& s) {
        for (int n : survivors) {
          for (size_t m = 0; m < 2; ++m) {
            const json log = ClogdNodes::LogOf(s[size_t(n)], uuid(m));
            if (log.is_null() || !log["serving"].get<bool>() || log["server"] == server ||
                log["members"] != json(survivors)) {
              return false;
            }
          }
        }
        new_server_ms =
            std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - kill_wall)
                .count();
        return true;
      },
      milliseconds(15'000), &last, milliseconds(50));
  ASSERT_GE(new_server_ms, 0) << "no new server within 15 s; node " << writer << ": "
                              << last[size_t(writer)].dump();
  driver().RunUntil([&] { return served_at[0] != 0 && served_at[1] != 0; }, milliseconds(10'000));
  // And one issued now, with the new server in place.
  SimTime after_at[2] = {0, 0};
  const SimTime second_issued = driver().Now();
  for (size_t m = 0; m < 2; ++m) {
    driver().Write(writer, m, driver().BlockOf(writer, FreshRegion(driver(), writer, m)),
                   [&after_at, m](Status s, SimTime t) {
                     EXPECT_TRUE(s.ok()) << s.ToString();
                     after_at[m] = t;
                   });
  }
  driver().RunUntil([&] { return after_at[0] != 0 && after_at[1] != 0; }, milliseconds(10'000));
  const int64_t bound_ms = kDetectionMs + 1000;
  std::cout << "log server (node " << server << ") killed: survivors name a new server after "
            << new_server_ms << " ms\n";
  for (size_t m = 0; m < 2; ++m) {
    ASSERT_NE(served_at[m], 0u) << TypeName(m) << ": the write issued at the kill never completed";
    ASSERT_NE(after_at[m], 0u) << TypeName(m) << ": the write issued later never completed";
    const int64_t first_ms = static_cast<int64_t>(served_at[m] - killed_at) / 1000;
    const int64_t next_ms = static_cast<int64_t>(after_at[m] - second_issued) / 1000;
    std::cout << TypeName(m) << ": node " << writer << "'s MARK+FLUSH+write issued at the kill "
              << "done after " << first_ms
              << " ms; one issued with the new server in place: " << next_ms << " ms\n";
    EXPECT_LE(first_ms, bound_ms) << TypeName(m);
    // Not instant: the resync of the dead server's regions reset the kernel's in-sync hint,
    // so writes ask IS_REMOTE_RECOVERING again (throttled to one per 250 ms, a skipped one
    // requeues the bio for 200 ms).
    EXPECT_LE(next_ms, bound_ms) << TypeName(m);
  }
  EXPECT_LE(new_server_ms, bound_ms) << "the survivors named a new server too late";
  Settle(survivors, milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  ExpectStatusesAgree(survivors);
  ExpectDataIntact();
}

// clogd dies (kill -9) under a running kernel and is restarted: the kernel's requests get
// -ESRCH, it re-sends CTR and RESUME, and is served again; no write is lost.
TEST_F(E2eClusterTest, RestartedClogdServesTheRunningKernelAgain) {
  constexpr int kNode = 2;
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(1500));
  auto error = clogd().Kill(kNode, "KILL");
  ASSERT_FALSE(error) << *error;
  const SimTime killed_at = driver().Now();
  driver().RunFor(milliseconds(1000));  // the kernel writes on: -ESRCH, CTR every 2 s
  const uint64_t connections = driver().connections(kNode);
  StartNode(kNode, false);
  ASSERT_FALSE(HasFatalFailure());
  uint64_t ok_at_restart[2] = {driver().writes_ok(kNode, kDisk), driver().writes_ok(kNode, kCore)};
  // Served again: a CTR and RESUME of each log answered by the new clogd, then writes.
  auto served_again = [&](size_t m) {
    bool ctr = false, resume = false;
    for (const RequestRecord& r : driver().requests()) {
      if (r.node != kNode || r.mirror != m || r.sent_us < killed_at || !r.over_link) continue;
      if (!r.answered || r.error != 0) continue;
      ctr = ctr || r.type == DM_ULOG_CTR;
      resume = resume || (ctr && r.type == DM_ULOG_RESUME);
    }
    return ctr && resume && driver().writes_ok(kNode, m) > ok_at_restart[m] + 5;
  };
  // A request the dead clogd had taken is re-sent by the kernel after 15 s.
  const bool again = driver().RunUntil([&] { return served_again(kDisk) && served_again(kCore); },
                                       milliseconds(40'000));
  EXPECT_GT(driver().connections(kNode), connections) << "the driver never reached the new clogd";
  for (size_t m = 0; m < 2; ++m) {
    EXPECT_GT(driver().model(kNode, m)->stats().esrch_events, 0u)
        << TypeName(m) << ": the kernel never saw -ESRCH";
    EXPECT_TRUE(served_again(m)) << TypeName(m) << ": not served again after CTR/RESUME";
  }
  ASSERT_TRUE(again);
  ASSERT_TRUE(RunUntilStatus(
      AllNodes(), [&](const Statuses& s) { return Serving(s, AllNodes(), AllNodes()); },
      milliseconds(20'000)));
  Settle(AllNodes(), milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  size_t taken = 0;
  for (const RequestRecord& r : driver().requests()) taken += r.node == kNode && r.abandoned;
  std::cout << "requests the killed clogd took with it (re-sent by the kernel after 15 s): "
            << taken << "\n";
  for (size_t m = 0; m < 2; ++m) {
    EXPECT_EQ(driver().writes_ok(kNode, m), driver().writes_issued(kNode, m))
        << TypeName(m) << ": every write of node " << kNode << " completes without error";
  }
  ExpectStatusesAgree(AllNodes());
  ExpectDataIntact();
}

// corosync restarts under a running clogd: the node leaves the ring and comes back, and
// not one request of its kernel is lost — each is answered, no 15 s re-send, writes finish.
TEST_F(E2eClusterTest, CorosyncRestartUnderClogdLosesNoRequest) {
  constexpr int kNode = 2;
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(1500));
  const size_t first = driver().requests().size();
  const Statuses before = StatusOf({kNode});
  RunScriptDriving("kill-corosync " + std::to_string(kNode));
  ASSERT_FALSE(HasFatalFailure());
  driver().RunFor(milliseconds(1500));
  RunScriptDriving("start " + std::to_string(kNode));
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t ok_at_start[2] = {driver().writes_ok(kNode, kDisk),
                                   driver().writes_ok(kNode, kCore)};
  Statuses last;
  ASSERT_TRUE(RunUntilStatus(
      AllNodes(),
      [&](const Statuses& s) {
        return Serving(s, AllNodes(), AllNodes()) &&
               driver().writes_ok(kNode, kDisk) > ok_at_start[0] + 5 &&
               driver().writes_ok(kNode, kCore) > ok_at_start[1] + 5;
      },
      milliseconds(40'000), &last))
      << "node " << kNode << " did not serve again; its status: " << last[kNode].dump();
  Settle(AllNodes(), milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  size_t checked[2] = {0, 0};
  for (size_t i = first; i < driver().requests().size(); ++i) {
    const RequestRecord& r = driver().requests()[i];
    if (r.node != kNode) continue;
    ++checked[r.mirror];
    EXPECT_TRUE(r.answered && r.over_link)
        << TypeName(r.mirror) << ": " << logd::RequestTypeName(r.type) << " seq " << r.seq
        << " sent at " << r.sent_us / 1000 << " ms was not answered by clogd";
  }
  EXPECT_GT(checked[kDisk] + checked[kCore], 50u);
  for (size_t m = 0; m < 2; ++m) {
    // clogd saw corosync go: it held the kernel's requests (and froze the mirror).
    EXPECT_EQ(clogd().Lines(kNode, {"log " + uuid(m) + " ", "cluster transport lost"}).size(), 1u)
        << TypeName(m);
    const sim::MirrorStats& st = driver().model(kNode, m)->stats();
    std::cout << TypeName(m) << ": node " << kNode << " sent " << checked[m]
              << " requests after the corosync kill, longest wait for an answer "
              << st.max_request_latency_us / 1000 << " ms\n";
    EXPECT_EQ(st.timeouts, 0u) << TypeName(m) << ": a request waited for the 15 s re-send";
    EXPECT_EQ(driver().writes_ok(kNode, m), driver().writes_issued(kNode, m)) << TypeName(m);
  }
  // clogd kept its state through the restart: it rejoined with a delta, no full checkpoint.
  const Statuses after = StatusOf({kNode});
  for (size_t m = 0; m < 2; ++m) {
    for (const char* counter : {"deltas_taken", "checkpoints_taken"}) {
      std::cout << TypeName(m) << ": " << counter << " +"
                << Counter(after[kNode], uuid(m), counter) -
                       Counter(before[kNode], uuid(m), counter)
                << "\n";
    }
    EXPECT_EQ(Counter(after[kNode], uuid(m), "deltas_taken"),
              Counter(before[kNode], uuid(m), "deltas_taken") + 1)
        << TypeName(m);
    EXPECT_EQ(Counter(after[kNode], uuid(m), "checkpoints_taken"),
              Counter(before[kNode], uuid(m), "checkpoints_taken"))
        << TypeName(m);
  }
  ExpectStatusesAgree(AllNodes());
  ExpectDataIntact();
}

// A probe (clog-cpg-probe) in each log's CPG group ("clogd:<uuid>") on `node`, joined.
std::vector<std::unique_ptr<ProbeProcess>> JoinRogues(int node,
                                                      const std::vector<std::string>& uuids) {
  std::vector<std::unique_ptr<ProbeProcess>> rogues;
  for (const std::string& u : uuids) {
    rogues.push_back(
        std::make_unique<ProbeProcess>(node, std::vector<std::string>{"--group", "clogd:" + u}));
    const int joined = rogues.back()->WaitFor(
        [](const json& e) { return e.value("event", "") == "membership"; }, milliseconds(15'000));
    EXPECT_GE(joined, 0) << "the rogue never joined clogd:" << u;
  }
  return rogues;
}

// A rogue process joins a log's CPG group and multicasts garbage and a header of another
// protocol version: every clogd refuses both (a log line naming the problem, its
// messages_refused counter) and its state does not change; the log serves on.
TEST_F(E2eClusterTest, RogueGroupMemberIsRefusedAndChangesNothing) {
  constexpr int kRogueNode = 3;
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(1000));
  Settle(AllNodes(), milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  const Statuses before = StatusOf(AllNodes());
  // The header of a message of the next protocol version (magic "CLGM", version, type
  // ANNOUNCE, sender, no payload, no checksum), little-endian.
  constexpr int kTheirVersion = logd::kClusterProtocolVersion + 1;
  std::string wrong_version = "CLGM";
  for (int b : {kTheirVersion, 0, 1, 0, kRogueNode, 0, 0, 0}) {
    wrong_version.push_back(static_cast<char>(b));
  }
  wrong_version.append(12, '\0');
  auto rogues = JoinRogues(kRogueNode, uuids_);
  ASSERT_FALSE(HasFailure());
  for (auto& rogue : rogues) {
    rogue->Command("send this is not a clogd message");
    rogue->Command("send " + wrong_version);
  }
  const bool refused = RunUntilStatus(
      AllNodes(),
      [&](const Statuses& s) {
        for (int n : AllNodes()) {
          for (size_t m = 0; m < 2; ++m) {
            if (Counter(s[size_t(n)], uuid(m), "messages_refused") <
                Counter(before[size_t(n)], uuid(m), "messages_refused") + 2)
              return false;
          }
        }
        return true;
      },
      milliseconds(10'000));
  EXPECT_TRUE(refused) << "not every clogd refused both messages";
  for (auto& rogue : rogues) rogue->Kill(SIGKILL);
  driver().RunFor(milliseconds(2000));
  const Statuses after = StatusOf(AllNodes());
  for (int n : AllNodes()) {
    for (size_t m = 0; m < 2; ++m) {
      const json b = ClogdNodes::LogOf(before[size_t(n)], uuid(m));
      const json a = ClogdNodes::LogOf(after[size_t(n)], uuid(m));
      EXPECT_EQ(Counter(after[size_t(n)], uuid(m), "messages_refused"),
                Counter(before[size_t(n)], uuid(m), "messages_refused") + 2)
          << TypeName(m) << " node " << n;
      for (const char* field :
           {"in_sync", "out_of_sync", "server", "members", "absent", "serving", "recovering"}) {
        EXPECT_EQ(a[field], b[field]) << TypeName(m) << " node " << n << ": " << field;
      }
      const auto lines = clogd().Lines(n, {"log " + uuid(m) + " ", "refused a message"});
      ASSERT_EQ(lines.size(), 2u) << TypeName(m) << " node " << n;
      EXPECT_NE(lines[0].find("bad magic"), std::string::npos) << lines[0];
      EXPECT_NE(lines[1].find("speaks protocol version " + std::to_string(kTheirVersion) +
                              ", this node speaks version " +
                              std::to_string(logd::kClusterProtocolVersion)),
                std::string::npos)
          << lines[1];
    }
  }
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(1500));
  Settle(AllNodes(), milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  ExpectStatusesAgree(AllNodes());
  ExpectDataIntact();
}

// CPG members are processes (node, pid); clogd's Membership names nodes, each once, and a
// node leaves with its last process (logd/cpg_views.h). So a second process of a member
// node in the group is not taken for that node's clogd: its exit (process_down) does not
// mark the node absent, its leave (cpg_leave) does not merge the node's marks out of sync
// nor free its slot under the live clogd.
TEST_F(E2eClusterTest, ProcessOfAMemberNodeIsNotTakenForItsClogd) {
  constexpr int kRogueNode = 3;
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(1000));
  Settle(AllNodes(), milliseconds(30'000));
  ASSERT_FALSE(HasFatalFailure());
  const Statuses before = StatusOf(AllNodes());
  {
    auto rogues = JoinRogues(kRogueNode, uuids_);
    ASSERT_FALSE(HasFailure());
    for (auto& rogue : rogues) rogue->Kill(SIGKILL);  // process_down
  }
  driver().RunFor(milliseconds(2000));
  const Statuses after_exit = StatusOf(AllNodes());
  for (int n : AllNodes()) {
    for (size_t m = 0; m < 2; ++m) {
      EXPECT_EQ(ClogdNodes::LogOf(after_exit[size_t(n)], uuid(m))["absent"], json::array())
          << TypeName(m) << " node " << n << ": a probe's exit made node " << kRogueNode
          << " absent";
    }
  }
  {
    auto rogues = JoinRogues(kRogueNode, uuids_);
    ASSERT_FALSE(HasFailure());
    for (auto& rogue : rogues) rogue->Command("leave");  // cpg_leave
    driver().RunFor(milliseconds(2000));
  }
  const Statuses after = StatusOf(AllNodes());
  for (int n : AllNodes()) {
    for (size_t m = 0; m < 2; ++m) {
      const json b = ClogdNodes::LogOf(before[size_t(n)], uuid(m));
      const json a = ClogdNodes::LogOf(after[size_t(n)], uuid(m));
      for (const char* field : {"absent", "members", "server", "in_sync", "out_of_sync"}) {
        EXPECT_EQ(a[field], b[field]) << TypeName(m) << " node " << n << ": " << field;
      }
      EXPECT_EQ(Counter(after[size_t(n)], uuid(m), "regions_merged"),
                Counter(before[size_t(n)], uuid(m), "regions_merged"))
          << TypeName(m) << " node " << n << ": node " << kRogueNode << "'s marks were merged";
    }
  }
  for (int n : AllNodes()) {
    for (const auto& line : clogd().Lines(n, {"node " + std::to_string(kRogueNode) + " left"})) {
      ADD_FAILURE() << "node " << n << ": " << line;
    }
  }
}

}  // namespace
}  // namespace clogd::cluster_test
