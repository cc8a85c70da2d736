// signalfd plumbing for SignalWatch.
#include "logd/signal_watch.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace clogd::logd {

SignalWatch::~SignalWatch() {
  if (fd_ < 0) return;
  loop_->Unwatch(fd_);
  close(fd_);
}

Status SignalWatch::Start(EventLoop& loop, std::initializer_list<int> signals, Handler handler) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : signals) sigaddset(&mask, s);
  if (int err = pthread_sigmask(SIG_BLOCK, &mask, nullptr); err != 0) {
    return IoError(std::string("pthread_sigmask: ") + std::strerror(err));
  }
  fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) return IoError(std::string("signalfd: ") + std::strerror(errno));
  loop_ = &loop;
  handler_ = std::move(handler);
  return loop.Watch(fd_, EPOLLIN, [this](uint32_t) { Drain(); });
}

void SignalWatch::Drain() {
  signalfd_siginfo si{};
  while (read(fd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
    handler_(static_cast<int>(si.ssi_signo));
  }
}

}  // namespace clogd::logd
