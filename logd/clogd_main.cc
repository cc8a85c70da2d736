// clogd: the mirror log daemon. This build serves every log from this node alone (the
// single-node engine) over the kernel's netlink connector, in one epoll loop. The cluster
// links (CPG) plug into the same loop later.
//   clogd [-f] [--node-id N] [--pidfile PATH] [--reinitialize]
// Exceptions stop here: the core returns Status values.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "logd/device_path.h"
#include "logd/kernel_link.h"
#include "logd/log_engine.h"

namespace {

using clogd::logd::Severity;

bool g_foreground = false;
bool g_verbose = false;

void LogLine(Severity s, const std::string& message) {
  if (s == Severity::kDebug && !g_verbose) return;
  if (g_foreground) {
    std::fprintf(stderr, "clogd: %s: %s\n", clogd::logd::SeverityName(s), message.c_str());
    return;
  }
  int prio = s == Severity::kError     ? LOG_ERR
             : s == Severity::kWarning ? LOG_WARNING
             : s == Severity::kInfo    ? LOG_INFO
                                       : LOG_DEBUG;
  syslog(prio, "%s", message.c_str());
}

class KernelSink : public clogd::logd::ReplySink {
 public:
  explicit KernelSink(clogd::logd::KernelLink& link) : link_(link) {}
  void Reply(const clogd::logd::UlogReply& reply) override {
    clogd::Status s = link_.Send(reply);
    if (!s.ok()) LogLine(Severity::kError, s.ToString());
  }

 private:
  clogd::logd::KernelLink& link_;
};

// Holds an exclusive lock on the pidfile for the life of the process, so two daemons
// cannot serve the same kernel.
bool LockPidfile(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    LogLine(Severity::kError, "pidfile " + path + ": " + std::strerror(errno));
    return false;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    LogLine(Severity::kError, "another clogd holds " + path + "; refusing to start");
    close(fd);
    return false;
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || write(fd, pid.data(), pid.size()) < 0) {
    LogLine(Severity::kWarning, "pidfile " + path + ": cannot write pid");
  }
  return true;  // fd stays open: the lock lives as long as we do
}

int Run(uint32_t node_id, const std::string& pidfile, bool reinitialize) {
  if (!LockPidfile(pidfile)) return 1;
  clogd::logd::KernelLink link;
  if (clogd::Status s = link.Open(); !s.ok()) {
    LogLine(Severity::kError,
            "kernel link: " + s.ToString() + " (is dm-log-userspace loaded and are we root?)");
    return 1;
  }
  KernelSink sink(link);
  clogd::logd::EngineOptions options;
  options.node_id = node_id;
  options.reinitialize = reinitialize;
  options.log = LogLine;
  clogd::logd::LogEngine engine(clogd::logd::OpenLogDevice, options, sink);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGQUIT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || ep < 0) {
    LogLine(Severity::kError, std::string("event loop setup: ") + std::strerror(errno));
    return 1;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = link.fd();
  epoll_ctl(ep, EPOLL_CTL_ADD, link.fd(), &ev);
  ev.data.fd = sfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
  LogLine(Severity::kInfo, "serving dm-log-userspace requests as node " + std::to_string(node_id));

  std::vector<std::vector<uint8_t>> frames;
  for (;;) {
    epoll_event events[8];
    int n = epoll_wait(ep, events, 8, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == sfd) {
        signalfd_siginfo si{};
        while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
          size_t active = engine.LogCount();
          if (si.ssi_signo == SIGQUIT || active == 0) {
            LogLine(Severity::kInfo, "exiting (" + std::to_string(active) + " logs active)");
            return 0;
          }
          // Leaving would hang every mirror using these logs until we come back.
          LogLine(Severity::kWarning, "refusing to exit: " + std::to_string(active) +
                                          " logs active (deactivate the mirrors first, or "
                                          "send SIGQUIT to force)");
        }
        continue;
      }
      frames.clear();
      clogd::Status s = link.ReceiveFrames(frames);
      for (const auto& frame : frames) engine.SubmitFrame(frame);
      if (!s.ok()) LogLine(Severity::kWarning, "kernel link: " + s.ToString());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"clogd: cluster mirror log daemon (dm-log-userspace server)"};
  uint32_t node_id = 1;
  std::string pidfile = "/run/clogd.pid";
  bool reinitialize = false;
  app.add_flag("-f,--foreground", g_foreground, "stay in the foreground, log to stderr");
  app.add_flag("-v,--verbose", g_verbose, "log debug lines too");
  app.add_option("--node-id", node_id, "this node's id (its slot on shared log devices)")
      ->check(CLI::Range(1u, 0xFFFFFFFFu));
  app.add_option("--pidfile", pidfile, "lock file that keeps a second daemon out");
  app.add_flag("--reinitialize", reinitialize,
               "overwrite log devices that would be refused (bad magic/checksum/version); "
               "every region of such a log is resynced");
  CLI11_PARSE(app, argc, argv);
  if (!g_foreground) {
    openlog("clogd", LOG_PID, LOG_DAEMON);
    if (daemon(0, 0) < 0) {
      std::perror("clogd: daemon");
      return 1;
    }
  }
  return Run(node_id, pidfile, reinitialize);
}
