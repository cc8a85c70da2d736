// Kernel requests that wait for the cluster link. In cluster mode, until corosync answers,
// a clustered log cannot be constructed (its state lives in the group), so the daemon
// holds the CTR of every clustered-core/-disk log, and every later request for that luid,
// and submits them in arrival order once connected; other logs are served meanwhile.
// Before the first connection (the node id is not known yet) everything waits.
#pragma once

#include <cstdint>
#include <deque>
#include <set>
#include <span>
#include <vector>

namespace clogd::logd {

class HeldRequests {
 public:
  explicit HeldRequests(size_t capacity = 4096) : capacity_(capacity) {}

  // Holds the frame if it is the CTR of a clustered log or a request for a luid whose CTR
  // is held; returns whether it did.
  bool HoldIfClustered(std::span<const uint8_t> frame);
  // Holds the frame whatever it is.
  void Hold(std::span<const uint8_t> frame);
  // Everything held, in arrival order; forgets the held luids.
  std::vector<std::vector<uint8_t>> TakeAll();

  size_t size() const { return frames_.size(); }
  // Frames dropped because more than `capacity` waited (the kernel re-sends after 15 s).
  uint64_t dropped() const { return dropped_; }

 private:
  void Push(std::span<const uint8_t> frame);

  size_t capacity_;
  std::deque<std::vector<uint8_t>> frames_;
  std::set<uint64_t> luids_;
  uint64_t dropped_ = 0;
};

}  // namespace clogd::logd
