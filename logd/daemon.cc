// Daemon: wiring of the loop, port, engine and cluster link; signal policy; cluster
// connection with backoff.
#include "logd/daemon.h"

#include <signal.h>
#include <sys/epoll.h>

#include <algorithm>

#include "logd/netlink_port.h"
#include "logd/socket_link.h"

namespace clogd::logd {

Daemon::Daemon(DaemonConfig config, DaemonHooks hooks)
    : config_(std::move(config)), hooks_(std::move(hooks)) {}

Daemon::~Daemon() {
  // The engine's logs reply through the port and multicast through the cluster link.
  engine_.reset();
  cluster_.reset();
  port_.reset();
}

void Daemon::Log(Severity s, const std::string& message) const {
  if (hooks_.log) hooks_.log(s, message);
}

void Daemon::Notify(const std::string& line) const {
  if (hooks_.notify) hooks_.notify(line);
}

Status Daemon::Start() {
  CLOG_RETURN_IF_ERROR(loop_.Open());
  // A callback that holds the loop holds every kernel request behind it: name it.
  loop_.SetSlowCallbackHook(uint64_t{config_.slow_request_ms} * 1000,
                            [this](const std::string& what, uint64_t us, uint64_t cpu_us) {
                              Log(Severity::kInfo, "event loop: a " + what + " callback ran " +
                                                       std::to_string(us / 1000) + " ms (" +
                                                       std::to_string(cpu_us / 1000) +
                                                       " ms of CPU); kernel " +
                                                       "requests waited behind it");
                            });
  CLOG_RETURN_IF_ERROR(signals_.Start(loop_, {SIGTERM, SIGINT, SIGQUIT, SIGHUP},
                                      [this](int signo) { OnSignal(signo); }));
  if (config_.kernel_socket.empty()) {
    auto dm = hooks_.device_mapper ? hooks_.device_mapper() : dmtable::MakeLibDeviceMapper();
    port_ = std::make_unique<NetlinkPort>(hooks_.log, std::move(dm), config_.slow_request_ms,
                                          config_.request_record);
  } else {
    port_ = std::make_unique<SocketLink>(config_.kernel_socket, hooks_.log);
  }
  Status opened = port_->Open(loop_, [this](std::span<const uint8_t> f) { OnFrame(f); });
  if (!opened.ok()) {
    std::string hint =
        config_.kernel_socket.empty() ? " (is dm-log-userspace loaded, and are we root?)" : "";
    return Status(opened.code(), port_->Describe() + ": " + opened.message() + hint);
  }
  if (!config_.cluster) {
    const NodeId node = config_.node_id.value_or(1);
    CreateEngine(node, 0);
    Log(Severity::kInfo, "serving dm-log-userspace requests on the " + port_->Describe() +
                             " as node " + std::to_string(node) +
                             " (single-node: clustered logs are served as if this node were "
                             "the whole cluster)");
    Notify("READY=1\nSTATUS=serving (single-node)");
    return Status::Ok();
  }
  if (!hooks_.cluster) return InvalidArgument("cluster mode needs a cluster link");
  cluster_ = hooks_.cluster(hooks_.log, [this](int fd, bool watch) { WatchClusterFd(fd, watch); });
  connect_delay_us_ = config_.connect_retry_first_us;
  // Ready means the kernel port is open: requests are taken (and held until corosync
  // answers), so a service manager need not wait for the cluster.
  Notify("READY=1");
  TryConnect();
  return Status::Ok();
}

int Daemon::Run() {
  Status s = loop_.Run();
  if (!s.ok()) {
    Log(Severity::kError, "event loop: " + s.ToString());
    return 1;
  }
  Notify("STOPPING=1");
  return exit_code_;
}

void Daemon::Exit(int code) {
  exit_code_ = code;
  loop_.Stop();
}

void Daemon::CreateEngine(NodeId node, uint32_t expected_nodes) {
  EngineOptions options;
  options.node_id = node;
  options.reinitialize = config_.reinitialize;
  options.log = hooks_.log;
  options.expected_nodes = expected_nodes;
  options.fence_grace_us = uint64_t{config_.fence_grace_ms} * 1000;
  options.schedule = [this](uint64_t delay_us, std::function<void()> fn) {
    loop_.Schedule(delay_us, std::move(fn));
  };
  options.rearm_kernel = [this](const std::string& uuid, std::function<void()> done) {
    port_->Rearm(uuid, std::move(done));
  };
  options.legs = port_->Legs();
  engine_ = std::make_unique<LogEngine>(hooks_.opener, std::move(options), *port_,
                                        cluster_ ? &cluster_->transport() : nullptr);
}

void Daemon::OnFrame(std::span<const uint8_t> frame) {
  if (!engine_) {
    held_.Hold(frame);  // the node id is not known until corosync answers
    return;
  }
  if (cluster_ && !cluster_->connected() && held_.HoldIfClustered(frame)) return;
  engine_->SubmitFrame(frame);
}

void Daemon::OnSignal(int signo) {
  if (signo == SIGHUP) {
    if (hooks_.reopen_log) hooks_.reopen_log();
    Log(Severity::kInfo, "SIGHUP: logging reopened");
    return;
  }
  const size_t active = engine_ ? engine_->LogCount() : 0;
  const size_t waiting = held_.size();
  const std::string what = std::to_string(active) + " logs active" +
                           (waiting ? ", " + std::to_string(waiting) + " requests waiting" : "");
  if (signo == SIGQUIT) {
    Log(active + waiting ? Severity::kWarning : Severity::kInfo,
        "SIGQUIT: exiting with " + what + " (the kernel re-sends them to the next clogd)");
    Exit(0);
    return;
  }
  if (active + waiting == 0) {
    Log(Severity::kInfo, std::string(signo == SIGINT ? "SIGINT" : "SIGTERM") + ": exiting");
    Exit(0);
    return;
  }
  // Leaving now would hang every mirror using these logs until a daemon comes back.
  Log(Severity::kWarning,
      "refusing to exit: " + what + " (deactivate the mirrors first, or send SIGQUIT to force)");
}

void Daemon::WatchClusterFd(int fd, bool watch) {
  if (!watch) {
    loop_.Unwatch(fd);
    return;
  }
  Status s = loop_.Watch(fd, EPOLLIN, [this, fd](uint32_t) {
    cluster_->Dispatch(fd);
    if (!cluster_->connected()) ScheduleConnect();
  });
  if (!s.ok()) Log(Severity::kError, "cluster link: " + s.ToString());
}

void Daemon::ScheduleConnect() {
  if (connect_scheduled_ || loop_.stopped()) return;
  connect_scheduled_ = true;
  const uint64_t delay = connect_delay_us_;
  connect_delay_us_ = std::min(connect_delay_us_ * 2, config_.connect_retry_max_us);
  loop_.Schedule(delay, [this] { TryConnect(); });
}

void Daemon::TryConnect() {
  connect_scheduled_ = false;
  if (!cluster_->connected()) {
    Status s = cluster_->Connect();
    if (!s.ok()) {
      // Said once at warning level, then quietly on every retry.
      Log(waiting_logged_ ? Severity::kDebug : Severity::kWarning,
          "waiting for corosync: " + s.ToString() + " (" + std::to_string(held_.size()) +
              " kernel requests held; clustered logs wait)");
      waiting_logged_ = true;
      Notify("STATUS=waiting for corosync");
      ScheduleConnect();
      return;
    }
  }
  OnConnected();
}

void Daemon::OnConnected() {
  const NodeId node = cluster_->LocalNode();
  if (config_.node_id && *config_.node_id != node) {
    Log(Severity::kError, "--node-id " + std::to_string(*config_.node_id) +
                              " but corosync says this node is " + std::to_string(node) +
                              "; refusing to serve (drop --node-id or fix it)");
    Exit(1);
    return;
  }
  uint32_t expected = config_.expected_nodes;
  if (expected == 0) {
    auto votes = cluster_->ExpectedVotes();
    if (!votes.ok() || *votes == 0) {
      Log(waiting_logged_ ? Severity::kDebug : Severity::kWarning,
          "waiting for votequorum's expected votes: " +
              (votes.ok() ? std::string("0") : votes.status().ToString()) +
              " (or give --expected-nodes)");
      waiting_logged_ = true;
      ScheduleConnect();
      return;
    }
    expected = *votes;
  }
  if (!engine_) {
    CreateEngine(node, expected);
    engine_node_ = node;
  } else if (node != engine_node_) {
    // The slots and marks of this daemon's logs belong to the old id.
    Log(Severity::kError, "corosync now says this node is " + std::to_string(node) + ", it was " +
                              std::to_string(engine_node_) + "; exiting");
    Exit(1);
    return;
  }
  waiting_logged_ = false;
  connect_delay_us_ = config_.connect_retry_first_us;
  auto frames = held_.TakeAll();
  Log(Severity::kInfo,
      "connected to corosync as node " + std::to_string(node) + " (expected nodes " +
          std::to_string(expected) + "); serving on the " + port_->Describe() +
          (frames.empty() ? "" : "; " + std::to_string(frames.size()) + " held requests released"));
  Notify("STATUS=serving (cluster node " + std::to_string(node) + ")");
  for (const auto& frame : frames) engine_->SubmitFrame(frame);
}

}  // namespace clogd::logd
