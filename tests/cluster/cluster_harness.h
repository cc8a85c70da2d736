// Test harness for real corosync clusters: runs scripts/cluster-netns.sh and drives
// clog-cpg-probe processes inside the nodes (stdin commands in, JSON lines out), with
// bounded waits on what the probes print.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clogd::cluster_test {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// The script, with the test's own cluster directory and namespace prefix in the environment.
struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};
CommandResult RunScript(const std::string& args);

// One clog-cpg-probe in node `node` (started through `cluster-netns.sh exec`, so its pid is
// the probe's own).
class ProbeProcess {
 public:
  ProbeProcess(int node, const std::vector<std::string>& args);
  ~ProbeProcess();  // SIGKILL if still running
  ProbeProcess(const ProbeProcess&) = delete;
  ProbeProcess& operator=(const ProbeProcess&) = delete;

  int node() const { return node_; }
  pid_t pid() const { return pid_; }
  void Command(const std::string& line);  // one stdin line
  void Kill(int signal);                  // and reap it
  bool exited() const { return exited_; }

  // Everything printed so far (JSON lines parsed; others kept as {"event":"raw"}).
  const std::vector<json>& events() const { return events_; }
  // Waits (at most `timeout`) until an event at index `from` or later satisfies `pred`;
  // returns its index, or -1.
  int WaitFor(const std::function<bool(const json&)>& pred, std::chrono::milliseconds timeout,
              size_t from = 0);
  // Waits until the process exited (at most `timeout`).
  bool WaitExit(std::chrono::milliseconds timeout);
  // The time the event at `index` was read.
  Clock::time_point seen_at(size_t index) const { return seen_at_[index]; }
  std::vector<json> Events(const std::string& kind) const;

 private:
  bool ReadAvailable(int timeout_ms);  // false: nothing came within the timeout

  int node_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  bool exited_ = false;
  std::string partial_;
  std::vector<json> events_;
  std::vector<Clock::time_point> seen_at_;
};

}  // namespace clogd::cluster_test
