// The cluster-wide leg changes at the state machine level: a failed leg removed from every
// node's table, a new leg put in (replace-leg, add-leg), and their messages and checkpoint.
#include <gtest/gtest.h>

#include "cluster_log_fixture.h"

namespace clogd::logd {
namespace {

using testing::AsS64;
using testing::ClusterLogTest;
using testing::kRegions;
using testing::Regions;

using ClusterLegTest = ClusterLogTest;

// A write fails on a leg that failed. Its region goes out of sync, hidden from every kernel
// (answered "in sync") until a suspend has quiesced it. Here that suspend is the leg's
// removal, on every node: a rearm before it would reset the kernel's in-sync hint to 0,
// and the reload's suspend would then wait out dm-log-userspace's throttle of
// IS_REMOTE_RECOVERING (scripts/faults leg-fails: 489 ms and 293 ms suspends, on the node
// that saw the leg fail and on one that rearmed before its own write failed).
TEST_P(ClusterLegTest, AFailedLegsRemovalIsTheSuspendThatRevealsItsFailedWrite) {
  with_legs_ = true;
  with_timers_ = true;
  kernels_suspend_ = true;
  for (NodeId n : {1u, 2u, 3u}) {
    mirrors_[n].health = {3, {}};
    Start(n);
  }
  RunAll();
  std::map<NodeId, int> before = rearms_;
  mirrors_[1].health.failed = {2};
  EXPECT_EQ(SetRegionSync(1, 5, false).error, 0);
  for (NodeId n : {1u, 2u, 3u}) {
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({5}))), 1) << "hidden until a suspend";
  }
  RunAll();
  for (NodeId n : {1u, 2u, 3u}) {
    ASSERT_EQ(mirrors_[n].finished, std::vector<bool>{true}) << "node " << n;
    EXPECT_EQ(Log(n).state().CurrentLegs(), 2u) << "node " << n;
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({5}))), 0) << "node " << n;
    EXPECT_EQ(rearms_[n], before[n]) << "node " << n << " rearmed before the leg's removal";
  }
}

// No removal follows (a 2-leg mirror keeps its legs; its writes stay held until a
// replacement): the other nodes reveal the region with a rearm once they have waited
// for a proposal long enough. The node whose leg failed leaves it to the replacement.
TEST_P(ClusterLegTest, AFailedWriteNoRemovalFollowsIsRevealedByARearm) {
  with_legs_ = true;
  with_timers_ = true;
  kernels_suspend_ = true;
  for (NodeId n : {1u, 2u, 3u}) Start(n);
  RunAll();
  std::map<NodeId, int> before = rearms_;
  mirrors_[1].health.failed = {1};
  EXPECT_EQ(SetRegionSync(1, 5, false).error, 0);
  RunAll();
  for (NodeId n : {2u, 3u}) {
    EXPECT_EQ(rearms_[n], before[n]) << "node " << n << " did not wait for a proposal";
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({5}))), 1) << "node " << n;
    FireTimers(n);
    RunAll();
    EXPECT_EQ(rearms_[n], before[n] + 1) << "node " << n;
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_IN_SYNC, Regions({5}))), 0) << "node " << n;
  }
  EXPECT_EQ(rearms_[1], before[1]);
  EXPECT_TRUE(mirrors_[1].prepared.empty()) << "a 2-leg mirror lost a leg";
}

// An operator replaces the failed leg of a 2-leg mirror: every node loads the table with
// the new leg last, the commit sets every region out of sync everywhere (the new leg holds
// nothing), and the regions are then copied, each once.
TEST_P(ClusterLegTest, AReplacedLegIsLoadedEverywhereThenEveryRegionIsCopiedToIt) {
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
      EXPECT_EQ(SetRegionSync(n, r, true).error, 0);
    }
  }
  EXPECT_EQ(copied.size(), kRegions);
  for (NodeId n : {1u, 2u, 3u})
    EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), int64_t(kRegions));
}

// A look at the legs that read the old table (it ran on the device-mapper thread between
// the reload's prepare and its finish) is stale once the replacement commits: it saw the
// failed leg, and the new table has the same leg count. Taken as news, it said "no copy can
// succeed", so IS_REMOTE_RECOVERING let the new table's writes through unmarked to the first
// leg (NOSYNC in its region hash for good) while other nodes copied their regions: the
// legs differed after the resync (scripts/faults leg-replaced, CI of stop 17).
TEST_P(ClusterLegTest, ALegCheckOfTheOldTableDoesNotOutliveAReplacement) {
  with_legs_ = true;
  kernels_suspend_ = true;
  for (NodeId n : {1u, 2u, 3u}) Start(n);
  RunAll();
  for (NodeId n : {1u, 2u, 3u}) mirrors_[n].health.failed = {1};
  EXPECT_EQ(SetRegionSync(3, 5, false).error, 0);
  RunAll();
  std::optional<Status> outcome;
  nodes_[1].engine->FindCluster("LVM-cluster")->ReplaceLeg({1, "/dev/sdz", 0}, [&](Status s) {
    outcome = s;
  });
  auto step = [this] {  // the next hook's answer; false when there is none
    if (hook_answers_.empty()) return false;
    auto fn = std::move(hook_answers_.front());
    hook_answers_.pop_front();
    fn();
    cluster_.Run();
    return true;
  };
  while (mirrors_[1].prepared.empty() || mirrors_[2].prepared.empty()) {
    ASSERT_TRUE(step()) << "nodes 1 and 2 never prepared";
  }
  ASSERT_TRUE(mirrors_[3].prepared.empty());
  // Another write fails on node 3 as it suspends for the reload: it looks at its legs on
  // the device-mapper thread after the prepare, and before the finish the commit queues.
  EXPECT_EQ(SetRegionSync(3, 9, false).error, 0);
  while (mirrors_[3].finished.empty()) ASSERT_TRUE(step()) << "node 3 never finished";
  ASSERT_TRUE(outcome.has_value() && outcome->ok());
  ASSERT_EQ(mirrors_[3].finished, std::vector<bool>{true});
  EXPECT_EQ(AsS64(Send(3, DM_ULOG_IS_REMOTE_RECOVERING, Regions({40}))), 1)
      << "the new table's write to a region not copied yet went through unmarked";
  RunAll();
  EXPECT_EQ(AsS64(Send(3, DM_ULOG_IS_REMOTE_RECOVERING, Regions({40}))), 1);
}

// A daemon that restarts under a running kernel answers every out-of-sync region "in sync"
// until a suspend has quiesced its kernel; but not one the new leg has not got yet: an
// in-sync region is read from any leg (clog-sim --seed 245 --legs 3: stale reads).
TEST_P(ClusterLegTest, ARestartedDaemonNeverHidesARegionNotCopiedToTheNewLeg) {
  with_legs_ = true;
  for (NodeId n : {1u, 2u, 3u}) Start(n);
  RunAll();
  ASSERT_TRUE(Replace(1, std::nullopt, "/dev/sdz").value_or(Busy("no answer")).ok());
  std::vector<RegionNo> copied;
  for (int i = 0; i < 2; ++i) {
    auto [has, r] = Work(2);
    ASSERT_TRUE(has);
    copied.push_back(r);
    EXPECT_EQ(SetRegionSync(2, r, true).error, 0);
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

TEST_P(ClusterLegTest, AReplacementOneNodeCannotLoadIsAbortedEverywhere) {
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

INSTANTIATE_TEST_SUITE_P(Types, ClusterLegTest,
                         ::testing::Values("clustered-core", "clustered-disk"));

}  // namespace
}  // namespace clogd::logd
