// A test driver for clogd's test kernel link (logd/TEST_LINK.md): connects to the
// SOCK_SEQPACKET socket and plays the kernel — sends 'Q' request frames and 'D' rearm
// completions, receives 'A' replies and 'S' rearm requests. Every wait has a bound.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "logd/socket_link.h"
#include "logd/ulog_codec.h"

namespace clogd::logd::testing {

inline uint64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

class LinkDriver {
 public:
  LinkDriver() = default;
  ~LinkDriver() { Close(); }
  LinkDriver(const LinkDriver&) = delete;
  LinkDriver& operator=(const LinkDriver&) = delete;

  // One connection attempt.
  bool TryConnect(const std::string& path) {
    Close();
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return true;
    Close();
    return false;
  }
  // Retries until the daemon listens, for at most bound_ms.
  bool Connect(const std::string& path, int bound_ms) {
    const uint64_t end = MonotonicMs() + static_cast<uint64_t>(bound_ms);
    while (!TryConnect(path)) {
      if (MonotonicMs() >= end) return false;
      poll(nullptr, 0, 10);
    }
    return true;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }

  bool SendRaw(const std::vector<uint8_t>& message) {
    return send(fd_, message.data(), message.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(message.size());
  }
  bool SendKind(uint8_t kind, const std::vector<uint8_t>& body) {
    std::vector<uint8_t> m{kind};
    m.insert(m.end(), body.begin(), body.end());
    return SendRaw(m);
  }
  bool SendRequest(const UlogRequest& request) {
    return SendKind(kLinkRequest, EncodeRequest(request));
  }
  bool SendRearmDone(const std::string& uuid) {
    return SendKind(kLinkRearmDone, std::vector<uint8_t>(uuid.begin(), uuid.end()));
  }

  // The next message within bound_ms (0: only what is already there). nullopt on timeout;
  // an empty vector at EOF (the daemon closed the connection).
  std::optional<std::vector<uint8_t>> Receive(int bound_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, bound_ms) <= 0) return std::nullopt;
    std::vector<uint8_t> buf(8192);
    ssize_t n = recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN ? std::nullopt : std::optional(std::vector<uint8_t>{});
    buf.resize(static_cast<size_t>(n));
    return buf;
  }

  // Sends `request` and waits for the 'A' reply with its seq; replies to other seqs and
  // 'S' messages that arrive meanwhile are kept in `others`.
  std::optional<UlogReply> Call(const UlogRequest& request, int bound_ms) {
    if (!SendRequest(request)) return std::nullopt;
    return AwaitReply(request.seq, bound_ms);
  }
  std::optional<UlogReply> AwaitReply(uint32_t seq, int bound_ms) {
    const uint64_t end = MonotonicMs() + static_cast<uint64_t>(bound_ms);
    for (;;) {
      for (auto it = replies_.begin(); it != replies_.end(); ++it) {
        if (it->seq == seq) {
          UlogReply r = *it;
          replies_.erase(it);
          return r;
        }
      }
      const uint64_t now = MonotonicMs();
      if (now >= end) return std::nullopt;
      auto m = Receive(static_cast<int>(end - now));
      if (!m || m->empty()) return std::nullopt;
      Keep(*m);
    }
  }
  // Keeps a received message: replies for AwaitReply, rearm requests for rearms().
  void Keep(const std::vector<uint8_t>& m) {
    if (m[0] == kLinkReply) {
      auto r = DecodeReply(std::span<const uint8_t>(m).subspan(1));
      if (r.ok()) replies_.push_back(*r);
    } else if (m[0] == kLinkRearm) {
      rearms_.emplace_back(m.begin() + 1, m.end());
    }
  }
  std::vector<std::string>& rearms() { return rearms_; }

  // For a driver in the daemon's own thread: keeps whatever already arrived (never
  // blocks), then hands out the reply with `seq` if it is there.
  std::optional<UlogReply> TakeReply(uint32_t seq) {
    while (auto m = Receive(0)) {
      if (m->empty()) break;
      Keep(*m);
    }
    for (auto it = replies_.begin(); it != replies_.end(); ++it) {
      if (it->seq == seq) {
        UlogReply r = *it;
        replies_.erase(it);
        return r;
      }
    }
    return std::nullopt;
  }

  // True once the daemon closed the connection (within bound_ms).
  bool WaitForEof(int bound_ms) {
    const uint64_t end = MonotonicMs() + static_cast<uint64_t>(bound_ms);
    for (;;) {
      const uint64_t now = MonotonicMs();
      if (now >= end) return false;
      auto m = Receive(static_cast<int>(end - now));
      if (m && m->empty()) return true;
      if (m) Keep(*m);
    }
  }

 private:
  int fd_ = -1;
  std::vector<UlogReply> replies_;
  std::vector<std::string> rearms_;
};

}  // namespace clogd::logd::testing
