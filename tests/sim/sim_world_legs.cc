// Leg failure in the simulated cluster (DESIGN.md §4.6, hazard H6): a leg of a mirror dies
// for every node at once (a disk, not a path), and the daemon's leg hooks do what clogd's
// device-mapper hooks do on a real node, on the node's kernel model: read which table legs
// the kernel saw fail (dmsetup status), suspend and load the table without one
// (PrepareReload), then resume it or the old one (CommitReload / AbortReload).
#include "tests/sim/sim_world_internal.h"

namespace clogd::sim {

void World::FailALeg(std::optional<size_t> mirror_index) {
  const size_t m = mirror_index ? *mirror_index : rng_.Below(mirrors_.size());
  SimMirror& mirror = *mirrors_[m];
  const std::vector<int> live = mirror.legs->LiveLegs();
  // Keep two legs the cluster can run on: dm-raid1 needs two, so a third failure could
  // only end in held writes (a linear conversion, which is the operator's).
  if (live.size() <= 2 || mirror.table_legs.size() <= 2) return;
  const int leg = live[rng_.Below(live.size())];
  ++result_.faults_injected;
  ++mirror.legs_failed;
  Trace(Stamp() + " FAULT leg " + std::to_string(leg) + " of " + mirror.uuid + " fails");
  mirror.legs->FailLeg(leg);
}

void World::DropLeftoverReload(SimNode& node, size_t m, uint64_t inc) {
  MirrorModel* k = node.kernels[m].get();
  if (!node.up || !node.daemon_up || node.incarnation != inc || !node.leftover_reload[m]) return;
  if (k != nullptr && k->state() == MirrorState::kSuspending) {
    loop_.Schedule(1000, [this, &node, m, inc] { DropLeftoverReload(node, m, inc); });
    return;
  }
  node.leftover_reload[m] = false;
  if (k != nullptr && k->state() == MirrorState::kSuspended) {
    Trace(Stamp() + " n" + std::to_string(node.id) + " clogd at start: drops a loaded table");
    (void)k->AbortReload();
  }
}

logd::LegHooks World::LegHooksFor(SimNode& node, uint64_t inc) {
  // A hook's answer comes back a little later, as from the daemon's device-mapper thread,
  // and only to the daemon that asked.
  auto later = [this, &node, inc](std::function<void()> fn) {
    loop_.Schedule(aux_rng_.Range(50, 500), [&node, inc, fn = std::move(fn)] {
      if (node.up && node.daemon_up && node.incarnation == inc) fn();
    });
  };
  auto kernel = [this, &node](const std::string& uuid) -> MirrorModel* {
    size_t m = 0;
    return MirrorByUuid(uuid, &m) ? node.kernels[m].get() : nullptr;
  };
  auto leftover = [this, &node](const std::string& uuid) {
    size_t m = 0;
    return MirrorByUuid(uuid, &m) && node.leftover_reload[m];
  };
  logd::LegHooks hooks;
  hooks.inspect = [later, kernel](const std::string& uuid,
                                  std::function<void(Result<logd::LegHealth>)> done) {
    later([kernel, uuid, done] {
      MirrorModel* k = kernel(uuid);
      if (k == nullptr) {
        done(NotFound("no mirror uses log " + uuid));
        return;
      }
      logd::LegHealth health;
      const std::vector<int>& table = k->table_legs();
      const std::vector<int> failed = k->failed_table_legs();
      health.legs = static_cast<uint32_t>(table.size());
      for (size_t i = 0; i < table.size(); ++i) {
        if (std::find(failed.begin(), failed.end(), table[i]) != failed.end()) {
          health.failed.push_back(static_cast<uint32_t>(i));
        }
      }
      done(health);
    });
  };
  // Waits (as libdevmapper's suspend would) for a suspend already under way.
  auto prepare = std::make_shared<std::function<void(const std::string&, const logd::LegChange&,
                                                     std::function<void(Status)>)>>();
  *prepare = [later, kernel, leftover, weak = std::weak_ptr(prepare)](
                 const std::string& uuid, const logd::LegChange& change,
                 std::function<void(Status)> done) {
    later([kernel, leftover, weak, uuid, change, done] {
      MirrorModel* k = kernel(uuid);
      if (k != nullptr && (k->state() == MirrorState::kSuspending || leftover(uuid))) {
        if (auto again = weak.lock()) (*again)(uuid, change, done);
        return;
      }
      if (k == nullptr || k->state() != MirrorState::kRunning) {
        done(Busy("the mirror of log " + uuid + " is not running (" +
                  (k == nullptr ? "none" : std::to_string(static_cast<int>(k->state()))) + ")"));
        return;
      }
      std::vector<int> table = k->table_legs();
      if (table.size() != change.legs || (change.remove && *change.remove >= change.legs)) {
        done(InvalidArgument("the table has " + std::to_string(table.size()) + " legs, not " +
                             std::to_string(change.legs)));
        return;
      }
      if (change.remove) table.erase(table.begin() + *change.remove);
      if (!change.add_device.empty()) {
        done(InvalidArgument("the simulator adds no legs"));
        return;
      }
      Status s = k->PrepareReload(table, [k, done](bool loaded) {
        if (loaded) {
          done(Status::Ok());
          return;
        }
        (void)k->AbortReload([done] { done(IoError("the table without the leg did not load")); });
      });
      if (!s.ok()) done(s);
    });
  };
  hooks.prepare = [prepare](const std::string& uuid, const logd::LegChange& change,
                            std::function<void(Status)> done) {
    (*prepare)(uuid, change, std::move(done));
  };
  hooks.finish = [this, later, kernel](const std::string& uuid, bool commit,
                                       std::function<void()> done) {
    later([this, kernel, uuid, commit, done] {
      MirrorModel* k = kernel(uuid);
      if (k == nullptr || k->state() != MirrorState::kSuspended) {
        done();
        return;
      }
      if (!commit) {
        (void)k->AbortReload(done);
        return;
      }
      size_t m = 0;
      (void)MirrorByUuid(uuid, &m);
      mirrors_[m]->table_legs = k->inactive_legs();  // what LVM's metadata would now say
      (void)k->CommitReload(done);
    });
  };
  return hooks;
}

}  // namespace clogd::sim
