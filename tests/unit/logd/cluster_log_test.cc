// The cluster state machine over a minimal in-process cluster (one queue: total order and
// virtual synchrony by construction). The simulator covers timing, faults and many seeds;
// these tests pin the protocol's basic behaviour: joiners get the state, a departed
// node's marks become out of sync on every survivor, recovery is claimed once, FLUSH of a
// clustered-core log costs one message and of a clustered-disk log none.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "engine_fixture.h"
#include "fake_cluster.h"
#include "logd/log_engine.h"

namespace clogd::logd {
namespace {

using testing::AsS64;
using testing::CollectingSink;
using testing::CtrPayload;
using testing::Devices;
using testing::FakeCluster;
using testing::Regions;

constexpr uint64_t kRegions = 64;

class ClusterLogTest : public ::testing::TestWithParam<const char*> {
 protected:
  struct Node {
    std::unique_ptr<FakeCluster::Transport> transport;
    CollectingSink sink;
    std::unique_ptr<LogEngine> engine;
  };

  ClusterLogTest() : shared_(&devices_.Add("/dev/shared", 2 << 20)) {}

  std::string Args() const {
    return std::string(GetParam()) == "clustered-disk" ? "clustered-disk /dev/shared 1024"
                                                       : "clustered-core 1024";
  }

  // fence_grace_us > 0: the node's timers are kept in timers_[n] until FireTimers(n).
  Node& Start(NodeId n, uint32_t expected_nodes = 0, uint64_t fence_grace_us = 0) {
    auto& node = nodes_[n];
    node.transport = std::make_unique<FakeCluster::Transport>(cluster_, n);
    EngineOptions o;
    o.node_id = n;
    o.expected_nodes = expected_nodes;
    o.fence_grace_us = fence_grace_us;
    if (fence_grace_us > 0) {
      o.schedule = [this, n](uint64_t, std::function<void()> fn) {
        timers_[n].push_back(std::move(fn));
      };
    }
    if (with_legs_) {
      o.legs = LegHooksFor(n);
      // Suspend/resume of the local mirror: never done here (the kernel of a restarted
      // daemon stays unquiesced).
      o.rearm_kernel = [this](const std::string&, std::function<void()> done) {
        held_rearms_.push_back(std::move(done));
      };
    }
    node.engine =
        std::make_unique<LogEngine>(devices_.Opener(), o, node.sink, node.transport.get());
    Send(n, DM_ULOG_CTR, CtrPayload(std::to_string(kRegions * 1024) + " " + Args() + " nosync"));
    Send(n, DM_ULOG_RESUME);
    return node;
  }

  // Sends a request, runs the cluster until quiet, returns the request's reply.
  UlogReply Send(NodeId n, uint32_t type, std::vector<uint8_t> payload = {}) {
    auto& node = nodes_[n];
    UlogRequest r = testing::Req(type, 100 + n, "LVM-cluster", std::move(payload));
    node.engine->Submit(r);
    cluster_.Run();
    for (const auto& reply : node.sink.replies) {
      if (reply.seq == r.seq) return reply;
    }
    ADD_FAILURE() << "node " << n << ": no reply to " << RequestTypeName(type);
    return {};
  }

  const ClusterLog& Log(NodeId n) { return *nodes_[n].engine->FindCluster("LVM-cluster"); }

  std::pair<bool, uint64_t> Work(NodeId n) {
    UlogReply w = Send(n, DM_ULOG_GET_RESYNC_WORK);
    uint64_t r = 0;
    std::memcpy(&r, w.payload.data() + 8, 8);
    return {AsS64(w) == 1, r};
  }

  // Node n dies: its daemon is gone, the others see it leave.
  void CrashNode(NodeId n) {
    cluster_.Crash(n);
    nodes_[n].engine.reset();
    cluster_.Run();
  }

  void FireTimers(NodeId n) {
    auto due = std::move(timers_[n]);
    timers_[n].clear();
    for (auto& fn : due) fn();
    cluster_.Run();
  }

  // The mirror's legs on each node, as the leg hooks see and change them. A hook answers
  // from RunAll, later, as the daemon's device-mapper thread would.
  struct Mirror {
    LegHealth health{2, {}};
    bool fail_prepare = false;
    std::vector<LegChange> prepared;
    std::vector<bool> finished;  // commit?
  };
  LegHooks LegHooksFor(NodeId n) {
    LegHooks hooks;
    hooks.inspect = [this, n](const std::string&, std::function<void(Result<LegHealth>)> done) {
      hook_answers_.push_back([this, n, done] { done(mirrors_[n].health); });
    };
    hooks.prepare = [this, n](const std::string&, const LegChange& change,
                              std::function<void(Status)> done) {
      hook_answers_.push_back([this, n, change, done] {
        Mirror& m = mirrors_[n];
        if (m.fail_prepare) return done(IoError("reload ioctl failed"));
        m.prepared.push_back(change);
        done(Status::Ok());
      });
    };
    hooks.finish = [this, n](const std::string&, bool commit, std::function<void()> done) {
      hook_answers_.push_back([this, n, commit, done] {
        Mirror& m = mirrors_[n];
        m.finished.push_back(commit);
        if (commit && !m.prepared.empty()) {
          const LegChange& c = m.prepared.back();
          m.health.legs = c.legs - (c.remove ? 1 : 0) + (c.add_device.empty() ? 0 : 1);
          m.health.failed.clear();
        }
        done();
      });
    };
    return hooks;
  }
  // Runs the cluster and the hooks' answers until neither has anything left.
  void RunAll() {
    cluster_.Run();
    while (!hook_answers_.empty()) {
      auto fn = std::move(hook_answers_.front());
      hook_answers_.pop_front();
      fn();
      cluster_.Run();
    }
  }
  // Asks node n's log for a replacement and runs everything; returns its outcome.
  std::optional<Status> Replace(NodeId n, std::optional<uint32_t> leg, const std::string& dev) {
    std::optional<Status> outcome;
    nodes_[n].engine->FindCluster("LVM-cluster")->ReplaceLeg({leg, dev, 0}, [&](Status s) {
      outcome = s;
    });
    RunAll();
    return outcome;
  }

  bool with_legs_ = false;
  std::map<NodeId, Mirror> mirrors_;
  std::deque<std::function<void()>> hook_answers_;
  std::vector<std::function<void()>> held_rearms_;
  std::map<NodeId, std::vector<std::function<void()>>> timers_;
  Devices devices_;
  region::MemoryDevice* shared_;  // the clustered-disk log device
  FakeCluster cluster_;
  std::map<NodeId, Node> nodes_;
};

TEST_P(ClusterLogTest, JoinersGetTheStateAndEveryoneServes) {
  Start(1);
  Start(2);
  Start(3);
  for (NodeId n : {1u, 2u, 3u}) {
    EXPECT_TRUE(Log(n).ready()) << "node " << n;
    EXPECT_EQ(Log(n).state().server, 1u) << "the first member serves";
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), int64_t(kRegions));
  }
}

TEST_P(ClusterLogTest, DepartedNodesMarksAreResyncedOnceBySurvivors) {
  Start(1);
  Start(2);
  Start(3);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({5, 9})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_MARK_REGION, Regions({7})).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_FLUSH).error, 0);
  CrashNode(2);
  for (NodeId n : {1u, 3u}) {
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({5}))), 0) << "node " << n;
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({9}))), 0) << "node " << n;
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({7}))), 1) << "node " << n;
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), int64_t(kRegions - 2));
  }
  std::set<uint64_t> claimed;
  for (int i = 0; i < 4; ++i) {
    for (NodeId n : {1u, 3u}) {
      auto [has, r] = Work(n);
      if (!has) continue;
      EXPECT_TRUE(claimed.insert(r).second) << "region " << r << " handed out twice";
      std::vector<uint8_t> done = Regions({r});
      auto one = S64Payload(1);
      done.insert(done.end(), one.begin(), one.end());
      EXPECT_EQ(Send(n, DM_ULOG_SET_REGION_SYNC, done).error, 0);
    }
  }
  EXPECT_EQ(claimed, (std::set<uint64_t>{5, 9}));
  for (NodeId n : {1u, 3u}) EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), int64_t(kRegions));
}

// A node that left may only be cut off, its kernel still writing its DIRTY regions until
// its own daemon freezes it: nobody copies anything until every member's grace has run out.
TEST_P(ClusterLogTest, NothingIsCopiedUntilEveryMembersFenceGraceHasRunOut) {
  constexpr uint64_t kGraceUs = 3'000'000;
  Start(1, 0, kGraceUs);
  Start(2, 0, kGraceUs);
  Start(3, 0, kGraceUs);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({5})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  CrashNode(2);
  for (NodeId n : {1u, 3u}) {
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({5}))), 0) << "node " << n;
    EXPECT_FALSE(Work(n).first) << "node " << n << " got work within the grace";
  }
  FireTimers(1);  // node 1's grace is over, node 3's is not
  for (NodeId n : {1u, 3u}) {
    EXPECT_FALSE(Work(n).first) << "node " << n << " got work before node 3's grace ran out";
  }
  FireTimers(3);
  auto [has, region] = Work(1);
  EXPECT_TRUE(has);
  EXPECT_EQ(region, 5u);
}

TEST_P(ClusterLogTest, FlushCostsOneMessageForCoreAndNoneForDisk) {
  Start(1);
  Start(2);
  const uint64_t before = cluster_.multicasts();
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_CLEAR_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  const uint64_t per_flush = (cluster_.multicasts() - before) / 2;
  EXPECT_EQ(per_flush, std::string(GetParam()) == "clustered-disk" ? 0u : 1u);
}

TEST_P(ClusterLogTest, ARegionMarkedElsewhereIsNotClaimed) {
  Start(1);
  Start(2);
  Start(3);
  // Node 3 and node 2 both write region 4; node 2 dies; node 3 still has writes in flight.
  Send(2, DM_ULOG_MARK_REGION, Regions({4}));
  Send(2, DM_ULOG_FLUSH);
  Send(3, DM_ULOG_MARK_REGION, Regions({4}));
  Send(3, DM_ULOG_FLUSH);
  CrashNode(2);
  EXPECT_FALSE(Work(1).first) << "node 3 still has region 4 marked";
  Send(3, DM_ULOG_CLEAR_REGION, Regions({4}));
  Send(3, DM_ULOG_FLUSH);
  auto [has, r] = Work(1);
  EXPECT_TRUE(has);
  EXPECT_EQ(r, 4u);
}

TEST_P(ClusterLogTest, MalformedMessageIsRefusedWithoutStateChange) {
  Start(1);
  Start(2);
  const ClusterState before = Log(1).state();
  std::vector<uint8_t> bad = EncodeClusterMsg(2, ClaimMsg{3});
  bad[4] = 9;  // protocol version 9
  const_cast<ClusterLog&>(Log(1)).OnDeliver(2, bad);
  EXPECT_EQ(Log(1).stats().messages_refused, 1u);
  EXPECT_FALSE(Log(1).state().recovery.IsRecovering(3));
  EXPECT_EQ(Log(1).state().generation, before.generation);
}

TEST_P(ClusterLogTest, NoQuorumNoService) {
  // A node that comes up alone in a 3-node cluster (its ring not merged yet) must not
  // bootstrap and serve on its own: the kernel's RESUME waits.
  auto& node = nodes_[1];
  node.transport = std::make_unique<FakeCluster::Transport>(cluster_, 1);
  EngineOptions o;
  o.node_id = 1;
  o.expected_nodes = 3;
  node.engine = std::make_unique<LogEngine>(devices_.Opener(), o, node.sink, node.transport.get());
  node.engine->Submit(testing::Req(DM_ULOG_CTR, 101, "LVM-cluster",
                                   CtrPayload(std::to_string(kRegions * 1024) + " " + Args())));
  UlogRequest resume = testing::Req(DM_ULOG_RESUME, 101, "LVM-cluster");
  node.engine->Submit(resume);
  cluster_.Run();
  EXPECT_FALSE(Log(1).serving());
  for (const auto& r : node.sink.replies) EXPECT_NE(r.seq, resume.seq) << "RESUME answered alone";
  Start(2, 3);  // a majority: now the log is served, and the waiting RESUME answered
  EXPECT_TRUE(Log(1).serving());
  bool answered = false;
  for (const auto& r : node.sink.replies) answered |= r.seq == resume.seq && r.error == 0;
  EXPECT_TRUE(answered);
}

// Node 3 loses corosync (a live node keeping its state); while it is away node 2 dies and
// region 5, which node 2 had marked, goes out of sync and is resynced; then node 3 is back.
TEST_P(ClusterLogTest, ANodeThatLostTheClusterRejoinsWithADelta) {
  Start(1);
  Start(2);
  Start(3);
  // A first join takes a full checkpoint, or (clustered-disk) a delta against the device.
  const ClusterLogStats joined = Log(3).stats();
  EXPECT_EQ(joined.checkpoints_taken + joined.deltas_taken, 1u);
  Send(2, DM_ULOG_MARK_REGION, Regions({5}));
  Send(2, DM_ULOG_FLUSH);
  auto& log3 = const_cast<ClusterLog&>(Log(3));
  cluster_.Crash(3);
  log3.OnTransportLost();
  cluster_.Run();
  EXPECT_FALSE(Log(3).ready());
  CrashNode(2);
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({5}))), 0);
  auto [has, r] = Work(1);
  ASSERT_TRUE(has);
  ASSERT_EQ(r, 5u);
  std::vector<uint8_t> done = Regions({5});
  auto one = S64Payload(1);
  done.insert(done.end(), one.begin(), one.end());
  Send(1, DM_ULOG_SET_REGION_SYNC, done);
  EXPECT_EQ(Log(1).state().sync_version, 2u) << "out of sync, then in sync again";

  ASSERT_TRUE(nodes_[3].transport->Join("clogd:LVM-cluster", &log3).ok());
  cluster_.Run();
  EXPECT_TRUE(Log(3).ready());
  EXPECT_EQ(Log(3).stats().deltas_taken, joined.deltas_taken + 1);
  EXPECT_EQ(Log(3).stats().checkpoints_taken, joined.checkpoints_taken) << "no full checkpoint";
  EXPECT_EQ(Log(3).state().EncodeCheckpoint(), Log(1).state().EncodeCheckpoint());
  EXPECT_EQ(AsS64(Send(3, DM_ULOG_GET_SYNC_COUNT)), int64_t(kRegions));
}

TEST_P(ClusterLogTest, ADeltaThatDoesNotRebuildTheStateCostsAFullCheckpoint) {
  Start(1);
  Start(2);
  const ClusterLogStats joined = Log(2).stats();
  auto& log2 = const_cast<ClusterLog&>(Log(2));
  // Node 2's map diverges without its version changing (as a member cut off from the
  // others might): the delta it is sent rebuilds a different state.
  const_cast<ClusterState&>(log2.state()).log.SetInSync(7, false);
  cluster_.Crash(2);
  log2.OnTransportLost();
  cluster_.Run();
  ASSERT_TRUE(nodes_[2].transport->Join("clogd:LVM-cluster", &log2).ok());
  cluster_.Run();
  EXPECT_TRUE(Log(2).ready());
  EXPECT_EQ(Log(2).stats().deltas_refused, 1u);
  EXPECT_EQ(Log(2).stats().deltas_taken, joined.deltas_taken);
  EXPECT_EQ(Log(2).stats().checkpoints_taken, joined.checkpoints_taken + 1) << "it asked for one";
  EXPECT_EQ(Log(2).state().EncodeCheckpoint(), Log(1).state().EncodeCheckpoint());
  EXPECT_EQ(AsS64(Send(2, DM_ULOG_IN_SYNC, Regions({7}))), 1);
}

TEST_P(ClusterLogTest, ARestartedDaemonTakesADeltaFromTheLogDeviceOrAFullCheckpoint) {
  Start(1);
  Start(2);
  Start(3);
  Send(3, DM_ULOG_MARK_REGION, Regions({9}));
  Send(3, DM_ULOG_FLUSH);
  CrashNode(3);
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({9}))), 0);
  Start(3);
  EXPECT_TRUE(Log(3).ready());
  EXPECT_EQ(Log(3).state().EncodeCheckpoint(), Log(1).state().EncodeCheckpoint());
  EXPECT_EQ(AsS64(Send(3, DM_ULOG_IN_SYNC, Regions({9}))), 0);
  if (std::string(GetParam()) == "clustered-disk") {
    // Its map is on the shared device: only the difference travels.
    EXPECT_EQ(Log(3).stats().deltas_taken, 1u);
    EXPECT_EQ(Log(3).stats().checkpoints_taken, 0u);
  } else {
    // A core log's map lived only in the dead daemon's memory.
    EXPECT_EQ(Log(3).stats().deltas_taken, 0u);
    EXPECT_EQ(Log(3).stats().checkpoints_taken, 1u);
  }
}

// An operator replaces the failed leg of a 2-leg mirror: every node loads the table with
// the new leg last, the commit sets every region out of sync everywhere (the new leg holds
// nothing), and the regions are then copied, each once.
TEST_P(ClusterLogTest, AReplacedLegIsLoadedEverywhereThenEveryRegionIsCopiedToIt) {
  with_legs_ = true;
  for (NodeId n : {1u, 2u, 3u}) Start(n);
  RunAll();
  for (NodeId n : {1u, 2u, 3u}) mirrors_[n].health.failed = {0};
  auto outcome = Replace(2, 0, "/dev/disk/by-id/new-leg");
  ASSERT_TRUE(outcome.has_value()) << "no answer to the replacement";
  EXPECT_TRUE(outcome->ok()) << outcome->ToString();
  for (NodeId n : {1u, 2u, 3u}) {
    ASSERT_EQ(mirrors_[n].prepared.size(), 1u) << "node " << n;
    const LegChange& c = mirrors_[n].prepared[0];
    EXPECT_EQ(c.legs, 2u);
    EXPECT_EQ(c.remove, std::optional<uint32_t>(0));
    EXPECT_EQ(c.add_device, "/dev/disk/by-id/new-leg");
    EXPECT_EQ(mirrors_[n].finished, std::vector<bool>{true}) << "node " << n;
    EXPECT_EQ(Log(n).state().CurrentLegs(), 2u);
    EXPECT_EQ(Log(n).state().leg_epoch, 1u);
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), 0) << "node " << n;
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({7}))), 0) << "node " << n;
  }
  std::set<uint64_t> copied;
  for (bool any = true; any;) {
    any = false;
    for (NodeId n : {1u, 2u, 3u}) {
      auto [has, r] = Work(n);
      if (!has) continue;
      any = true;
      EXPECT_TRUE(copied.insert(r).second) << "region " << r << " handed out twice";
      std::vector<uint8_t> done = Regions({r});
      auto one = S64Payload(1);
      done.insert(done.end(), one.begin(), one.end());
      EXPECT_EQ(Send(n, DM_ULOG_SET_REGION_SYNC, done).error, 0);
    }
  }
  EXPECT_EQ(copied.size(), kRegions);
  for (NodeId n : {1u, 2u, 3u})
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), int64_t(kRegions));
}

// A daemon that restarts under a running kernel answers every out-of-sync region "in sync"
// until a suspend has quiesced its kernel; but not one the new leg has not got yet: an
// in-sync region is read from any leg (clog-sim --seed 245 --legs 3: stale reads).
TEST_P(ClusterLogTest, ARestartedDaemonNeverHidesARegionNotCopiedToTheNewLeg) {
  with_legs_ = true;
  for (NodeId n : {1u, 2u, 3u}) Start(n);
  RunAll();
  ASSERT_TRUE(Replace(1, std::nullopt, "/dev/sdz").value_or(Busy("no answer")).ok());
  auto one = S64Payload(1);
  std::vector<RegionNo> copied;
  for (int i = 0; i < 2; ++i) {
    auto [has, r] = Work(2);
    ASSERT_TRUE(has);
    copied.push_back(r);
    std::vector<uint8_t> set = Regions({r});
    set.insert(set.end(), one.begin(), one.end());
    EXPECT_EQ(Send(2, DM_ULOG_SET_REGION_SYNC, set).error, 0);
  }
  RegionNo uncopied = 0;
  while (uncopied == copied[0] || uncopied == copied[1]) ++uncopied;
  CrashNode(3);
  Start(3);  // its kernel ran on: it hides what is out of sync until a suspend
  RunAll();
  ASSERT_TRUE(Log(3).ready());
  EXPECT_EQ(Log(3).state().uncopied.count(), kRegions - 2);
  EXPECT_EQ(AsS64(Send(3, DM_ULOG_IN_SYNC, Regions({uncopied}))), 0) << "not on the new leg";
  EXPECT_EQ(AsS64(Send(3, DM_ULOG_IN_SYNC, Regions({copied[0]}))), 1);
  // Copied, then out of sync again (a node's marks merged): hidden as usual.
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({copied[1]})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  CrashNode(2);
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_GET_SYNC_COUNT)), 1) << "copied[1] went out of sync";
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({copied[1]}))), 1) << "hidden until a suspend";
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({uncopied}))), 0);
}

TEST_P(ClusterLogTest, AReplacementOneNodeCannotLoadIsAbortedEverywhere) {
  with_legs_ = true;
  for (NodeId n : {1u, 2u, 3u}) Start(n);
  RunAll();
  mirrors_[3].fail_prepare = true;
  auto outcome = Replace(1, std::nullopt, "/dev/sdz");
  ASSERT_TRUE(outcome.has_value());
  ASSERT_FALSE(outcome->ok());
  EXPECT_NE(outcome->message().find("node 3 could not load"), std::string::npos)
      << outcome->ToString();
  for (NodeId n : {1u, 2u}) EXPECT_EQ(mirrors_[n].finished, std::vector<bool>{false});
  for (NodeId n : {1u, 2u, 3u}) {
    EXPECT_EQ(Log(n).state().leg_epoch, 0u);
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), int64_t(kRegions)) << "node " << n;
  }
  // A leg that has not failed is replaced only in a mirror in sync (see OnLegReplace).
  mirrors_[3].fail_prepare = false;
  EXPECT_EQ(Send(3, DM_ULOG_MARK_REGION, Regions({6})).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_FLUSH).error, 0);
  CrashNode(3);
  auto unsynced = Replace(1, std::nullopt, "/dev/sdz");
  ASSERT_TRUE(unsynced.has_value());
  EXPECT_NE(unsynced->message().find("1 regions are not in sync"), std::string::npos)
      << unsynced->ToString();
  // Bad input is refused before anything is proposed.
  auto bad = Replace(1, 5, "/dev/sdz");
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->message(), "the mirror has 2 legs (0 to 1): there is no leg 5");
  EXPECT_EQ(mirrors_[1].prepared.size(), 1u);
}

TEST(ClusterMsgTest, DeltaAndNeedCheckpointRoundTripAndBadBaseIsRefused) {
  DeltaMsg d;
  d.view_id = 7;
  d.for_node = 3;
  d.base = DeltaMsg::Base::kPersisted;
  d.base_version = 11;
  d.checkpoint_crc = 0xDEADBEEF;
  d.now_in_sync = {1, 2};
  d.now_out_of_sync = {9};
  d.state = {1, 2, 3};
  auto back = DecodeClusterMsg(EncodeClusterMsg(1, d));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const auto* got = std::get_if<DeltaMsg>(&back->body);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->for_node, 3u);
  EXPECT_EQ(got->base, DeltaMsg::Base::kPersisted);
  EXPECT_EQ(got->base_version, 11u);
  EXPECT_EQ(got->checkpoint_crc, 0xDEADBEEFu);
  EXPECT_EQ(got->now_in_sync, (std::vector<RegionNo>{1, 2}));
  EXPECT_EQ(got->now_out_of_sync, (std::vector<RegionNo>{9}));
  EXPECT_EQ(got->state, (std::vector<uint8_t>{1, 2, 3}));
  auto need = DecodeClusterMsg(EncodeClusterMsg(2, NeedCheckpointMsg{7}));
  ASSERT_TRUE(need.ok());
  EXPECT_EQ(std::get<NeedCheckpointMsg>(need->body).view_id, 7u);

  d.base = static_cast<DeltaMsg::Base>(5);
  auto bad = DecodeClusterMsg(EncodeClusterMsg(1, d));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("unknown base kind 5"), std::string::npos)
      << bad.status().ToString();
}

TEST(ClusterMsgTest, LegRemovalAndVoteRoundTripAndABadLegIsRefused) {
  auto removal = DecodeClusterMsg(EncodeClusterMsg(2, LegRemovalMsg{(2ull << 32) | 5, 1, 3}));
  ASSERT_TRUE(removal.ok()) << removal.status().ToString();
  EXPECT_STREQ(ClusterMsgName(removal->body), "LEG_REMOVAL");
  const auto& r = std::get<LegRemovalMsg>(removal->body);
  EXPECT_EQ(r.tx, (2ull << 32) | 5);
  EXPECT_EQ(r.leg, 1u);
  EXPECT_EQ(r.legs, 3u);
  auto vote = DecodeClusterMsg(EncodeClusterMsg(3, LegVoteMsg{42, true}));
  ASSERT_TRUE(vote.ok());
  EXPECT_EQ(std::get<LegVoteMsg>(vote->body).tx, 42u);
  EXPECT_TRUE(std::get<LegVoteMsg>(vote->body).ok);

  auto bad = DecodeClusterMsg(EncodeClusterMsg(2, LegRemovalMsg{1, 3, 3}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("LEG_REMOVAL of leg 3 of 3"), std::string::npos)
      << bad.status().ToString();
}

TEST(ClusterMsgTest, LegReplaceRoundTripsAndAnEmptyDeviceIsRefused) {
  LegReplaceMsg m;
  m.tx = 9;
  m.epoch = 2;
  m.leg = 0;
  m.legs = 2;
  m.leg_failed = true;
  m.offset = 2048;
  m.device = "/dev/disk/by-id/wwn-0x5000";
  auto back = DecodeClusterMsg(EncodeClusterMsg(1, m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_STREQ(ClusterMsgName(back->body), "LEG_REPLACE");
  const auto& r = std::get<LegReplaceMsg>(back->body);
  EXPECT_EQ(r.tx, 9u);
  EXPECT_EQ(r.epoch, 2u);
  EXPECT_EQ(r.leg, 0u);
  EXPECT_EQ(r.offset, 2048u);
  EXPECT_TRUE(r.leg_failed);
  EXPECT_EQ(r.device, m.device);
  m.device.clear();
  auto bad = DecodeClusterMsg(EncodeClusterMsg(1, m));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("LEG_REPLACE of leg 0 of 2"), std::string::npos);
}

TEST(ClusterStateTest, CheckpointCarriesTheCommittedLegRemovals) {
  ClusterState s;
  s.log = region::LogState(16, 1024);
  s.first_legs = 4;
  s.removed_legs = {3, 0};
  s.leg_epoch = 7;
  s.uncopied = region::RegionBitmap(16);
  for (RegionNo r : {2u, 3u, 4u, 9u}) s.uncopied.Set(r);
  EXPECT_EQ(s.CurrentLegs(), 2u);
  auto back = ClusterState::DecodeCheckpoint(s.EncodeCheckpoint(), 16, 1024);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->first_legs, 4u);
  EXPECT_EQ(back->removed_legs, (std::vector<uint32_t>{3, 0}));
  EXPECT_EQ(back->leg_epoch, 7u);
  EXPECT_EQ(back->uncopied.count(), 4u);
  EXPECT_TRUE(back->Uncopied(4) && back->Uncopied(9) && !back->Uncopied(5));

  s.removed_legs = {3, 0, 1};  // would leave one leg: no removal commits that
  auto bad = ClusterState::DecodeCheckpoint(s.EncodeCheckpoint(), 16, 1024);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("3 legs removed of 4"), std::string::npos)
      << bad.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Types, ClusterLogTest,
                         ::testing::Values("clustered-core", "clustered-disk"));

using ClusterDiskLogTest = ClusterLogTest;

// Node 2's slot write fails at FLUSH: it serves on (no -EIO to the kernel) with its marks
// replicated like a core log's, the others stop trusting the device's in-sync map, and
// when node 2 dies its replicated marks are resynced.
TEST_P(ClusterDiskLogTest, AFailedLogDeviceServesOnWithTheMarksReplicated) {
  Start(1);
  Start(2);
  Start(3);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({4})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);  // in its slot
  shared_->FailNextWrites(1);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({5})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0) << "a failed slot write is not the kernel's error";
  EXPECT_TRUE(Log(2).device_failed());
  for (NodeId n : {1u, 2u, 3u}) {
    EXPECT_TRUE(Log(n).state().device_suspect) << "node " << n;
    EXPECT_TRUE(Log(n).state().log.IsMarkedBy(2, 4)) << "node " << n;
    EXPECT_TRUE(Log(n).state().log.IsMarkedBy(2, 5)) << "node " << n;
  }
  // The server wrote the device's map as all out of sync: a bootstrap resyncs everything.
  const auto& disk = shared_->durable();
  for (size_t i = region::kDmLogBitmapOffset; i < region::kDmLogBitmapOffset + kRegions / 8; ++i) {
    EXPECT_EQ(disk[i], 0) << "bitmap byte " << i - region::kDmLogBitmapOffset;
  }
  // Later flushes of node 2 go through the cluster.
  EXPECT_EQ(Send(2, DM_ULOG_CLEAR_REGION, Regions({4})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({6})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  EXPECT_FALSE(Log(1).state().log.IsMarkedBy(2, 4));
  EXPECT_TRUE(Log(1).state().log.IsMarkedBy(2, 6));
  CrashNode(2);
  for (NodeId n : {1u, 3u}) {
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({5}))), 0) << "node " << n;
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({6}))), 0) << "node " << n;
  }
}

// The log server's device fails: a departed member's slot cannot be read, so every
// region goes out of sync (a full resync), and the cluster serves on.
TEST_P(ClusterDiskLogTest, AServerThatCannotReadADepartedSlotResyncsEverything) {
  Start(1);
  Start(2);
  Start(3);
  Send(3, DM_ULOG_MARK_REGION, Regions({9}));
  Send(3, DM_ULOG_FLUSH);
  shared_->FailNextWrites(1);
  Send(1, DM_ULOG_MARK_REGION, Regions({2}));
  EXPECT_EQ(Send(1, DM_ULOG_FLUSH).error, 0);
  ASSERT_TRUE(Log(1).device_failed());
  CrashNode(3);
  for (NodeId n : {1u, 2u}) {
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), 0) << "node " << n;
    EXPECT_TRUE(Log(n).serving()) << "node " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Disk, ClusterDiskLogTest, ::testing::Values("clustered-disk"));

}  // namespace
}  // namespace clogd::logd
