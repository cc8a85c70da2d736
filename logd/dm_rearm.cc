// DmRearmer: one worker thread runs the device-mapper calls in queue order; outcomes go
// back to the loop with EventLoop::Post.
#include "logd/dm_rearm.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace clogd::logd {

namespace {

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

RearmOutcome RearmDevicesUsing(dmtable::DeviceMapper& dm, const std::string& uuid,
                               std::vector<std::string>& left_suspended) {
  RearmOutcome out;
  // Devices an earlier attempt suspended but could not resume come first: their I/O hangs.
  for (auto it = left_suspended.begin(); it != left_suspended.end();) {
    auto resumed = dm.Resume(*it);
    if (resumed.ok()) {
      it = left_suspended.erase(it);
    } else {
      out.problems.push_back("still suspended: " + resumed.error().message);
      ++it;
    }
  }
  if (!out.problems.empty()) return out;

  auto names = dm.ListDevices();
  if (!names.ok()) {
    out.problems.push_back(names.error().message);
    return out;
  }
  std::vector<dmtable::NamedTable> tables;
  for (const std::string& name : *names) {
    auto table = dm.Table(name);
    // A device removed since the listing is not ours to rearm.
    if (table.ok()) tables.push_back({name, std::move(table).value()});
  }
  for (const std::string& name : dmtable::DevicesUsingLog(tables, uuid)) {
    auto info = dm.Info(name);
    if (!info.ok()) {
      out.problems.push_back(info.error().message);
      continue;
    }
    if (info->suspended) {
      // Someone else (a table reload) holds it suspended: it is quiesced, and resuming it
      // here would cut into their operation.
      out.skipped.push_back(name);
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    auto suspended = dm.Suspend(name, /*noflush=*/true);
    if (!suspended.ok()) {
      out.problems.push_back(suspended.error().message);
      continue;
    }
    auto resumed = dm.Resume(name);
    if (!resumed.ok()) {
      out.problems.push_back(resumed.error().message);
      left_suspended.push_back(name);
      continue;
    }
    const auto held = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    out.longest_suspend_us =
        std::max<uint64_t>(out.longest_suspend_us, static_cast<uint64_t>(held.count()));
    out.rearmed.push_back(name);
  }
  return out;
}

struct DmRearmer::Worker {
  // Runs on the worker; what it returns (the delivery to the loop) runs on the worker too,
  // under mu, unless the rearmer is gone by then.
  using Task = std::function<std::function<void()>(dmtable::DeviceMapper&,
                                                   std::vector<std::string>& left_suspended)>;
  std::unique_ptr<dmtable::DeviceMapper> dm;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task> queue;
  bool stop = false;
  bool busy = false;
  std::vector<std::string> left_suspended;  // worker thread only
  std::thread thread;

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stop || !queue.empty(); });
      if (stop) return;
      Task task = std::move(queue.front());
      queue.pop_front();
      busy = true;
      lock.unlock();
      std::function<void()> deliver = task(*dm, left_suspended);
      lock.lock();
      busy = false;
      if (stop) return;
      if (deliver) deliver();
    }
  }
};

DmRearmer::DmRearmer(EventLoop& loop, std::unique_ptr<dmtable::DeviceMapper> dm, LogFn log)
    : loop_(loop), log_(std::move(log)), worker_(std::make_shared<Worker>()) {
  worker_->dm = std::move(dm);
  worker_->thread = std::thread([w = worker_] { w->Run(); });
}

DmRearmer::~DmRearmer() {
  *alive_ = false;
  bool busy;
  {
    std::lock_guard<std::mutex> lock(worker_->mu);
    worker_->stop = true;
    busy = worker_->busy;
  }
  worker_->cv.notify_all();
  if (busy) {
    worker_->thread.detach();  // it holds its own reference to the worker state
  } else {
    worker_->thread.join();
  }
}

void DmRearmer::Log(Severity s, const std::string& message) const {
  if (log_) log_(s, message);
}

void DmRearmer::Rearm(const std::string& uuid, std::function<void()> done) {
  auto job = std::make_shared<Job>();
  job->uuid = uuid;
  job->done = std::move(done);
  job->next_delay_us = retry_delay_us_;
  Submit(std::move(job));
}

void DmRearmer::Submit(std::shared_ptr<Job> job) {
  std::weak_ptr<bool> alive = alive_;
  auto deliver = [this, alive, job, &loop = loop_](RearmOutcome outcome) {
    loop.Post([this, alive, job, outcome = std::move(outcome)] {
      if (alive.expired() || !*alive.lock()) return;
      Finish(job, outcome);
    });
  };
  Enqueue([uuid = job->uuid, deliver](dmtable::DeviceMapper& dm,
                                      std::vector<std::string>& left_suspended) {
    RearmOutcome outcome = RearmDevicesUsing(dm, uuid, left_suspended);
    return std::function<void()>([deliver, outcome] { deliver(outcome); });
  });
}

void DmRearmer::Enqueue(
    std::function<std::function<void()>(dmtable::DeviceMapper&, std::vector<std::string>&)> task) {
  {
    std::lock_guard<std::mutex> lock(worker_->mu);
    worker_->queue.push_back(std::move(task));
  }
  worker_->cv.notify_one();
}

void DmRearmer::Run(std::function<std::function<void()>(dmtable::DeviceMapper&)> work) {
  std::weak_ptr<bool> alive = alive_;
  Enqueue([alive, work = std::move(work), &loop = loop_](dmtable::DeviceMapper& dm,
                                                         std::vector<std::string>&) {
    std::function<void()> then = work(dm);
    return std::function<void()>([alive, then, &loop] {
      loop.Post([alive, then] {
        if (alive.expired() || !*alive.lock()) return;
        if (then) then();
      });
    });
  });
}

void DmRearmer::Finish(std::shared_ptr<Job> job, const RearmOutcome& outcome) {
  if (outcome.problems.empty()) {
    std::string what = outcome.rearmed.empty() && outcome.skipped.empty()
                           ? "no local device uses it"
                           : "suspended (noflush) and resumed in " +
                                 std::to_string(outcome.longest_suspend_us / 1000) +
                                 " ms: " + Join(outcome.rearmed);
    if (!outcome.skipped.empty()) what += "; already suspended: " + Join(outcome.skipped);
    Log(Severity::kInfo, "rearm of log " + job->uuid + ": " + what);
    job->done();
    return;
  }
  Log(Severity::kError, "rearm of log " + job->uuid + " failed (retrying in " +
                            std::to_string(job->next_delay_us / 1000) +
                            " ms): " + Join(outcome.problems));
  const uint64_t delay = job->next_delay_us;
  job->next_delay_us = std::min(job->next_delay_us * 2, retry_delay_us_ * 32);
  std::weak_ptr<bool> alive = alive_;
  loop_.Schedule(delay, [this, alive, job] {
    if (alive.expired() || !*alive.lock()) return;
    Submit(job);
  });
}

}  // namespace clogd::logd
