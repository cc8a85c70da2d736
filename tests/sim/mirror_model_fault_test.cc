// MirrorModel under faults, against the fake log: the kernel's 15 s re-send, -EAGAIN,
// the -ESRCH CTR/RESUME dance, the IS_REMOTE_RECOVERING throttle and requeue, leg failure
// with held writes, crash, stop, hint re-arm; and the DataChecker catching an unsafe resync
// copy and a stale read; SimLegs basics.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/sim/data_checker.h"
#include "tests/sim/legs.h"
#include "tests/sim/mirror_model.h"
#include "tests/sim/mirror_model_fake_log.h"
#include "tests/sim/mirror_model_test_rig.h"

namespace clogd::sim::testing {
namespace {

constexpr SimTime kSecond = 1'000'000;

std::vector<FakeLogEntry> Since(const FakeLog& log, size_t from) {
  return {log.received.begin() + static_cast<long>(from), log.received.end()};
}

std::vector<FakeLogEntry> OfType(const std::vector<FakeLogEntry>& entries, RequestType type) {
  std::vector<FakeLogEntry> out;
  for (const FakeLogEntry& e : entries) {
    if (e.type == Type(type)) out.push_back(e);
  }
  return out;
}

TEST(MirrorModelChannel, DroppedReplyIsResentAfter15sUnderANewSeq) {
  Rig rig;
  MirrorModel& m = rig.StartNode(0);
  const size_t from = rig.log.received.size();
  rig.log.drop_next = 1;
  rig.log.drop_type = Type(RequestType::kFlush);
  SimTime acked_at = 0;
  const SimTime issued_at = rig.loop.Now();
  m.Write(3, 11, [&](Status s) {
    EXPECT_TRUE(s.ok());
    acked_at = rig.loop.Now();
  });
  rig.loop.RunFor(30 * kSecond);
  const std::vector<FakeLogEntry> flushes = OfType(Since(rig.log, from), RequestType::kFlush);
  ASSERT_GE(flushes.size(), 2u);
  EXPECT_EQ(flushes[1].at - flushes[0].at, kUlogRetryTimeoutUs);
  EXPECT_NE(flushes[1].seq, flushes[0].seq);
  EXPECT_EQ(m.stats().timeouts, 1u);
  EXPECT_GT(acked_at, issued_at + kUlogRetryTimeoutUs);
  EXPECT_GE(m.stats().max_request_latency_us, kUlogRetryTimeoutUs);
  EXPECT_EQ(rig.legs.Peek(1, 3), 11u);
}

TEST(MirrorModelChannel, LateReplyToAResentRequestIsDropped) {
  Rig rig;
  MirrorModel& m = rig.StartNode(0);
  rig.log.delay_next_us = 16 * kSecond;  // the first reply arrives after the re-send
  bool acked = false;
  m.Write(3, 12, [&](Status s) { acked = s.ok(); });
  rig.loop.RunFor(40 * kSecond);
  EXPECT_TRUE(acked);
  EXPECT_EQ(m.stats().timeouts, 1u);
  EXPECT_EQ(m.stats().stale_replies, 1u);
}

TEST(MirrorModelChannel, EagainIsResentAtOnce) {
  Rig rig;
  MirrorModel& m = rig.StartNode(0);
  const size_t from = rig.log.received.size();
  rig.log.eagain_next = 1;
  bool acked = false;
  m.Write(3, 13, [&](Status s) { acked = s.ok(); });
  rig.loop.RunFor(kSecond);
  EXPECT_TRUE(acked);
  const std::vector<FakeLogEntry> sent = Since(rig.log, from);
  ASSERT_GE(sent.size(), 2u);
  EXPECT_EQ(sent[1].type, sent[0].type);
  EXPECT_EQ(sent[1].payload, sent[0].payload);
  EXPECT_NE(sent[1].seq, sent[0].seq);
  EXPECT_EQ(sent[1].at - sent[0].at, rig.log.latency_us);  // as soon as the answer came
  EXPECT_EQ(m.stats().eagain_resends, 1u);
  EXPECT_EQ(m.stats().timeouts, 0u);
}

TEST(MirrorModelChannel, NoListenerMeansCtrEvery2sThenResumeThenTheRequest) {
  Rig rig;
  MirrorModel& m = rig.StartNode(0);
  const size_t from = rig.log.received.size();
  const SimTime t0 = rig.loop.Now();
  rig.log.down = true;  // the daemon is gone
  rig.loop.Schedule(5 * kSecond, [&] { rig.log.down = false; });
  bool acked = false;
  m.Write(3, 14, [&](Status s) { acked = s.ok(); });
  rig.loop.RunFor(20 * kSecond);
  EXPECT_TRUE(acked);
  const std::vector<FakeLogEntry> sent = Since(rig.log, from);
  ASSERT_GE(sent.size(), 6u);
  EXPECT_EQ(sent[0].type, Type(RequestType::kInSync));
  const SimTime lat = rig.log.latency_us;
  // -ESRCH, 2 s, CTR (refused while down), 2 s, CTR, 2 s, CTR (the daemon is back).
  for (size_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(sent[i].type, Type(RequestType::kCtr)) << i;
    EXPECT_EQ(sent[i].at, t0 + i * (lat + kEsrchRetryUs)) << i;
    // Re-sent CTR strings carry their NUL.
    std::string with_nul = Ctr(8);
    with_nul.push_back('\0');
    EXPECT_EQ(std::string(sent[i].payload.begin(), sent[i].payload.end()), with_nul);
  }
  EXPECT_EQ(sent[4].type, Type(RequestType::kResume));
  EXPECT_EQ(sent[5].type, sent[0].type);  // the original request, again
  EXPECT_EQ(sent[5].payload, sent[0].payload);
  EXPECT_EQ(m.stats().esrch_events, 1u);
  EXPECT_EQ(m.in_sync_hint(), 8u);  // the dance's RESUME does not reset the hint
  EXPECT_EQ(m.stats().timeouts, 0u);
}

TEST(MirrorModelRemoteRecovering, ThrottledToOneQueryPer250msAndRequeuedFor200ms) {
  Rig rig;
  rig.log.in_sync[0] = false;  // keeps the hint at 0
  rig.log.no_work_for = {0};
  MirrorModel& m = rig.StartNode(0);
  rig.log.force_recovering = {1};
  const size_t from = rig.log.received.size();
  const SimTime t0 = rig.loop.Now();
  SimTime first_landing = 0;
  rig.legs.AddLandingObserver([&](int, int, uint64_t, uint64_t) {
    if (first_landing == 0) first_landing = rig.loop.Now();
  });
  int acked = 0;
  m.Write(4, 21, [&](Status s) { acked += s.ok(); });  // region 1: "recovering"
  m.Write(8, 22, [&](Status s) { acked += s.ok(); });  // region 2: throttled => recovering
  rig.loop.RunFor(kSecond);
  EXPECT_EQ(acked, 0);
  EXPECT_EQ(first_landing, 0u);
  EXPECT_GE(m.stats().remote_recovering_throttled, 1u);
  EXPECT_GT(m.stats().requeued_writes, 2u);
  rig.log.force_recovering.clear();
  rig.loop.RunFor(2 * kSecond);
  EXPECT_EQ(acked, 2);
  EXPECT_GT(first_landing, t0 + kSecond);
  const std::vector<FakeLogEntry> queries =
      OfType(Since(rig.log, from), RequestType::kIsRemoteRecovering);
  ASSERT_GE(queries.size(), 4u);
  for (size_t i = 1; i < queries.size(); ++i) {
    EXPECT_GE(queries[i].at - queries[i - 1].at, kRemoteRecoveringThrottleUs);
  }
  EXPECT_EQ(queries.size(), m.stats().remote_recovering_queries);
}

TEST(MirrorModelRemoteRecovering, RegionsBelowTheHintAreNotAsked) {
  Rig rig;
  rig.log.in_sync[5] = false;
  rig.log.no_work_for = {0};
  MirrorModel& m = rig.StartNode(0);
  m.Write(24, 31);  // region 6: asked; the reply's hint is 5
  rig.loop.RunFor(kSecond);
  EXPECT_EQ(m.in_sync_hint(), 5u);
  const size_t asked = rig.log.Count(RequestType::kIsRemoteRecovering);
  EXPECT_EQ(asked, 1u);
  m.Write(0, 32);
  m.Write(16, 33);  // regions 0 and 4
  rig.loop.RunFor(kSecond);
  EXPECT_EQ(rig.log.Count(RequestType::kIsRemoteRecovering), asked);
  EXPECT_EQ(m.stats().writes_acked, 3u);
}

TEST(MirrorModelLegFailure, HeldUntilTheTableIsReplacedThenCompleted) {
  Rig rig(1, 8, 4, 3);
  MirrorModel& m = rig.StartNode(0);
  rig.legs.FailLeg(2);
  bool acked = false;
  m.Write(9, 41, [&](Status s) { acked = s.ok(); });
  rig.loop.RunFor(5 * kSecond);
  EXPECT_FALSE(acked);
  EXPECT_EQ(m.held_writes(), 1u);
  EXPECT_EQ(m.dm_events(),
            (std::vector<std::string>{"mirror in sync", "leg 2 failed (write error)"}));
  EXPECT_FALSE(rig.log.in_sync[2]);  // SET_REGION_SYNC(2, 0)
  EXPECT_EQ(rig.legs.Peek(0, 9), 41u);
  EXPECT_EQ(rig.legs.Peek(1, 9), 41u);

  const size_t from = rig.log.received.size();
  bool replaced = false;
  ASSERT_TRUE(m.ReplaceTable({0, 1}, [&] { replaced = true; }).ok());
  rig.loop.RunFor(10 * kSecond);
  EXPECT_TRUE(replaced);
  EXPECT_TRUE(acked);
  EXPECT_EQ(m.held_writes(), 0u);
  EXPECT_EQ(m.luid(), 2u);
  EXPECT_EQ(m.table_legs(), (std::vector<int>{0, 1}));
  std::vector<std::pair<uint32_t, uint64_t>> lifecycle;
  for (const FakeLogEntry& e : Since(rig.log, from)) {
    if (e.type <= Type(RequestType::kGetRegionSize)) lifecycle.emplace_back(e.type, e.luid);
  }
  const std::vector<std::pair<uint32_t, uint64_t>> expected = {
      {Type(RequestType::kPresuspend), 1}, {Type(RequestType::kPostsuspend), 1},
      {Type(RequestType::kCtr), 2},        {Type(RequestType::kGetRegionSize), 2},
      {Type(RequestType::kResume), 2},     {Type(RequestType::kDtr), 1}};
  EXPECT_EQ(lifecycle, expected);
  EXPECT_EQ(rig.log.SyncCount(), 8u);  // resynced on the new table
  EXPECT_TRUE(rig.checker.CheckAckedWrites().empty());
  EXPECT_TRUE(rig.checker.CheckQuiescent().empty());
}

TEST(MirrorModelLegFailure, TwoPhaseReloadHoldsWritesUntilCommitThenUsesTheNewTable) {
  Rig rig(1, 8, 4, 3);
  MirrorModel& m = rig.StartNode(0);
  rig.legs.FailLeg(2);
  bool acked = false;
  m.Write(9, 41, [&](Status s) { acked = s.ok(); });
  rig.loop.RunFor(5 * kSecond);
  EXPECT_EQ(m.failed_table_legs(), (std::vector<int>{2}));

  std::optional<bool> loaded;
  ASSERT_TRUE(m.PrepareReload({0, 1}, [&](bool ok) { loaded = ok; }).ok());
  rig.loop.RunFor(5 * kSecond);
  ASSERT_EQ(loaded, std::optional<bool>(true));
  EXPECT_EQ(m.state(), MirrorState::kSuspended);
  EXPECT_EQ(m.inactive_legs(), (std::vector<int>{0, 1}));
  bool later = false;
  m.Write(13, 42, [&](Status s) { later = s.ok(); });  // dm core holds it: suspended
  rig.loop.RunFor(5 * kSecond);
  EXPECT_FALSE(acked);
  EXPECT_FALSE(later);

  bool committed = false;
  ASSERT_TRUE(m.CommitReload([&] { committed = true; }).ok());
  rig.loop.RunFor(10 * kSecond);
  EXPECT_TRUE(committed);
  EXPECT_TRUE(acked);
  EXPECT_TRUE(later);
  EXPECT_EQ(m.table_legs(), (std::vector<int>{0, 1}));
  EXPECT_TRUE(m.failed_table_legs().empty());
  EXPECT_TRUE(rig.checker.CheckAckedWrites().empty());
}

TEST(MirrorModelLegFailure, AbortedReloadDropsTheLoadedTableAndResumesTheOld) {
  Rig rig(1, 8, 4, 3);
  MirrorModel& m = rig.StartNode(0);
  std::optional<bool> loaded;
  ASSERT_TRUE(m.PrepareReload({0, 1}, [&](bool ok) { loaded = ok; }).ok());
  rig.loop.RunFor(5 * kSecond);
  ASSERT_EQ(loaded, std::optional<bool>(true));
  const size_t from = rig.log.received.size();
  bool resumed = false;
  ASSERT_TRUE(m.AbortReload([&] { resumed = true; }).ok());
  rig.loop.RunFor(5 * kSecond);
  EXPECT_TRUE(resumed);
  EXPECT_EQ(m.state(), MirrorState::kRunning);
  EXPECT_EQ(m.luid(), 1u);
  EXPECT_EQ(m.table_legs(), (std::vector<int>{0, 1, 2}));
  std::vector<std::pair<uint32_t, uint64_t>> lifecycle;
  for (const FakeLogEntry& e : Since(rig.log, from)) {
    if (e.type <= Type(RequestType::kGetRegionSize)) lifecycle.emplace_back(e.type, e.luid);
  }
  const std::vector<std::pair<uint32_t, uint64_t>> expected = {{Type(RequestType::kDtr), 2},
                                                               {Type(RequestType::kResume), 1}};
  EXPECT_EQ(lifecycle, expected);
  bool acked = false;
  m.Write(9, 43, [&](Status s) { acked = s.ok(); });
  rig.loop.RunFor(kSecond);
  EXPECT_TRUE(acked);
}

TEST(MirrorModelCrash, WritesInFlightLandOrNotAndNothingMoreIsSent) {
  LegTiming timing;
  timing.min_latency_us = 1000;
  timing.max_latency_us = 2000;
  Rig rig(3, 8, 4, 2, timing);
  MirrorModel& m = rig.StartNode(0);
  int completions = 0;
  for (uint64_t b = 0; b < 32; ++b) m.Write(b, 1000 + b, [&](Status) { ++completions; });
  rig.loop.RunFor(500);  // marked and flushed; the data is in flight
  ASSERT_EQ(rig.legs.InFlight(0), 64u);
  const size_t requests = rig.log.received.size();
  const uint64_t landings = rig.checker.landings();
  const SimLegs::Abandoned abandoned = m.Crash();
  EXPECT_EQ(abandoned.writes_landing + abandoned.writes_lost, 64u);
  EXPECT_GT(abandoned.writes_landing, 0u);
  EXPECT_GT(abandoned.writes_lost, 0u);
  rig.loop.RunFor(60 * kSecond);
  EXPECT_EQ(completions, 0);
  EXPECT_EQ(rig.log.received.size(), requests);
  EXPECT_EQ(rig.checker.landings() - landings, abandoned.writes_landing);
  EXPECT_EQ(m.state(), MirrorState::kCrashed);
  EXPECT_FALSE(rig.log.Clean(0));  // its marks stay: H2, the survivors must resync them
}

TEST(MirrorModelLifecycle, StopDrainsIoThenPresuspendPostsuspendDtr) {
  Rig rig;
  MirrorModel& m = rig.StartNode(0);
  SimTime last_ack = 0;
  for (uint64_t b = 0; b < 8; ++b) {
    m.Write(b * 4, 50 + b, [&](Status s) {
      EXPECT_TRUE(s.ok());
      last_ack = rig.loop.Now();
    });
  }
  bool stopped = false;
  rig.loop.RunFor(100);
  ASSERT_TRUE(m.Stop([&] { stopped = true; }).ok());
  rig.loop.RunFor(10 * kSecond);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(m.state(), MirrorState::kStopped);
  EXPECT_EQ(m.stats().writes_acked, 8u);
  const std::vector<uint32_t> types = rig.log.Types();
  ASSERT_GE(types.size(), 3u);
  EXPECT_EQ(types[types.size() - 2], Type(RequestType::kPostsuspend));
  EXPECT_EQ(types.back(), Type(RequestType::kDtr));
  EXPECT_EQ(rig.log.Count(RequestType::kPresuspend), 1u);
  EXPECT_GT(rig.log.received[types.size() - 2].at, last_ack);
  for (uint64_t r = 0; r < 8; ++r) EXPECT_TRUE(rig.log.Clean(r)) << r;
  bool refused = false;
  m.Write(1, 99, [&](Status s) { refused = !s.ok(); });
  EXPECT_TRUE(refused);
}

TEST(MirrorModelLifecycle, RearmHintSuspendsAndResumesSoResyncWorkIsAskedAgain) {
  Rig rig;
  MirrorModel& m = rig.StartNode(0);
  ASSERT_EQ(m.in_sync_hint(), 8u);
  const size_t work = rig.log.Count(RequestType::kGetResyncWork);
  const size_t counts = rig.log.Count(RequestType::kGetSyncCount);
  const size_t from = rig.log.received.size();
  ASSERT_TRUE(m.RearmHint().ok());
  rig.loop.RunFor(kSecond);
  const std::vector<FakeLogEntry> sent = Since(rig.log, from);
  ASSERT_GE(sent.size(), 4u);
  EXPECT_EQ(sent[0].type, Type(RequestType::kPresuspend));
  EXPECT_EQ(sent[1].type, Type(RequestType::kPostsuspend));
  EXPECT_EQ(sent[2].type, Type(RequestType::kResume));
  EXPECT_EQ(sent[3].type, Type(RequestType::kGetResyncWork));
  EXPECT_EQ(m.in_sync_hint(), 0u);
  EXPECT_EQ(rig.log.Count(RequestType::kGetResyncWork), work + 1);
  // "mirror in sync" survives a resume: GET_SYNC_COUNT is not asked again, so only an
  // IS_REMOTE_RECOVERING reply brings the hint back.
  EXPECT_EQ(rig.log.Count(RequestType::kGetSyncCount), counts);
  m.Write(3, 61);
  rig.loop.RunFor(kSecond);
  EXPECT_EQ(rig.log.Count(RequestType::kIsRemoteRecovering), 1u);
  EXPECT_EQ(m.in_sync_hint(), 8u);
}

// Node 0 resyncs region 1 while node 1 writes block 4 of it. Slow writes to leg 1 keep the
// copy's write of block 4 in flight while node 1's write lands on both legs.
struct CopyRace {
  explicit CopyRace(bool unsafe_log) : rig(5, 4, 4, 2, FixedTiming()) {
    rig.log.in_sync[1] = false;
    rig.legs.Poke(0, 4, 5000);
    rig.legs.Poke(1, 4, 6000);
    rig.log.no_work_for = {1};
    if (unsafe_log) {
      rig.log.report_remote_recovering = false;
      rig.log.lie_in_sync = {1};
    }
    MirrorModel& a = rig.AddNode(0);
    MirrorModel& b = rig.AddNode(1);
    EXPECT_TRUE(a.Start().ok());
    EXPECT_TRUE(b.Start().ok());
    rig.legs.AddLandingObserver([this](int node, int leg, uint64_t block, uint64_t value) {
      if (block == 4 && leg == 1) landed_on_leg1.emplace_back(node, value);
    });
    rig.legs.SetSlowFactor(1, 50);
    rig.loop.Schedule(1000, [this, &b] {
      rig.legs.SetSlowFactor(1, 1);
      b.Write(4, 111, [this](Status s) { acked = s.ok(); });
    });
    rig.loop.RunFor(5 * kSecond);
  }
  static LegTiming FixedTiming() {
    LegTiming timing;
    timing.min_latency_us = 100;
    timing.max_latency_us = 100;
    return timing;
  }
  Rig rig;
  bool acked = false;
  std::vector<std::pair<int, uint64_t>> landed_on_leg1;  // (node, value) in landing order
};

TEST(DataChecker, CatchesAWriteLandingBetweenTheCopysReadAndWrite) {
  CopyRace race(/*unsafe_log=*/true);
  Rig& rig = race.rig;
  ASSERT_TRUE(race.acked);
  // Node 1's write landed on leg 1 first; node 0's copy, read before it, landed after.
  const std::vector<std::pair<int, uint64_t>> order = {{1, 111}, {0, 5000}};
  EXPECT_EQ(race.landed_on_leg1, order);
  ASSERT_TRUE(rig.log.in_sync[1]);
  ASSERT_TRUE(rig.log.Clean(1));
  const std::vector<std::string> found = rig.checker.CheckRegionInSyncAndClean(1);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NE(found[0].find("block 4"), std::string::npos) << found[0];
  EXPECT_NE(found[0].find("leg 0 holds value 111"), std::string::npos) << found[0];
  EXPECT_NE(found[0].find("by node 1"), std::string::npos) << found[0];
  EXPECT_NE(found[0].find("leg 1 holds value 5000"), std::string::npos) << found[0];
  const std::vector<std::string> lost = rig.checker.CheckAckedWrites();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_NE(lost[0].find("acked value 111"), std::string::npos) << lost[0];
  EXPECT_EQ(rig.checker.CheckQuiescent().size(), 1u);
}

TEST(DataChecker, NoFindingWhenTheLogReportsTheRemoteRecovery) {
  CopyRace race(/*unsafe_log=*/false);
  Rig& rig = race.rig;
  EXPECT_TRUE(race.acked);
  EXPECT_GT(rig.nodes[1]->stats().requeued_writes, 0u);  // waited for node 0's copy
  EXPECT_TRUE(rig.log.in_sync[1]);
  EXPECT_TRUE(rig.checker.CheckRegionInSyncAndClean(1).empty());
  EXPECT_TRUE(rig.checker.CheckAckedWrites().empty());
  EXPECT_TRUE(rig.checker.CheckQuiescent().empty());
  EXPECT_EQ(rig.legs.Peek(1, 4), 111u);
}

TEST(DataChecker, CatchesAStaleRead) {
  Rig rig;
  rig.log.in_sync[1] = false;
  rig.log.no_work_for = {0, 1};
  MirrorModel& writer = rig.StartNode(0);
  writer.Write(4, 71);  // NOSYNC: the primary only
  rig.loop.RunFor(kSecond);
  ASSERT_EQ(rig.legs.Peek(1, 4), 0u);
  rig.log.lie_in_sync = {1};  // a reader on another node is told the region is in sync
  MirrorModel& reader = rig.StartNode(1);
  for (int i = 0; i < 20; ++i) reader.Read(4, [](Status, uint64_t) {});
  rig.loop.RunFor(kSecond);
  ASSERT_FALSE(rig.checker.violations().empty());
  const std::string& v = rig.checker.violations()[0];
  EXPECT_NE(v.find("stale read: node 1 read block 4"), std::string::npos) << v;
  EXPECT_NE(v.find("from leg 1"), std::string::npos) << v;
  EXPECT_NE(v.find("value 71"), std::string::npos) << v;
}

TEST(SimLegs, LatencySlowFactorFailureAndAbandon) {
  EventLoop loop;
  SimRng rng(9);
  LegTiming timing;
  timing.min_latency_us = 10;
  timing.max_latency_us = 20;
  SimLegs legs(loop, rng, 2, 2, 2, timing);
  SimTime done_at = 0;
  legs.Write(0, 0, 1, 5, [&](Status s) {
    EXPECT_TRUE(s.ok());
    done_at = loop.Now();
  });
  EXPECT_EQ(legs.Peek(0, 1), 0u);  // not before it completes
  loop.RunFor(100);
  EXPECT_GE(done_at, 10u);
  EXPECT_LE(done_at, 20u);
  EXPECT_EQ(legs.Peek(0, 1), 5u);
  legs.SetSlowFactor(1, 10);
  const SimTime t = loop.Now();
  legs.Read(0, 1, 1, [&](Status s, uint64_t v) {
    EXPECT_TRUE(s.ok());
    EXPECT_EQ(v, 0u);
    done_at = loop.Now();
  });
  loop.RunFor(1000);
  EXPECT_GE(done_at - t, 100u);
  legs.FailLeg(1);
  EXPECT_EQ(legs.LiveLegs(), std::vector<int>{0});
  Status failed;
  legs.Write(0, 1, 0, 6, [&](Status s) { failed = s; });
  loop.RunFor(1000);
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(legs.Peek(1, 0), 0u);
  Status bad;
  legs.Write(0, 0, 99, 7, [&](Status s) { bad = s; });
  loop.RunFor(10);
  EXPECT_EQ(bad.code(), Errc::kOutOfRange);
  int called = 0;
  for (uint64_t b = 0; b < 4; ++b) legs.Write(3, 0, b, 100 + b, [&](Status) { ++called; });
  const SimLegs::Abandoned a = legs.AbandonNode(3);
  EXPECT_EQ(a.writes_landing + a.writes_lost, 4u);
  loop.RunFor(1000);
  EXPECT_EQ(called, 0);
  EXPECT_EQ(legs.InFlight(), 0u);
}

}  // namespace
}  // namespace clogd::sim::testing
