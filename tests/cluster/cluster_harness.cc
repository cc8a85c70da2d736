// ProbeProcess and RunScript: processes inside the netns cluster, driven by the tests.
#include "tests/cluster/cluster_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <stdexcept>

namespace clogd::cluster_test {

CommandResult RunScript(const std::string& args) {
  const std::string command = std::string(CLOG_NETNS_SCRIPT) + " " + args + " 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    result.output = "popen failed: " + command;
    return result;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

ProbeProcess::ProbeProcess(int node, const std::vector<std::string>& args) : node_(node) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  std::vector<std::string> argv_s = {CLOG_NETNS_SCRIPT, "exec", std::to_string(node),
                                     CLOG_CPG_PROBE};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  stdin_fd_ = in[1];
  stdout_fd_ = out[0];
}

ProbeProcess::~ProbeProcess() {
  if (!exited_) Kill(SIGKILL);
  if (stdin_fd_ >= 0) close(stdin_fd_);
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

void ProbeProcess::Command(const std::string& line) {
  const std::string text = line + "\n";
  if (write(stdin_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw std::runtime_error("probe on node " + std::to_string(node_) + " does not read stdin");
  }
}

void ProbeProcess::Kill(int signal) {
  if (exited_) return;
  kill(pid_, signal);
  waitpid(pid_, nullptr, 0);
  exited_ = true;
}

bool ProbeProcess::ReadAvailable(int timeout_ms) {
  pollfd p{stdout_fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[65536];
  const ssize_t n = read(stdout_fd_, buf, sizeof buf);
  if (n <= 0) {
    if (!exited_ && waitpid(pid_, nullptr, WNOHANG) == pid_) exited_ = true;
    return false;
  }
  partial_.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = partial_.find('\n')) != std::string::npos) {
    const std::string line = partial_.substr(0, nl);
    partial_.erase(0, nl + 1);
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) j = {{"event", "raw"}, {"line", line}};
    events_.push_back(std::move(j));
    seen_at_.push_back(Clock::now());
  }
  return true;
}

int ProbeProcess::WaitFor(const std::function<bool(const json&)>& pred,
                          std::chrono::milliseconds timeout, size_t from) {
  const Clock::time_point deadline = Clock::now() + timeout;
  size_t checked = from;
  while (true) {
    for (; checked < events_.size(); ++checked) {
      if (pred(events_[checked])) return static_cast<int>(checked);
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return -1;
    ReadAvailable(static_cast<int>(std::min<int64_t>(left.count(), 50)));
  }
}

bool ProbeProcess::WaitExit(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!exited_ && Clock::now() < deadline) {
    ReadAvailable(20);
    if (!exited_ && waitpid(pid_, nullptr, WNOHANG) == pid_) exited_ = true;
  }
  while (exited_ && ReadAvailable(0)) {
  }
  return exited_;
}

std::vector<json> ProbeProcess::Events(const std::string& kind) const {
  std::vector<json> out;
  for (const json& e : events_) {
    if (e.value("event", "") == kind) out.push_back(e);
  }
  return out;
}

}  // namespace clogd::cluster_test
