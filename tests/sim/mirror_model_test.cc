// MirrorModel against an in-memory fake log (mirror_model_fake_log.h): the write path
// (mark + flush before data, batching, integrated flush, NOSYNC to the primary only),
// recovery until GET_SYNC_COUNT reaches the region count, and determinism. Fault handling
// is in mirror_model_fault_test.cc.
#include "tests/sim/mirror_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/sim/data_checker.h"
#include "tests/sim/mirror_model_fake_log.h"
#include "tests/sim/mirror_model_test_rig.h"

namespace clogd::sim::testing {
namespace {

constexpr SimTime kSecond = 1'000'000;

TEST(MirrorModelStart, LoadsResumesAndLearnsTheMirrorIsInSync) {
  Rig rig;
  MirrorModel& m = rig.AddNode(0);
  ASSERT_TRUE(m.Start().ok());
  rig.loop.RunFor(kSecond);
  EXPECT_EQ(m.state(), MirrorState::kRunning);
  const std::vector<uint32_t> expected = {
      Type(RequestType::kCtr), Type(RequestType::kGetRegionSize), Type(RequestType::kResume),
      Type(RequestType::kGetResyncWork), Type(RequestType::kGetSyncCount)};
  EXPECT_EQ(rig.log.Types(), expected);
  // First construction sends the string without its NUL.
  const std::vector<uint8_t>& ctr = rig.log.received[0].payload;
  EXPECT_EQ(std::string(ctr.begin(), ctr.end()), Ctr(8));
  EXPECT_EQ(m.in_sync_hint(), 8u);
  EXPECT_TRUE(m.mirror_in_sync());
  EXPECT_TRUE(m.protocol_errors().empty());
}

TEST(MirrorModelStart, RefusesBadConfigurationWithoutSending) {
  Rig rig;
  MirrorConfig config;
  config.ctr = "8192 clustered-disk /dev/simlog 1000";  // not a power of two
  EXPECT_FALSE(rig.AddNode(0, config).Start().ok());
  config.ctr = Ctr(9);  // 9 regions, the legs have 8
  EXPECT_FALSE(rig.AddNode(1, config).Start().ok());
  config.ctr = Ctr(8);
  config.legs = {0, 5};
  Status bad_leg = rig.AddNode(2, config).Start();
  EXPECT_FALSE(bad_leg.ok());
  EXPECT_NE(bad_leg.message().find("leg 5"), std::string::npos) << bad_leg.ToString();
  rig.loop.RunFor(kSecond);
  EXPECT_TRUE(rig.log.received.empty());
}

TEST(MirrorModelWrite, MarksAndFlushesBeforeDataThenClearsWhenIdle) {
  Rig rig;
  MirrorModel& m = rig.StartNode(0);
  std::vector<std::pair<SimTime, uint64_t>> landed;
  rig.legs.AddLandingObserver(
      [&](int, int, uint64_t, uint64_t value) { landed.emplace_back(rig.loop.Now(), value); });
  const size_t from = rig.log.received.size();
  std::map<uint64_t, SimTime> acked_at;  // by region
  auto done = [&](uint64_t region) {
    return [&, region](Status s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      acked_at[region] = rig.loop.Now();
    };
  };
  // Two writes to region 2 and one to region 3 in one kmirrord pass.
  m.Write(8, 101, done(2));
  m.Write(9, 102, done(2));
  m.Write(12, 103, done(3));
  rig.loop.RunFor(kSecond);
  ASSERT_EQ(acked_at.size(), 2u);

  std::vector<FakeLogEntry> sent(rig.log.received.begin() + static_cast<long>(from),
                                 rig.log.received.end());
  // The hint is 8: no IS_REMOTE_RECOVERING. IN_SYNC for each bio's state (regions not
  // cached), then again to allocate regions 2 and 3; one MARK for both, one FLUSH.
  std::vector<uint32_t> types;
  for (const FakeLogEntry& e : sent) types.push_back(e.type);
  const std::vector<uint32_t> expected = {
      Type(RequestType::kInSync), Type(RequestType::kInSync), Type(RequestType::kInSync),
      Type(RequestType::kInSync), Type(RequestType::kInSync), Type(RequestType::kMarkRegion),
      Type(RequestType::kFlush)};
  ASSERT_GE(types.size(), expected.size());
  EXPECT_EQ(std::vector<uint32_t>(types.begin(), types.begin() + 7), expected);
  EXPECT_EQ(sent[5].payload, RegionList({2, 3}));
  // Every leg write landed after the FLUSH was answered.
  const SimTime flush_answered = sent[6].at + rig.log.latency_us;
  ASSERT_EQ(landed.size(), 6u);  // 3 writes x 2 legs
  for (const auto& [at, value] : landed) EXPECT_GT(at, flush_answered) << value;
  // Then each region, once idle, is cleared (CLEAR + FLUSH), after its last write's ack.
  std::set<uint64_t> cleared;
  for (size_t i = 7; i < sent.size(); i += 2) {
    ASSERT_EQ(sent[i].type, Type(RequestType::kClearRegion));
    ASSERT_LT(i + 1, sent.size());
    EXPECT_EQ(sent[i + 1].type, Type(RequestType::kFlush));
    for (uint64_t r : {2, 3}) {
      if (sent[i].payload == RegionList({r})) {
        cleared.insert(r);
        EXPECT_GE(sent[i].at, acked_at[r]);
      }
    }
    if (sent[i].payload == RegionList({2, 3})) {
      cleared = {2, 3};
      EXPECT_GE(sent[i].at, std::max(acked_at[2], acked_at[3]));
    }
  }
  EXPECT_EQ(cleared, (std::set<uint64_t>{2, 3}));
  EXPECT_TRUE(rig.log.Clean(2));
  EXPECT_TRUE(rig.log.Clean(3));
  EXPECT_TRUE(rig.checker.CheckAckedWrites().empty());
  EXPECT_EQ(rig.legs.Peek(1, 12), 103u);
}

TEST(MirrorModelWrite, DirtyRegionIsNotMarkedAgain) {
  Rig rig;
  MirrorModel& m = rig.StartNode(0);
  rig.legs.SetSlowFactor(0, 100);  // keep the first write in flight
  rig.legs.SetSlowFactor(1, 100);
  m.Write(8, 201);
  rig.loop.RunFor(10'000);
  ASSERT_EQ(m.CachedState(2), RegionState::kDirty);
  const size_t marks = rig.log.Count(RequestType::kMarkRegion);
  m.Write(9, 202);
  rig.loop.RunFor(10 * kSecond);
  EXPECT_EQ(rig.log.Count(RequestType::kMarkRegion), marks);
  EXPECT_EQ(rig.log.Count(RequestType::kClearRegion), 1u);
  EXPECT_EQ(m.stats().writes_acked, 2u);
}

TEST(MirrorModelWrite, IntegratedFlushCarriesTheMarksAndDefersAClearOnlyFlush) {
  Rig rig;
  MirrorConfig config;
  config.integrated_flush = true;
  MirrorModel& m = rig.StartNode(0, config);
  const size_t from = rig.log.received.size();
  SimTime acked_at = 0;
  m.Write(20, 301, [&](Status s) {
    EXPECT_TRUE(s.ok());
    acked_at = rig.loop.Now();
  });
  rig.loop.RunFor(10 * kSecond);
  ASSERT_NE(acked_at, 0u);
  std::vector<FakeLogEntry> sent(rig.log.received.begin() + static_cast<long>(from),
                                 rig.log.received.end());
  ASSERT_EQ(sent.size(), 5u);
  EXPECT_EQ(sent[2].type, Type(RequestType::kFlush));
  EXPECT_EQ(sent[2].payload, RegionList({5}));
  EXPECT_EQ(sent[3].type, Type(RequestType::kClearRegion));
  EXPECT_EQ(sent[4].type, Type(RequestType::kFlush));
  EXPECT_TRUE(sent[4].payload.empty());
  EXPECT_EQ(sent[4].at - sent[3].at, kIntegratedFlushDelayUs + rig.log.latency_us);
  EXPECT_EQ(rig.log.Count(RequestType::kMarkRegion), 0u);
}

TEST(MirrorModelWrite, NosyncRegionGoesToThePrimaryOnlyUnmarked) {
  Rig rig;
  rig.log.in_sync[2] = false;
  rig.log.no_work_for = {0};  // nobody resyncs it
  MirrorModel& m = rig.StartNode(0);
  EXPECT_EQ(m.in_sync_hint(), 0u);  // GET_SYNC_COUNT said 7 of 8
  bool acked = false;
  m.Write(9, 401, [&](Status s) { acked = s.ok(); });
  rig.loop.RunFor(kSecond);
  EXPECT_TRUE(acked);
  EXPECT_EQ(rig.legs.Peek(0, 9), 401u);
  EXPECT_EQ(rig.legs.Peek(1, 9), 0u);
  EXPECT_EQ(rig.log.Count(RequestType::kMarkRegion), 0u);
  EXPECT_EQ(rig.log.Count(RequestType::kFlush), 0u);
  EXPECT_TRUE(rig.log.Clean(2));
  EXPECT_EQ(m.CachedState(2), RegionState::kNosync);  // stays cached until resynced
  EXPECT_EQ(m.in_sync_hint(), 2u);                    // from the IS_REMOTE_RECOVERING reply
  // The checker flags it unless told the region is out of sync.
  EXPECT_EQ(rig.checker.CheckAckedWrites().size(), 1u);
  EXPECT_TRUE(rig.checker.CheckAckedWrites([&](uint64_t r) { return rig.log.in_sync[r]; }).empty());
  // A second write: the cached NOSYNC state, no IN_SYNC asked.
  const size_t in_sync_asked = rig.log.Count(RequestType::kInSync);
  m.Write(10, 402);
  rig.loop.RunFor(kSecond);
  EXPECT_EQ(rig.log.Count(RequestType::kInSync), in_sync_asked);
  EXPECT_EQ(rig.legs.Peek(0, 10), 402u);
  EXPECT_EQ(rig.legs.Peek(1, 10), 0u);
}

TEST(MirrorModelRecovery, CopiesEveryOutOfSyncRegionUntilTheSyncCountIsComplete) {
  Rig rig;
  rig.log.SetAllOutOfSync();
  for (uint64_t b = 0; b < rig.legs.nr_blocks(); ++b) {
    rig.legs.Poke(0, b, 100000 + b);
    rig.legs.Poke(1, b, 200000 + b);
  }
  MirrorModel& m = rig.AddNode(0);
  ASSERT_TRUE(m.Start().ok());
  // Writes while recovery runs: to regions being copied, waiting ones, and copied ones.
  int acked = 0;
  for (uint64_t b = 0; b < rig.legs.nr_blocks(); b += 3) {
    rig.loop.Schedule(b * 900, [&, b] { m.Write(b, 1 + b, [&](Status s) { acked += s.ok(); }); });
  }
  rig.loop.RunFor(30 * kSecond);
  EXPECT_EQ(acked, 11);
  EXPECT_EQ(rig.log.SyncCount(), 8u);
  EXPECT_EQ(m.stats().regions_recovered, 8u);
  EXPECT_EQ(m.in_sync_hint(), 8u);
  EXPECT_TRUE(m.mirror_in_sync());
  EXPECT_FALSE(m.recovering());
  EXPECT_TRUE(rig.checker.CheckQuiescent().empty());
  EXPECT_TRUE(rig.checker.CheckAckedWrites().empty());
  for (uint64_t r = 0; r < 8; ++r) EXPECT_TRUE(rig.checker.CheckRegionInSyncAndClean(r).empty());
  EXPECT_TRUE(rig.checker.violations().empty());
  // Unwritten blocks hold the primary's data everywhere.
  EXPECT_EQ(rig.legs.Peek(1, 1), 100001u);
  // Once the count was complete the kernel stops asking for work and sync counts.
  const size_t work = rig.log.Count(RequestType::kGetResyncWork);
  const size_t counts = rig.log.Count(RequestType::kGetSyncCount);
  EXPECT_EQ(work, 9u);  // 8 regions + the "no work" answer
  m.Write(5, 9001);
  m.Write(30, 9002);
  rig.loop.RunFor(10 * kSecond);
  EXPECT_EQ(rig.log.Count(RequestType::kGetResyncWork), work);
  EXPECT_EQ(rig.log.Count(RequestType::kGetSyncCount), counts);
  EXPECT_EQ(rig.log.Count(RequestType::kIsRemoteRecovering), m.stats().remote_recovering_queries);
}

// kmirrord runs only when woken: an idle kernel told "no work" does not ask again until I/O
// or a resume wakes it, unless the model's optional poll is on.
TEST(MirrorModelRecovery, IdleKernelAsksForWorkOnlyWhenWoken) {
  for (SimTime poll : {SimTime{0}, kSecond}) {
    Rig rig;
    rig.log.in_sync[0] = false;
    rig.log.no_work_for = {0};
    MirrorConfig config;
    config.poll_period_us = poll;
    MirrorModel& m = rig.StartNode(0, config);
    ASSERT_EQ(m.in_sync_hint(), 0u);
    rig.log.no_work_for.clear();  // work is there now, nothing else happens
    rig.loop.RunFor(5 * kSecond);
    EXPECT_EQ(rig.log.in_sync[0], poll != 0) << poll;
    m.Write(20, 1);  // I/O wakes kmirrord
    rig.loop.RunFor(5 * kSecond);
    EXPECT_TRUE(rig.log.in_sync[0]) << poll;
  }
}

TEST(MirrorModelRecovery, RegionWithWritesInFlightIsQuiescedBeforeTheCopy) {
  Rig rig;
  rig.log.in_sync[1] = false;
  rig.log.no_work_for = {0};
  MirrorModel& m = rig.StartNode(0);
  rig.legs.SetSlowFactor(0, 50);  // the NOSYNC write stays in flight ~100 ms
  bool acked = false;
  m.Write(4, 501, [&](Status s) { acked = s.ok(); });
  rig.loop.RunFor(1000);
  ASSERT_FALSE(acked);
  rig.legs.SetSlowFactor(0, 1);
  // Work is handed out now; a write arriving meanwhile must wait for the copy.
  rig.log.no_work_for.clear();
  std::vector<std::pair<SimTime, std::string>> events;
  rig.legs.AddLandingObserver([&](int, int leg, uint64_t block, uint64_t value) {
    if (block == 5)
      events.emplace_back(rig.loop.Now(),
                          "land " + std::to_string(leg) + "=" + std::to_string(value));
  });
  m.Write(5, 502);  // wakes kmirrord: GET_RESYNC_WORK hands out region 1
  rig.loop.RunFor(10 * kSecond);
  EXPECT_TRUE(acked);
  EXPECT_EQ(rig.legs.Peek(1, 4), 501u);  // copied after the NOSYNC write landed
  EXPECT_EQ(rig.legs.Peek(0, 5), 502u);
  EXPECT_EQ(rig.legs.Peek(1, 5), 502u);
  EXPECT_TRUE(rig.checker.CheckQuiescent().empty());
  EXPECT_TRUE(rig.checker.CheckAckedWrites().empty());
}

// A random single-node workload with faults; returns everything the model and the log saw.
std::vector<std::string> RandomRun(uint64_t seed, std::vector<std::string>* violations) {
  LegTiming timing;
  timing.min_latency_us = 50;
  timing.max_latency_us = 3000;
  Rig rig(seed, 16, 4, 3, timing);
  std::vector<std::string> trace;
  for (uint64_t r = 0; r < 16; ++r) rig.log.in_sync[r] = rig.rng.Chance(0.5);
  MirrorConfig config;
  config.integrated_flush = rig.rng.Chance(0.5);
  MirrorModel& m = rig.AddNode(0, config);
  m.SetTrace([&](const std::string& line) { trace.push_back(line); });
  EXPECT_TRUE(m.Start().ok());
  std::vector<bool> busy(rig.legs.nr_blocks(), false);
  uint64_t next_value = 1;
  // Two dropped replies (each stalls the channel for 15 s: more would chain).
  const SimTime drop_a = rig.rng.Below(4000) * 5000;
  const SimTime drop_b = rig.rng.Below(4000) * 5000;
  for (SimTime t = 0; t < 20 * kSecond; t += 5000) {
    rig.loop.RunUntil(t);
    rig.log.latency_us = rig.rng.Range(5, 2000);
    if (t == drop_a || t == drop_b) rig.log.drop_next = 1;
    if (rig.rng.OneIn(100)) rig.log.eagain_next = 1;
    const uint64_t block = rig.rng.Below(rig.legs.nr_blocks());
    if (rig.rng.OneIn(4)) {
      m.Read(block, [&trace, block](Status s, uint64_t v) {
        trace.push_back("read " + std::to_string(block) + " " + s.ToString() + " " +
                        std::to_string(v));
      });
    } else if (!busy[block]) {
      busy[block] = true;
      m.Write(block, next_value++, [&busy, block](Status) { busy[block] = false; });
    }
  }
  rig.loop.RunFor(120 * kSecond);
  for (const FakeLogEntry& e : rig.log.received) {
    trace.push_back("log t=" + std::to_string(e.at) + " seq=" + std::to_string(e.seq) +
                    " type=" + std::to_string(e.type));
  }
  *violations = rig.checker.violations();
  for (const std::string& v : rig.checker.CheckQuiescent()) violations->push_back(v);
  for (const std::string& v : rig.checker.CheckAckedWrites()) violations->push_back(v);
  if (rig.log.SyncCount() != 16) violations->push_back("not all regions in sync at the end");
  const MirrorStats& stats = m.stats();
  if (stats.writes_acked != stats.writes_issued || stats.reads_done != stats.reads_issued) {
    violations->push_back("not every bio completed");
  }
  if (stats.writes_acked < 200 || stats.timeouts == 0 || stats.regions_recovered == 0) {
    violations->push_back("the run did not exercise much: " + std::to_string(stats.writes_acked) +
                          " writes acked, " + std::to_string(stats.timeouts) + " timeouts");
  }
  return trace;
}

TEST(MirrorModelDeterminism, SameSeedSameTraceAndInvariantsHold) {
  std::vector<std::string> violations;
  auto joined = [&] {
    std::string all;
    for (const std::string& v : violations) all += v + "\n";
    return all;
  };
  const std::vector<std::string> a = RandomRun(7, &violations);
  EXPECT_TRUE(violations.empty()) << joined();
  const std::vector<std::string> b = RandomRun(7, &violations);
  EXPECT_TRUE(violations.empty()) << joined();
  const std::vector<std::string> c = RandomRun(8, &violations);
  EXPECT_TRUE(violations.empty()) << joined();
  ASSERT_GT(a.size(), 1000u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace clogd::sim::testing
