// Sequencing helper for the mirror model, whose kernel code paths block on daemon replies:
// AsyncFor runs a step per item in order, each step calling its continuation once, either
// at once (e.g. a cached region state) or later (a reply). Steps that finish at once are
// looped over instead of recursed into, so a batch of thousands of bios keeps a flat stack.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

namespace clogd::sim {

class AsyncLoop : public std::enable_shared_from_this<AsyncLoop> {
 public:
  using Step = std::function<void(size_t index, std::function<void()> next)>;

  static void Run(size_t count, Step step, std::function<void()> done) {
    auto loop = std::shared_ptr<AsyncLoop>(new AsyncLoop(count, std::move(step), std::move(done)));
    loop->Go();
  }

 private:
  AsyncLoop(size_t count, Step step, std::function<void()> done)
      : count_(count), step_(std::move(step)), done_(std::move(done)) {}

  void Go() {
    if (running_) {  // the current step finished at once: the loop below takes the next
      again_ = true;
      return;
    }
    running_ = true;
    do {
      again_ = false;
      if (index_ == count_) {
        running_ = false;
        if (done_) {
          auto done = std::move(done_);
          done_ = nullptr;
          done();
        }
        return;
      }
      const size_t index = index_++;
      step_(index, [self = shared_from_this()] { self->Go(); });
    } while (again_);
    running_ = false;
  }

  size_t count_;
  size_t index_ = 0;
  Step step_;
  std::function<void()> done_;
  bool running_ = false;
  bool again_ = false;
};

inline void AsyncFor(size_t count, AsyncLoop::Step step, std::function<void()> done) {
  AsyncLoop::Run(count, std::move(step), std::move(done));
}

}  // namespace clogd::sim
