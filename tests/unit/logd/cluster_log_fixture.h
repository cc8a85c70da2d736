// The fixture of the cluster state machine's unit tests: a minimal in-process cluster
// (one queue: total order and virtual synchrony by construction), each node a LogEngine
// with one clustered log, and, for the leg tests, leg hooks that act as the daemon's
// device-mapper thread would (answered later, from RunAll).
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "engine_fixture.h"
#include "fake_cluster.h"
#include "logd/log_engine.h"

namespace clogd::logd::testing {

constexpr uint64_t kRegions = 64;

class ClusterLogTest : public ::testing::TestWithParam<const char*> {
 protected:
  struct Node {
    std::unique_ptr<FakeCluster::Transport> transport;
    CollectingSink sink;
    std::unique_ptr<LogEngine> engine;
  };

  ClusterLogTest() : shared_(&devices_.Add("/dev/shared", 2 << 20)) {}

  std::string Args() const {
    return std::string(GetParam()) == "clustered-disk" ? "clustered-disk /dev/shared 1024"
                                                       : "clustered-core 1024";
  }

  // fence_grace_us > 0 or with_timers_: the node's timers are kept in timers_[n] until
  // FireTimers(n). resume false: the CTR only (a RESUME is held while there is no quorum).
  Node& Start(NodeId n, uint32_t expected_nodes = 0, uint64_t fence_grace_us = 0,
              bool resume = true) {
    auto& node = nodes_[n];
    node.transport = std::make_unique<FakeCluster::Transport>(cluster_, n);
    EngineOptions o;
    o.node_id = n;
    o.expected_nodes = expected_nodes;
    o.fence_grace_us = fence_grace_us;
    if (fence_grace_us > 0 || with_timers_) {
      o.schedule = [this, n](uint64_t, std::function<void()> fn) {
        timers_[n].push_back(std::move(fn));
      };
    }
    if (with_legs_) {
      o.legs = LegHooksFor(n);
      // Suspend/resume of the local mirror: held for good (the kernel of a restarted
      // daemon stays unquiesced) unless kernels_suspend_.
      o.rearm_kernel = [this, n](const std::string&, std::function<void()> done) {
        ++rearms_[n];
        if (!kernels_suspend_) {
          held_rearms_.push_back(std::move(done));
          return;
        }
        hook_answers_.push_back([this, n, done] {
          Suspend(n);
          done();
        });
      };
    }
    node.engine =
        std::make_unique<LogEngine>(devices_.Opener(), o, node.sink, node.transport.get());
    Send(n, DM_ULOG_CTR, CtrPayload(std::to_string(kRegions * 1024) + " " + Args() + " nosync"));
    if (resume) Send(n, DM_ULOG_RESUME);
    return node;
  }

  // Sends a request, runs the cluster until quiet, returns the request's reply.
  UlogReply Send(NodeId n, uint32_t type, std::vector<uint8_t> payload = {}) {
    auto& node = nodes_[n];
    UlogRequest r = testing::Req(type, 100 + n, "LVM-cluster", std::move(payload));
    node.engine->Submit(r);
    cluster_.Run();
    for (const auto& reply : node.sink.replies) {
      if (reply.seq == r.seq) return reply;
    }
    ADD_FAILURE() << "node " << n << ": no reply to " << RequestTypeName(type);
    return {};
  }

  // Node n's kernel sets region r in sync (a copy done) or out of sync (a failed write).
  UlogReply SetRegionSync(NodeId n, uint64_t r, bool in_sync) {
    std::vector<uint8_t> payload = Regions({r});
    auto flag = S64Payload(in_sync ? 1 : 0);
    payload.insert(payload.end(), flag.begin(), flag.end());
    return Send(n, DM_ULOG_SET_REGION_SYNC, payload);
  }

  const ClusterLog& Log(NodeId n) { return *nodes_[n].engine->FindCluster("LVM-cluster"); }

  std::pair<bool, uint64_t> Work(NodeId n) {
    UlogReply w = Send(n, DM_ULOG_GET_RESYNC_WORK);
    uint64_t r = 0;
    std::memcpy(&r, w.payload.data() + 8, 8);
    return {AsS64(w) == 1, r};
  }

  // Node n loses corosync while its daemon lives on, keeping its state: the others see it
  // leave. Returns its log, to join again.
  ClusterLog& LoseTransport(NodeId n) {
    auto& log = const_cast<ClusterLog&>(Log(n));
    cluster_.Crash(n);
    log.OnTransportLost();
    cluster_.Run();
    return log;
  }

  // Node n dies: its daemon is gone, the others see it leave.
  void CrashNode(NodeId n) {
    cluster_.Crash(n);
    nodes_[n].engine.reset();
    cluster_.Run();
  }

  void FireTimers(NodeId n) {
    auto due = std::move(timers_[n]);
    timers_[n].clear();
    for (auto& fn : due) fn();
    cluster_.Run();
  }

  // The mirror's legs on each node, as the leg hooks see and change them. A hook answers
  // from RunAll, later, as the daemon's device-mapper thread would.
  struct Mirror {
    LegHealth health{2, {}};
    bool fail_prepare = false;
    std::vector<LegChange> prepared;
    std::vector<bool> finished;  // commit?
  };
  LegHooks LegHooksFor(NodeId n) {
    LegHooks hooks;
    hooks.inspect = [this, n](const std::string&, std::function<void(Result<LegHealth>)> done) {
      hook_answers_.push_back([this, n, done] { done(mirrors_[n].health); });
    };
    hooks.prepare = [this, n](const std::string&, const LegChange& change,
                              std::function<void(Status)> done) {
      hook_answers_.push_back([this, n, change, done] {
        Mirror& m = mirrors_[n];
        if (m.fail_prepare) return done(IoError("reload ioctl failed"));
        if (kernels_suspend_) Suspend(n);
        m.prepared.push_back(change);
        done(Status::Ok());
      });
    };
    hooks.finish = [this, n](const std::string&, bool commit, std::function<void()> done) {
      hook_answers_.push_back([this, n, commit, done] {
        Mirror& m = mirrors_[n];
        m.finished.push_back(commit);
        if (commit && !m.prepared.empty()) {
          const LegChange& c = m.prepared.back();
          m.health.legs = c.legs - (c.remove ? 1 : 0) + (c.add_device.empty() ? 0 : 1);
          m.health.failed.clear();
        }
        done();
      });
    };
    return hooks;
  }
  // What the log sees of a suspend of node n's mirror (a rearm's, a reload's).
  void Suspend(NodeId n) {
    EXPECT_EQ(Send(n, DM_ULOG_PRESUSPEND).error, 0);
    EXPECT_EQ(Send(n, DM_ULOG_POSTSUSPEND).error, 0);
  }
  // Runs the cluster and the hooks' answers until neither has anything left.
  void RunAll() {
    cluster_.Run();
    while (!hook_answers_.empty()) {
      auto fn = std::move(hook_answers_.front());
      hook_answers_.pop_front();
      fn();
      cluster_.Run();
    }
  }
  // Asks node n's log for a replacement and runs everything; returns its outcome.
  std::optional<Status> Replace(NodeId n, std::optional<uint32_t> leg, const std::string& dev) {
    std::optional<Status> outcome;
    nodes_[n].engine->FindCluster("LVM-cluster")->ReplaceLeg({leg, dev, 0}, [&](Status s) {
      outcome = s;
    });
    RunAll();
    return outcome;
  }

  bool with_legs_ = false;
  bool with_timers_ = false;
  // The leg hooks' and rearms' suspends reach the log, and rearms are answered (RunAll).
  bool kernels_suspend_ = false;
  std::map<NodeId, int> rearms_;  // rearms asked for, by node
  std::map<NodeId, Mirror> mirrors_;
  std::deque<std::function<void()>> hook_answers_;
  std::vector<std::function<void()>> held_rearms_;
  std::map<NodeId, std::vector<std::function<void()>>> timers_;
  Devices devices_;
  region::MemoryDevice* shared_;  // the clustered-disk log device
  FakeCluster cluster_;
  std::map<NodeId, Node> nodes_;
};

}  // namespace clogd::logd::testing
