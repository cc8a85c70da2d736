// DaemonLog: stderr, sd_journal_send or syslog.
#include "logd/daemon_log.h"

#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace clogd::logd {

namespace {

int SyslogPriority(Severity s) {
  switch (s) {
    case Severity::kError:
      return LOG_ERR;
    case Severity::kWarning:
      return LOG_WARNING;
    case Severity::kInfo:
      return LOG_INFO;
    case Severity::kDebug:
      return LOG_DEBUG;
  }
  return LOG_INFO;
}

// systemd's way of telling a service that its stderr goes to journald: the line's
// priority then goes with it (sd_journal_send) instead of being lost in a plain stream.
bool StderrIsTheJournal() {
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return NamesJournalStream(std::getenv("JOURNAL_STREAM"), st.st_dev, st.st_ino);
}

}  // namespace

bool NamesJournalStream(const char* journal_stream, unsigned long long dev,
                        unsigned long long ino) {
  if (journal_stream == nullptr) return false;
  unsigned long long d = 0;
  unsigned long long i = 0;
  char extra = 0;
  if (std::sscanf(journal_stream, "%llu:%llu%c", &d, &i, &extra) != 2) return false;
  return d == dev && i == ino;
}

DaemonLog::DaemonLog(bool foreground, bool verbose) : verbose_(verbose) {
  const bool journal = access("/run/systemd/journal/socket", W_OK) == 0;
  if (foreground && !(journal && StderrIsTheJournal())) {
    sink_ = Sink::kStderr;
  } else if (journal) {
    sink_ = Sink::kJournal;
  } else {
    sink_ = Sink::kSyslog;
    openlog("clogd", LOG_PID, LOG_DAEMON);
  }
}

DaemonLog::~DaemonLog() {
  if (sink_ == Sink::kSyslog) closelog();
}

void DaemonLog::Write(Severity s, const std::string& message) {
  if (s == Severity::kDebug && !verbose_) return;
  switch (sink_) {
    case Sink::kStderr: {
      // Monotonic seconds (the clock of /proc/uptime and dmesg, not wall time), so lines
      // line up with the kernel's and with tests' measurements across a clock change.
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      std::fprintf(stderr, "clogd: [%5lld.%03ld] %s: %s\n", static_cast<long long>(now.tv_sec),
                   now.tv_nsec / 1'000'000, SeverityName(s), message.c_str());
      std::fflush(stderr);
      return;
    }
    case Sink::kJournal:
      sd_journal_send("MESSAGE=%s", message.c_str(), "PRIORITY=%i", SyslogPriority(s),
                      "SYSLOG_IDENTIFIER=clogd", nullptr);
      return;
    case Sink::kSyslog:
      syslog(SyslogPriority(s), "%s", message.c_str());
      return;
  }
}

void DaemonLog::Reopen() {
  if (sink_ != Sink::kSyslog) return;
  closelog();
  openlog("clogd", LOG_PID, LOG_DAEMON);
}

}  // namespace clogd::logd
