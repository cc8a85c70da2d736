// NetlinkPort: KernelLink's socket in the event loop, DmRearmer for rearms.
#include "logd/netlink_port.h"

#include <sys/epoll.h>

#include <vector>

namespace clogd::logd {

NetlinkPort::NetlinkPort(LogFn log, std::unique_ptr<dmtable::DeviceMapper> dm)
    : log_(std::move(log)), dm_(std::move(dm)) {}

NetlinkPort::~NetlinkPort() {
  if (loop_ != nullptr && link_.fd() >= 0) loop_->Unwatch(link_.fd());
}

Status NetlinkPort::Open(EventLoop& loop, FrameFn on_frame) {
  CLOG_RETURN_IF_ERROR(link_.Open());
  loop_ = &loop;
  on_frame_ = std::move(on_frame);
  rearmer_.emplace(loop, std::move(dm_), log_);
  return loop.Watch(link_.fd(), EPOLLIN, [this](uint32_t) { Receive(); });
}

void NetlinkPort::Receive() {
  std::vector<std::vector<uint8_t>> frames;
  Status s = link_.ReceiveFrames(frames);
  for (const auto& frame : frames) on_frame_(frame);
  if (!s.ok() && log_) log_(Severity::kWarning, "kernel link: " + s.ToString());
}

void NetlinkPort::Reply(const UlogReply& reply) {
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

}  // namespace clogd::logd
