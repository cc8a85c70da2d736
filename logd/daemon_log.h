// Where clogd's log lines go: stderr in the foreground (-f), unless stderr is journald's
// stream (systemd runs clogd -f, logd/clogd.service); otherwise journald (with the line's
// PRIORITY) when it runs, else syslog. Reopen() (SIGHUP) re-opens the syslog connection,
// e.g. after syslogd restarted. Loop thread only.
#pragma once

#include <string>

#include "logd/logging.h"

namespace clogd::logd {

class DaemonLog {
 public:
  enum class Sink { kStderr, kJournal, kSyslog };

  // kStderr when `foreground` and stderr is not journald's stream; otherwise kJournal if
  // journald's socket exists, else kSyslog (opened here as "clogd", facility daemon).
  DaemonLog(bool foreground, bool verbose);
  ~DaemonLog();
  DaemonLog(const DaemonLog&) = delete;
  DaemonLog& operator=(const DaemonLog&) = delete;

  void Write(Severity s, const std::string& message);
  void Reopen();
  Sink sink() const { return sink_; }
  LogFn AsLogFn() {
    return [this](Severity s, const std::string& m) { Write(s, m); };
  }

 private:
  Sink sink_;
  bool verbose_;
};

// Whether `journal_stream` (systemd's $JOURNAL_STREAM, "<device>:<inode>") names the file
// with this device and inode: a unit's stderr connected to journald.
bool NamesJournalStream(const char* journal_stream, unsigned long long dev, unsigned long long ino);

}  // namespace clogd::logd
