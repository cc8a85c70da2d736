// Shared mirror legs for the simulator; see legs.h.
#include "tests/sim/legs.h"

#include <string>
#include <utility>

namespace clogd::sim {

SimLegs::SimLegs(EventLoop& loop, SimRng& rng, int nr_legs, uint64_t nr_regions,
                 uint64_t blocks_per_region, LegTiming timing)
    : loop_(loop),
      rng_(rng),
      nr_regions_(nr_regions),
      blocks_per_region_(blocks_per_region == 0 ? 1 : blocks_per_region),
      timing_(timing) {
  const size_t legs = nr_legs > 0 ? static_cast<size_t>(nr_legs) : 0;
  blocks_.assign(legs, std::vector<uint64_t>(nr_blocks(), 0));
  failed_.assign(legs, false);
  detached_.assign(legs, false);
  slow_.assign(legs, 1);
}

Status SimLegs::CheckAddress(int leg, uint64_t block) const {
  if (leg < 0 || leg >= nr_legs()) {
    return OutOfRange("leg " + std::to_string(leg) + " does not exist (" +
                      std::to_string(nr_legs()) + " legs)");
  }
  if (block >= nr_blocks()) {
    return OutOfRange("block " + std::to_string(block) + " is past the end (" +
                      std::to_string(nr_blocks()) + " blocks)");
  }
  return Status::Ok();
}

SimTime SimLegs::DrawLatency(int leg) {
  return rng_.Range(timing_.min_latency_us, timing_.max_latency_us) *
         slow_[static_cast<size_t>(leg)];
}

void SimLegs::Write(int node, int leg, uint64_t block, uint64_t value, WriteDone done) {
  Status status = CheckAddress(leg, block);
  if (!status.ok()) {
    loop_.Schedule(0, [done = std::move(done), status] {
      if (done) done(status);
    });
    return;
  }
  const uint64_t id = next_op_++;
  Op& op = ops_[id];
  op.node = node;
  op.leg = leg;
  op.block = block;
  op.write = true;
  op.value = value;
  op.write_done = std::move(done);
  op.event = loop_.Schedule(DrawLatency(leg), [this, id] { Complete(id); });
}

void SimLegs::Read(int node, int leg, uint64_t block, ReadDone done) {
  Status status = CheckAddress(leg, block);
  if (!status.ok()) {
    loop_.Schedule(0, [done = std::move(done), status] {
      if (done) done(status, 0);
    });
    return;
  }
  const uint64_t id = next_op_++;
  Op& op = ops_[id];
  op.node = node;
  op.leg = leg;
  op.block = block;
  op.read_done = std::move(done);
  op.event = loop_.Schedule(DrawLatency(leg), [this, id] { Complete(id); });
}

void SimLegs::Complete(uint64_t op_id) {
  auto it = ops_.find(op_id);
  if (it == ops_.end()) return;
  Op op = std::move(it->second);
  ops_.erase(it);
  const size_t leg = static_cast<size_t>(op.leg);
  Status status;
  if (failed_[leg]) status = IoError("leg " + std::to_string(op.leg) + " has failed");
  uint64_t value = 0;
  if (status.ok()) {
    if (op.write) {
      blocks_[leg][op.block] = op.value;
      for (const LandingObserver& observer : observers_) {
        observer(op.node, op.leg, op.block, op.value);
      }
    } else {
      value = blocks_[leg][op.block];
    }
  }
  if (op.orphan) return;
  if (op.write) {
    if (op.write_done) op.write_done(status);
  } else if (op.read_done) {
    op.read_done(status, value);
  }
}

void SimLegs::FailLeg(int leg) {
  if (leg >= 0 && leg < nr_legs()) failed_[static_cast<size_t>(leg)] = true;
}

int SimLegs::AddSpareLeg() {
  blocks_.emplace_back(nr_blocks(), 0);
  failed_.push_back(false);
  detached_.push_back(true);
  slow_.push_back(1);
  return nr_legs() - 1;
}

void SimLegs::Attach(int leg) {
  if (leg >= 0 && leg < nr_legs()) detached_[static_cast<size_t>(leg)] = false;
}

void SimLegs::Detach(int leg) {
  if (leg >= 0 && leg < nr_legs()) detached_[static_cast<size_t>(leg)] = true;
}

bool SimLegs::IsLive(int leg) const {
  return leg >= 0 && leg < nr_legs() && !failed_[static_cast<size_t>(leg)] &&
         !detached_[static_cast<size_t>(leg)];
}

std::vector<int> SimLegs::LiveLegs() const {
  std::vector<int> live;
  for (int leg = 0; leg < nr_legs(); ++leg) {
    if (IsLive(leg)) live.push_back(leg);
  }
  return live;
}

void SimLegs::SetSlowFactor(int leg, uint32_t factor) {
  if (leg >= 0 && leg < nr_legs()) slow_[static_cast<size_t>(leg)] = factor == 0 ? 1 : factor;
}

SimLegs::Abandoned SimLegs::AbandonNode(int node) {
  Abandoned result;
  for (auto it = ops_.begin(); it != ops_.end();) {
    Op& op = it->second;
    if (op.node != node || op.orphan) {
      ++it;
      continue;
    }
    if (op.write && rng_.Chance(timing_.crash_land_probability)) {
      op.orphan = true;
      op.write_done = nullptr;
      ++result.writes_landing;
      ++it;
      continue;
    }
    if (op.write) {
      ++result.writes_lost;
    } else {
      ++result.reads_dropped;
    }
    loop_.Cancel(op.event);
    it = ops_.erase(it);
  }
  return result;
}

uint64_t SimLegs::Peek(int leg, uint64_t block) const {
  if (!CheckAddress(leg, block).ok()) return 0;
  return blocks_[static_cast<size_t>(leg)][block];
}

void SimLegs::Poke(int leg, uint64_t block, uint64_t value) {
  if (CheckAddress(leg, block).ok()) blocks_[static_cast<size_t>(leg)][block] = value;
}

size_t SimLegs::InFlight(int node) const {
  size_t n = 0;
  for (const auto& [id, op] : ops_) {
    if (op.node == node) ++n;
  }
  return n;
}

void SimLegs::AddLandingObserver(LandingObserver observer) {
  observers_.push_back(std::move(observer));
}

}  // namespace clogd::sim
