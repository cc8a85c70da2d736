// The production kernel port: requests and replies over the netlink connector
// (KernelLink), rearms through the device-mapper on a worker thread (DmRearmer).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "dmtable/dm_device.h"
#include "logd/dm_rearm.h"
#include "logd/kernel_link.h"
#include "logd/kernel_port.h"
#include "logd/logging.h"
#include "logd/request_record.h"

namespace clogd::logd {

class NetlinkPort : public KernelPort {
 public:
  // A request answered `slow_request_ms` or more after it came in is logged with its wait
  // (an administrator looking for a write stall sees whether the log caused it).
  // `request_record_path` (empty: none) is the RequestRecord through which a restarted
  // clogd releases the requests a killed one left unanswered.
  //
  // A request held `kResendHeldAfter` (the log is frozen: no quorum, corosync restarting)
  // is answered -EAGAIN, on which dm-log-userspace sends it again at once. Without that the
  // kernel's own 15 s timeout fires ("Request timed out ... - retrying" in dmesg) and resends
  // it: the same outcome, later and with a warning. Either way a late answer to the old seq
  // is ignored by the kernel, and the log serves the resent copy.
  static constexpr std::chrono::seconds kResendHeldAfter{10};
  NetlinkPort(LogFn log, std::unique_ptr<dmtable::DeviceMapper> dm, uint32_t slow_request_ms,
              std::string request_record_path = {});
  ~NetlinkPort() override;

  Status Open(EventLoop& loop, FrameFn on_frame) override;
  void Reply(const UlogReply& reply) override;
  void Rearm(const std::string& uuid, std::function<void()> done) override;
  // Through libdevmapper on the rearmer's worker (dm_legs.h).
  LegHooks Legs() override;
  std::string Describe() const override { return "netlink connector"; }

 private:
  void Receive();
  // Notes when each request came in, to name the ones answered late.
  void NoteReceived(const std::vector<uint8_t>& frame);
  void NoteAnswered(const UlogReply& reply);
  // Opens the request record and answers the seqs a previous clogd may have left waiting
  // with -EAGAIN (RequestRecord says why that is always safe).
  void ReleaseOrphanedRequests();
  // Every kSweepPeriod: answers -EAGAIN to the requests held kResendHeldAfter or longer,
  // and logs when it ran late by the slow-request threshold or more (the loop was busy or
  // the machine starved it; either way the kernel's requests sat unread in the socket,
  // which the per-request wait cannot see).
  void Sweep();
  void ScheduleSweep();
  Status SendAgain(uint32_t seq);

  LogFn log_;
  std::unique_ptr<dmtable::DeviceMapper> dm_;  // handed to the rearmer at Open
  EventLoop* loop_ = nullptr;
  FrameFn on_frame_;
  KernelLink link_;
  std::optional<DmRearmer> rearmer_;
  int64_t slow_request_us_;
  std::string request_record_path_;
  std::optional<RequestRecord> request_record_;
  struct Received {
    std::chrono::steady_clock::time_point at;
    uint32_t raw_type = 0;
    std::string uuid;
  };
  std::unordered_map<uint32_t, Received> received_;  // by seq, until answered
  static constexpr std::chrono::milliseconds kSweepPeriod{100};
  EventLoop::TimerId sweep_timer_ = 0;
  std::chrono::steady_clock::time_point sweep_due_;
  int64_t sweep_cpu_ns_ = 0;  // clogd's CPU time when the sweep was scheduled
};

}  // namespace clogd::logd
