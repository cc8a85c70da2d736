// CpgTransport on real corosync: a 3-node cluster in network namespaces
// (scripts/cluster-netns.sh, its own directory and prefix, brought up and down by this test)
// with clog-cpg-probe on the nodes. Asserts what the daemon relies on: identical view ids and
// member order for the same change, agreed order, the leave reasons, failure detection within
// a bound, reconnection after corosync restarts, ids increasing on every member. Prints the
// agreed round trip and throughput (the request-path benchmark's reference).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "tests/cluster/cluster_harness.h"

namespace clogd::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kClusterDir = "/run/clog-netns-test";
constexpr const char* kLockFile = "/run/clog-netns-test.lock";  // also taken by cpg_cluster_down
constexpr milliseconds kJoinBound{15000};
constexpr milliseconds kFailureBound{10000};  // token 1000 ms + consensus: ~2 s expected

using Probes = std::vector<std::unique_ptr<ProbeProcess>>;

bool IsMembership(const json& e) { return e.value("event", "") == "membership"; }

std::function<bool(const json&)> MembersAre(std::vector<int> members) {
  return [members](const json& e) { return IsMembership(e) && e["members"] == json(members); };
}

// The membership events of `p` from index `from` on.
std::vector<json> Memberships(const ProbeProcess& p, size_t from = 0) {
  std::vector<json> out;
  for (size_t i = from; i < p.events().size(); ++i) {
    if (IsMembership(p.events()[i])) out.push_back(p.events()[i]);
  }
  return out;
}

void ExpectIdsIncrease(const ProbeProcess& p) {
  uint64_t last = 0;
  for (const json& m : Memberships(p)) {
    const uint64_t id = m["view_id"];
    EXPECT_GT(id, last) << "node " << p.node() << ": view ids must increase";
    last = id;
  }
}

// For every view id both saw: the same change (members in the same order, joined, left,
// reasons). The ids must not all be distinct by accident: at least `min_common` in common.
void ExpectSameViews(const ProbeProcess& a, const ProbeProcess& b, size_t min_common) {
  std::map<uint64_t, json> seen;
  for (const json& m : Memberships(a)) seen[m["view_id"]] = m;
  size_t common = 0;
  for (const json& m : Memberships(b)) {
    auto it = seen.find(m["view_id"]);
    if (it == seen.end()) continue;
    ++common;
    EXPECT_EQ(it->second["members"], m["members"]) << "view " << m["view_id"];
    EXPECT_EQ(it->second["joined"], m["joined"]) << "view " << m["view_id"];
    EXPECT_EQ(it->second["left"], m["left"]) << "view " << m["view_id"];
    EXPECT_EQ(it->second["reasons"], m["reasons"]) << "view " << m["view_id"];
  }
  EXPECT_GE(common, min_common) << "nodes " << a.node() << " and " << b.node()
                                << " share too few view ids";
}

class CpgClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    signal(SIGPIPE, SIG_IGN);  // a dead probe's stdin must not kill the test
    setenv("CLOG_NETNS_DIR", kClusterDir, 1);
    setenv("CLOG_NETNS_PREFIX", "clogt", 1);
    error_.clear();
    if (geteuid() != 0) {
      error_ = "the cluster test needs root (it creates network and mount namespaces)";
      return;
    }
    lock_fd_ = open(kLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    const Clock::time_point deadline = Clock::now() + seconds(900);
    while (lock_fd_ >= 0 && flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      if (Clock::now() > deadline) {
        error_ = std::string("another cluster test held ") + kLockFile + " for 15 minutes";
        return;
      }
      std::this_thread::sleep_for(milliseconds(200));  // waiting for the lock, bounded
    }
    (void)RunScript("down");  // leftovers of a killed run
    CommandResult up = RunScript("up");
    std::cerr << up.output;
    if (up.exit_code != 0) error_ = "scripts/cluster-netns.sh up failed:\n" + up.output;
  }

  static void TearDownTestSuite() {
    if (lock_fd_ < 0) return;
    CommandResult down = RunScript("down");
    EXPECT_EQ(down.exit_code, 0) << down.output;
    close(lock_fd_);
    lock_fd_ = -1;
  }

  void SetUp() override {
    ASSERT_TRUE(error_.empty()) << error_;
    CommandResult r = RunScript("restore");  // a previous test may have killed or cut one
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // Probes on nodes 1, 2, 3 in `group`, each started after the previous one saw itself join,
  // then until all three see all three.
  Probes StartGroup(const std::string& group, const std::vector<std::string>& extra = {}) {
    Probes probes;
    for (int node = 1; node <= 3; ++node) {
      std::vector<std::string> args = {"--group", group};
      args.insert(args.end(), extra.begin(), extra.end());
      probes.push_back(std::make_unique<ProbeProcess>(node, args));
      const int joined = probes.back()->WaitFor(
          [node](const json& e) {
            return IsMembership(e) && e["joined"].is_array() &&
                   std::find(e["joined"].begin(), e["joined"].end(), node) != e["joined"].end();
          },
          kJoinBound);
      EXPECT_GE(joined, 0) << "probe on node " << node << " did not see its own join";
    }
    for (auto& p : probes) {
      EXPECT_GE(p->WaitFor(MembersAre({1, 2, 3}), kJoinBound), 0)
          << "node " << p->node() << " never saw all three";
    }
    return probes;
  }

  static std::string error_;
  static int lock_fd_;
};

std::string CpgClusterTest::error_;
int CpgClusterTest::lock_fd_ = -1;

TEST_F(CpgClusterTest, SameViewIdsAndMemberOrderOnEveryNode) {
  Probes p = StartGroup("views");
  ASSERT_FALSE(HasFailure());
  for (auto& probe : p) {
    const std::vector<json> ready = probe->Events("ready");
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0]["node"], probe->node());
    EXPECT_EQ(ready[0].value("expected_votes", 0), 3) << ready[0].dump();
    EXPECT_EQ(ready[0]["early_multicast"].get<std::string>().rfind("invalid argument", 0), 0u)
        << "multicast before the first membership must be refused: " << ready[0].dump();
    ExpectIdsIncrease(*probe);
    EXPECT_EQ(Memberships(*probe).front()["joined"], json({probe->node()}))
        << "a joiner's first change lists itself";
  }
  ExpectSameViews(*p[0], *p[1], 2);  // node 2's join and node 3's
  ExpectSameViews(*p[0], *p[2], 1);
  ExpectSameViews(*p[1], *p[2], 1);

  p[0]->Command("sendsize " + std::to_string(1000 * 1024 + 1));
  const int sent = p[0]->WaitFor([](const json& e) { return e["event"] == "send"; }, kJoinBound);
  ASSERT_GE(sent, 0);
  EXPECT_EQ(p[0]->events()[sent]["status"].get<std::string>().rfind("invalid argument", 0), 0u)
      << "a message over kMaxClusterMessage must be refused";
}

TEST_F(CpgClusterTest, ConcurrentMulticastsArriveInOneOrderEverywhere) {
  Probes p = StartGroup("order");
  ASSERT_FALSE(HasFailure());
  constexpr int kEach = 300;
  p[0]->Command("burst " + std::to_string(kEach) + " a");
  p[1]->Command("burst " + std::to_string(kEach) + " b");
  p[2]->Command("burst " + std::to_string(kEach) + " c");
  std::vector<std::vector<std::string>> orders;
  for (auto& probe : p) {
    int count = 0;
    ASSERT_GE(probe->WaitFor(
                  [&](const json& e) { return e["event"] == "deliver" && ++count == 3 * kEach; },
                  seconds(60)),
              0)
        << "node " << probe->node() << " got " << count << " of " << 3 * kEach;
    std::vector<std::string> order;
    for (const json& d : probe->Events("deliver")) {
      order.push_back(std::to_string(d["from"].get<int>()) + ":" + d["data"].get<std::string>());
    }
    orders.push_back(order);
  }
  EXPECT_EQ(orders[0], orders[1]);
  EXPECT_EQ(orders[0], orders[2]);
  // Each sender's messages in send order.
  std::map<char, int> next;
  int switches = 0;
  char last = 0;
  for (const std::string& m : orders[0]) {
    const char sender = m[2];
    EXPECT_EQ(m.substr(2), std::string(1, sender) + std::to_string(next[sender]++));
    switches += sender != last;
    last = sender;
  }
  std::cout << "agreed order: " << orders[0].size() << " messages from 3 senders, " << switches
            << " sender switches in the delivered stream\n";
}

TEST_F(CpgClusterTest, NodeFailureIsOneNodeDownChangeWithinTheBound) {
  Probes p = StartGroup("nodedown");
  ASSERT_FALSE(HasFailure());
  const size_t before1 = p[0]->events().size(), before2 = p[1]->events().size();
  const uint64_t last_view = Memberships(*p[0]).back()["view_id"];
  const Clock::time_point killed = Clock::now();
  CommandResult r = RunScript("kill 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  uint64_t ids[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    ProbeProcess& s = *p[static_cast<size_t>(i)];
    const size_t before = i == 0 ? before1 : before2;
    const int at = s.WaitFor(MembersAre({1, 2}), kFailureBound, before);
    ASSERT_GE(at, 0) << "node " << s.node() << " did not see node 3 go within the bound";
    const std::vector<json> changes = Memberships(s, before);
    ASSERT_EQ(changes.size(), 1u) << "one change for the node failure";
    EXPECT_EQ(changes[0]["left"], json({3}));
    EXPECT_EQ(changes[0]["reasons"], json({"node_down"}));
    EXPECT_EQ(changes[0]["joined"], json::array());
    ids[i] = changes[0]["view_id"];
    EXPECT_GT(ids[i], last_view);
    const double took =
        std::chrono::duration<double>(s.seen_at(static_cast<size_t>(at)) - killed).count();
    std::cout << "node 3 killed: node " << s.node() << " saw it leave after " << took << " s\n";
  }
  EXPECT_EQ(ids[0], ids[1]) << "survivors must agree on the view id";
  ExpectIdsIncrease(*p[0]);
  ExpectIdsIncrease(*p[1]);
}

TEST_F(CpgClusterTest, KilledProbeIsProcessDown) {
  Probes p = StartGroup("procdown");
  ASSERT_FALSE(HasFailure());
  const size_t before[3] = {p[0]->events().size(), 0, p[2]->events().size()};
  p[1]->Kill(SIGKILL);
  uint64_t ids[2] = {0, 0};
  for (size_t i : {0u, 2u}) {
    const int at = p[i]->WaitFor(MembersAre({1, 3}), kFailureBound, before[i]);
    ASSERT_GE(at, 0) << "node " << p[i]->node() << " did not see node 2's probe go";
    const json& m = p[i]->events()[static_cast<size_t>(at)];
    EXPECT_EQ(m["left"], json({2}));
    EXPECT_EQ(m["reasons"], json({"process_down"}));
    ids[i == 0 ? 0 : 1] = m["view_id"];
  }
  EXPECT_EQ(ids[0], ids[1]);
  ExpectSameViews(*p[0], *p[2], 2);
}

TEST_F(CpgClusterTest, LeaveIsCleanAndTheLeaverHearsNothingMore) {
  Probes p = StartGroup("leave");
  ASSERT_FALSE(HasFailure());
  const size_t before[2] = {p[0]->events().size(), p[1]->events().size()};
  p[2]->Command("leave");
  const int left = p[2]->WaitFor([](const json& e) { return e["event"] == "left"; }, kJoinBound);
  ASSERT_GE(left, 0);
  EXPECT_EQ(p[2]->events()[static_cast<size_t>(left)]["status"], "ok");
  for (size_t i : {0u, 1u}) {
    const int at = p[i]->WaitFor(MembersAre({1, 2}), kFailureBound, before[i]);
    ASSERT_GE(at, 0);
    EXPECT_EQ(p[i]->events()[static_cast<size_t>(at)]["reasons"], json({"left"}));
  }
  const size_t before_second = p[0]->events().size();
  p[1]->Command("leave");
  const int alone = p[0]->WaitFor(MembersAre({1}), kFailureBound, before_second);
  ASSERT_GE(alone, 0);
  EXPECT_EQ(p[0]->events()[static_cast<size_t>(alone)]["reasons"], json({"left"}));
  p[1]->Command("send after-leave");  // refused: not in the group
  p[2]->Command("send after-leave");
  for (size_t i : {1u, 2u}) {
    const int sent = p[i]->WaitFor([](const json& e) { return e["event"] == "send"; }, kJoinBound);
    ASSERT_GE(sent, 0);
    EXPECT_EQ(p[i]->events()[static_cast<size_t>(sent)]["status"].get<std::string>().rfind(
                  "invalid argument", 0),
              0u);
  }
  EXPECT_TRUE(Memberships(*p[2], static_cast<size_t>(left)).empty())
      << "the leaver must get no membership change after Leave returned";
  EXPECT_TRUE(p[0]->Events("deliver").empty());
}

TEST_F(CpgClusterTest, CorosyncRestartUnderAProbeRejoinsWithANewView) {
  Probes p = StartGroup("restart");
  ASSERT_FALSE(HasFailure());
  const uint64_t before = Memberships(*p[1]).back()["view_id"];
  const size_t seen[3] = {p[0]->events().size(), 0, p[2]->events().size()};
  CommandResult r = RunScript("kill-corosync 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_GE(
      p[1]->WaitFor([](const json& e) { return e["event"] == "transport_lost"; }, kFailureBound), 0)
      << "the probe under the dead corosync must hear OnTransportLost";
  for (size_t i : {0u, 2u}) {
    const int at = p[i]->WaitFor(MembersAre({1, 3}), kFailureBound, seen[i]);
    ASSERT_GE(at, 0);
    EXPECT_EQ(p[i]->events()[static_cast<size_t>(at)]["reasons"], json({"node_down"}));
  }
  // While corosync is down: Join fails (the probe retries), and a new probe cannot connect.
  const int failed = p[1]->WaitFor(
      [](const json& e) { return e["event"] == "rejoin" && e["status"] != "ok"; }, kJoinBound);
  ASSERT_GE(failed, 0);
  EXPECT_EQ(p[1]->events()[static_cast<size_t>(failed)]["status"].get<std::string>().rfind(
                "I/O error", 0),
            0u);
  {
    ProbeProcess lone(2, {"--group", "restart"});
    const int err = lone.WaitFor([](const json& e) { return e["event"] == "error"; }, kJoinBound);
    ASSERT_GE(err, 0) << "connect must fail while corosync is down";
    EXPECT_EQ(lone.events()[static_cast<size_t>(err)]["stage"], "connect");
    EXPECT_NE(
        lone.events()[static_cast<size_t>(err)]["message"].get<std::string>().find("I/O error"),
        std::string::npos);
    EXPECT_TRUE(lone.WaitExit(kJoinBound));
  }
  r = RunScript("start 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const int rejoined = p[1]->WaitFor(
      [](const json& e) { return e["event"] == "rejoin" && e["status"] == "ok"; }, kJoinBound);
  ASSERT_GE(rejoined, 0) << "Join must succeed once corosync is back";
  // The probe may rejoin before node 2's new ring merged with the others (then it is alone
  // first, and the merge brings 1 and 3 in `joined`) or after (then it joins the three).
  const int first = p[1]->WaitFor(IsMembership, kJoinBound, static_cast<size_t>(rejoined));
  ASSERT_GE(first, 0);
  const json& own_join = p[1]->events()[static_cast<size_t>(first)];
  EXPECT_NE(std::find(own_join["joined"].begin(), own_join["joined"].end(), 2),
            own_join["joined"].end())
      << "the first change after a rejoin lists the joiner: " << own_join.dump();
  const int view = p[1]->WaitFor(MembersAre({1, 2, 3}), kJoinBound, static_cast<size_t>(first));
  ASSERT_GE(view, 0);
  const uint64_t after = p[1]->events()[static_cast<size_t>(view)]["view_id"];
  EXPECT_GT(after, before) << "the rejoined view must be newer than the one before the restart";
  for (size_t i : {0u, 2u}) {
    const int at = p[i]->WaitFor(
        [after](const json& e) { return IsMembership(e) && e["view_id"] == after; }, kJoinBound);
    ASSERT_GE(at, 0) << "node " << p[i]->node() << " must see the rejoin with the same view id";
    EXPECT_EQ(p[i]->events()[static_cast<size_t>(at)]["joined"], json({2}));
    EXPECT_EQ(p[i]->events()[static_cast<size_t>(at)]["members"], json({1, 2, 3}));
  }
  for (auto& probe : p) ExpectIdsIncrease(*probe);
  ExpectSameViews(*p[0], *p[2], 3);  // 1,2,3 / 1,3 / 1,2,3 again
  std::cout << "node 2 rejoined "
            << (own_join["members"] == json({2}) ? "alone first" : "the three") << ", view "
            << before << " -> " << after << "\n";
}

TEST_F(CpgClusterTest, PartitionAndMergeGiveBothSidesTheSameView) {
  Probes p = StartGroup("partition");
  ASSERT_FALSE(HasFailure());
  size_t seen[3];
  for (size_t i = 0; i < 3; ++i) seen[i] = p[i]->events().size();
  CommandResult r = RunScript("isolate 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (size_t i : {0u, 1u}) {
    const int at = p[i]->WaitFor(MembersAre({1, 2}), kFailureBound, seen[i]);
    ASSERT_GE(at, 0) << "node " << p[i]->node() << " did not see node 3 cut off";
    EXPECT_EQ(p[i]->events()[static_cast<size_t>(at)]["reasons"], json({"node_down"}));
  }
  const int alone = p[2]->WaitFor(MembersAre({3}), kFailureBound, seen[2]);
  ASSERT_GE(alone, 0) << "node 3 did not see the others go";
  EXPECT_EQ(p[2]->events()[static_cast<size_t>(alone)]["left"], json({1, 2}));
  EXPECT_EQ(p[2]->events()[static_cast<size_t>(alone)]["reasons"],
            json({"node_down", "node_down"}));
  for (size_t i = 0; i < 3; ++i) seen[i] = p[i]->events().size();
  r = RunScript("heal 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  uint64_t merged[3] = {0, 0, 0};
  for (size_t i = 0; i < 3; ++i) {
    const int at = p[i]->WaitFor(MembersAre({1, 2, 3}), kJoinBound, seen[i]);
    ASSERT_GE(at, 0) << "node " << p[i]->node() << " did not see the merge";
    const json& m = p[i]->events()[static_cast<size_t>(at)];
    EXPECT_EQ(m["joined"], i < 2 ? json({3}) : json({1, 2})) << "each side sees the other join";
    EXPECT_EQ(Memberships(*p[i], seen[i]).size(), 1u) << "one change for the merge";
    merged[i] = m["view_id"];
  }
  EXPECT_EQ(merged[0], merged[1]);
  EXPECT_EQ(merged[0], merged[2]) << "both sides of the merge must agree on the view id";
  for (auto& probe : p) ExpectIdsIncrease(*probe);
}

// Quorum counts the ring (logd/CLUSTER.md): every change carries the ring's node count, and
// a ring change that leaves the group as it was (node 3 is in the ring, not in the group)
// still reaches the group, as a change naming nobody, when the count changed.
TEST_F(CpgClusterTest, RingChangesUnderAnUnchangedGroupCarryTheRingSize) {
  Probes p;
  for (int node = 1; node <= 2; ++node) {
    p.push_back(std::make_unique<ProbeProcess>(node, std::vector<std::string>{"--group", "ring"}));
  }
  for (auto& probe : p) {
    const int at = probe->WaitFor(MembersAre({1, 2}), kJoinBound);
    ASSERT_GE(at, 0) << "node " << probe->node() << " never saw both";
    EXPECT_EQ(probe->events()[static_cast<size_t>(at)]["ring_nodes"], 3);
  }
  size_t seen[2];
  for (size_t i = 0; i < 2; ++i) seen[i] = p[i]->events().size();
  CommandResult r = RunScript("isolate 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto ring_of = [](int nodes) {
    return [nodes](const json& e) {
      return IsMembership(e) && e["ring_nodes"] == nodes && e["joined"].empty() &&
             e["left"].empty() && e["members"] == json({1, 2});
    };
  };
  uint64_t ids[2] = {0, 0};
  for (size_t i = 0; i < 2; ++i) {
    const int at = p[i]->WaitFor(ring_of(2), kFailureBound, seen[i]);
    ASSERT_GE(at, 0) << "node " << p[i]->node() << " was not told the ring shrank to 2";
    ids[i] = p[i]->events()[static_cast<size_t>(at)]["view_id"];
  }
  EXPECT_EQ(ids[0], ids[1]) << "the same change on both members";
  for (size_t i = 0; i < 2; ++i) seen[i] = p[i]->events().size();
  r = RunScript("heal 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_GE(p[i]->WaitFor(ring_of(3), kJoinBound, seen[i]), 0)
        << "node " << p[i]->node() << " was not told the ring grew back to 3";
  }
  for (auto& probe : p) ExpectIdsIncrease(*probe);
}

// Floods of 64 KiB messages, 1024 in flight, overrun corosync's queue: Multicast says kBusy
// (never an error), the sender retries, and every message arrives once, in send order (the
// probe checks the order of its own deliveries and fails on a gap). Whether a flood hits
// the limit depends on timing, so up to three floods are sent until one does.
TEST_F(CpgClusterTest, FlowControlIsBusyAndRetried) {
  std::vector<std::unique_ptr<ProbeProcess>> others;
  for (int node : {2, 3}) {
    others.push_back(std::make_unique<ProbeProcess>(
        node, std::vector<std::string>{"--group", "flow", "--quiet"}));
    ASSERT_GE(others.back()->WaitFor(IsMembership, kJoinBound), 0);
  }
  uint64_t busy = 0;
  for (int attempt = 1; attempt <= 3 && busy == 0; ++attempt) {
    ProbeProcess flood(1, {"--group", "flow", "--pingpong", "3000", "--size", "65536", "--members",
                           "3", "--window", "1024", "--flood-only"});
    const int at = flood.WaitFor(
        [](const json& e) { return e["event"] == "pingpong" || e["event"] == "error"; },
        seconds(120));
    ASSERT_GE(at, 0) << "the flood did not finish";
    const json& r = flood.events()[static_cast<size_t>(at)];
    ASSERT_EQ(r["event"], "pingpong") << r.dump();
    busy = r["busy"].get<uint64_t>();
    std::cout << "flood " << attempt << ": 3000 x 64 KiB, 1024 in flight: " << busy
              << " multicasts refused with kBusy and retried, "
              << static_cast<int>(r["throughput_msgs_per_s"].get<double>()) << " msgs/s\n";
  }
  EXPECT_GT(busy, 0u) << "corosync never pushed back, so the kBusy path was not exercised";
}

// The benchmark reference: raw agreed multicast on this 3-node setup (printed, not asserted).
TEST_F(CpgClusterTest, AgreedRoundTripBenchmark) {
  std::vector<std::unique_ptr<ProbeProcess>> others;
  for (int node : {2, 3}) {
    others.push_back(std::make_unique<ProbeProcess>(
        node, std::vector<std::string>{"--group", "bench", "--quiet"}));
    ASSERT_GE(others.back()->WaitFor(IsMembership, kJoinBound), 0);
  }
  for (int size : {64, 1024}) {
    ProbeProcess ping(1, {"--group", "bench", "--pingpong", "3000", "--size", std::to_string(size),
                          "--members", "3", "--window", "64"});
    const int at =
        ping.WaitFor([](const json& e) { return e["event"] == "pingpong"; }, seconds(120));
    ASSERT_GE(at, 0) << "pingpong did not finish";
    const json& r = ping.events()[static_cast<size_t>(at)];
    EXPECT_EQ(r["members"], 3);
    std::cout << "CPG agreed multicast, 3 nodes, " << size << " B: round trip median "
              << r["rtt_median_us"].get<double>() << " us, p99 " << r["rtt_p99_us"].get<double>()
              << " us, " << static_cast<int>(r["rtt_msgs_per_s"].get<double>())
              << " msgs/s one at a time; "
              << static_cast<int>(r["throughput_msgs_per_s"].get<double>())
              << " msgs/s with 64 in flight (" << r["busy"] << " kBusy retries)\n";
  }
}

}  // namespace
}  // namespace clogd::cluster_test
