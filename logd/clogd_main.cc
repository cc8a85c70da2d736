// clogd: the mirror log daemon (program edge). Parses the command line, takes the pidfile
// lock, daemonizes, sets up logging and hands over to Daemon (daemon.h), which owns the
// event loop, the kernel port, the engine and the cluster link.
// Exceptions stop here: the core returns Status values.
#include <signal.h>
#include <sys/epoll.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "logd/control_server.h"
#include "logd/cpg_cluster.h"
#include "logd/daemon.h"
#include "logd/daemon_log.h"
#include "logd/device_path.h"
#include "logd/pidfile.h"
#include "logd/request_record.h"

namespace {

constexpr const char* kDescription =
    "clogd: cluster mirror log daemon (dm-log-userspace server)\n"
    "Signals: SIGTERM/SIGINT exit only when no log is active; SIGQUIT forces an exit;\n"
    "SIGHUP reopens logging.";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription};
  bool foreground = false;
  bool verbose = false;
  uint32_t node_id = 0;
  std::string pidfile_path = "/run/clogd.pid";
  clogd::logd::DaemonConfig config;
  app.add_flag("-f,--foreground", foreground, "stay in the foreground, log to stderr");
  app.add_flag("-v,--verbose", verbose, "log debug lines too");
  app.add_option("--node-id", node_id,
                 "this node's id (its slot on shared log devices); default 1, or with "
                 "--cluster corosync's node id (a different value is refused)")
      ->check(CLI::Range(1u, 0xFFFFFFFFu));
  app.add_option("--pidfile", pidfile_path, "lock file that keeps a second daemon out");
  app.add_flag("--reinitialize", config.reinitialize,
               "overwrite log devices that would be refused (bad magic/checksum/version); "
               "every region of such a log is resynced");
  app.add_flag("--cluster", config.cluster,
               "serve clustered-core/-disk logs cluster-wide over corosync CPG (without it "
               "they are served as if this node were the whole cluster)");
  app.add_option("--expected-nodes", config.expected_nodes,
                 "with --cluster: the cluster size quorum is counted against (default: "
                 "corosync votequorum's expected votes)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--fence-grace-ms", config.fence_grace_ms,
                 "with --cluster: after a node leaves, copy none of the mirror for this long, "
                 "so that a node only cut off by a partition has frozen its writes first "
                 "(0: only when every node that can leave is fenced; logd/CLUSTER.md)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 600'000u));
  app.add_option("--kernel-socket", config.kernel_socket,
                 "FOR TESTS AND TOOLS ONLY: instead of the kernel, serve one driver program "
                 "on this Unix SOCK_SEQPACKET socket (protocol: logd/TEST_LINK.md)");
  app.add_option("--slow-request-ms", config.slow_request_ms,
                 "log each kernel request answered this many ms or more after it came in")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3'600'000u));
  std::string control_socket = clogd::logd::kDefaultControlSocket;
  app.add_option("--control-socket", control_socket,
                 "Unix socket clogctl status/nodes ask (root only; empty: none)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (node_id != 0) config.node_id = node_id;
  // Replies name this node; in cluster mode without --node-id it is corosync's, which the
  // control server takes from the clustered logs.
  const uint32_t report_node = node_id != 0 ? node_id : config.cluster ? 0 : 1;
  if (config.expected_nodes != 0 && !config.cluster) {
    std::fprintf(stderr, "clogd: --expected-nodes needs --cluster\n");
    return 2;
  }

  clogd::logd::DaemonLog log(foreground, verbose);
  // Before daemon() a refusal must reach the operator's terminal, whatever the sink.
  auto refuse = [&](const std::string& message) {
    log.Write(clogd::logd::Severity::kError, message);
    if (!foreground) std::fprintf(stderr, "clogd: %s\n", message.c_str());
    return 1;
  };
  clogd::logd::Pidfile pidfile;
  if (clogd::Status s = pidfile.Lock(pidfile_path); !s.ok()) return refuse(s.message());
  // Only the pidfile's holder may use the record beside it.
  config.request_record = clogd::logd::RequestRecordPathFor(pidfile_path);
  if (!foreground) {
    if (daemon(0, 0) < 0) return refuse(std::string("daemon: ") + std::strerror(errno));
    if (clogd::Status s = pidfile.WritePid(); !s.ok())
      log.Write(clogd::logd::Severity::kWarning, s.message());
  }
  signal(SIGPIPE, SIG_IGN);  // a peer that went away is an error value, not a signal

  clogd::logd::DaemonHooks hooks;
  hooks.log = log.AsLogFn();
  hooks.reopen_log = [&log] { log.Reopen(); };
  hooks.notify = [](const std::string& line) { sd_notify(0, line.c_str()); };
  hooks.opener = clogd::logd::OpenLogDevice;
  hooks.cluster = clogd::logd::MakeCpgCluster;
  clogd::logd::Daemon clogd_daemon(std::move(config), std::move(hooks));
  if (clogd::Status s = clogd_daemon.Start(); !s.ok()) return refuse(s.ToString());

  // The control socket is for the operator; failing to create it is logged, and the
  // kernel is served anyway (refusing would hang every mirror on this node).
  clogd::logd::ControlServer* control_ptr = nullptr;
  clogd::logd::ControlOptions control;
  control.path = control_socket;
  control.node = report_node;
  control.slot_reader = clogd::logd::PeekLogDeviceSlots;
  control.log = log.AsLogFn();
  control.replace_leg = [&clogd_daemon](const std::string& uuid,
                                        const clogd::logd::ClusterLog::LegReplacement& change,
                                        std::function<void(clogd::Status)> done) {
    clogd::logd::LogEngine* engine = clogd_daemon.engine();
    clogd::logd::ClusterLog* cluster_log = engine == nullptr ? nullptr : engine->FindCluster(uuid);
    if (cluster_log == nullptr) {
      done(clogd::NotFound("this clogd serves no clustered log " + uuid +
                           " (clogctl status lists the logs it serves)"));
      return;
    }
    cluster_log->ReplaceLeg(change, std::move(done));
  };
  control.watch = [&loop = clogd_daemon.loop(), &control_ptr, &log](int fd, uint32_t events) {
    if (events == 0) {
      loop.Unwatch(fd);
      return;
    }
    clogd::Status s = loop.Watch(fd, events, [&control_ptr, fd](uint32_t got) {
      if (got & (EPOLLIN | EPOLLHUP | EPOLLERR)) control_ptr->OnReadable(fd);
      if ((got & EPOLLOUT) && control_ptr->Owns(fd)) control_ptr->OnWritable(fd);
    });
    if (!s.ok()) log.Write(clogd::logd::Severity::kWarning, "control socket: " + s.ToString());
  };
  clogd::logd::ControlServer control_server(
      [&clogd_daemon]() -> const clogd::logd::LogEngine* { return clogd_daemon.engine(); },
      std::move(control));
  control_ptr = &control_server;
  if (!control_socket.empty()) {
    if (clogd::Status s = control_server.Listen(); !s.ok()) {
      log.Write(clogd::logd::Severity::kError, s.message() + " (clogctl status will not work)");
    }
  }
  return clogd_daemon.Run();
}
