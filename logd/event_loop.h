// The daemon's one event loop: epoll over the file descriptors it watches, a deadline heap
// of timers (one timerfd armed to the earliest deadline), and a queue other threads post
// work to (woken by an eventfd). Everything the daemon does runs on the thread that calls
// Run(); no thread per request. EngineOptions::schedule is Schedule().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "region/status.h"

namespace clogd::logd {

class EventLoop {
 public:
  using Fn = std::function<void()>;
  using FdFn = std::function<void(uint32_t epoll_events)>;
  using TimerId = uint64_t;

  EventLoop() = default;
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Creates the epoll, timer and wake-up descriptors; names the errno on failure.
  Status Open();

  // Calls fn(events) on the loop thread whenever `fd` is ready for `events` (EPOLLIN, ...).
  // Watching an fd again replaces its callback. The caller owns and closes the fd, after
  // Unwatch.
  Status Watch(int fd, uint32_t events, FdFn fn);
  void Unwatch(int fd);

  // Runs fn on the loop thread once `delay_us` microseconds have passed (monotonic clock).
  // Timers with the same deadline run in the order they were scheduled.
  TimerId Schedule(uint64_t delay_us, Fn fn);
  // Returns false if the timer already ran or was cancelled.
  bool Cancel(TimerId id);
  size_t PendingTimers() const { return timers_.size(); }

  // Thread-safe: runs fn on the loop thread soon (in posting order).
  void Post(Fn fn);

  // Runs until Stop() is called (from a callback, or before Run: then it returns at once).
  Status Run();
  void Stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }
  // Waits at most `max_wait_ms` (-1: until something happens) and runs what is ready.
  Status RunOnce(int max_wait_ms);
  // Runs until `done()` holds or `bound_ms` passed; returns done(). For tests and tools.
  bool RunUntil(const std::function<bool()>& done, int bound_ms);

  static uint64_t NowUs();

  // Called after any one callback that ran `threshold_us` or longer: what it was ("fd 7",
  // "timer", "posted"), how long it ran and how much of that was this process's CPU time
  // (little CPU: it waited, in I/O or for another process). Everything else waited as long.
  using SlowFn = std::function<void(const std::string& what, uint64_t us, uint64_t cpu_us)>;
  void SetSlowCallbackHook(uint64_t threshold_us, SlowFn fn);

 private:
  struct Watcher {
    uint32_t generation;
    FdFn fn;
  };
  void ArmTimerFd();
  void RunDueTimers();
  void RunPosted();
  // Runs fn, timed when a slow-callback hook is set.
  template <typename F>
  void Timed(const char* kind, int fd, F&& fn);

  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  int wake_fd_ = -1;
  bool stopped_ = false;
  uint32_t next_generation_ = 1;
  // The epoll cookie carries (generation << 32 | fd), so an event for an fd that was
  // unwatched (and maybe reused) earlier in the same batch is recognised and dropped.
  std::unordered_map<int, std::shared_ptr<Watcher>> watchers_;

  TimerId next_timer_ = 1;
  std::map<std::pair<uint64_t, TimerId>, Fn> timers_;  // (deadline, id) -> fn
  std::unordered_map<TimerId, uint64_t> timer_deadlines_;
  uint64_t armed_deadline_ = 0;  // what timer_fd_ is set to (0: disarmed)

  uint64_t slow_threshold_us_ = 0;
  SlowFn slow_fn_;

  std::mutex posted_mu_;
  std::vector<Fn> posted_;
};

}  // namespace clogd::logd
