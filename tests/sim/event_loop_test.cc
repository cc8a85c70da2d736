// Tests of the simulator's foundations: the virtual-time event loop and the seeded PRNG.
#include "tests/sim/event_loop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "tests/sim/sim_rng.h"

namespace clogd::sim {
namespace {

TEST(SimEventLoop, RunsByTimeThenInsertionOrder) {
  EventLoop loop;
  std::vector<std::string> order;
  loop.Schedule(20, [&] { order.push_back("b@20"); });
  loop.Schedule(10, [&] { order.push_back("a@10"); });
  loop.Schedule(20, [&] { order.push_back("c@20"); });
  loop.Schedule(10, [&] {
    order.push_back("d@10");
    // Scheduled "now" from inside an event: after what is already due now.
    loop.Schedule(0, [&] { order.push_back("e@10"); });
  });
  EXPECT_TRUE(loop.RunUntilIdle(100).ok());
  EXPECT_EQ(order, (std::vector<std::string>{"a@10", "d@10", "e@10", "b@20", "c@20"}));
  EXPECT_EQ(loop.Now(), 20u);
  EXPECT_EQ(loop.Executed(), 5u);
}

TEST(SimEventLoop, RunUntilStopsAtTheTimeAndAdvancesTheClock) {
  EventLoop loop;
  int ran = 0;
  loop.Schedule(5, [&] { ++ran; });
  loop.Schedule(15, [&] { ++ran; });
  EXPECT_EQ(loop.RunUntil(10), 1u);
  EXPECT_EQ(loop.Now(), 10u);
  EXPECT_EQ(loop.NextTime(), 15u);
  EXPECT_EQ(loop.RunFor(5), 1u);  // an event exactly at the limit runs
  EXPECT_EQ(ran, 2);
  EXPECT_TRUE(loop.Idle());
  EXPECT_EQ(loop.RunUntil(3), 0u);  // the clock never goes back
  EXPECT_EQ(loop.Now(), 15u);
}

TEST(SimEventLoop, StepAndPastTimes) {
  EventLoop loop;
  EXPECT_FALSE(loop.Step());
  loop.RunUntil(100);
  SimTime seen = 0;
  loop.ScheduleAt(50, [&] { seen = loop.Now(); });  // in the past: runs "now"
  EXPECT_TRUE(loop.Step());
  EXPECT_EQ(seen, 100u);
}

TEST(SimEventLoop, CancelForgetsAnEvent) {
  EventLoop loop;
  int ran = 0;
  const EventLoop::EventId id = loop.Schedule(10, [&] { ran += 1; });
  loop.Schedule(10, [&] { ran += 10; });
  EXPECT_TRUE(loop.Cancel(id));
  EXPECT_FALSE(loop.Cancel(id));
  EXPECT_TRUE(loop.RunUntilIdle(10).ok());
  EXPECT_EQ(ran, 10);
}

TEST(SimEventLoop, RunUntilIdleReportsARunThatNeverSettles) {
  EventLoop loop;
  std::function<void()> again = [&] { loop.Schedule(1, again); };
  loop.Schedule(1, again);
  Status st = loop.RunUntilIdle(1000);
  EXPECT_EQ(st.code(), Errc::kBusy);
  EXPECT_NE(st.message().find("1000"), std::string::npos) << st.message();
}

TEST(SimRngTest, MatchesTheReferenceAlgorithms) {
  uint64_t state = 0;
  EXPECT_EQ(SimRng::SplitMix64(state), 0xE220A8397B1DCDAFULL);  // splitmix64, seed 0
  // xoshiro256** seeded through splitmix64(42), from an independent implementation.
  SimRng rng(42);
  EXPECT_EQ(rng.Next(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(rng.Next(), 0x6104d9866d113a7eULL);
  EXPECT_EQ(rng.Next(), 0xae17533239e499a1ULL);
}

TEST(SimRngTest, SameSeedSameDraws) {
  SimRng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(SimRngTest, BoundedDrawsStayInRangeAndCoverIt) {
  SimRng rng(3);
  std::vector<int> hits(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const uint64_t x = rng.Below(7);
    ASSERT_LT(x, 7u);
    ++hits[x];
  }
  for (int h : hits) EXPECT_GT(h, 800);  // ~1000 each
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = rng.Range(300, 500);
    ASSERT_GE(x, 300u);
    ASSERT_LE(x, 500u);
  }
  EXPECT_EQ(rng.Below(0), 0u);
  EXPECT_EQ(rng.Range(9, 9), 9u);
  EXPECT_EQ(rng.Range(9, 3), 9u);
  EXPECT_FALSE(rng.Chance(0));
  EXPECT_TRUE(rng.Chance(1));
  int yes = 0;
  for (int i = 0; i < 10000; ++i) yes += rng.Chance(0.25) ? 1 : 0;
  EXPECT_NEAR(yes, 2500, 250);
  std::vector<int> v{1, 2, 3, 4, 5};
  rng.Shuffle(v);
  std::vector<int> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{1, 2, 3, 4, 5}));
}

}  // namespace
}  // namespace clogd::sim
