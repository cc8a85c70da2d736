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
  int leg = live[rng_.Below(live.size())];
  if (mirror.replacement_copying) {
    const std::vector<const logd::ClusterLog*> ready = ReadyLogs(m);
    mirror.replacement_copying =
        ready.empty() || std::any_of(ready.begin(), ready.end(), [&](const logd::ClusterLog* cl) {
          return cl->state().log.SyncCount() != c_.regions;
        });
  }
  if (mirror.replacement_copying && leg == mirror.table_legs.front()) {
    // Not the only copy of the writes since the replacement (SimMirror::replacement_copying).
    auto other = std::find_if(live.begin(), live.end(),
                              [&](int l) { return l != mirror.table_legs.front(); });
    leg = *other;  // live has 3 legs or more here
  }
  FailLeg(m, leg);
}

void World::FailLeg(size_t m, int leg) {
  SimMirror& mirror = *mirrors_[m];
  ++result_.faults_injected;
  ++mirror.legs_failed;
  Trace(Stamp() + " FAULT leg " + std::to_string(leg) + " of " + mirror.uuid + " fails");
  mirror.legs->FailLeg(leg);
}

int World::SpareLegNumber(const std::string& device) {
  constexpr std::string_view kPrefix = "simleg";
  if (device.rfind(kPrefix, 0) != 0 || device.size() == kPrefix.size()) return -1;
  int leg = 0;
  for (char ch : device.substr(kPrefix.size())) {
    if (ch < '0' || ch > '9' || leg > 1000) return -1;
    leg = leg * 10 + (ch - '0');
  }
  return leg;
}

void World::ReplaceALeg(size_t m, SimRng& rng, std::function<void(bool)> outcome) {
  SimMirror& mirror = *mirrors_[m];
  std::vector<SimNode*> serving;
  for (auto& node : nodes_) {
    if (!node->up || !node->daemon_up || !node->daemon) continue;
    const logd::ClusterLog* cl = node->daemon->FindCluster(mirror.uuid);
    if (cl != nullptr && cl->serving()) serving.push_back(node.get());
  }
  SimNode* chosen = serving.empty() ? nullptr : serving[rng.Below(serving.size())];
  MirrorModel* k = chosen == nullptr ? nullptr : chosen->kernels[m].get();
  if (k == nullptr) {
    if (outcome) outcome(false);
    return;
  }
  SimNode& node = *chosen;
  // As an operator would: the failed leg if there is one, else a leg added while the
  // table is short of the legs it started with, else any leg but the first (the resync
  // source, which clogd refuses to drop while it works).
  const std::vector<int>& table = k->table_legs();
  const std::vector<int> failed = k->failed_table_legs();
  std::optional<uint32_t> leg;
  for (size_t i = 0; i < table.size() && !leg; ++i) {
    if (std::find(failed.begin(), failed.end(), table[i]) != failed.end()) {
      leg = static_cast<uint32_t>(i);
    }
  }
  if (!leg && table.size() >= static_cast<size_t>(c_.legs) && table.size() >= 2) {
    leg = static_cast<uint32_t>(1 + rng.Below(table.size() - 1));
  }
  const int spare = mirror.legs->AddSpareLeg();
  const std::string device = "simleg" + std::to_string(spare);
  ++result_.faults_injected;
  Trace(Stamp() + " FAULT n" + std::to_string(node.id) + " operator: " +
        (leg ? "replace leg " + std::to_string(*leg) + " of " + mirror.uuid + " by " + device
             : "add " + device + " to " + mirror.uuid));
  logd::ClusterLog* cl = node.daemon->FindCluster(mirror.uuid);
  cl->ReplaceLeg({leg, device, 0}, [this, device, outcome](Status s) {
    Trace(Stamp() + " operator: " + device + ": " + (s.ok() ? "committed" : s.ToString()));
    if (s.ok()) ++result_.legs_replaced;
    if (outcome) outcome(s.ok());
  });
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

logd::LegHooks World::LegHooksFor(SimNode& node, uint64_t inc,
                                  const std::shared_ptr<DmThread>& thread) {
  // A hook's answer comes back a little later, as from the daemon's device-mapper thread,
  // and only to the daemon that asked.
  auto on_thread = [thread](DmThread::Job job) { thread->Run(std::move(job)); };
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
  hooks.inspect = [later, kernel, on_thread](const std::string& uuid,
                                             std::function<void(Result<logd::LegHealth>)> done) {
    // The table is read at one moment and the answer delivered later, as the daemon's
    // device-mapper thread posts it to the event loop: a reload may commit in between
    // (scripts/faults leg-replaced: a read of the old table outlived the replacement).
    on_thread([later, kernel, uuid, done](std::function<void()> free) {
      later([later, kernel, uuid, done, free] {
        free();
        MirrorModel* k = kernel(uuid);
        if (k == nullptr) {
          later([uuid, done] { done(NotFound("no mirror uses log " + uuid)); });
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
        later([health, done] { done(health); });
      });
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
        // A replacement's new disk: "simleg<N>", leg N of the mirror's SimLegs.
        const int leg = SpareLegNumber(change.add_device);
        if (leg < 0 || std::find(table.begin(), table.end(), leg) != table.end()) {
          done(InvalidArgument("new leg " + change.add_device + " is not a spare disk"));
          return;
        }
        table.push_back(leg);
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
  hooks.prepare = [prepare, on_thread](const std::string& uuid, const logd::LegChange& change,
                                       std::function<void(Status)> done) {
    on_thread([prepare, uuid, change, done](std::function<void()> free) {
      (*prepare)(uuid, change, [free, done](Status s) {
        free();
        done(s);
      });
    });
  };
  hooks.finish = [this, later, kernel, on_thread](const std::string& uuid, bool commit,
                                                  std::function<void()> answer) {
    on_thread([this, later, kernel, uuid, commit, answer](std::function<void()> free) {
      auto done = [free, answer] {
        free();
        answer();
      };
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
        SimMirror& mirror = *mirrors_[m];
        // Every node is suspended with the new table loaded: the disk a replacement added is
        // the mirror's now, and one it took out (a leg that had not failed) is not.
        const std::vector<int> now = k->inactive_legs();
        for (int leg : now) mirror.legs->Attach(leg);
        for (int leg : mirror.table_legs) {
          if (std::find(now.begin(), now.end(), leg) == now.end()) mirror.legs->Detach(leg);
        }
        for (int leg : now) {
          const auto& old = mirror.table_legs;
          if (std::find(old.begin(), old.end(), leg) == old.end()) {
            mirror.replacement_copying = true;  // a replacement added it
          }
        }
        mirror.table_legs = now;  // what LVM's metadata would now say
        (void)k->CommitReload(done);
      });
    });
  };
  return hooks;
}

}  // namespace clogd::sim
