// Virtual-time event queue of the simulator (see event_loop.h).
#include "tests/sim/event_loop.h"

#include <limits>
#include <string>

namespace clogd::sim {

namespace {
SimTime SaturatingAdd(SimTime a, SimTime b) {
  return b > std::numeric_limits<SimTime>::max() - a ? std::numeric_limits<SimTime>::max() : a + b;
}
}  // namespace

EventLoop::EventId EventLoop::Schedule(SimTime delay_us, Fn fn) {
  return ScheduleAt(SaturatingAdd(now_, delay_us), std::move(fn));
}

EventLoop::EventId EventLoop::ScheduleAt(SimTime at_us, Fn fn) {
  if (at_us < now_) at_us = now_;
  const EventId id = next_id_++;
  queue_.emplace(Key{at_us, id}, std::move(fn));
  when_.emplace(id, at_us);
  return id;
}

bool EventLoop::Cancel(EventId id) {
  auto it = when_.find(id);
  if (it == when_.end()) return false;
  queue_.erase(Key{it->second, id});
  when_.erase(it);
  return true;
}

bool EventLoop::Step() {
  if (queue_.empty()) return false;
  auto it = queue_.begin();
  const Key key = it->first;
  // Move the callback out before running it: it may schedule or cancel other events.
  Fn fn = std::move(it->second);
  queue_.erase(it);
  when_.erase(key.second);
  now_ = key.first;
  ++executed_;
  fn();
  return true;
}

size_t EventLoop::RunUntil(SimTime t) {
  size_t ran = 0;
  while (!queue_.empty() && queue_.begin()->first.first <= t) {
    Step();
    ++ran;
  }
  if (t > now_) now_ = t;
  return ran;
}

size_t EventLoop::RunFor(SimTime duration_us) { return RunUntil(SaturatingAdd(now_, duration_us)); }

Status EventLoop::RunUntilIdle(size_t limit) {
  for (size_t ran = 0; ran < limit; ++ran) {
    if (!Step()) return Status::Ok();
  }
  if (queue_.empty()) return Status::Ok();
  return Busy("event loop not idle after " + std::to_string(limit) + " events (" +
              std::to_string(queue_.size()) + " pending)");
}

SimTime EventLoop::NextTime() const { return queue_.empty() ? now_ : queue_.begin()->first.first; }

}  // namespace clogd::sim
