// The daemon's event loop: timers run in deadline order and never early, cancelled ones
// never; work posted from another thread wakes a loop blocked in epoll; fd callbacks run
// while watched and stop when unwatched, even within one batch of events; signals arrive
// as ordinary callbacks through SignalWatch.
#include "logd/event_loop.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "logd/signal_watch.h"

namespace clogd::logd {
namespace {

constexpr int kBoundMs = 10'000;

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(loop_.Open().ok()); }
  EventLoop loop_;
};

TEST_F(EventLoopTest, TimersRunInDeadlineOrderAndNeverEarly) {
  std::string order;
  const uint64_t start = EventLoop::NowUs();
  uint64_t b_ran_at = 0;
  loop_.Schedule(20'000, [&] {
    order += 'b';
    b_ran_at = EventLoop::NowUs();
  });
  loop_.Schedule(5'000, [&] { order += 'a'; });
  loop_.Schedule(40'000, [&] { order += 'c'; });
  EXPECT_EQ(loop_.PendingTimers(), 3u);
  ASSERT_TRUE(loop_.RunUntil([&] { return order.size() == 3; }, kBoundMs));
  EXPECT_EQ(order, "abc");
  EXPECT_GE(b_ran_at - start, 20'000u) << "a timer ran before its delay";
  EXPECT_EQ(loop_.PendingTimers(), 0u);
}

TEST_F(EventLoopTest, ACallbackThatHoldsTheLoopIsNamedWithItsTimeAndCpu) {
  struct Slow {
    std::string what;
    uint64_t us;
    uint64_t cpu_us;
  };
  std::vector<Slow> slow;
  loop_.SetSlowCallbackHook(20'000, [&](const std::string& what, uint64_t us, uint64_t cpu) {
    slow.push_back({what, us, cpu});
  });
  bool quick_ran = false, sleeper_ran = false;
  loop_.Schedule(0, [&] { quick_ran = true; });
  loop_.Schedule(1'000, [&] {
    usleep(50'000);  // holds the loop without using the CPU, as blocking I/O does
    sleeper_ran = true;
  });
  ASSERT_TRUE(loop_.RunUntil([&] { return quick_ran && sleeper_ran; }, kBoundMs));
  ASSERT_EQ(slow.size(), 1u) << "only the callback that held the loop";
  EXPECT_EQ(slow[0].what, "timer");
  EXPECT_GE(slow[0].us, 50'000u);
  EXPECT_LT(slow[0].cpu_us, slow[0].us) << "sleeping is not CPU time";
}

TEST_F(EventLoopTest, CancelledTimerNeverRuns) {
  bool cancelled_ran = false, later_ran = false;
  EventLoop::TimerId id = loop_.Schedule(1'000, [&] { cancelled_ran = true; });
  loop_.Schedule(20'000, [&] { later_ran = true; });
  EXPECT_TRUE(loop_.Cancel(id));
  EXPECT_FALSE(loop_.Cancel(id)) << "a timer is cancelled once";
  ASSERT_TRUE(loop_.RunUntil([&] { return later_ran; }, kBoundMs));
  EXPECT_FALSE(cancelled_ran);
}

TEST_F(EventLoopTest, ZeroDelayTimerFromATimerDoesNotStarveFds) {
  // A timer that keeps rescheduling itself at once must not keep the loop from fds.
  int ticks = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    loop_.Schedule(0, tick);
  };
  loop_.Schedule(0, tick);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  bool readable = false;
  ASSERT_TRUE(loop_.Watch(fds[0], EPOLLIN, [&](uint32_t) { readable = true; }).ok());
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  EXPECT_TRUE(loop_.RunUntil([&] { return readable; }, kBoundMs));
  EXPECT_GT(ticks, 0);
  loop_.Unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST_F(EventLoopTest, PostFromAnotherThreadWakesABlockedLoop) {
  bool posted_ran = false, watchdog_fired = false;
  // Run() blocks in epoll_wait without a timeout; only the post (or the watchdog) ends it.
  loop_.Schedule(static_cast<uint64_t>(kBoundMs) * 1000, [&] {
    watchdog_fired = true;
    loop_.Stop();
  });
  std::thread poster([&] {
    loop_.Post([&] {
      posted_ran = true;
      loop_.Stop();
    });
  });
  ASSERT_TRUE(loop_.Run().ok());
  poster.join();
  EXPECT_TRUE(posted_ran);
  EXPECT_FALSE(watchdog_fired);
}

TEST_F(EventLoopTest, WatchedFdCallsBackUntilUnwatched) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int calls = 0;
  ASSERT_TRUE(loop_
                  .Watch(fds[0], EPOLLIN,
                         [&](uint32_t events) {
                           EXPECT_TRUE(events & EPOLLIN);
                           char c;
                           ASSERT_EQ(read(fds[0], &c, 1), 1);
                           ++calls;
                         })
                  .ok());
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  ASSERT_TRUE(loop_.RunUntil([&] { return calls == 1; }, kBoundMs));
  loop_.Unwatch(fds[0]);
  ASSERT_EQ(write(fds[1], "y", 1), 1);
  ASSERT_TRUE(loop_.RunOnce(50).ok());
  EXPECT_EQ(calls, 1) << "an unwatched fd must not call back";
  close(fds[0]);
  close(fds[1]);
}

TEST_F(EventLoopTest, FdUnwatchedEarlierInTheSameBatchIsNotCalled) {
  int a[2], b[2];
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(b), 0);
  int calls = 0;
  // Whichever runs first unwatches the other; both are ready in the same epoll batch.
  ASSERT_TRUE(loop_
                  .Watch(a[0], EPOLLIN,
                         [&](uint32_t) {
                           ++calls;
                           loop_.Unwatch(b[0]);
                         })
                  .ok());
  ASSERT_TRUE(loop_
                  .Watch(b[0], EPOLLIN,
                         [&](uint32_t) {
                           ++calls;
                           loop_.Unwatch(a[0]);
                         })
                  .ok());
  ASSERT_EQ(write(a[1], "x", 1), 1);
  ASSERT_EQ(write(b[1], "x", 1), 1);
  ASSERT_TRUE(loop_.RunOnce(kBoundMs).ok());
  EXPECT_EQ(calls, 1);
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

TEST_F(EventLoopTest, SignalsArriveAsCallbacksOnTheLoop) {
  SignalWatch signals;
  std::vector<int> seen;
  ASSERT_TRUE(signals.Start(loop_, {SIGUSR1, SIGUSR2}, [&](int s) { seen.push_back(s); }).ok());
  // raise() targets this thread, which has them blocked: they wait in the signalfd.
  ASSERT_EQ(raise(SIGUSR1), 0);
  ASSERT_EQ(raise(SIGUSR2), 0);
  ASSERT_TRUE(loop_.RunUntil([&] { return seen.size() == 2; }, kBoundMs));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{SIGUSR1, SIGUSR2}));
}

}  // namespace
}  // namespace clogd::logd
