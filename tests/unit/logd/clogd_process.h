// Runs the real clogd binary as a child process for tests: its stderr (clogd -f logs
// there) is captured so a test can wait, with a bound, for a log line; signals and exit
// status are the test's to check. The child is killed if the test ends first.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "link_driver.h"

namespace clogd::logd::testing {

class ClogdProcess {
 public:
  ClogdProcess() = default;
  ~ClogdProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (err_fd_ >= 0) close(err_fd_);
  }
  ClogdProcess(const ClogdProcess&) = delete;
  ClogdProcess& operator=(const ClogdProcess&) = delete;

  // Starts `binary args...` with stderr on a pipe; stdin/stdout on /dev/null.
  bool Start(const std::string& binary, const std::vector<std::string>& args) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return false;
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      // The test process may have signals blocked (signalfd tests); exec keeps the mask.
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      int null_fd = open("/dev/null", O_RDWR);
      dup2(null_fd, 0);
      dup2(null_fd, 1);
      dup2(pipefd[1], 2);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(binary.c_str()));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(pipefd[1]);
    err_fd_ = pipefd[0];
    fcntl(err_fd_, F_SETFL, O_NONBLOCK);
    return true;
  }

  // Waits until the captured stderr contains `needle` (searching from `from`, default the
  // start); false after bound_ms or when the child closed stderr without it.
  bool WaitForOutput(const std::string& needle, int bound_ms, size_t from = 0) {
    const uint64_t end = MonotonicMs() + static_cast<uint64_t>(bound_ms);
    for (;;) {
      if (output_.find(needle, from) != std::string::npos) return true;
      const uint64_t now = MonotonicMs();
      if (now >= end || !ReadSome(static_cast<int>(end - now))) {
        return output_.find(needle, from) != std::string::npos;
      }
    }
  }

  void Signal(int signo) const { kill(pid_, signo); }

  // The exit code (128 + signal if killed) once the child exited, within bound_ms.
  std::optional<int> WaitExit(int bound_ms) {
    const uint64_t end = MonotonicMs() + static_cast<uint64_t>(bound_ms);
    for (;;) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        while (ReadSome(0)) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (MonotonicMs() >= end) return std::nullopt;
      ReadSome(10);  // keeps the pipe drained while waiting
    }
  }

  bool running() const { return pid_ > 0; }
  const std::string& output() const { return output_; }

 private:
  // Reads what arrives within bound_ms; false at EOF or timeout with nothing read.
  bool ReadSome(int bound_ms) {
    if (err_fd_ < 0) return false;
    pollfd p{err_fd_, POLLIN, 0};
    if (poll(&p, 1, bound_ms) <= 0) return false;
    char buf[4096];
    ssize_t n = read(err_fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    output_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int err_fd_ = -1;
  std::string output_;
};

}  // namespace clogd::logd::testing
