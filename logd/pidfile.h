// The pidfile lock: an exclusive flock held for the life of the process, so two daemons
// never serve the same kernel. The file holds the pid of the holder.
#pragma once

#include <string>

#include "region/status.h"

namespace clogd::logd {

class Pidfile {
 public:
  Pidfile() = default;
  ~Pidfile();  // releases the lock (the file stays; a stale file is harmless)
  Pidfile(const Pidfile&) = delete;
  Pidfile& operator=(const Pidfile&) = delete;

  // kBusy, naming the path and the holder's pid, if another process holds it.
  Status Lock(const std::string& path);
  // After fork (daemon()): writes the current pid.
  Status WritePid();

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace clogd::logd
