// The production kernel port: requests and replies over the netlink connector
// (KernelLink), rearms through the device-mapper on a worker thread (DmRearmer).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "dmtable/dm_device.h"
#include "logd/dm_rearm.h"
#include "logd/kernel_link.h"
#include "logd/kernel_port.h"
#include "logd/logging.h"

namespace clogd::logd {

class NetlinkPort : public KernelPort {
 public:
  NetlinkPort(LogFn log, std::unique_ptr<dmtable::DeviceMapper> dm);
  ~NetlinkPort() override;

  Status Open(EventLoop& loop, FrameFn on_frame) override;
  void Reply(const UlogReply& reply) override;
  void Rearm(const std::string& uuid, std::function<void()> done) override;
  std::string Describe() const override { return "netlink connector"; }

 private:
  void Receive();

  LogFn log_;
  std::unique_ptr<dmtable::DeviceMapper> dm_;  // handed to the rearmer at Open
  EventLoop* loop_ = nullptr;
  FrameFn on_frame_;
  KernelLink link_;
  std::optional<DmRearmer> rearmer_;
};

}  // namespace clogd::logd
