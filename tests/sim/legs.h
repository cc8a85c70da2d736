// The mirror's legs in the simulator: shared SAN disks, one array of u64 blocks per leg,
// visible to every node (a block's value 0 means "never written"). I/O is asynchronous
// through the EventLoop with a random latency per request (a range, times a per-leg "slow
// disk" factor that may change at any time and applies to I/O issued afterwards). A write's
// value reaches the disk when it completes. A failed leg completes every request, in flight
// or new, with an error and takes no data. A node that dies leaves its writes in flight
// behind: each one still lands, or never does, as the PRNG decides at the crash (both
// happen on real disks), and no completion is reported for any of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "region/status.h"
#include "tests/sim/event_loop.h"
#include "tests/sim/sim_rng.h"

namespace clogd::sim {

struct LegTiming {
  SimTime min_latency_us = 100;
  SimTime max_latency_us = 2000;
  // AbandonNode: chance that a write of the dead node still lands.
  double crash_land_probability = 0.5;
};

class SimLegs {
 public:
  using WriteDone = std::function<void(Status)>;
  using ReadDone = std::function<void(Status, uint64_t value)>;
  // Told every value that reaches a disk, including writes of dead nodes that land.
  using LandingObserver = std::function<void(int node, int leg, uint64_t block, uint64_t value)>;

  SimLegs(EventLoop& loop, SimRng& rng, int nr_legs, uint64_t nr_regions,
          uint64_t blocks_per_region, LegTiming timing = {});
  SimLegs(const SimLegs&) = delete;
  SimLegs& operator=(const SimLegs&) = delete;

  int nr_legs() const { return static_cast<int>(blocks_.size()); }
  uint64_t nr_regions() const { return nr_regions_; }
  uint64_t blocks_per_region() const { return blocks_per_region_; }
  uint64_t nr_blocks() const { return nr_regions_ * blocks_per_region_; }
  uint64_t RegionOf(uint64_t block) const { return block / blocks_per_region_; }
  uint64_t FirstBlockOf(uint64_t region) const { return region * blocks_per_region_; }

  // Asynchronous I/O issued by `node`. `done` always runs later from the EventLoop (never
  // inside the call), with an error for a bad leg or block or a failed leg, unless the node
  // is abandoned first.
  void Write(int node, int leg, uint64_t block, uint64_t value, WriteDone done);
  void Read(int node, int leg, uint64_t block, ReadDone done);

  // The leg dies: I/O in flight and all later I/O to it fail.
  void FailLeg(int leg);
  // A new disk for a leg replacement (never written: every block 0), not live until
  // Attach (a replacement that commits); returns its leg number.
  int AddSpareLeg();
  void Attach(int leg);
  // Taken out of the mirror by an operator (a replacement of a leg that had not failed):
  // no longer live, so no longer compared with the others.
  void Detach(int leg);
  bool IsLive(int leg) const;
  std::vector<int> LiveLegs() const;
  // Latency multiplier (>= 1) for I/O to `leg` issued from now on.
  void SetSlowFactor(int leg, uint32_t factor);

  // The node died. Returns how many of its writes will still land and how many never will;
  // its reads are dropped. No completion of its I/O is reported afterwards.
  struct Abandoned {
    size_t writes_landing = 0;
    size_t writes_lost = 0;
    size_t reads_dropped = 0;
  };
  Abandoned AbandonNode(int node);

  // The data, without latency: for checkers and for test setup (e.g. legs that differ).
  uint64_t Peek(int leg, uint64_t block) const;
  void Poke(int leg, uint64_t block, uint64_t value);

  size_t InFlight() const { return ops_.size(); }
  size_t InFlight(int node) const;
  void AddLandingObserver(LandingObserver observer);

 private:
  struct Op {
    int node = 0;
    int leg = 0;
    uint64_t block = 0;
    bool write = false;
    uint64_t value = 0;
    bool orphan = false;  // issuer died; lands without a completion
    WriteDone write_done;
    ReadDone read_done;
    EventLoop::EventId event = 0;
  };

  Status CheckAddress(int leg, uint64_t block) const;
  SimTime DrawLatency(int leg);
  void Complete(uint64_t op_id);

  EventLoop& loop_;
  SimRng& rng_;
  uint64_t nr_regions_;
  uint64_t blocks_per_region_;
  LegTiming timing_;
  std::vector<std::vector<uint64_t>> blocks_;  // [leg][block]
  std::vector<bool> failed_;
  std::vector<bool> detached_;
  std::vector<uint32_t> slow_;
  std::map<uint64_t, Op> ops_;  // ordered by issue: AbandonNode draws in a fixed order
  uint64_t next_op_ = 1;
  std::vector<LandingObserver> observers_;
};

}  // namespace clogd::sim
