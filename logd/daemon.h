// clogd's daemon: one event loop that owns the kernel port (netlink or the test socket),
// the log engine, the cluster link in cluster mode, timers and signals. clogd_main.cc
// parses the command line and calls this; everything the daemon decides lives here.
//
// Signals: SIGTERM/SIGINT exit only when no log is active (their mirrors would hang) and
// say so otherwise; SIGQUIT exits anyway (like a crash: marks stay in the slots, the
// kernel re-sends CTR/RESUME to the next daemon); SIGHUP reopens logging.
// Cluster mode: the link connects with backoff ("waiting for corosync"); the node id comes
// from corosync (a --node-id that disagrees is refused) and the expected cluster size from
// votequorum unless given. Until the first connection every kernel request waits; later,
// only those of clustered logs the engine does not have yet (HeldRequests).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "dmtable/dm_device.h"
#include "logd/daemon_cluster.h"
#include "logd/event_loop.h"
#include "logd/held_requests.h"
#include "logd/kernel_port.h"
#include "logd/log_engine.h"
#include "logd/signal_watch.h"

namespace clogd::logd {

struct DaemonConfig {
  std::optional<NodeId> node_id;  // --node-id; single-node default 1
  bool reinitialize = false;
  std::string kernel_socket;  // non-empty: the test link (TEST_LINK.md) instead of netlink
  bool cluster = false;
  uint32_t expected_nodes = 0;     // cluster mode; 0: ask votequorum
  uint32_t slow_request_ms = 250;  // kernel requests answered later than this are logged
  // Cluster mode: how long after a node left nobody copies a region (EngineOptions::
  // fence_grace_us): a node cut off by a partition freezes its mirror within about this.
  uint32_t fence_grace_ms = 3000;
  // RequestRecord (netlink only; empty: none): lets a restarted clogd release the kernel
  // requests a killed one left unanswered. clogd sets it beside the pidfile.
  std::string request_record;
  uint64_t connect_retry_first_us = 500'000;
  uint64_t connect_retry_max_us = 5'000'000;
};

struct DaemonHooks {
  LogFn log;
  std::function<void()> reopen_log;                // SIGHUP; may be empty
  std::function<void(const std::string&)> notify;  // sd_notify lines; may be empty
  DeviceOpener opener;                             // log devices (OpenLogDevice)
  ClusterFactory cluster;                          // required with config.cluster
  // The netlink port's device-mapper (tests inject a fake); empty: libdevmapper.
  std::function<std::unique_ptr<dmtable::DeviceMapper>()> device_mapper;
};

class Daemon {
 public:
  Daemon(DaemonConfig config, DaemonHooks hooks);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Opens the loop, signals and kernel port, and starts serving (or connecting). Call
  // before starting other threads: the signals are blocked in the calling thread.
  Status Start();
  // Runs until an exit; returns the process exit code.
  int Run();

  EventLoop& loop() { return loop_; }
  const LogEngine* engine() const { return engine_.get(); }
  LogEngine* engine() { return engine_.get(); }
  size_t held_requests() const { return held_.size(); }

 private:
  void OnFrame(std::span<const uint8_t> frame);
  void OnSignal(int signo);
  void TryConnect();
  void ScheduleConnect();
  void OnConnected();
  void WatchClusterFd(int fd, bool watch);
  void CreateEngine(NodeId node, uint32_t expected_nodes);
  void Exit(int code);
  void Log(Severity s, const std::string& message) const;
  void Notify(const std::string& line) const;

  DaemonConfig config_;
  DaemonHooks hooks_;
  // Declaration order is destruction order reversed: the engine goes first (it replies
  // through the port and multicasts through the cluster link), the loop last.
  EventLoop loop_;
  SignalWatch signals_;
  std::unique_ptr<KernelPort> port_;
  std::unique_ptr<DaemonCluster> cluster_;
  std::unique_ptr<LogEngine> engine_;
  HeldRequests held_;
  NodeId engine_node_ = 0;
  uint64_t connect_delay_us_ = 0;
  bool connect_scheduled_ = false;
  bool waiting_logged_ = false;
  int exit_code_ = 0;
};

}  // namespace clogd::logd
