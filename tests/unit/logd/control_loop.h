// Test helpers for the control socket: a tiny epoll loop that drives a ControlServer the
// way clogd's event loop does (the server says which fds to watch; the loop calls
// OnReadable/OnWritable), and a raw client that waits for a reply with a bound while the
// loop runs — everything on one thread, so no test needs a sleep.
#pragma once

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "logd/control_server.h"

namespace clogd::logd::testing {

class ControlLoop {
 public:
  ControlLoop() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~ControlLoop() { close(epoll_fd_); }
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  // ControlOptions::watch for a server driven by this loop.
  std::function<void(int, uint32_t)> Watcher() {
    return [this](int fd, uint32_t events) {
      epoll_event ev{};
      ev.events = events;
      ev.data.fd = fd;
      if (events == 0) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        watched_.erase(fd);
      } else if (watched_.contains(fd)) {
        epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
        watched_[fd] = events;
      } else {
        epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
        watched_[fd] = events;
      }
    };
  }
  void Serve(ControlServer* server) { server_ = server; }

  // Waits up to `ms` for events and dispatches them; returns how many were handled.
  int RunOnce(int ms) {
    epoll_event events[16];
    const int n = epoll_wait(epoll_fd_, events, 16, ms);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (!server_->Owns(fd)) continue;  // dropped earlier in this batch
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) server_->OnReadable(fd);
      if ((events[i].events & EPOLLOUT) && server_->Owns(fd)) server_->OnWritable(fd);
    }
    return n < 0 ? 0 : n;
  }
  // Runs the loop until `done()` or `bound_ms` passed; returns done().
  bool RunUntil(const std::function<bool()>& done, int bound_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return done();
      RunOnce(10);
    }
    return true;
  }
  bool Watching(int fd) const { return watched_.contains(fd); }
  uint32_t Events(int fd) const {
    auto it = watched_.find(fd);
    return it == watched_.end() ? 0 : it->second;
  }

 private:
  int epoll_fd_;
  ControlServer* server_ = nullptr;
  std::map<int, uint32_t> watched_;
};

// The client end of a control connection, read without blocking while the loop runs.
class RawClient {
 public:
  explicit RawClient(int fd) : fd_(fd) { fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK); }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool Send(const std::string& bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
  }
  // The next reply line, or nullopt if none arrived within the bound (or the server
  // closed the connection first: then closed() is true).
  std::optional<std::string> Reply(ControlLoop& loop, int bound_ms = 5000) {
    std::optional<std::string> line;
    loop.RunUntil(
        [&] {
          Pull();
          if (size_t nl = in_.find('\n'); nl != std::string::npos) {
            line = in_.substr(0, nl);
            in_.erase(0, nl + 1);
            return true;
          }
          return closed_;
        },
        bound_ms);
    return line;
  }
  // True once the server closed its end and everything it sent was read.
  bool WaitClosed(ControlLoop& loop, int bound_ms = 5000) {
    return loop.RunUntil(
        [&] {
          Pull();
          return closed_;
        },
        bound_ms);
  }
  bool closed() const { return closed_; }

 private:
  void Pull() {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd_, buf, sizeof(buf));
      if (n > 0) {
        in_.append(buf, size_t(n));
        continue;
      }
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) closed_ = true;
      return;
    }
  }

  int fd_;
  std::string in_;
  bool closed_ = false;
};

}  // namespace clogd::logd::testing
