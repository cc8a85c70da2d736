// epoll + timerfd + eventfd. Timers live in an ordered map keyed by (deadline, id); the
// timerfd is armed (absolute, monotonic) to the first deadline whenever that changes.
#include "logd/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

namespace clogd::logd {

namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

uint64_t Cookie(uint32_t generation, int fd) {
  return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
}

// Drains a counter descriptor (eventfd or timerfd); both hand out one u64.
void DrainCounter(int fd) {
  uint64_t v;
  while (read(fd, &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v))) {
  }
}

}  // namespace

EventLoop::~EventLoop() {
  for (int fd : {epoll_fd_, timer_fd_, wake_fd_}) {
    if (fd >= 0) close(fd);
  }
}

uint64_t EventLoop::NowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

Status EventLoop::Open() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return IoError(Errno("epoll_create1"));
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) return IoError(Errno("timerfd_create"));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return IoError(Errno("eventfd"));
  for (int fd : {timer_fd_, wake_fd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = Cookie(0, fd);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) return IoError(Errno("epoll_ctl"));
  }
  return Status::Ok();
}

Status EventLoop::Watch(int fd, uint32_t events, FdFn fn) {
  auto watcher = std::make_shared<Watcher>(Watcher{next_generation_++, std::move(fn)});
  if (next_generation_ == 0) next_generation_ = 1;  // 0 marks the loop's own descriptors
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = Cookie(watcher->generation, fd);
  const bool known = watchers_.contains(fd);
  if (epoll_ctl(epoll_fd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0) {
    const std::string why = Errno("epoll_ctl");
    return IoError("watch fd " + std::to_string(fd) + ": " + why);
  }
  watchers_[fd] = std::move(watcher);
  return Status::Ok();
}

void EventLoop::Unwatch(int fd) {
  if (watchers_.erase(fd) == 0) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::Schedule(uint64_t delay_us, Fn fn) {
  const uint64_t now = NowUs();
  const uint64_t deadline = delay_us > UINT64_MAX - now ? UINT64_MAX : now + delay_us;
  const TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(deadline, id), std::move(fn));
  timer_deadlines_.emplace(id, deadline);
  ArmTimerFd();
  return id;
}

bool EventLoop::Cancel(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return false;
  timers_.erase(std::make_pair(it->second, id));
  timer_deadlines_.erase(it);
  ArmTimerFd();
  return true;
}

void EventLoop::ArmTimerFd() {
  const uint64_t first = timers_.empty() ? 0 : timers_.begin()->first.first;
  if (first == armed_deadline_ || timer_fd_ < 0) return;
  itimerspec spec{};
  if (first != 0) {
    spec.it_value.tv_sec = static_cast<time_t>(first / 1'000'000);
    spec.it_value.tv_nsec = static_cast<long>((first % 1'000'000) * 1000);
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  armed_deadline_ = first;
}

void EventLoop::RunDueTimers() {
  // Deadlines are compared with the time at entry, so a timer scheduled with no delay
  // from a timer callback runs in the next pass, not in an endless loop here.
  const uint64_t now = NowUs();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_deadlines_.erase(node.key().second);
    Timed("timer", -1, node.mapped());
  }
  ArmTimerFd();
}

void EventLoop::Post(Fn fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  // A full counter (never in practice) still leaves the loop woken.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EventLoop::RunPosted() {
  std::vector<Fn> batch;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) Timed("posted", -1, fn);
}

namespace {
uint64_t ProcessCpuUs() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1'000'000 + static_cast<uint64_t>(t.tv_nsec) / 1000;
}
}  // namespace

void EventLoop::SetSlowCallbackHook(uint64_t threshold_us, SlowFn fn) {
  slow_threshold_us_ = threshold_us;
  slow_fn_ = std::move(fn);
}

template <typename F>
void EventLoop::Timed(const char* kind, int fd, F&& fn) {
  if (!slow_fn_) {
    fn();
    return;
  }
  const uint64_t start = NowUs();
  const uint64_t cpu_start = ProcessCpuUs();
  fn();
  const uint64_t took = NowUs() - start;
  if (took >= slow_threshold_us_) {
    slow_fn_(fd >= 0 ? std::string(kind) + " " + std::to_string(fd) : std::string(kind), took,
             ProcessCpuUs() - cpu_start);
  }
}

Status EventLoop::RunOnce(int max_wait_ms) {
  epoll_event events[16];
  int n = epoll_wait(epoll_fd_, events, 16, max_wait_ms);
  if (n < 0) {
    if (errno == EINTR) return Status::Ok();
    return IoError(Errno("epoll_wait"));
  }
  for (int i = 0; i < n; ++i) {
    const uint32_t generation = static_cast<uint32_t>(events[i].data.u64 >> 32);
    const int fd = static_cast<int>(events[i].data.u64 & 0xFFFFFFFFu);
    if (generation == 0) {
      DrainCounter(fd);
      continue;
    }
    auto it = watchers_.find(fd);
    if (it == watchers_.end() || it->second->generation != generation) continue;
    std::shared_ptr<Watcher> keep = it->second;  // the callback may unwatch itself
    const uint32_t what = events[i].events;
    Timed("fd", fd, [&] { keep->fn(what); });
  }
  RunPosted();
  RunDueTimers();
  return Status::Ok();
}

Status EventLoop::Run() {
  while (!stopped_) CLOG_RETURN_IF_ERROR(RunOnce(-1));
  return Status::Ok();
}

bool EventLoop::RunUntil(const std::function<bool()>& done, int bound_ms) {
  const uint64_t end = NowUs() + static_cast<uint64_t>(bound_ms) * 1000;
  while (!done()) {
    const uint64_t now = NowUs();
    if (now >= end) return false;
    const int wait_ms = static_cast<int>(std::min<uint64_t>((end - now) / 1000 + 1, 50));
    if (!RunOnce(wait_ms).ok()) return done();
  }
  return true;
}

}  // namespace clogd::logd
