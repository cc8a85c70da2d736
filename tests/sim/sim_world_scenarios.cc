// Scripted fault schedules, one per hazard of DESIGN.md §5, so that each is driven into on
// purpose rather than left to chance (the seed still varies the timing and the workload):
//   h1-resync-vs-writes   a node dies while the others write the regions it was writing
//                         (hot set shared by all), so resync meets writes in flight;
//   h2-crash-after-flush  a node dies with acknowledged marks and writes in flight;
//   h3-shared-marks       two nodes die one after the other while a third keeps marking
//                         the same regions;
//   h4-server-dies        the log server's node dies (mid-merge when it can: right after
//                         another node's death);
//   h5-fast-rejoin        a node dies and comes back as fast as it can, twice;
//   h7-daemon-restarts    a daemon dies under its live kernel and restarts, twice, on
//                         different nodes.
//   h6-leg-fails          a node dies, and a leg fails while the others resync its
//                         regions; a second leg fails while the cluster removes the first
//                         (and in half the seeds the log server's node dies meanwhile). Runs
//                         with at least 4 legs.
//   h6-leg-replaced       the last leg of a mirror but the first fails (with 2 legs no
//                         node can drop it: every node holds its failed writes), and an
//                         operator replaces it 0-2 s later (again a second after an
//                         abort, or 3 s after no answer); in half the seeds a node dies up
//                         to 1 s after the operator asked (during the reload, or the copy
//                         to the new leg).
//   partition             a minority (1 of 3, 2 of 5 nodes) is cut off while everybody
//                         writes, and healed a few seconds after both sides saw the split;
//                         later another minority. Runs with a 2 s fence grace.
//   deactivate            the mirror is removed (dmsetup remove) on every node but one, one
//                         after another; the last one writes on alone, its ring whole (quorum
//                         counts the ring, not the log's group), then is removed too; every
//                         removal must finish within 10 s. In half the seeds the last one is
//                         cut off while alone and the others activate the mirror again
//                         meanwhile (a new group, on the log device, which waits out the fence
//                         grace for the cut-off node's marks); healed before it is removed.
//                         Then every node activates the mirror again. 2 s fence grace.
#include "tests/sim/sim_world_internal.h"

namespace clogd::sim {

std::vector<std::string> ScenarioNames() {
  return {"h1-resync-vs-writes", "h2-crash-after-flush", "h3-shared-marks",
          "h4-server-dies",      "h5-fast-rejoin",       "h6-leg-fails",
          "h6-leg-replaced",     "h7-daemon-restarts",   "partition",
          "deactivate"};
}

SimNode* World::ServerNode() {
  for (auto& node : nodes_) {
    if (!node->up || !node->daemon) continue;
    const logd::ClusterLog* cl = node->daemon->FindCluster(mirrors_.front()->uuid);
    if (cl && cl->ready()) return nodes_[cl->state().server - 1].get();
  }
  return nullptr;
}

void World::CrashFor(SimNode& node, SimTime down_us) {
  if (!node.up) return;
  Trace(Stamp() + " n" + std::to_string(node.id) + " SCENARIO node crash");
  ++result_.faults_injected;
  CrashNode(node);
  loop_.Schedule(down_us, [this, &node] { BootNode(node); });
}

void World::KillDaemonFor(SimNode& node, SimTime down_us) {
  if (!node.up || !node.daemon_up) return;
  Trace(Stamp() + " n" + std::to_string(node.id) + " SCENARIO daemon crash");
  ++result_.faults_injected;
  KillDaemon(node);
  loop_.Schedule(down_us, [this, &node] {
    if (node.up && !node.daemon_up) StartDaemon(node);
  });
}

void World::Deactivate(SimNode& node, size_t m, std::function<void()> then) {
  if (!node.up || !node.kernels[m]) return;
  MirrorModel& k = *node.kernels[m];
  if (k.state() == MirrorState::kStopped) return;
  const uint64_t boot = node.boot;
  auto done = std::make_shared<bool>(false);
  Status s = k.Stop([done, then] {
    *done = true;
    if (then) then();
  });
  if (!s.ok()) {  // suspended for a moment (a rearm, a reload): dmsetup tries again
    loop_.Schedule(100'000, [this, &node, m, then, boot] {
      if (node.boot == boot) Deactivate(node, m, then);
    });
    return;
  }
  Trace(Stamp() + " n" + std::to_string(node.id) + " SCENARIO deactivate " + mirrors_[m]->uuid);
  loop_.Schedule(10'000'000, [this, &node, m, done, boot] {
    if (*done || node.boot != boot || !node.up) return;
    Violation("node " + std::to_string(node.id) + ": removing mirror " + mirrors_[m]->uuid +
              " did not finish within 10 s");
  });
}

void World::Reactivate(SimNode& node, size_t m) {
  if (!node.up || !node.daemon_up) return;
  MirrorModel* k = node.kernels[m].get();
  if (k && k->state() != MirrorState::kStopped) return;
  Trace(Stamp() + " n" + std::to_string(node.id) + " SCENARIO activate " + mirrors_[m]->uuid);
  ++node.reactivations[m];
  StartKernel(node, m);
}

void World::CutOffFor(size_t first, size_t count, SimTime cut_us) {
  std::vector<NodeId> cut, rest;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const SimNode& node = NodeAt(first + i);
    (i < count ? cut : rest).push_back(node.id);
  }
  std::string names;
  for (NodeId id : cut) names += " n" + std::to_string(id);
  Trace(Stamp() + " SCENARIO cut off:" + names);
  ++result_.faults_injected;
  if (Status s = cpg_.Partition({rest, cut}); !s.ok()) {
    result_.violations.push_back("partition refused: " + s.ToString());
    return;
  }
  loop_.Schedule(cut_us, [this] {
    Trace(Stamp() + " SCENARIO heal");
    cpg_.Heal();
  });
}

void World::WhenLegRemovalOpens(size_t m, std::function<void()> then, int polls_left) {
  for (const logd::ClusterLog* cl : ReadyLogs(m)) {
    if (cl->leg_removal_open()) {
      Trace(Stamp() + " SCENARIO a leg removal is open");
      then();
      return;
    }
  }
  if (polls_left == 0) return;
  loop_.Schedule(200, [this, m, then = std::move(then), polls_left]() mutable {
    WhenLegRemovalOpens(m, std::move(then), polls_left - 1);
  });
}

void World::ReplaceUntilCommitted(size_t m, uint64_t seed, int attempts) {
  SimRng rng(seed);
  const uint64_t next = rng.Next();
  // An outcome, or none within 3 s (the node died under clogctl): try again.
  auto answered = std::make_shared<bool>(false);
  auto again = [this, m, next, attempts] {
    // Only while the table still has a dead leg (an outcome may be lost, not the commit).
    const std::vector<int> live = mirrors_[m]->legs->LiveLegs();
    const std::vector<int>& table = mirrors_[m]->table_legs;
    const bool dead = std::any_of(table.begin(), table.end(), [&](int leg) {
      return std::find(live.begin(), live.end(), leg) == live.end();
    });
    if (dead && attempts > 1) ReplaceUntilCommitted(m, next, attempts - 1);
  };
  ReplaceALeg(m, rng, [this, answered, again](bool committed) {
    if (*answered) return;
    *answered = true;
    if (!committed) loop_.Schedule(1'000'000, again);
  });
  loop_.Schedule(3'000'000, [answered, again] {
    if (*answered) return;
    *answered = true;
    again();
  });
}

void World::ScheduleScenario() {
  const std::string& s = c_.scenario;
  const SimTime t0 = rng_.Range(1'000'000, 2'000'000);
  if (s == "h1-resync-vs-writes" || s == "h2-crash-after-flush") {
    const size_t victim = rng_.Below(nodes_.size());
    loop_.ScheduleAt(t0, [this, victim] { CrashFor(NodeAt(victim), 4'000'000); });
  } else if (s == "h3-shared-marks") {
    const size_t a = rng_.Below(nodes_.size());
    loop_.ScheduleAt(t0, [this, a] { CrashFor(NodeAt(a), 6'000'000); });
    // The second one only once the first is back: a majority must stay up.
    loop_.ScheduleAt(t0 + 7'000'000, [this, a] { CrashFor(NodeAt(a + 1), 3'000'000); });
  } else if (s == "h4-server-dies") {
    loop_.ScheduleAt(t0, [this] {
      if (SimNode* server = ServerNode()) CrashFor(*server, 4'000'000);
    });
    loop_.ScheduleAt(t0 + 6'000'000, [this] {
      // A non-server node dies, then the (new) server while the merge is under way.
      SimNode* server = ServerNode();
      if (!server) return;
      SimNode& other = NodeAt(server->id);  // node ids are 1-based: index id is the next one
      CrashFor(other, 4'000'000);
      loop_.Schedule(cpg_.timing().detection_us + 500, [this] {
        if (SimNode* s2 = ServerNode()) CrashFor(*s2, 4'000'000);
      });
    });
  } else if (s == "h5-fast-rejoin") {
    const size_t victim = rng_.Below(nodes_.size());
    loop_.ScheduleAt(t0, [this, victim] { CrashFor(NodeAt(victim), 100'000); });
    loop_.ScheduleAt(t0 + 4'000'000, [this, victim] { CrashFor(NodeAt(victim), 100'000); });
  } else if (s == "h6-leg-fails") {
    const size_t victim = rng_.Below(nodes_.size());
    loop_.ScheduleAt(t0, [this, victim] { CrashFor(NodeAt(victim), 4'000'000); });
    // The survivors resync the dead node's regions from about detection time on.
    const SimTime fail_at = t0 + cpg_.timing().detection_us + rng_.Range(0, 300'000);
    const bool kill_server = rng_.OneIn(2);
    loop_.ScheduleAt(fail_at, [this, kill_server] {
      FailALeg(0);
      WhenLegRemovalOpens(0, [this, kill_server] {
        FailALeg(0);  // a second failure during the reconfiguration
        if (!kill_server) return;
        if (SimNode* server = ServerNode()) CrashFor(*server, 3'000'000);
      });
    });
  } else if (s == "h6-leg-replaced") {
    // A quick operator (or script) too: writes to regions still in sync then keep failing
    // while the nodes suspend for the reload.
    const uint64_t speed = rng_.Below(3);
    const SimTime react = speed == 0   ? rng_.Range(0, 5'000)
                          : speed == 1 ? rng_.Range(5'000, 200'000)
                                       : rng_.Range(200'000, 2'000'000);
    const uint64_t choices = rng_.Next();
    const bool crash = rng_.OneIn(2);
    const SimTime crash_after = rng_.Range(0, 1'000'000);
    const size_t victim = rng_.Below(nodes_.size());
    loop_.ScheduleAt(t0, [this, react, choices, crash, crash_after, victim] {
      FailLeg(0, mirrors_[0]->table_legs.back());
      loop_.Schedule(react, [this, choices, crash, crash_after, victim] {
        ReplaceUntilCommitted(0, choices, 20);
        if (crash) {
          loop_.Schedule(crash_after, [this, victim] { CrashFor(NodeAt(victim), 3'000'000); });
        }
      });
    });
  } else if (s == "partition") {
    const size_t minority = (nodes_.size() - 1) / 2;
    const size_t first = rng_.Below(nodes_.size());
    const SimTime detection = cpg_.timing().detection_us;
    const SimTime cut = detection + rng_.Range(500'000, 4'000'000);
    loop_.ScheduleAt(t0, [this, first, minority, cut] { CutOffFor(first, minority, cut); });
    const size_t again = first + 1 + rng_.Below(nodes_.size() - 1);
    const SimTime cut2 = detection + rng_.Range(500'000, 3'000'000);
    loop_.ScheduleAt(t0 + cut + 5'000'000 + rng_.Range(0, 2'000'000),
                     [this, again, minority, cut2] { CutOffFor(again, minority, cut2); });
  } else if (s == "deactivate") {
    std::vector<size_t> order(nodes_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng_.Below(i)]);
    SimTime at = t0;
    for (size_t i = 0; i + 1 < order.size(); ++i) {
      loop_.ScheduleAt(at, [this, index = order[i]] { Deactivate(NodeAt(index), 0); });
      at += rng_.Range(0, 1'000'000);
    }
    const size_t last = order.back();
    const bool cut = rng_.OneIn(2);
    const SimTime detection = cpg_.timing().detection_us;
    at += rng_.Range(500'000, 1'500'000);
    if (cut) {
      const SimTime cut_us = detection + rng_.Range(2'000'000, 4'000'000);
      loop_.ScheduleAt(at, [this, last, cut_us] { CutOffFor(last, 1, cut_us); });
      // The others activate the mirror again while the last one is cut off.
      loop_.ScheduleAt(at + detection + rng_.Range(100'000, 1'000'000), [this, last] {
        for (size_t i = 0; i < nodes_.size(); ++i) {
          if (i != last) Reactivate(NodeAt(i), 0);
        }
      });
      at += cut_us + rng_.Range(500'000, 1'500'000);
    } else {
      at += rng_.Range(1'500'000, 3'000'000);
    }
    loop_.ScheduleAt(at, [this, last] {
      Deactivate(NodeAt(last), 0, [this] {
        // Everybody back: the run ends with the mirror active everywhere.
        loop_.Schedule(rng_.Range(200'000, 1'000'000), [this] {
          for (size_t i = 0; i < nodes_.size(); ++i) Reactivate(NodeAt(i), 0);
        });
      });
    });
  } else if (s == "h7-daemon-restarts") {
    const size_t a = rng_.Below(nodes_.size());
    loop_.ScheduleAt(t0, [this, a] { KillDaemonFor(NodeAt(a), rng_.Range(100'000, 800'000)); });
    loop_.ScheduleAt(t0 + 2'500'000,
                     [this, a] { KillDaemonFor(NodeAt(a + 1), rng_.Range(100'000, 800'000)); });
  }
}

}  // namespace clogd::sim
