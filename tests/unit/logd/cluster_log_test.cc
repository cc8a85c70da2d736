// The cluster state machine over a minimal in-process cluster (one queue: total order and
// virtual synchrony by construction). The simulator covers timing, faults and many seeds;
// these tests pin the protocol's basic behaviour: joiners get the state, a departed
// node's marks become out of sync on every survivor, recovery is claimed once, FLUSH of a
// clustered-core log costs one message and of a clustered-disk log none.
#include <gtest/gtest.h>

#include <map>
#include <tuple>

#include "cluster_log_fixture.h"

namespace clogd::logd {
namespace {

using testing::AsS64;
using testing::ClusterLogTest;
using testing::CtrPayload;
using testing::FakeCluster;
using testing::kRegions;
using testing::Regions;

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
      EXPECT_EQ(SetRegionSync(n, r, true).error, 0);
    }
  }
  EXPECT_EQ(claimed, (std::set<uint64_t>{5, 9}));
  for (NodeId n : {1u, 3u}) EXPECT_EQ(AsS64(Send(n, DM_ULOG_GET_SYNC_COUNT)), int64_t(kRegions));
}

// After a departure each member rearms its kernel (a noflush suspend) to reveal the
// departed node's regions, hidden until then. A write arriving during such a suspend may
// have to wait for a copy of a region the kernel sees out of sync, and the suspend waits
// for that write: if every member suspended at once, nobody would copy (clog-sim --seed
// 2107 --legs 3). So the log server, node 1, puts its rearm off while its kernel sees a
// region out of sync, and does it once that region is copied.
TEST_P(ClusterLogTest, TheLogServerGoesOnCopyingWhileTheOthersRevealADeparture) {
  with_legs_ = true;
  kernels_suspend_ = true;
  for (NodeId n : {1u, 2u, 3u, 4u, 5u}) Start(n);
  RunAll();
  EXPECT_EQ(Send(5, DM_ULOG_MARK_REGION, Regions({4})).error, 0);
  EXPECT_EQ(Send(5, DM_ULOG_FLUSH).error, 0);
  CrashNode(5);
  RunAll();  // every member reveals region 4
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({4}))), 0);
  EXPECT_EQ(Send(4, DM_ULOG_MARK_REGION, Regions({9})).error, 0);
  EXPECT_EQ(Send(4, DM_ULOG_FLUSH).error, 0);
  std::map<NodeId, int> before = rearms_;
  CrashNode(4);
  RunAll();
  EXPECT_EQ(rearms_[2], before[2] + 1);
  EXPECT_EQ(rearms_[3], before[3] + 1);
  EXPECT_EQ(rearms_[1], before[1]) << "the server suspended while region 4 was to be copied";
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({9}))), 1) << "hidden until its rearm";
  for (auto [has, r] = Work(1); has; std::tie(has, r) = Work(1)) {
    EXPECT_EQ(SetRegionSync(1, r, true).error, 0);
    RunAll();
  }
  EXPECT_EQ(rearms_[1], before[1] + 1) << "the server's kernel sees nothing out of sync now";
}

// A daemon dies while its kernel runs on: the others keep its marks, and the daemon that
// restarts adopts them, until a rearm has shown which its kernel no longer holds. A mark
// the kernel does not hold shows earlier: dm-raid1 asks IN_SYNC only for a region it
// holds no write to. Released then, it no longer keeps the region from being copied: the
// rearm could be waiting for a write to that very region, which waits for its copy
// (clog-sim --seed 3258 --legs 3).
TEST_P(ClusterLogTest, AnAdoptedMarkIsReleasedWhenTheKernelAsksWhetherItsRegionIsInSync) {
  with_legs_ = true;  // the restarted daemon's rearm is never done
  for (NodeId n : {1u, 2u, 3u}) Start(n);
  RunAll();
  EXPECT_EQ(Send(3, DM_ULOG_MARK_REGION, Regions({9})).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_FLUSH).error, 0);
  cluster_.Crash(3, Membership::LeaveReason::kProcessDown);
  nodes_[3].engine.reset();
  cluster_.Run();
  Start(3);
  RunAll();
  ASSERT_TRUE(Log(3).ready());
  EXPECT_EQ(SetRegionSync(1, 9, false).error, 0);  // a write to region 9 fails on node 1
  RunAll();
  EXPECT_FALSE(Work(1).first) << "region 9 is still marked by node 3";
  EXPECT_EQ(AsS64(Send(3, DM_ULOG_IN_SYNC, Regions({9}))), 1)
      << "hidden from a restarted daemon's kernel";
  RunAll();
  auto [has, r] = Work(1);
  EXPECT_TRUE(has);
  EXPECT_EQ(r, 9u);
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

// Quorum counts the corosync ring, not the log's group. A mirror deactivated on two of
// three nodes goes on being served on the third, which can then be deactivated too: its
// last FLUSH and suspend are answered. (Counting the group, 1 of 3 was no quorum and the
// last deactivation hung.)
TEST_P(ClusterLogTest, DeactivatingOnAMajorityLeavesTheLastNodeServing) {
  cluster_.SetRing(3);
  for (NodeId n : {1u, 2u, 3u}) Start(n, 3);
  EXPECT_EQ(Send(3, DM_ULOG_MARK_REGION, Regions({5})).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_FLUSH).error, 0);
  for (NodeId n : {1u, 2u}) {
    EXPECT_EQ(Send(n, DM_ULOG_PRESUSPEND).error, 0) << "node " << n;
    EXPECT_EQ(Send(n, DM_ULOG_POSTSUSPEND).error, 0) << "node " << n;
    EXPECT_EQ(Send(n, DM_ULOG_DTR).error, 0) << "node " << n;
  }
  EXPECT_TRUE(Log(3).serving());
  EXPECT_EQ(Log(3).state().members, std::vector<NodeId>{3});
  EXPECT_EQ(Log(3).state().server, 3u);
  EXPECT_EQ(Send(3, DM_ULOG_CLEAR_REGION, Regions({5})).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_FLUSH).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_PRESUSPEND).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_POSTSUSPEND).error, 0);
  EXPECT_EQ(Send(3, DM_ULOG_DTR).error, 0);
}

// A mirror active on one node of three is served while that node's ring holds a majority.
// When the ring loses it (a partition cut the node off: nobody left the log's group,
// corosync says only that the ring shrank) requests wait; when the ring is whole again the
// node serves, and the request that waited is answered.
TEST_P(ClusterLogTest, ALoneMemberServesWhileItsRingHoldsAMajority) {
  cluster_.SetRing(3);
  Start(1, 3);
  EXPECT_TRUE(Log(1).serving()) << "a log active on a minority of a whole ring is served";
  cluster_.SetRing(1);
  cluster_.Run();
  EXPECT_FALSE(Log(1).serving());
  UlogRequest count = testing::Req(DM_ULOG_GET_SYNC_COUNT, 101, "LVM-cluster");
  nodes_[1].engine->Submit(count);
  cluster_.Run();
  auto answered = [&] {
    for (const auto& r : nodes_[1].sink.replies) {
      if (r.seq == count.seq) return true;
    }
    return false;
  };
  EXPECT_FALSE(answered()) << "answered from a ring of 1 of 3 nodes";
  cluster_.SetRing(3);
  cluster_.Run();
  EXPECT_TRUE(Log(1).serving());
  EXPECT_TRUE(answered());
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
  ClusterLog& log3 = LoseTransport(3);
  EXPECT_FALSE(Log(3).ready());
  CrashNode(2);
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({5}))), 0);
  auto [has, r] = Work(1);
  ASSERT_TRUE(has);
  ASSERT_EQ(r, 5u);
  SetRegionSync(1, 5, true);
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
  // Node 2's map diverges without its version changing (as a member cut off from the
  // others might): the delta it is sent rebuilds a different state.
  const_cast<ClusterState&>(Log(2).state()).log.SetInSync(7, false);
  ClusterLog& log2 = LoseTransport(2);
  ASSERT_TRUE(nodes_[2].transport->Join("clogd:LVM-cluster", &log2).ok());
  cluster_.Run();
  EXPECT_TRUE(Log(2).ready());
  EXPECT_EQ(Log(2).stats().deltas_refused, 1u);
  EXPECT_EQ(Log(2).stats().deltas_taken, joined.deltas_taken);
  EXPECT_EQ(Log(2).stats().checkpoints_taken, joined.checkpoints_taken + 1) << "it asked for one";
  EXPECT_EQ(Log(2).state().EncodeCheckpoint(), Log(1).state().EncodeCheckpoint());
  EXPECT_EQ(AsS64(Send(2, DM_ULOG_IN_SYNC, Regions({7}))), 1);
}

// A joiner refuses its delta and asks for a full checkpoint, but the membership changes
// (another node joins) before its request is delivered: the request names the old view and
// nobody answers it. The new view's round sends it a delta again, which it must not ignore
// as if its request still stood (a clean-clone CI run of faults_cut-off: node 1 never got
// ready, its RESUME held for good).
TEST_P(ClusterLogTest, ACheckpointRequestOvertakenByAMembershipChangeIsMadeAgain) {
  Start(1);
  Start(2);
  const_cast<ClusterState&>(Log(2).state()).log.SetInSync(7, false);
  ClusterLog& log2 = LoseTransport(2);
  ASSERT_TRUE(nodes_[2].transport->Join("clogd:LVM-cluster", &log2).ok());
  while (Log(2).stats().deltas_refused == 0 && cluster_.RunOne()) {
  }
  ASSERT_EQ(Log(2).stats().deltas_refused, 1u);
  auto request = cluster_.TakeLast();  // its NeedCheckpoint, still on its way
  Start(3);                            // a new view first
  cluster_.Requeue(std::move(request));
  cluster_.Run();
  EXPECT_TRUE(Log(2).ready()) << "node 2 waits for an answer to a request nobody will answer";
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

// A clustered-disk clear lingers like a clustered-core one: the slot is not written for
// it, a region marked again within the linger time needs no slot write, and a tick writes
// the slot without the clears older than a tick. A node that dies meanwhile has its
// lingering regions resynced (a copy, no data at risk); one cleared two ticks ago is not.
TEST_P(ClusterDiskLogTest, AClearLingersSoAHotRegionIsMarkedAgainWithoutASlotWrite) {
  with_timers_ = true;
  Start(1);
  Start(2);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({3, 5})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  const uint64_t before = shared_->writes();
  EXPECT_EQ(Send(2, DM_ULOG_CLEAR_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  EXPECT_EQ(shared_->writes(), before) << "cleared and marked again within the linger time";
  EXPECT_EQ(Send(2, DM_ULOG_CLEAR_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  FireTimers(2);
  EXPECT_EQ(shared_->writes(), before) << "a clear younger than a tick was written";
  EXPECT_EQ(Send(2, DM_ULOG_CLEAR_REGION, Regions({5})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  FireTimers(2);
  EXPECT_EQ(shared_->writes(), before + 1) << "the older clear was never written";
  CrashNode(2);  // region 5 lingers in node 2's slot, region 3 left it a tick ago
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({5}))), 0) << "a lingering region is resynced";
  EXPECT_EQ(AsS64(Send(1, DM_ULOG_IN_SYNC, Regions({3}))), 1) << "a written clear is resynced";
}

// A member's CTR writes nothing to a blank log device: the node the cluster chooses to
// bootstrap the log formats it. A CTR that formatted could run beside another node's
// activation that had bootstrapped and served the log already (its probe before, its
// format after): it freed that node's slot and made part 1 a valid dm-log again under
// it, and the server's next in-sync map write was refused, its device taken for failed
// (the 3-VM fault runs; every region of a node that left was then resynced).
TEST_P(ClusterDiskLogTest, OnlyTheNodeThatBootstrapsTheLogWritesABlankDevice) {
  Start(1, 3, 0, false);  // its CTR; alone, no quorum: nothing is bootstrapped
  ASSERT_FALSE(Log(1).serving());
  EXPECT_EQ(shared_->writes(), 0u) << "node 1's CTR wrote the log device";
  Start(2, 3);
  for (NodeId n : {1u, 2u}) {
    ASSERT_TRUE(Log(n).serving()) << "node " << n;
    EXPECT_EQ(Send(n, DM_ULOG_FLUSH, Regions({10 + n})).error, 0) << "node " << n;
  }
  Start(3, 3);
  EXPECT_EQ(Send(3, DM_ULOG_FLUSH, Regions({13})).error, 0);
  for (NodeId n : {1u, 2u, 3u}) EXPECT_FALSE(Log(n).device_failed()) << "node " << n;
  region::OpenParams p;
  p.nr_regions = kRegions;
  p.region_size = 1024;
  p.uuid = "LVM-cluster";
  p.may_write = false;
  auto disk = region::LogDevice::Open(*shared_, p);
  ASSERT_TRUE(disk.ok()) << disk.status().ToString();
  EXPECT_EQ(disk->outcome(), region::OpenOutcome::kOpenedCluster);
  std::map<NodeId, std::vector<RegionNo>> slots;
  for (const auto& slot : disk->loaded_slots()) {
    if (slot.node_id != 0) slots[slot.node_id] = slot.regions;
  }
  EXPECT_EQ(slots, (std::map<NodeId, std::vector<RegionNo>>{{1, {11}}, {2, {12}}, {3, {13}}}));
}

INSTANTIATE_TEST_SUITE_P(Disk, ClusterDiskLogTest, ::testing::Values("clustered-disk"));

using ClusterCoreLogTest = ClusterLogTest;

// A clear lingers (ClusterLog::young_clears_): a region cleared and marked again before the
// next linger tick costs no message, the others holding it marked all along; a clear that
// stays goes out at the second tick after it, without a FLUSH; a region marked after that
// costs a message again.
TEST_P(ClusterCoreLogTest, AClearLingersSoAHotRegionIsMarkedAgainWithoutAMessage) {
  with_timers_ = true;
  Start(1);
  Start(2);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  uint64_t before = cluster_.multicasts();
  EXPECT_EQ(Send(2, DM_ULOG_CLEAR_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  EXPECT_EQ(cluster_.multicasts(), before) << "cleared and marked again within the linger time";
  EXPECT_TRUE(Log(1).state().log.IsMarkedBy(2, 3));
  EXPECT_EQ(Send(2, DM_ULOG_CLEAR_REGION, Regions({3})).error, 0);
  FireTimers(2);
  EXPECT_TRUE(Log(1).state().log.IsMarkedBy(2, 3)) << "a clear younger than a tick went out";
  FireTimers(2);
  EXPECT_FALSE(Log(1).state().log.IsMarkedBy(2, 3)) << "the clear never went out";
  before = cluster_.multicasts();
  EXPECT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({3})).error, 0);
  EXPECT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  EXPECT_EQ(cluster_.multicasts(), before + 1) << "a region no longer marked costs a message";
  EXPECT_TRUE(Log(1).state().log.IsMarkedBy(2, 3));
}

INSTANTIATE_TEST_SUITE_P(Core, ClusterCoreLogTest, ::testing::Values("clustered-core"));

}  // namespace
}  // namespace clogd::logd