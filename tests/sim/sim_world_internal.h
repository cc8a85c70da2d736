// The simulated cluster (World), shared by sim_world.cc (wiring, workload, faults),
// sim_world_checks.cc (invariants, quiescence), sim_world_legs.cc and sim_world_scenarios.cc.
// Its parts (a mirror, a node) are in sim_parts.h. Internal to the simulator.
#pragma once

#include <linux/dm-log-userspace.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "logd/log_engine.h"
#include "region/memory_device.h"
#include "tests/sim/data_checker.h"
#include "tests/sim/event_loop.h"
#include "tests/sim/legs.h"
#include "tests/sim/mirror_model.h"
#include "tests/sim/sim_cpg.h"
#include "tests/sim/sim_log_path.h"
#include "tests/sim/sim_parts.h"
#include "tests/sim/sim_rng.h"
#include "tests/sim/sim_world.h"

namespace clogd::sim {

class World {
 public:
  explicit World(const SimConfig& c) : c_(c), rng_(c.seed), cpg_(loop_, rng_) {
    if (c_.trace || c_.hash_trace) {
      cpg_.SetTraceSink([this](const std::string& line) { Trace(line); });
    }
    for (int m = 0; m < c_.logs; ++m) {
      auto mirror = std::make_unique<SimMirror>();
      mirror->uuid = "LVM-sim" + std::to_string(m);
      const bool core = c_.log_type == "clustered-core" ||
                        (c_.log_type == "mixed" && (c_.seed + uint64_t(m)) % 2 == 1);
      mirror->type = core ? "clustered-core" : "clustered-disk";
      mirror->device_name = "/dev/simlog" + std::to_string(m);
      mirror->legs =
          std::make_unique<SimLegs>(loop_, rng_, c_.legs, c_.regions, c_.blocks_per_region);
      for (int leg = 0; leg < c_.legs; ++leg) mirror->table_legs.push_back(leg);
      mirror->checker = std::make_unique<DataChecker>(*mirror->legs);
      mirror->legs->AddLandingObserver([m = mirror.get()](int, int, uint64_t block, uint64_t) {
        m->touched.insert(block / m->legs->blocks_per_region());
      });
      mirror->logdev = std::make_unique<region::MemoryDevice>(2 << 20, 512, mirror->device_name);
      mirror->ctr = std::to_string(c_.regions * kRegionSectors) + " " + mirror->type + " " +
                    (core ? "" : mirror->device_name + " ") + std::to_string(kRegionSectors) +
                    " nosync";
      mirrors_.push_back(std::move(mirror));
    }
    for (int n = 1; n <= c_.nodes; ++n) {
      auto node = std::make_unique<SimNode>();
      node->id = static_cast<NodeId>(n);
      node->kernels.resize(mirrors_.size());
      node->writing.resize(mirrors_.size());
      node->timeouts_seen.resize(mirrors_.size());
      node->log_path_down_until.resize(mirrors_.size());
      node->tear_log_write.resize(mirrors_.size());
      node->leftover_reload.resize(mirrors_.size());
      node->reactivations.resize(mirrors_.size());
      nodes_.push_back(std::move(node));
    }
  }

  SimResult Run() {
    for (auto& node : nodes_) {
      StartDaemon(*node);
      for (size_t m = 0; m < mirrors_.size(); ++m) StartKernel(*node, m);
    }
    for (auto& node : nodes_) {
      for (size_t m = 0; m < mirrors_.size(); ++m) ScheduleWrite(*node, m);
    }
    if (!c_.scenario.empty()) {
      ScheduleScenario();
    } else if (c_.faults) {
      ScheduleFaults();
    }
    const SimTime workload_end = c_.workload_us;
    while (loop_.Now() <= workload_end && loop_.Step()) {
      ++result_.events;
      CheckStep();
      if (result_.violations.size() > 20) break;
    }
    if (result_.violations.empty()) Quiesce();
    for (auto& mirror : mirrors_) {
      for (const auto& v : mirror->checker->violations()) Violation(v);
      result_.writes_acked += mirror->checker->writes_acked();
    }
    for (auto& node : nodes_) {
      CollectStats(*node);
      for (auto& k : node->kernels) {
        if (!k) continue;
        for (const auto& e : k->protocol_errors())
          Violation("node " + std::to_string(node->id) + ": " + e);
        result_.regions_recovered += k->stats().regions_recovered;
        result_.in_sync_sent +=
            k->stats().sent_by_type[static_cast<int>(logd::RequestType::kInSync) & 31];
        result_.in_sync_cache_hits += k->stats().in_sync_cache_hits;
      }
    }
    return result_;
  }

 private:
  // Adds a daemon's state-transfer counters to the result (before it goes away).
  void CollectStats(SimNode& node) {
    if (!node.daemon) return;
    for (const auto& mirror : mirrors_) {
      const logd::ClusterLog* cl = node.daemon->FindCluster(mirror->uuid);
      if (!cl) continue;
      result_.checkpoints_taken += cl->stats().checkpoints_taken;
      result_.deltas_taken += cl->stats().deltas_taken;
      result_.deltas_refused += cl->stats().deltas_refused;
    }
  }

  void Trace(const std::string& line) {
    if (c_.hash_trace) {
      for (unsigned char ch : line)
        result_.trace_hash = (result_.trace_hash ^ ch) * 1099511628211ull;
      result_.trace_hash = (result_.trace_hash ^ '\n') * 1099511628211ull;
    }
    if (c_.trace) c_.trace(line);
  }

  std::string Stamp() const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%llu.%06llu",
                  static_cast<unsigned long long>(loop_.Now() / 1'000'000),
                  static_cast<unsigned long long>(loop_.Now() % 1'000'000));
    return buf;
  }

  void Violation(const std::string& v) {
    if (result_.violations.size() < 50) {
      result_.violations.push_back("t=" + Stamp() + " " + v);
    }
  }

  SimMirror* MirrorByUuid(const std::string& uuid, size_t* index = nullptr) {
    for (size_t m = 0; m < mirrors_.size(); ++m) {
      if (mirrors_[m]->uuid == uuid) {
        if (index) *index = m;
        return mirrors_[m].get();
      }
    }
    return nullptr;
  }

  // --- daemon
  class KernelSink : public logd::ReplySink {
   public:
    KernelSink(World& w, SimNode& n, uint64_t inc) : w_(w), n_(n), inc_(inc) {}
    void Reply(const logd::UlogReply& reply) override { w_.ToKernel(n_, inc_, reply); }

   private:
    World& w_;
    SimNode& n_;
    uint64_t inc_;
  };

  void StartDaemon(SimNode& node) {
    node.daemon_up = true;
    const uint64_t inc = ++node.incarnation;
    node.transport = cpg_.TransportFor(node.id);
    node.sink = std::make_unique<KernelSink>(*this, node, inc);
    logd::EngineOptions o;
    o.node_id = node.id;
    o.break_variant = c_.break_variant;
    o.expected_nodes = static_cast<uint32_t>(c_.nodes);
    o.fence_grace_us = c_.fence_grace_us;
    o.schedule = [this, &node, inc](uint64_t delay, std::function<void()> fn) {
      loop_.Schedule(delay, [&node, inc, fn = std::move(fn)] {
        if (node.daemon_up && node.incarnation == inc) fn();
      });
    };
    // Owned by the daemon's hooks: it goes with this incarnation.
    auto dm_thread = std::make_shared<DmThread>();
    o.rearm_kernel = [this, &node, dm_thread](const std::string& uuid, std::function<void()> done) {
      dm_thread->Run([this, &node, uuid, done](std::function<void()> free) {
        Rearm(node, uuid, [free, done] {
          free();
          done();
        });
      });
    };
    o.legs = LegHooksFor(node, inc, dm_thread);
    // clogd at start (logd/request_record.h): the requests its killed predecessor took get
    // an EAGAIN message, so the kernel re-sends them now instead of after 15 s.
    for (auto& k : node.kernels) {
      if (!k) continue;
      if (std::optional<uint32_t> seq = k->outstanding_seq()) {
        MirrorModel* model = k.get();
        loop_.Schedule(aux_rng_.Range(20, 200), [&node, model, seq = *seq, boot = node.boot] {
          if (node.up && node.boot == boot) model->OnRetryMessage(seq);
        });
      }
    }
    // clogd at start: a mirror its predecessor left suspended with a table loaded for a leg
    // removal gets its old table back (the cluster's record tells the daemon later whether
    // to remove the leg after all: ClusterLog::CatchUpLegs).
    for (size_t m = 0; m < node.kernels.size(); ++m) {
      const MirrorModel* k = node.kernels[m].get();
      node.leftover_reload[m] = k != nullptr && (k->state() == MirrorState::kSuspending ||
                                                 k->state() == MirrorState::kSuspended);
      DropLeftoverReload(node, m, inc);
    }
    if (c_.trace || c_.hash_trace) {
      o.log = [this, id = node.id](logd::Severity s, const std::string& msg) {
        Trace(Stamp() + " n" + std::to_string(id) + " clogd " + logd::SeverityName(s) + ": " + msg);
      };
    }
    auto opener = [this,
                   &node](const std::string& dev) -> Result<std::unique_ptr<region::BlockDevice>> {
      for (size_t m = 0; m < mirrors_.size(); ++m) {
        if (mirrors_[m]->device_name == dev) return OpenLogPath(node, m);
      }
      return NotFound("no simulated device " + dev);
    };
    node.daemon = std::make_unique<logd::LogEngine>(opener, o, *node.sink, node.transport.get());
  }

  // What the daemon's rearm hook does on a real node (a noflush suspend/resume with
  // libdevmapper): waits for a suspend already under way, then runs a full cycle. A table
  // that is not running (loading, stopped, gone) needs none.
  void Rearm(SimNode& node, const std::string& uuid, std::function<void()> done,
             bool lagged = false) {
    if (c_.scenario == "partition" && !lagged) {
      // A cut-off node sees the others go up to a token rotation after they see it go, and
      // its daemon and kernel take a while to start the suspend (its freeze); up to 1.5 s.
      loop_.Schedule(rng_.Range(0, 1'500'000),
                     [this, &node, uuid, done = std::move(done), boot = node.boot]() mutable {
                       if (node.up && node.boot == boot) Rearm(node, uuid, std::move(done), true);
                     });
      return;
    }
    size_t m = 0;
    MirrorModel* k = MirrorByUuid(uuid, &m) ? node.kernels[m].get() : nullptr;
    if (k && k->state() == MirrorState::kSuspending) {
      loop_.Schedule(1000, [this, &node, uuid, done = std::move(done), boot = node.boot]() mutable {
        if (node.up && node.boot == boot) Rearm(node, uuid, std::move(done), true);
      });
      return;
    }
    if (k && k->state() == MirrorState::kRunning && k->RearmHint(done).ok()) return;
    loop_.Schedule(1, std::move(done));
  }

  // The daemon process dies; the node and its kernel live on.
  void KillDaemon(SimNode& node) {
    SnapshotSuspects(node);
    node.daemon_died_at = loop_.Now();
    node.daemon_ever_died = true;
    node.daemon_up = false;
    CollectStats(node);
    node.daemon.reset();
    node.transport.reset();  // the process exits: CPG reports PROCDOWN
    node.sink.reset();
  }

  void ToKernel(SimNode& node, uint64_t inc, const logd::UlogReply& reply) {
    loop_.Schedule(rng_.Range(20, 200), [this, &node, inc, reply] {
      if (!node.up || node.incarnation != inc) return;  // that daemon is gone
      size_t m = 0;
      if (!MirrorByUuid(reply.uuid, &m) || !node.kernels[m]) return;
      node.kernels[m]->OnReply(reply);
    });
  }

  void ToDaemon(SimNode& node, size_t m, const logd::UlogRequest& req) {
    const uint64_t boot = node.boot;
    loop_.Schedule(rng_.Range(20, 200), [&node, m, req, boot] {
      if (!node.up || node.boot != boot) return;
      if (node.daemon_up) {
        node.daemon->Submit(req);
        return;
      }
      // No listener: the kernel's send fails with -ESRCH at once.
      if (node.kernels[m]) node.kernels[m]->OnSendFailed(req.seq, -ESRCH);
    });
  }

  // --- kernel
  void StartKernel(SimNode& node, size_t m) {
    SimMirror& mirror = *mirrors_[m];
    MirrorConfig mc;
    mc.node = static_cast<int>(node.id);
    mc.uuid = mirror.uuid;
    // Unique: a reload takes the next ones, an activation again the next hundred.
    mc.luid = 1000 * (10 * node.boot + m) + 1 + 100 * node.reactivations[m];
    mc.ctr = mirror.ctr;
    mc.legs = mirror.table_legs;
    mc.integrated_flush = rng_.OneIn(2);
    if (c_.in_sync_cache && module_rng_.OneIn(2)) {
      mc.in_sync_cache = true;  // the cluster module always asks for integrated_flush
      mc.integrated_flush = true;
    }
    auto k = std::make_unique<MirrorModel>(
        loop_, rng_, *mirror.legs, mc,
        [this, &node, m](const logd::UlogRequest& r) { ToDaemon(node, m, r); },
        mirror.checker.get(), &node.kernel_shared);
    if (c_.trace || c_.hash_trace) {
      k->SetTrace([this, id = node.id](const std::string& line) {
        Trace(Stamp() + " n" + std::to_string(id) + " kernel " + line);
      });
    }
    Status s = k->Start();
    if (!s.ok())
      Violation("node " + std::to_string(node.id) + ": mirror start refused: " + s.ToString());
    node.kernels[m] = std::move(k);
    // The boot scripts retry an activation whose table failed to load (the daemon refused
    // the CTR: its log device could not be read), as a service manager would.
    const uint64_t boot = node.boot;
    loop_.Schedule(1'000'000, [this, &node, m, boot] {
      if (!node.up || node.boot != boot || !node.kernels[m]) return;
      if (node.kernels[m]->state() != MirrorState::kFailed) return;
      Trace(Stamp() + " n" + std::to_string(node.id) + " mirror table failed to load: retried");
      StartKernel(node, m);
    });
  }

  // --- workload: each node writes its own blocks (block % nodes), one write per block at
  // a time, a few in flight.
  void ScheduleWrite(SimNode& node, size_t m) {
    const uint64_t boot = node.boot;
    loop_.Schedule(rng_.Range(1000, 6000), [this, &node, m, boot] {
      if (!node.up || node.boot != boot || loop_.Now() > c_.workload_us) return;
      Workload(node, m);
      ScheduleWrite(node, m);
    });
  }

  void Workload(SimNode& node, size_t m) {
    MirrorModel* k = node.kernels[m].get();
    if (!k || k->state() != MirrorState::kRunning) return;
    const SimLegs& legs = *mirrors_[m]->legs;
    const uint64_t per_node = legs.nr_blocks() / uint64_t(c_.nodes);
    if (per_node == 0) return;
    // A hot set: most writes go to a few regions, so marks stay in place and overlap.
    const uint64_t pick =
        rng_.OneIn(4) ? rng_.Below(per_node) : rng_.Below(std::min<uint64_t>(per_node, 8));
    const uint64_t block = pick * uint64_t(c_.nodes) + (node.id - 1);
    if (rng_.OneIn(5)) {
      k->Read(block, [](Status, uint64_t) {});
      return;
    }
    auto& writing = node.writing[m];
    if (writing.size() >= 4 || writing.contains(block)) return;
    writing.insert(block);
    const uint64_t value = ++next_value_;
    const uint64_t boot = node.boot;
    k->Write(block, value, [&node, m, block, boot](Status) {
      if (node.boot == boot) node.writing[m].erase(block);
    });
  }

  // --- faults
  // Nodes whose daemon serves every mirror (joined, ready, quorate).
  std::vector<SimNode*> FullyUp() {
    std::vector<SimNode*> out;
    for (auto& n : nodes_) {
      if (!n->up || !n->daemon_up || !n->daemon) continue;
      bool serving = true;
      for (auto& mirror : mirrors_) {
        const logd::ClusterLog* cl = n->daemon->FindCluster(mirror->uuid);
        serving = serving && cl && cl->serving();
      }
      if (serving) out.push_back(n.get());
    }
    return out;
  }

  std::unique_ptr<region::BlockDevice> OpenLogPath(SimNode& node, size_t m) {
    auto fault = [this, &node, m] {
      if (loop_.Now() < mirrors_[m]->device_down_until ||
          loop_.Now() < node.log_path_down_until[m]) {
        return SimLogPath::Fault::kDown;
      }
      return node.tear_log_write[m] ? SimLogPath::Fault::kTearWrite : SimLogPath::Fault::kNone;
    };
    auto torn = [this, &node, m] {
      node.tear_log_write[m] = false;
      Trace(Stamp() + " n" + std::to_string(node.id) + " FAULT crash in a log device write");
      // Not from inside the daemon's call: the crash is the next event.
      loop_.Schedule(0, [this, &node] {
        if (!node.up) return;
        CrashNode(node);
        loop_.Schedule(rng_.Range(3'000'000, 8'000'000), [this, &node] { BootNode(node); });
      });
    };
    return std::make_unique<SimLogPath>(*mirrors_[m]->logdev, fault, torn);
  }

  // A clustered-disk mirror chosen by the PRNG, or none.
  std::optional<size_t> PickDiskMirror() {
    std::vector<size_t> disk;
    for (size_t m = 0; m < mirrors_.size(); ++m) {
      if (mirrors_[m]->type == "clustered-disk") disk.push_back(m);
    }
    if (disk.empty()) return std::nullopt;
    return disk[rng_.Below(disk.size())];
  }

  // sim_world_faults.cc: the run's random faults, each kind from its own seeded stream.
  void ScheduleFaults();
  void InjectFault(uint64_t kind);  // 0 node crash, 1 daemon crash, 2 slow leg, or below
  static constexpr uint64_t kCorosyncRestart = 3;
  static constexpr uint64_t kLogPathDown = 4;    // one node's path to a log device
  static constexpr uint64_t kLogDeviceDown = 5;  // the whole log device, every node
  static constexpr uint64_t kTornLogWrite = 6;   // a node crashes in a log device write

  // sim_world_legs.cc: leg failure and the daemon's leg hooks over the kernel model.
  void FailALeg(std::optional<size_t> mirror = std::nullopt);
  // Leg `leg` of mirror m dies for every node (FailALeg's choice, or a scenario's, which
  // may take a mirror down to one live leg).
  void FailLeg(size_t m, int leg);
  // An operator's clogctl replace-leg / add-leg on a serving node of mirror m, with a new
  // spare disk ("simleg<N>"); choices drawn from `rng`. `outcome` (if given) learns
  // whether it committed.
  void ReplaceALeg(size_t m, SimRng& rng, std::function<void(bool)> outcome = {});
  // h6-leg-replaced: the operator replaces mirror m's failed leg, and, while its table
  // still has a dead leg, tries again a second after a refusal or an abort, or 3 s after no
  // answer (up to `attempts` times), as an operator would.
  void ReplaceUntilCommitted(size_t m, uint64_t seed, int attempts);
  static int SpareLegNumber(const std::string& device);
  // Waits for a suspend under way, then resumes the old table of a mirror left suspended
  // with a loaded one.
  void DropLeftoverReload(SimNode& node, size_t m, uint64_t inc);
  logd::LegHooks LegHooksFor(SimNode& node, uint64_t inc, const std::shared_ptr<DmThread>& thread);

  // sim_world_scenarios.cc
  void ScheduleScenario();
  SimNode* ServerNode();
  SimNode& NodeAt(size_t i) { return *nodes_[i % nodes_.size()]; }
  void CrashFor(SimNode& node, SimTime down_us);
  // dmsetup remove of mirror `m` on `node` (suspend, PRESUSPEND, POSTSUSPEND, DTR: its
  // daemon leaves the log's group): retried while the mirror is suspended for a moment; a
  // violation unless it finishes within 10 s. `then` once it did.
  void Deactivate(SimNode& node, size_t m, std::function<void()> then = {});
  // Activates mirror `m` again on `node` (a new table) if it is not active there.
  void Reactivate(SimNode& node, size_t m);
  void KillDaemonFor(SimNode& node, SimTime down_us);
  // Cuts `count` nodes (from index `first` on) off from the others for `cut_us`, then heals.
  void CutOffFor(size_t first, size_t count, SimTime cut_us);
  // Runs `then` once some ready member of mirror `m` has a leg removal open (polled every
  // 200 µs of virtual time, for at most 10 s).
  void WhenLegRemovalOpens(size_t m, std::function<void()> then, int polls_left = 50'000);

  void CrashNode(SimNode& node) {
    node.up = false;
    SnapshotSuspects(node);
    (void)cpg_.CrashNode(node.id);
    node.up = false;
    node.daemon_up = false;
    ++node.boot;
    for (auto& k : node.kernels) {
      if (k) k->Crash();
    }
    CollectStats(node);
    node.daemon.reset();
    node.transport.reset();
    node.sink.reset();
    for (auto& w : node.writing) w.clear();
  }

  void BootNode(SimNode& node) {
    if (node.up) return;
    (void)cpg_.RestartNode(node.id);
    node.up = true;
    for (auto& k : node.kernels) k.reset();
    for (auto& t : node.timeouts_seen) t = 0;
    node.kernel_shared = NodeKernel{};
    // corosync comes up after its restart delay; the daemon starts then, the kernel
    // tables are loaded by the boot scripts after it.
    loop_.Schedule(cpg_.timing().restart_us + 1000, [this, &node, boot = node.boot] {
      if (!node.up || node.boot != boot) return;
      StartDaemon(node);
      for (size_t m = 0; m < mirrors_.size(); ++m) StartKernel(node, m);
      if (loop_.Now() <= c_.workload_us) {
        for (size_t m = 0; m < mirrors_.size(); ++m) ScheduleWrite(node, m);
      }
    });
  }

  // The dead daemon's (or node's) marks: its writes may still be in flight (daemon death)
  // or have landed on one leg only (crash) until the cluster has dealt with its departure.
  void SnapshotSuspects(SimNode& node) {
    if (!node.daemon) return;
    for (size_t m = 0; m < mirrors_.size(); ++m) {
      const logd::ClusterLog* cl = node.daemon->FindCluster(mirrors_[m]->uuid);
      auto& s = mirrors_[m]->suspects[node.id];
      s.crashed = !node.up;
      for (const logd::ClusterLog* other : ReadyLogs(m)) {
        s.generation_at_crash = std::max(s.generation_at_crash, other->state().generation);
      }
      if (cl) s.regions.insert(cl->own_marks().begin(), cl->own_marks().end());
    }
  }

  // sim_world_checks.cc
  void CheckStep();
  void Quiesce();
  bool Settled(std::string* why);
  std::vector<const logd::ClusterLog*> ReadyLogs(size_t m);

  const SimConfig& c_;
  EventLoop loop_;
  SimRng rng_;
  // Delays of what the daemon's start and leg hooks do (added after many seeds were
  // fixed as regressions): a stream of their own, so the rest of a seed draws from rng_ as
  // it did.
  SimRng aux_rng_{c_.seed ^ 0x1E6400C5ull};
  // Which kernels run the cluster module (SimConfig::in_sync_cache).
  SimRng module_rng_{c_.seed ^ 0x5CAC4E11ull};
  SimCpg cpg_;
  std::vector<std::unique_ptr<SimMirror>> mirrors_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  uint64_t next_value_ = 0;
  SimTime next_full_check_ = 0;
  SimResult result_;
};

}  // namespace clogd::sim
