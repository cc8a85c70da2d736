// The client side of clogd's control socket, for clogctl: connect, send one request
// line, read one reply line (bounded wait). Errors are one-line messages an operator can
// act on ("no control socket at /run/clogd.sock: is clogd running?").
#pragma once

#include <string>

#include "region/status.h"

namespace clogd::logd {

class ControlClient {
 public:
  // kNotFound when no socket file exists or nobody listens on it (clogd not running);
  // kIoError otherwise (permission denied, ...). The message names the path and cause.
  static Result<ControlClient> Connect(const std::string& path);

  ControlClient(ControlClient&& other) noexcept;
  ControlClient& operator=(ControlClient&& other) noexcept;
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;
  ~ControlClient();

  // Sends `request` (one JSON object, no newline) and returns the reply line. A reply
  // that is an {"error": ...} object becomes a non-ok Status carrying clogd's message.
  Result<std::string> Call(const std::string& request, int timeout_ms = 10000);

 private:
  explicit ControlClient(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Result<std::string> ReadLine(int timeout_ms);

  int fd_ = -1;
  std::string path_;
  std::string buffered_;  // bytes after the last line read
};

}  // namespace clogd::logd
