// The test kernel link: clogd listens on a Unix SOCK_SEQPACKET socket and one driver
// program (a dm-raid1 model, a test) plays the kernel, exchanging the same dm_ulog_request
// frames the netlink connector carries, plus rearm requests. Framing: TEST_LINK.md. For
// tests and tools only; production uses NetlinkPort.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "logd/kernel_port.h"
#include "logd/logging.h"

namespace clogd::logd {

// Message kinds: the first byte of every SEQPACKET message.
inline constexpr uint8_t kLinkRequest = 'Q';     // kernel -> daemon: request frame
inline constexpr uint8_t kLinkReply = 'A';       // daemon -> kernel: reply frame
inline constexpr uint8_t kLinkRearm = 'S';       // daemon -> kernel: rearm log <uuid>
inline constexpr uint8_t kLinkRearmDone = 'D';   // kernel -> daemon: rearm of <uuid> done
inline constexpr size_t kLinkMaxMessage = 4096;  // larger messages are a protocol error

class SocketLink : public KernelPort {
 public:
  SocketLink(std::string path, LogFn log);
  ~SocketLink() override;
  SocketLink(const SocketLink&) = delete;
  SocketLink& operator=(const SocketLink&) = delete;

  // Binds and listens at the path. A stale socket file nobody listens on is replaced; one
  // with a live listener is refused.
  Status Open(EventLoop& loop, FrameFn on_frame) override;
  void Reply(const UlogReply& reply) override;
  // Sends 'S' to the driver and calls `done` when its 'D' for the uuid comes back. With no
  // driver connected (or when it disconnects first) `done` runs at once: a kernel that
  // went away has nothing in flight to quiesce.
  void Rearm(const std::string& uuid, std::function<void()> done) override;
  std::string Describe() const override { return "test socket " + path_; }

  bool driver_connected() const { return driver_fd_ >= 0; }
  size_t pending_rearms() const { return rearms_.size(); }

 private:
  void Accept();
  void OnDriverEvent(uint32_t events);
  void HandleMessage(const uint8_t* data, size_t size);
  void Send(uint8_t kind, const uint8_t* body, size_t size);
  void FlushOutbox();
  Status WatchDriver(bool writable);
  void Disconnect(const std::string& why);
  void Log(Severity s, const std::string& message) const;

  std::string path_;
  LogFn log_;
  EventLoop* loop_ = nullptr;
  FrameFn on_frame_;
  int listen_fd_ = -1;
  bool bound_ = false;  // the socket file is ours to remove
  int driver_fd_ = -1;
  bool watching_writable_ = false;
  // Messages the driver's socket buffer had no room for, sent when it becomes writable.
  std::deque<std::vector<uint8_t>> outbox_;
  std::deque<std::pair<std::string, std::function<void()>>> rearms_;  // awaiting 'D'
};

}  // namespace clogd::logd
