// Pidfile: open, flock(LOCK_EX|LOCK_NB), write the pid.
#include "logd/pidfile.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace clogd::logd {

Pidfile::~Pidfile() {
  if (fd_ >= 0) close(fd_);
}

Status Pidfile::Lock(const std::string& path) {
  path_ = path;
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return IoError("pidfile " + path + ": " + std::strerror(errno));
  if (flock(fd_, LOCK_EX | LOCK_NB) < 0) {
    const int err = errno;
    char buf[32] = {};
    ssize_t n = pread(fd_, buf, sizeof(buf) - 1, 0);
    std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) return IoError("pidfile " + path + ": " + std::strerror(err));
    return Busy("another clogd" + (holder.empty() ? "" : " (pid " + holder + ")") + " holds " +
                path + "; refusing to start");
  }
  return WritePid();
}

Status Pidfile::WritePid() {
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd_, 0) != 0 || pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    return IoError("pidfile " + path_ + ": cannot write pid: " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace clogd::logd
