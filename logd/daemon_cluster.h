// What clogd needs of its cluster link beyond ClusterTransport: connect (and reconnect),
// the fds to watch, this node's id and the expected cluster size. Production adapts
// CpgTransport to it (cpg_cluster.*); tests pass a fake.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "logd/cluster_transport.h"
#include "logd/logging.h"
#include "region/status.h"

namespace clogd::logd {

// The link asks the daemon's loop to watch (true) or stop watching (false) an fd; the
// loop then calls Dispatch(fd) when it is readable.
using FdWatch = std::function<void(int fd, bool watch)>;

class DaemonCluster {
 public:
  virtual ~DaemonCluster() = default;
  // kIoError while corosync is not reachable; the daemon retries with backoff.
  virtual Status Connect() = 0;
  virtual bool connected() const = 0;
  virtual void Dispatch(int fd) = 0;
  virtual NodeId LocalNode() const = 0;
  // votequorum's expected votes (the cluster size quorum is computed against).
  virtual Result<uint32_t> ExpectedVotes() const = 0;
  virtual ClusterTransport& transport() = 0;
};

using ClusterFactory = std::function<std::unique_ptr<DaemonCluster>(LogFn log, FdWatch watch)>;

}  // namespace clogd::logd
