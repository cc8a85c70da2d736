// Virtual time for the deterministic simulator: a queue of callbacks ordered by (time,
// insertion order). Events at the same time run in the order they were scheduled, so a run
// depends only on what was scheduled, never on the host clock or on container iteration
// order. Time is in virtual microseconds from the start of the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <utility>

#include "region/status.h"

namespace clogd::sim {

using SimTime = uint64_t;  // virtual microseconds

class EventLoop {
 public:
  using EventId = uint64_t;
  using Fn = std::function<void()>;

  SimTime Now() const { return now_; }

  // Runs fn at Now() + delay_us (saturating). Callbacks may schedule more events.
  EventId Schedule(SimTime delay_us, Fn fn);
  // Runs fn at at_us; a time in the past means "now" (after what is already due now).
  EventId ScheduleAt(SimTime at_us, Fn fn);
  // Forgets a scheduled event; false if it already ran or was cancelled.
  bool Cancel(EventId id);

  // Runs the next event (advancing Now() to its time); false when there is none.
  bool Step();
  // Runs every event due at or before t, then sets Now() to t (if later). Returns how many ran.
  size_t RunUntil(SimTime t);
  size_t RunFor(SimTime duration_us);
  // Runs until no event is left. kBusy (naming the count) if `limit` events ran and some are
  // still pending: a run that never goes idle is a finding, not a hang.
  Status RunUntilIdle(size_t limit);

  bool Idle() const { return queue_.empty(); }
  size_t Pending() const { return queue_.size(); }
  // Time of the next event; Now() when idle.
  SimTime NextTime() const;
  // Events run so far.
  uint64_t Executed() const { return executed_; }

 private:
  using Key = std::pair<SimTime, EventId>;  // EventIds grow: they are the insertion order
  std::map<Key, Fn> queue_;
  std::unordered_map<EventId, SimTime> when_;  // for Cancel; never iterated
  SimTime now_ = 0;
  EventId next_id_ = 1;
  uint64_t executed_ = 0;
};

}  // namespace clogd::sim
