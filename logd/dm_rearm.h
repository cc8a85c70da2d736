// Rearm through the device-mapper: a noflush suspend + resume of every local dm device
// whose mirror table uses a given log uuid. The suspend makes the kernel send PRESUSPEND
// and POSTSUSPEND to this daemon and blocks until they are answered, so the device-mapper
// calls run on one worker thread and the event loop keeps serving; the completion comes
// back to the loop (EventLoop::Post). A rearm that fails is retried with backoff: `done`
// means the mirrors really went through a suspend, which the cluster state machine relies
// on as a barrier for writes in flight.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dmtable/dm_device.h"
#include "logd/event_loop.h"
#include "logd/logging.h"

namespace clogd::logd {

// What one attempt did (filled on the worker, reported on the loop).
struct RearmOutcome {
  std::vector<std::string> rearmed;   // suspended and resumed
  std::vector<std::string> skipped;   // already suspended by someone else: quiesced already
  std::vector<std::string> problems;  // empty: success
  // The longest time one device stayed suspended (its writes held), suspend to resumed.
  uint64_t longest_suspend_us = 0;
};

// One attempt, synchronously: list devices, pick those using `uuid`, suspend noflush and
// resume each. `left_suspended` carries devices whose resume failed to the next attempt
// (any uuid), which resumes them first. Blocks; never call it on the loop thread.
RearmOutcome RearmDevicesUsing(dmtable::DeviceMapper& dm, const std::string& uuid,
                               std::vector<std::string>& left_suspended);

class DmRearmer {
 public:
  DmRearmer(EventLoop& loop, std::unique_ptr<dmtable::DeviceMapper> dm, LogFn log);
  // Joins the worker, or leaves it behind if a device-mapper call is blocked (the process
  // is exiting under a suspend only the loop could have let finish).
  ~DmRearmer();
  DmRearmer(const DmRearmer&) = delete;
  DmRearmer& operator=(const DmRearmer&) = delete;

  // Queues a rearm of log `uuid`; `done` runs on the loop thread after it succeeded.
  void Rearm(const std::string& uuid, std::function<void()> done);

  // Runs `work` on the worker, in queue order with the rearms; the function it returns
  // runs on the loop thread (unless the rearmer is gone by then).
  void Run(std::function<std::function<void()>(dmtable::DeviceMapper&)> work);

  // First retry delay after a failed attempt; doubles up to 32 times this.
  void set_retry_delay_us(uint64_t us) { retry_delay_us_ = us; }

 private:
  struct Worker;
  struct Job {
    std::string uuid;
    std::function<void()> done;
    uint64_t next_delay_us = 0;
  };
  void Submit(std::shared_ptr<Job> job);
  void Enqueue(
      std::function<std::function<void()>(dmtable::DeviceMapper&, std::vector<std::string>&)> task);
  void Finish(std::shared_ptr<Job> job, const RearmOutcome& outcome);
  void Log(Severity s, const std::string& message) const;

  EventLoop& loop_;
  LogFn log_;
  uint64_t retry_delay_us_ = 1'000'000;
  std::shared_ptr<Worker> worker_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace clogd::logd
