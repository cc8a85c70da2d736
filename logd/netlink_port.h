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

namespace clogd::logd {

class NetlinkPort : public KernelPort {
 public:
  // A request answered `slow_request_ms` or more after it came in is logged with its wait
  // (an administrator looking for a write stall sees whether the log caused it).
  NetlinkPort(LogFn log, std::unique_ptr<dmtable::DeviceMapper> dm, uint32_t slow_request_ms);
  ~NetlinkPort() override;

  Status Open(EventLoop& loop, FrameFn on_frame) override;
  void Reply(const UlogReply& reply) override;
  void Rearm(const std::string& uuid, std::function<void()> done) override;
  std::string Describe() const override { return "netlink connector"; }

 private:
  void Receive();
  // Notes when each request came in, to name the ones answered late.
  void NoteReceived(const std::vector<uint8_t>& frame);
  void NoteAnswered(const UlogReply& reply);

  LogFn log_;
  std::unique_ptr<dmtable::DeviceMapper> dm_;  // handed to the rearmer at Open
  EventLoop* loop_ = nullptr;
  FrameFn on_frame_;
  KernelLink link_;
  std::optional<DmRearmer> rearmer_;
  int64_t slow_request_us_;
  std::unordered_map<uint32_t, std::chrono::steady_clock::time_point> received_;  // by seq
};

}  // namespace clogd::logd
