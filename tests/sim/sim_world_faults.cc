// The random faults of a run (unless a scenario scripts them): 1-4 of node crashes, daemon
// crashes and slow legs, and, each from its own stream seeded from the run's seed (so adding
// one kind leaves the others' timing as it was), corosync restarts, log device faults, leg
// failures and an operator's leg replacement. They stay inside the envelope a cluster runs
// in: a majority stays up.
#include "tests/sim/sim_world_internal.h"

namespace clogd::sim {

void World::ScheduleFaults() {
  const uint64_t count = rng_.Range(1, 4);
  for (uint64_t i = 0; i < count; ++i) {
    const SimTime at =
        rng_.Range(1'000'000, c_.workload_us > 3'000'000 ? c_.workload_us - 2'000'000 : 1'000'001);
    const uint64_t kind = rng_.Below(3);
    loop_.ScheduleAt(at, [this, kind] { InjectFault(kind); });
  }
  if (c_.corosync_restarts) {
    SimRng extra(c_.seed ^ 0xC0505EC0DEull);
    if (extra.OneIn(2)) {
      const SimTime at = extra.Range(
          1'000'000, c_.workload_us > 3'000'000 ? c_.workload_us - 2'000'000 : 1'000'001);
      loop_.ScheduleAt(at, [this] { InjectFault(kCorosyncRestart); });
    }
  }
  if (c_.log_device_faults) {
    SimRng extra(c_.seed ^ 0x10CDE71CE5ull);  // its own stream, as above
    if (extra.OneIn(2)) {
      const SimTime at = extra.Range(
          1'000'000, c_.workload_us > 3'000'000 ? c_.workload_us - 2'000'000 : 1'000'001);
      const uint64_t kind = kLogPathDown + extra.Below(3);
      loop_.ScheduleAt(at, [this, kind] { InjectFault(kind); });
    }
  }
  if (c_.leg_failures && c_.legs >= 3) {
    SimRng extra(c_.seed ^ 0x1E6FA11ull);  // its own stream, as above
    if (extra.OneIn(2)) {
      const uint64_t failures = extra.Range(1, static_cast<uint64_t>(c_.legs - 2));
      for (uint64_t i = 0; i < failures; ++i) {
        const SimTime at = extra.Range(
            1'000'000, c_.workload_us > 3'000'000 ? c_.workload_us - 2'000'000 : 1'000'001);
        loop_.ScheduleAt(at, [this] { FailALeg(); });
      }
    }
    // An operator replaces a leg (the failed one, if any) or adds one back.
    SimRng op(c_.seed ^ 0x5E9A1ACEull);
    if (op.OneIn(2)) {
      const SimTime at =
          op.Range(1'000'000, c_.workload_us > 3'000'000 ? c_.workload_us - 2'000'000 : 1'000'001);
      const size_t m = op.Below(mirrors_.size());
      loop_.ScheduleAt(at, [this, m, seed = op.Next()] {
        SimRng choices(seed);
        ReplaceALeg(m, choices);
      });
    }
  }
}

void World::InjectFault(uint64_t kind) {
  auto up = FullyUp();
  if (kind == kLogPathDown || kind == kLogDeviceDown) {
    const std::optional<size_t> m = PickDiskMirror();
    if (!m || up.empty()) return;
    const SimTime until = loop_.Now() + rng_.Range(500'000, 4'000'000);
    ++result_.faults_injected;
    if (kind == kLogDeviceDown) {
      Trace(Stamp() + " FAULT log device " + mirrors_[*m]->device_name + " fails");
      mirrors_[*m]->device_down_until = until;
    } else {
      SimNode& victim = *up[rng_.Below(up.size())];
      Trace(Stamp() + " n" + std::to_string(victim.id) + " FAULT path to " +
            mirrors_[*m]->device_name + " fails");
      victim.log_path_down_until[*m] = until;
    }
    return;
  }
  if (kind == 2) {  // a slow leg for a while
    SimMirror& mirror = *mirrors_[rng_.Below(mirrors_.size())];
    const int leg = static_cast<int>(rng_.Below(static_cast<uint64_t>(c_.legs)));
    mirror.legs->SetSlowFactor(leg, 20);
    loop_.Schedule(rng_.Range(500'000, 3'000'000),
                   [&mirror, leg] { mirror.legs->SetSlowFactor(leg, 1); });
    ++result_.faults_injected;
    return;
  }
  // Stay inside the envelope a cluster runs in: a majority stays up (quorum).
  if (2 * (up.size() - 1) <= static_cast<size_t>(c_.nodes) || up.size() < 2) return;
  SimNode& victim = *up[rng_.Below(up.size())];
  ++result_.faults_injected;
  if (kind == 0) {
    Trace(Stamp() + " n" + std::to_string(victim.id) + " FAULT node crash");
    CrashNode(victim);
    loop_.Schedule(rng_.Range(3'000'000, 8'000'000), [this, &victim] { BootNode(victim); });
  } else if (kind == kTornLogWrite) {
    const std::optional<size_t> m = PickDiskMirror();
    if (!m) return;
    Trace(Stamp() + " n" + std::to_string(victim.id) + " FAULT its next write to " +
          mirrors_[*m]->device_name + " is torn by a crash");
    victim.tear_log_write[*m] = true;
    loop_.Schedule(2'000'000, [&victim, m] { victim.tear_log_write[*m] = false; });
  } else if (kind == kCorosyncRestart) {
    // The daemon and the kernel live on; the others see the node leave.
    Trace(Stamp() + " n" + std::to_string(victim.id) + " FAULT corosync restart");
    (void)cpg_.RestartCorosync(victim.id);
  } else {
    Trace(Stamp() + " n" + std::to_string(victim.id) + " FAULT daemon crash");
    KillDaemon(victim);
    loop_.Schedule(rng_.Range(200'000, 3'000'000), [this, &victim] {
      if (victim.up && !victim.daemon_up) StartDaemon(victim);
    });
  }
}

}  // namespace clogd::sim
