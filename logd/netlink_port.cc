// NetlinkPort: KernelLink's socket in the event loop, DmRearmer for rearms and leg removal.
#include "logd/netlink_port.h"

#include <sys/epoll.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <vector>

#include "logd/dm_legs.h"

namespace clogd::logd {

NetlinkPort::NetlinkPort(LogFn log, std::unique_ptr<dmtable::DeviceMapper> dm,
                         uint32_t slow_request_ms, std::string request_record_path)
    : log_(std::move(log)),
      dm_(std::move(dm)),
      slow_request_us_(static_cast<int64_t>(slow_request_ms) * 1000),
      request_record_path_(std::move(request_record_path)) {}

NetlinkPort::~NetlinkPort() {
  if (loop_ != nullptr && sweep_timer_ != 0) loop_->Cancel(sweep_timer_);
  if (loop_ != nullptr && link_.fd() >= 0) loop_->Unwatch(link_.fd());
}

Status NetlinkPort::Open(EventLoop& loop, FrameFn on_frame) {
  CLOG_RETURN_IF_ERROR(link_.Open());
  ReleaseOrphanedRequests();
  loop_ = &loop;
  on_frame_ = std::move(on_frame);
  rearmer_.emplace(loop, std::move(dm_), log_);
  // A clogd killed in the middle of a leg removal may have left a mirror suspended with a
  // table loaded: its old table comes back first (the cluster's record tells the log later
  // whether to remove the leg after all).
  rearmer_->Run([log = log_](dmtable::DeviceMapper& dm) {
    std::vector<std::string> problems;
    std::vector<std::string> resumed = DropLeftoverReloads(dm, problems);
    return std::function<void()>([log, resumed, problems] {
      if (!log) return;
      for (const std::string& name : resumed) {
        log(Severity::kWarning, name +
                                    ": was suspended with a table loaded (a leg removal "
                                    "cut short): dropped it and resumed the old table");
      }
      for (const std::string& p : problems) log(Severity::kError, "leftover reload: " + p);
    });
  });
  CLOG_RETURN_IF_ERROR(loop.Watch(link_.fd(), EPOLLIN, [this](uint32_t) { Receive(); }));
  ScheduleSweep();
  return Status::Ok();
}

Status NetlinkPort::SendAgain(uint32_t seq) { return link_.SendRetry(seq); }

namespace {
int64_t ProcessCpuNs() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}
}  // namespace

void NetlinkPort::ScheduleSweep() {
  sweep_due_ = std::chrono::steady_clock::now() + kSweepPeriod;
  sweep_cpu_ns_ = ProcessCpuNs();
  sweep_timer_ =
      loop_->Schedule(std::chrono::duration_cast<std::chrono::microseconds>(kSweepPeriod).count(),
                      [this] { Sweep(); });
}

void NetlinkPort::Sweep() {
  const auto now = std::chrono::steady_clock::now();
  const int64_t late_us =
      std::chrono::duration_cast<std::chrono::microseconds>(now - sweep_due_).count();
  if (late_us >= slow_request_us_ && log_) {
    const int64_t cpu_ms = (ProcessCpuNs() - sweep_cpu_ns_) / 1'000'000;
    log_(Severity::kInfo, "event loop ran " + std::to_string(late_us / 1000) +
                              " ms late (clogd used " + std::to_string(cpu_ms) +
                              " ms of CPU meanwhile): kernel requests waited unread that long");
  }
  for (auto it = received_.begin(); it != received_.end();) {
    const auto held = now - it->second.at;
    if (held < kResendHeldAfter) {
      ++it;
      continue;
    }
    Status s = SendAgain(it->first);
    if (log_) {
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(held).count();
      log_(s.ok() ? Severity::kInfo : Severity::kWarning,
           "kernel request " + RequestTypeName(it->second.raw_type & 0xff) + " (seq " +
               std::to_string(it->first) + ") of log " + it->second.uuid + " held " +
               std::to_string(secs) + " s: " +
               (s.ok() ? "asked the kernel to send it again (-EAGAIN) before its 15 s timeout"
                       : "could not ask the kernel to send it again: " + s.ToString()));
    }
    it = received_.erase(it);
  }
  ScheduleSweep();
}

void NetlinkPort::Receive() {
  std::vector<std::vector<uint8_t>> frames;
  Status s = link_.ReceiveFrames(frames);
  for (const auto& frame : frames) {
    NoteReceived(frame);
    on_frame_(frame);
  }
  if (!s.ok() && log_) log_(Severity::kWarning, "kernel link: " + s.ToString());
}

void NetlinkPort::ReleaseOrphanedRequests() {
  if (request_record_path_.empty()) return;
  auto record = RequestRecord::Open(request_record_path_);
  if (!record.ok()) {
    // Serving matters more: without the record a restart after a kill only waits longer.
    if (log_) log_(Severity::kWarning, record.status().message() + "; serving without it");
    return;
  }
  request_record_.emplace(std::move(record).value());
  auto last = request_record_->previous_last();
  if (!last) return;
  const auto seqs = RequestRecord::SeqsToRelease(*last);
  size_t failed = 0;
  for (uint32_t seq : seqs) {
    if (!SendAgain(seq).ok()) ++failed;
  }
  if (log_) {
    log_(Severity::kInfo,
         "asked the kernel to resend any request the previous clogd took and did not answer "
         "(-EAGAIN to seqs " +
             std::to_string(seqs.back()) + "-" + std::to_string(seqs.front()) +
             " around its last, " + std::to_string(*last) + ")" +
             (failed ? "; " + std::to_string(failed) + " of them could not be sent" : ""));
  }
}

void NetlinkPort::NoteReceived(const std::vector<uint8_t>& frame) {
  auto request = DecodeRequest(frame);
  if (!request.ok()) return;  // refused where it is handled
  if (request_record_) request_record_->Note(request->seq);
  // Answered requests leave the map and held ones leave it after kResendHeldAfter, so it
  // stays small; the clear is only a backstop.
  if (received_.size() > 4096) received_.clear();
  received_[request->seq] =
      Received{std::chrono::steady_clock::now(), request->raw_type, request->uuid};
}

void NetlinkPort::NoteAnswered(const UlogReply& reply) {
  auto it = received_.find(reply.seq);
  if (it == received_.end()) return;
  const auto waited = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - it->second.at)
                          .count();
  received_.erase(it);
  if (waited >= slow_request_us_ && log_) {
    log_(Severity::kInfo, "kernel request " + RequestTypeName(reply.raw_type & 0xff) + " (seq " +
                              std::to_string(reply.seq) + ") of log " + reply.uuid +
                              " answered after " + std::to_string(waited / 1000) + " ms");
  }
}

void NetlinkPort::Reply(const UlogReply& reply) {
  NoteAnswered(reply);
  Status s = link_.Send(reply);
  if (!s.ok() && log_) log_(Severity::kError, s.ToString());
}

void NetlinkPort::Rearm(const std::string& uuid, std::function<void()> done) {
  if (!rearmer_) {
    // Before Open there is no kernel connection, so nothing of it can be in flight.
    if (log_) log_(Severity::kWarning, "rearm of log " + uuid + " before the port opened");
    done();
    return;
  }
  rearmer_->Rearm(uuid, std::move(done));
}

LegHooks NetlinkPort::Legs() {
  LegHooks hooks;
  hooks.inspect = [this](const std::string& uuid, std::function<void(Result<LegHealth>)> done) {
    if (!rearmer_) return done(Busy("the kernel port is not open"));
    rearmer_->Run([uuid, done](dmtable::DeviceMapper& dm) {
      auto legs = ReadLegs(dm, uuid);
      return std::function<void()>([legs, done] {
        if (!legs.ok()) return done(IoError(legs.error().message));
        done(LegHealth{legs->legs, legs->failed});
      });
    });
  };
  hooks.prepare = [this](const std::string& uuid, const LegChange& change,
                         std::function<void(Status)> done) {
    if (!rearmer_) return done(Busy("the kernel port is not open"));
    rearmer_->Run([uuid, change, done, log = log_](dmtable::DeviceMapper& dm) {
      const auto start = std::chrono::steady_clock::now();
      auto device = PrepareLegChange(dm, uuid, change);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
      return std::function<void()>([device, change, done, log, ms] {
        if (!device.ok()) return done(IoError(device.error().message));
        if (log) {
          // The time tells a slow suspend (it waits for the kernel's copies in flight)
          // from a slow vote.
          std::string what;
          if (change.remove) what = " without leg " + std::to_string(*change.remove);
          if (!change.add_device.empty()) {
            what += (what.empty() ? " with " : " and with ") + change.add_device;
          }
          log(Severity::kInfo, *device + ": suspended (noflush) with its table" + what +
                                   " loaded in " + std::to_string(ms) + " ms");
        }
        done(Status::Ok());
      });
    });
  };
  hooks.finish = [this](const std::string& uuid, bool commit, std::function<void()> done) {
    if (!rearmer_) return done();
    rearmer_->Run([uuid, commit, done, log = log_](dmtable::DeviceMapper& dm) {
      auto finished = FinishLegChange(dm, uuid, commit);
      return std::function<void()>([finished, commit, uuid, done, log] {
        if (log && !finished.ok()) {
          log(Severity::kError, std::string(commit ? "resuming the table with the new legs"
                                                   : "dropping the loaded table") +
                                    " of log " + uuid + " failed: " + finished.error().message);
        }
        done();
      });
    });
  };
  return hooks;
}

}  // namespace clogd::logd
