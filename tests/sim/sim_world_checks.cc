// The invariants of DESIGN.md §5, checked after every simulator event and at quiescence:
//  * a region every ready daemon reports in sync, that no daemon (ready or not) holds
//    marked and that no departed daemon may still be writing, has identical data on all live legs
//    (H1-H3);
//  * every acked write is on every live leg; reads never return stale data (DataChecker);
//  * every kernel request is answered within the kernel's 15 s retry;
//  * after the faults stop, recovery finishes: every region in sync on every daemon, the
//    daemons agree, and all live legs are identical.
#include "tests/sim/sim_world_internal.h"

namespace clogd::sim {

std::vector<const logd::ClusterLog*> World::ReadyLogs(size_t m) {
  std::vector<const logd::ClusterLog*> out;
  for (auto& node : nodes_) {
    if (!node->up || !node->daemon_up || !node->daemon) continue;
    const logd::ClusterLog* cl = node->daemon->FindCluster(mirrors_[m]->uuid);
    if (cl && cl->ready()) out.push_back(cl);
  }
  return out;
}

void World::CheckStep() {
  // Regions whose legs changed are checked after every event; all of them every 10 ms of
  // virtual time (a region can also become "clean" by a delivery while its legs differ).
  const bool full = loop_.Now() >= next_full_check_;
  if (full) next_full_check_ = loop_.Now() + 10'000;
  for (size_t m = 0; m < mirrors_.size(); ++m) {
    SimMirror& mirror = *mirrors_[m];
    const auto ready = ReadyLogs(m);
    if (ready.empty()) continue;
    // Forget departed daemons once the cluster has dealt with them.
    for (auto it = mirror.suspects.begin(); it != mirror.suspects.end();) {
      const NodeId n = it->first;
      const SimNode& node = *nodes_[n - 1];
      bool resolved = false;
      if (it->second.crashed) {
        resolved = std::all_of(ready.begin(), ready.end(), [&](const logd::ClusterLog* cl) {
          if (cl->state().generation <= it->second.generation_at_crash) return false;
          for (const auto& [slot, gone] : cl->state().awaiting_merge) {
            if (gone == n) return false;
          }
          return true;
        });
      } else if (node.up && node.daemon_up && node.daemon) {
        const logd::ClusterLog* own = node.daemon->FindCluster(mirror.uuid);
        resolved = own && own->ready();  // its marks are its own again
      }
      it = resolved ? mirror.suspects.erase(it) : std::next(it);
    }
    std::vector<uint64_t> regions;
    if (full) {
      for (uint64_t r = 0; r < c_.regions; ++r) regions.push_back(r);
    } else {
      regions.assign(mirror.touched.begin(), mirror.touched.end());
    }
    mirror.touched.clear();
    for (uint64_t r : regions) {
      bool clean = true;
      for (const logd::ClusterLog* cl : ready) {
        if (!cl->AnswersInSync(r) || cl->own_marks().contains(r) || cl->state().IsBusy(r) ||
            cl->state().log.IsMarkedByAny(r)) {
          clean = false;
          break;
        }
      }
      for (const auto& [n, suspect] : mirror.suspects)
        clean = clean && !suspect.regions.contains(r);
      // A live daemon that is not ready (its corosync restarted, or it lost quorum) still
      // holds its kernel's marks.
      for (auto& node : nodes_) {
        if (!clean || !node->up || !node->daemon_up || !node->daemon) continue;
        const logd::ClusterLog* cl = node->daemon->FindCluster(mirror.uuid);
        clean = !(cl && !cl->ready() && cl->own_marks().contains(r));
      }
      if (!clean) continue;
      for (const auto& v : mirror.checker->CheckRegionInSyncAndClean(r)) {
        Violation("mirror " + mirror.uuid + " (" + mirror.type +
                  "): reported in sync and clean: " + v);
      }
    }
  }
  for (auto& node : nodes_) {
    for (size_t m = 0; m < node->kernels.size(); ++m) {
      const MirrorModel* k = node->kernels[m].get();
      if (!k || k->stats().timeouts == node->timeouts_seen[m]) continue;
      node->timeouts_seen[m] = k->stats().timeouts;
      // Only a request the daemon took with it when it died may wait for the re-send.
      const bool explained = node->daemon_ever_died &&
                             loop_.Now() - node->daemon_died_at <= kUlogRetryTimeoutUs + 1'000'000;
      if (!explained) {
        Violation("node " + std::to_string(node->id) + ": a kernel request of " +
                  mirrors_[m]->uuid + " went unanswered for 15 s");
      }
    }
  }
}

bool World::Settled(std::string* why) {
  for (auto& node : nodes_) {
    if (!node->up || !node->daemon_up) {
      *why = "node " + std::to_string(node->id) + " is not back";
      return false;
    }
  }
  for (size_t m = 0; m < mirrors_.size(); ++m) {
    const SimMirror& mirror = *mirrors_[m];
    const auto ready = ReadyLogs(m);
    if (ready.size() != nodes_.size()) {
      *why = mirror.uuid + ": " + std::to_string(ready.size()) + " of " +
             std::to_string(nodes_.size()) + " daemons ready";
      return false;
    }
    for (const logd::ClusterLog* cl : ready) {
      if (cl->state().log.SyncCount() != c_.regions || cl->state().recovery.InFlight() != 0 ||
          cl->pending_requests() != 0) {
        const logd::ClusterState& st = cl->state();
        std::string detail;
        for (region::RegionNo r = st.log.NextOutOfSync(0);
             r != region::kNoRegion && detail.size() < 200; r = st.log.NextOutOfSync(r + 1)) {
          detail += " r" + std::to_string(r);
          if (auto o = st.recovery.Owner(r)) detail += "(owner n" + std::to_string(*o) + ")";
          for (const auto& [n, regions] : st.busy) {
            if (regions.contains(r)) detail += "(busy n" + std::to_string(n) + ")";
          }
          for (NodeId n : st.members) {
            if (st.log.IsMarkedBy(n, r)) detail += "(marked n" + std::to_string(n) + ")";
          }
        }
        for (const auto& [failed, nodes] : st.awaiting_reports) {
          detail += " awaiting reports for n" + std::to_string(failed) + " from";
          for (NodeId n : nodes) detail += " n" + std::to_string(n);
        }
        *why = mirror.uuid + " node " + std::to_string(cl->node()) + ": " +
               std::to_string(st.log.SyncCount()) + "/" + std::to_string(c_.regions) +
               " in sync, " + std::to_string(st.recovery.InFlight()) + " recovering, " +
               std::to_string(cl->pending_requests()) + " requests pending; out of sync:" + detail;
        return false;
      }
    }
    if (mirror.legs->InFlight() != 0) {
      *why = mirror.uuid + ": leg I/O in flight";
      return false;
    }
  }
  for (auto& node : nodes_) {
    for (auto& k : node->kernels) {
      if (!k || k->state() != MirrorState::kRunning || k->recovering() ||
          k->bios_in_target() != 0) {
        *why = "node " + std::to_string(node->id) + ": kernel not idle";
        return false;
      }
      // A leg this kernel saw fail is removed from its table, unless that would leave
      // fewer than two (dm-raid1's minimum).
      if (!k->failed_table_legs().empty() && k->table_legs().size() > 2) {
        *why = "node " + std::to_string(node->id) + ": its table still has failed leg " +
               std::to_string(k->failed_table_legs().front()) +
               " (held writes: " + std::to_string(k->held_writes()) + ")";
        return false;
      }
    }
  }
  return true;
}

void World::Quiesce() {
  for (auto& node : nodes_) {
    if (!node->up) {
      BootNode(*node);
    } else if (!node->daemon_up) {
      StartDaemon(*node);
    }
  }
  for (auto& mirror : mirrors_) {
    for (int leg = 0; leg < mirror->legs->nr_legs(); ++leg) mirror->legs->SetSlowFactor(leg, 1);
  }
  const SimTime end = loop_.Now() + c_.quiesce_us;
  std::string why;
  SimTime next_probe = 0;
  bool settled = false;
  while (loop_.Now() < end) {
    if (loop_.Now() >= next_probe) {
      next_probe = loop_.Now() + 100'000;
      if (Settled(&why)) {
        settled = true;
        break;
      }
    }
    if (!loop_.Step()) {
      settled = Settled(&why);
      break;
    }
    ++result_.events;
    CheckStep();
    if (result_.violations.size() > 20) return;
  }
  if (!settled && !Settled(&why)) {
    Violation("recovery did not finish within " + std::to_string(c_.quiesce_us / 1'000'000) +
              " s after the faults stopped: " + why);
    return;
  }
  for (size_t m = 0; m < mirrors_.size(); ++m) {
    SimMirror& mirror = *mirrors_[m];
    for (const auto& v : mirror.checker->CheckQuiescent()) Violation(mirror.uuid + ": " + v);
    for (const auto& v : mirror.checker->CheckAckedWrites()) Violation(mirror.uuid + ": " + v);
    const auto ready = ReadyLogs(m);
    for (const logd::ClusterLog* cl : ready) {
      const logd::ClusterState& a = ready.front()->state();
      const logd::ClusterState& b = cl->state();
      if (!(b.log.in_sync() == a.log.in_sync()) || b.generation != a.generation ||
          b.members != a.members || b.server != a.server || b.slot_owner != a.slot_owner ||
          b.absent != a.absent || b.sync_version != a.sync_version) {
        Violation(mirror.uuid + ": nodes " + std::to_string(ready.front()->node()) + " and " +
                  std::to_string(cl->node()) + " disagree on the log state");
      }
    }
  }
}

}  // namespace clogd::sim
