// How the daemon talks to "the kernel": request frames in, reply frames out, and rearms
// (suspend noflush + resume of the mirrors using a log). Two implementations: NetlinkPort
// (the real kernel: netlink connector + libdevmapper) and SocketLink (a test driver on a
// Unix socket, TEST_LINK.md). The daemon and the engine see only this.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "logd/event_loop.h"
#include "logd/log_engine.h"
#include "region/status.h"

namespace clogd::logd {

class KernelPort : public ReplySink {
 public:
  // One dm_ulog_request frame (header + payload) as the kernel sent it.
  using FrameFn = std::function<void(std::span<const uint8_t> frame)>;

  // Starts receiving: each request frame goes to `on_frame` on the loop thread.
  virtual Status Open(EventLoop& loop, FrameFn on_frame) = 0;
  // ReplySink::Reply sends one reply frame; failures are logged, never thrown.

  // Quiesces and restarts the local mirror(s) using log `uuid` (a noflush suspend, then a
  // resume); calls `done` on the loop thread once that happened. The loop keeps serving
  // meanwhile: the suspend itself sends PRESUSPEND/POSTSUSPEND/RESUME to this daemon.
  virtual void Rearm(const std::string& uuid, std::function<void()> done) = 0;

  // What a leg removal does to the local mirror (EngineOptions::legs). Empty by default:
  // a port without them leaves a failed leg's writes held.
  virtual LegHooks Legs() { return {}; }

  // "netlink connector", "test socket /path": for log lines.
  virtual std::string Describe() const = 0;
};

}  // namespace clogd::logd
