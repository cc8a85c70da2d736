// SocketLink: one listening SOCK_SEQPACKET socket, at most one driver connection. Every
// message is one kind byte and a body (TEST_LINK.md).
#include "logd/socket_link.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "logd/ulog_codec.h"

namespace clogd::logd {

namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

Result<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("test socket path '" + path + "' must be 1.." +
                           std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

SocketLink::SocketLink(std::string path, LogFn log)
    : path_(std::move(path)), log_(std::move(log)) {}

SocketLink::~SocketLink() {
  if (driver_fd_ >= 0) {
    loop_->Unwatch(driver_fd_);
    close(driver_fd_);
  }
  if (listen_fd_ >= 0) {
    if (loop_ != nullptr) loop_->Unwatch(listen_fd_);
    close(listen_fd_);
  }
  if (bound_) unlink(path_.c_str());
}

void SocketLink::Log(Severity s, const std::string& message) const {
  if (log_) log_(s, "test socket: " + message);
}

Status SocketLink::Open(EventLoop& loop, FrameFn on_frame) {
  auto addr = AddressOf(path_);
  if (!addr.ok()) return addr.status();
  const auto* sa = reinterpret_cast<const sockaddr*>(&*addr);
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return InvalidArgument(path_ + " exists and is not a socket");
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && connect(probe, sa, sizeof(*addr)) == 0;
    if (probe >= 0) close(probe);
    if (live) return Busy("another process listens on " + path_);
    unlink(path_.c_str());  // left behind by a daemon that died
  }
  listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return IoError(Errno("socket"));
  if (bind(listen_fd_, sa, sizeof(*addr)) < 0) return IoError(Errno("bind " + path_));
  bound_ = true;
  if (listen(listen_fd_, 4) < 0) return IoError(Errno("listen " + path_));
  loop_ = &loop;
  on_frame_ = std::move(on_frame);
  return loop.Watch(listen_fd_, EPOLLIN, [this](uint32_t) { Accept(); });
}

void SocketLink::Accept() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        Log(Severity::kWarning, Errno("accept"));
      }
      return;
    }
    if (driver_fd_ >= 0) {
      // One kernel at a time: the second driver sees its connection closed at once.
      Log(Severity::kWarning, "refused a second driver (one at a time)");
      close(fd);
      continue;
    }
    driver_fd_ = fd;
    watching_writable_ = true;  // forces the first WatchDriver to register
    if (Status s = WatchDriver(false); !s.ok()) {
      Log(Severity::kError, s.ToString());
      close(fd);
      driver_fd_ = -1;
      continue;
    }
    Log(Severity::kInfo, "driver connected");
  }
}

void SocketLink::OnDriverEvent(uint32_t events) {
  if (events & EPOLLOUT) FlushOutbox();
  uint8_t buf[kLinkMaxMessage + 1];
  while (driver_fd_ >= 0) {
    ssize_t n = recv(driver_fd_, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Disconnect(Errno("recv"));
      return;
    }
    if (n == 0) {
      Disconnect("driver disconnected");
      return;
    }
    HandleMessage(buf, static_cast<size_t>(n));
  }
  // Readable data is consumed above; a hang-up with nothing left to read is the end.
  if (driver_fd_ >= 0 && (events & (EPOLLHUP | EPOLLERR))) Disconnect("driver hung up");
}

void SocketLink::HandleMessage(const uint8_t* data, size_t size) {
  if (size > kLinkMaxMessage) {
    Disconnect("protocol error: message longer than " + std::to_string(kLinkMaxMessage));
    return;
  }
  if (size == 0) {
    Disconnect("protocol error: empty message");
    return;
  }
  const uint8_t kind = data[0];
  if (kind == kLinkRequest) {
    on_frame_(std::span<const uint8_t>(data + 1, size - 1));
    return;
  }
  if (kind == kLinkRearmDone) {
    const std::string uuid(reinterpret_cast<const char*>(data + 1), size - 1);
    for (auto it = rearms_.begin(); it != rearms_.end(); ++it) {
      if (it->first != uuid) continue;
      std::function<void()> done = std::move(it->second);
      rearms_.erase(it);
      done();
      return;
    }
    Log(Severity::kWarning, "rearm done for log " + uuid + " that no rearm waits for");
    return;
  }
  Disconnect("protocol error: unknown message kind " + std::to_string(kind));
}

void SocketLink::Reply(const UlogReply& reply) {
  if (driver_fd_ < 0) {
    Log(Severity::kDebug, "reply seq " + std::to_string(reply.seq) + " dropped: no driver");
    return;
  }
  std::vector<uint8_t> frame = EncodeReply(reply);
  Send(kLinkReply, frame.data(), frame.size());
}

void SocketLink::Rearm(const std::string& uuid, std::function<void()> done) {
  if (driver_fd_ < 0) {
    loop_->Post(std::move(done));
    return;
  }
  rearms_.emplace_back(uuid, std::move(done));
  Send(kLinkRearm, reinterpret_cast<const uint8_t*>(uuid.data()), uuid.size());
}

void SocketLink::Send(uint8_t kind, const uint8_t* body, size_t size) {
  std::vector<uint8_t> message(1 + size);
  message[0] = kind;
  if (size > 0) std::memcpy(message.data() + 1, body, size);
  outbox_.push_back(std::move(message));
  FlushOutbox();
}

void SocketLink::FlushOutbox() {
  while (driver_fd_ >= 0 && !outbox_.empty()) {
    const auto& m = outbox_.front();
    ssize_t n = send(driver_fd_, m.data(), m.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      outbox_.pop_front();
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      // The driver is not reading: wait until it can take more (requests keep coming in).
      if (Status s = WatchDriver(true); !s.ok()) Disconnect(s.ToString());
      return;
    }
    Disconnect(Errno("send"));
    return;
  }
  if (driver_fd_ >= 0 && outbox_.empty()) {
    if (Status s = WatchDriver(false); !s.ok()) Disconnect(s.ToString());
  }
}

Status SocketLink::WatchDriver(bool writable) {
  if (writable == watching_writable_) return Status::Ok();
  watching_writable_ = writable;
  return loop_->Watch(driver_fd_, writable ? EPOLLIN | EPOLLOUT : EPOLLIN,
                      [this](uint32_t events) { OnDriverEvent(events); });
}

void SocketLink::Disconnect(const std::string& why) {
  if (driver_fd_ < 0) return;
  Log(Severity::kInfo, why);
  loop_->Unwatch(driver_fd_);
  close(driver_fd_);
  driver_fd_ = -1;
  outbox_.clear();
  // A kernel that went away has no I/O in flight: its rearms are complete.
  auto rearms = std::move(rearms_);
  rearms_.clear();
  for (auto& [uuid, done] : rearms) done();
}

}  // namespace clogd::logd
