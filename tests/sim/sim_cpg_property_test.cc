// Randomized schedules over many seeds: 3-5 nodes, two groups, daemons that rejoin when
// they lose corosync, random multicasts (also from inside callbacks), crashes, reboots,
// corosync restarts, partitions, heals, fast leave/rejoin, daemon restarts and flow control.
// Every handler's stream is recorded and checked (cpg_checker.h): agreed order, virtual
// synchrony, nothing from a departed node, nothing to a dead one, self-delivery, and at the
// end (healed, everything restarted) one agreed membership of all nodes per group.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/sim/cpg_checker.h"
#include "tests/sim/sim_cpg.h"

namespace clogd::sim {
namespace {

const std::vector<std::string> kGroups = {"ga", "gb"};

class World {
 public:
  World(uint64_t seed, const CpgTiming& timing)
      : sim_rng_(seed),
        rng_(seed ^ 0x5DEECE66DULL),
        cpg_(loop_, sim_rng_, timing),
        rec_(cpg_, loop_) {
    nodes_ = 3 + static_cast<NodeId>(rng_.Below(3));
    for (NodeId n = 1; n <= nodes_; ++n) StartProcess(n);
  }

  void Run(int actions) {
    for (int i = 0; i < actions; ++i) {
      Act();
      loop_.RunFor(rng_.OneIn(3) ? rng_.Range(0, 3'000'000) : rng_.Range(0, 2'000));
    }
    // Settle: everybody back, reachable, unthrottled; the daemons rejoin by themselves.
    cpg_.Heal();
    for (NodeId n = 1; n <= nodes_; ++n) {
      ASSERT_TRUE(cpg_.SetFlowControl(n, 0).ok());
      if (!cpg_.NodeUp(n)) Reboot(n);
    }
    loop_.RunFor(30'000'000);
    ASSERT_TRUE(loop_.RunUntilIdle(1'000'000).ok());
  }

  std::vector<std::string> Check() {
    std::vector<std::string> out = CheckCpgStreams(rec_.streams(), true);
    out.insert(out.end(), harness_errors_.begin(), harness_errors_.end());
    // Every node ends with one open, installed stream per group, all in one view.
    for (NodeId n = 1; n <= nodes_; ++n) {
      for (const std::string& g : kGroups) {
        StreamHandler* h = procs_.at(n).handlers.at(g);
        const CpgStream& s = rec_.streams()[h->stream()];
        if (s.ended || !h->installed()) {
          out.push_back("node " + std::to_string(n) + " " + g + " not joined at the end");
          continue;
        }
        size_t members = 0;
        for (const CpgEvent& e : s.events) {
          if (e.kind == CpgEvent::Kind::kMembership) members = e.membership.members.size();
        }
        if (members != nodes_) {
          out.push_back("node " + std::to_string(n) + " " + g + " ends with " +
                        std::to_string(members) + " members");
        }
      }
    }
    return out;
  }

  // What the run exercised, so a schedule that silently stopped producing faults fails.
  struct Coverage {
    size_t deliveries = 0, leaves = 0, multi_leaves = 0, merges = 0, losts = 0;
    size_t unordered_drops = 0;  // accepted multicasts nobody got (sender died first)
    void Add(const Coverage& o) {
      deliveries += o.deliveries;
      leaves += o.leaves;
      multi_leaves += o.multi_leaves;
      merges += o.merges;
      losts += o.losts;
      unordered_drops += o.unordered_drops;
    }
  };
  Coverage Covered() const {
    Coverage c;
    std::set<std::string> delivered;
    for (const CpgStream& s : rec_.streams()) {
      for (const CpgEvent& e : s.events) {
        if (e.kind == CpgEvent::Kind::kDeliver) {
          ++c.deliveries;
          delivered.insert(e.message);
        } else if (e.kind == CpgEvent::Kind::kLost) {
          ++c.losts;
        } else {
          c.leaves += e.membership.left.empty() ? 0 : 1;
          c.multi_leaves += e.membership.left.size() > 1 ? 1 : 0;
          c.merges += e.membership.joined.size() > 1 ? 1 : 0;
        }
      }
    }
    for (const CpgStream& s : rec_.streams()) {
      for (const std::string& m : s.sent) c.unordered_drops += delivered.count(m) == 0 ? 1 : 0;
    }
    return c;
  }

 private:
  struct Process {
    uint64_t id = 0;
    std::unique_ptr<logd::ClusterTransport> transport;
    std::map<std::string, StreamHandler*> handlers;  // the current stream per group
  };

  void StartProcess(NodeId n) {
    Process& p = procs_[n];
    p.id = next_process_++;
    p.transport = cpg_.TransportFor(n);
    for (const std::string& g : kGroups) StartJoin(n, g);
  }

  // A new stream for (n, g); Join is retried until corosync takes it, like a daemon would.
  void StartJoin(NodeId n, const std::string& g) {
    Process& p = procs_.at(n);
    StreamHandler* h = rec_.NewStream(n, g);
    p.handlers[g] = h;
    h->after_lost = [this, n, g, pid = p.id] {
      loop_.Schedule(rng_.Range(0, 500'000), [this, n, g, pid] {
        if (Current(n, pid)) StartJoin(n, g);
      });
    };
    h->after_membership = [this, n, h](const logd::Membership&) {
      if (rng_.OneIn(4)) Send(n, h);
    };
    TryJoin(n, g, p.id, h);
  }

  void TryJoin(NodeId n, const std::string& g, uint64_t pid, StreamHandler* h) {
    if (!Current(n, pid) || procs_.at(n).handlers.at(g) != h) return;
    rec_.in_transport_call = true;
    Status st = procs_.at(n).transport->Join(g, h);
    rec_.in_transport_call = false;
    if (st.ok()) return;
    if (st.code() != Errc::kIoError) harness_errors_.push_back("Join: " + st.ToString());
    loop_.Schedule(200'000, [this, n, g, pid, h] { TryJoin(n, g, pid, h); });
  }

  bool Current(NodeId n, uint64_t pid) const {
    auto it = procs_.find(n);
    return it != procs_.end() && it->second.id == pid;
  }

  void Send(NodeId n, StreamHandler* h) {
    auto it = procs_.find(n);
    if (it == procs_.end()) return;
    const CpgStream& s = rec_.streams()[h->stream()];
    if (s.ended) return;
    const bool installed = h->installed();
    Status st = rec_.Send(*it->second.transport, h, rng_.OneIn(20) ? rng_.Below(4000) : 0);
    if (!installed) {
      if (st.code() != Errc::kInvalidArgument && st.code() != Errc::kIoError) {
        harness_errors_.push_back("Multicast before join completed: " + st.ToString());
      }
    } else if (!st.ok() && st.code() != Errc::kBusy && st.code() != Errc::kIoError) {
      harness_errors_.push_back("Multicast: " + st.ToString());
    }
  }

  void EndAll(Process& p) {
    for (auto& [g, h] : p.handlers) rec_.End(h);
  }

  void Reboot(NodeId n) {
    if (!cpg_.RestartNode(n).ok()) harness_errors_.push_back("RestartNode refused");
    StartProcess(n);
  }

  NodeId AnyNode() { return 1 + static_cast<NodeId>(rng_.Below(nodes_)); }

  void Act() {
    const NodeId n = AnyNode();
    const std::string& g = kGroups[rng_.Index(kGroups.size())];
    const uint64_t what = rng_.Below(100);
    if (what < 55) {  // a burst of multicasts
      const uint64_t count = rng_.Range(1, 8);
      for (uint64_t i = 0; i < count; ++i) {
        const NodeId from = AnyNode();
        auto it = procs_.find(from);
        if (it != procs_.end()) Send(from, it->second.handlers.at(kGroups[rng_.Index(2)]));
      }
    } else if (what < 63) {  // crash
      if (!cpg_.NodeUp(n)) return;
      if (!cpg_.CrashNode(n).ok()) harness_errors_.push_back("CrashNode refused");
      EndAll(procs_.at(n));
      procs_.erase(n);
    } else if (what < 70) {  // reboot a crashed node
      for (NodeId m = 1; m <= nodes_; ++m) {
        if (!cpg_.NodeUp(m)) {
          Reboot(m);
          break;
        }
      }
    } else if (what < 76) {  // corosync restart: the daemon's handlers rejoin on loss
      if (cpg_.CorosyncUp(n)) (void)cpg_.RestartCorosync(n);
    } else if (what < 83) {  // partition into 2-3 components
      std::vector<std::vector<NodeId>> parts(2 + rng_.Below(2));
      for (NodeId m = 1; m <= nodes_; ++m) parts[rng_.Index(parts.size())].push_back(m);
      if (!cpg_.Partition(parts).ok()) harness_errors_.push_back("Partition refused");
    } else if (what < 89) {
      cpg_.Heal();
    } else if (what < 95) {  // fast (or slower) leave and rejoin of one group
      auto it = procs_.find(n);
      if (it == procs_.end()) return;
      StreamHandler* h = it->second.handlers.at(g);
      rec_.in_transport_call = true;
      Status st = it->second.transport->Leave(g);
      rec_.in_transport_call = false;
      if (!st.ok()) return;  // not joined (yet, or lost): nothing to leave
      rec_.End(h);
      const uint64_t pid = it->second.id;
      StreamHandler* placeholder = rec_.NewStream(n, g);  // ended: no join in between
      rec_.End(placeholder);
      it->second.handlers[g] = placeholder;
      loop_.Schedule(rng_.OneIn(2) ? 0 : rng_.Range(0, 3'000'000), [this, n, g, pid] {
        if (Current(n, pid)) StartJoin(n, g);
      });
    } else if (what < 98) {  // daemon restart: the process exits, a new one starts at once
      auto it = procs_.find(n);
      if (it == procs_.end()) return;
      EndAll(it->second);
      procs_.erase(it);
      StartProcess(n);
    } else {
      static const double kBusy[] = {0, 0, 0.3, 1.0};
      (void)cpg_.SetFlowControl(n, kBusy[rng_.Below(4)]);
    }
  }

  EventLoop loop_;
  SimRng sim_rng_;
  SimRng rng_;  // the test's own choices, apart from the model's
  SimCpg cpg_;
  CpgRecorder rec_;
  NodeId nodes_ = 0;
  std::map<NodeId, Process> procs_;  // running daemons (absent while the node is down)
  uint64_t next_process_ = 1;
  std::vector<std::string> harness_errors_;
};

void RunSeeds(uint64_t first, uint64_t count, const std::function<CpgTiming(SimRng&)>& timing) {
  World::Coverage total;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    SimRng pick(seed * 7919);
    World world(seed, timing(pick));
    world.Run(100);
    if (::testing::Test::HasFatalFailure()) return;
    const auto violations = world.Check();
    for (size_t i = 0; i < violations.size() && i < 10; ++i) {
      ADD_FAILURE() << "seed " << seed << ": " << violations[i];
    }
    if (!violations.empty()) return;
    total.Add(world.Covered());
  }
  // The schedules did exercise every kind of change.
  EXPECT_GT(total.deliveries, count * 100);
  EXPECT_GT(total.leaves, count);
  EXPECT_GT(total.multi_leaves, count / 10);
  EXPECT_GT(total.merges, count / 10);
  EXPECT_GT(total.losts, count / 10);
  EXPECT_GT(total.unordered_drops, 0u);
  std::printf(
      "%zu deliveries, %zu changes with leaves (%zu several), %zu merges, %zu lost "
      "transports, %zu accepted multicasts dropped with their sender\n",
      total.deliveries, total.leaves, total.multi_leaves, total.merges, total.losts,
      total.unordered_drops);
}

TEST(SimCpgProperties, RealisticTimings200Seeds) {
  RunSeeds(1, 200, [](SimRng&) { return CpgTiming{}; });
}

// Detection, restarts and merges as fast as messages, and latencies that overlap: many more
// races between faults and traffic than the realistic timings give.
TEST(SimCpgProperties, RacyTimings200Seeds) {
  RunSeeds(1000, 200, [](SimRng& r) {
    CpgTiming t;
    t.multicast_min_us = r.Range(0, 200);
    t.multicast_max_us = t.multicast_min_us + r.Range(0, 3'000);
    t.jitter_max_us = r.Range(0, 2'000);
    t.join_min_us = r.Range(0, 500);
    t.join_max_us = t.join_min_us + r.Range(0, 3'000);
    t.detection_us = r.Range(1, 5'000);
    t.restart_us = r.Range(1, 5'000);
    t.merge_us = r.Range(0, 5'000);
    return t;
  });
}

}  // namespace
}  // namespace clogd::sim
