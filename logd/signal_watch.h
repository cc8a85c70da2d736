// Signals as loop events: the signals named are blocked in the calling thread (threads
// started afterwards inherit the block) and read from a signalfd watched by the loop, so a
// handler runs as ordinary code on the loop thread, never in signal context.
#pragma once

#include <functional>
#include <initializer_list>

#include "logd/event_loop.h"
#include "region/status.h"

namespace clogd::logd {

class SignalWatch {
 public:
  using Handler = std::function<void(int signo)>;

  SignalWatch() = default;
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  // Blocks `signals` and delivers each arrival to `handler` from `loop`. Call before
  // starting threads, or they may take the signals instead.
  Status Start(EventLoop& loop, std::initializer_list<int> signals, Handler handler);

 private:
  void Drain();

  EventLoop* loop_ = nullptr;
  int fd_ = -1;
  Handler handler_;
};

}  // namespace clogd::logd
