// clogd's production cluster link: CpgTransport (corosync CPG + votequorum) seen through
// the DaemonCluster interface the Daemon uses.
#pragma once

#include <memory>

#include "logd/daemon_cluster.h"

namespace clogd::logd {

std::unique_ptr<DaemonCluster> MakeCpgCluster(LogFn log, FdWatch watch);

}  // namespace clogd::logd
