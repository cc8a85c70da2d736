// clogctl's side of the control socket. Blocking connect (a Unix socket connects at once
// or not at all), then poll-bounded reads so a wedged daemon cannot hang the operator.
#include "logd/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

namespace clogd::logd {

namespace {

constexpr size_t kMaxReplyBytes = 64 << 20;

}  // namespace

Result<ControlClient> ControlClient::Connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return IoError("control socket path '" + path + "' is too long or empty");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return IoError(std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(fd);
    switch (err) {
      case ENOENT:
        return NotFound("no control socket at " + path + ": is clogd running?");
      case ECONNREFUSED:
        return NotFound("clogd is not running (nobody listens on " + path + ")");
      case EACCES:
      case EPERM:
        return IoError("permission denied on " + path + ": clogctl must run as root");
      default:
        return IoError("cannot connect to " + path + ": " + std::strerror(err));
    }
  }
  return ControlClient(fd, path);
}

ControlClient::ControlClient(ControlClient&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)), buffered_(std::move(other.buffered_)) {
  other.fd_ = -1;
}

ControlClient& ControlClient::operator=(ControlClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    buffered_ = std::move(other.buffered_);
    other.fd_ = -1;
  }
  return *this;
}

ControlClient::~ControlClient() {
  if (fd_ >= 0) close(fd_);
}

Result<std::string> ControlClient::Call(const std::string& request, int timeout_ms) {
  const std::string line = request + "\n";
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      // A refused client (not root) is sent its error and closed; read what it said.
      if (errno == EPIPE || errno == ECONNRESET) break;
      return IoError("sending to clogd on " + path_ + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  auto reply = ReadLine(timeout_ms);
  if (!reply.ok()) return reply.status();
  const auto j = nlohmann::json::parse(*reply, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    auto err = j.find("error");
    if (err != j.end() && err->is_string()) return IoError("clogd: " + err->get<std::string>());
  }
  return reply;
}

Result<std::string> ControlClient::ReadLine(int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (size_t nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    if (buffered_.size() > kMaxReplyBytes) {
      return IoError("reply from clogd longer than " + std::to_string(kMaxReplyBytes) + " bytes");
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return IoError("clogd did not answer within " + std::to_string(timeout_ms / 1000) + " s");
    }
    pollfd p{fd_, POLLIN, 0};
    const int rc = poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno != EINTR) return IoError(std::string("poll: ") + std::strerror(errno));
    if (rc <= 0) continue;
    char buf[65536];
    const ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      // Data queued before a reset was read already; this is the reset itself.
      return IoError("clogd closed the connection without a reply (" +
                     std::string(std::strerror(errno)) + ")");
    }
    if (n == 0) return IoError("clogd closed the connection without a reply");
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace clogd::logd
