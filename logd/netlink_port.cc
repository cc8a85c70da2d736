// NetlinkPort: KernelLink's socket in the event loop, DmRearmer for rearms.
#include "logd/netlink_port.h"

#include <sys/epoll.h>

#include <vector>

namespace clogd::logd {

NetlinkPort::NetlinkPort(LogFn log, std::unique_ptr<dmtable::DeviceMapper> dm,
                         uint32_t slow_request_ms)
    : log_(std::move(log)),
      dm_(std::move(dm)),
      slow_request_us_(static_cast<int64_t>(slow_request_ms) * 1000) {}

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
  for (const auto& frame : frames) {
    NoteReceived(frame);
    on_frame_(frame);
  }
  if (!s.ok() && log_) log_(Severity::kWarning, "kernel link: " + s.ToString());
}

void NetlinkPort::NoteReceived(const std::vector<uint8_t>& frame) {
  auto request = DecodeRequest(frame);
  if (!request.ok()) return;  // refused where it is handled
  // The kernel has one request in flight per log at a time and resends with a new seq, so
  // this stays small; a seq never answered (a log gone) is dropped when the map grows.
  if (received_.size() > 4096) received_.clear();
  received_[request->seq] = std::chrono::steady_clock::now();
}

void NetlinkPort::NoteAnswered(const UlogReply& reply) {
  auto it = received_.find(reply.seq);
  if (it == received_.end()) return;
  const auto waited = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - it->second)
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

}  // namespace clogd::logd
