// The dm-raid1 model (tests/sim MirrorModel) driving real clogd processes in real time: one
// test process plays the kernel of every node, each node's MirrorModels talking to that
// node's clogd over its test kernel link (logd/TEST_LINK.md, a Unix SOCK_SEQPACKET socket;
// filesystem sockets reach across network namespaces). The models share one SimLegs and one
// DataChecker per mirror, as tests/sim's world does, so the data invariants are checked
// across nodes. Virtual time is the wall clock since the driver started: the loop polls the
// sockets until the next model event is due, feeds 'A' replies to the model that waits on
// them, answers 'S' rearm requests with a noflush suspend/resume of the model (RearmHint)
// and 'D', and runs due events. Time stops while the test is not inside Run*: a pause the
// models see as a stalled machine, which lets a test act at an exact model state.
//
// A node whose link is down (its clogd died or is not started yet) answers its models'
// requests with -ESRCH at once, as the kernel's netlink send does without a listener, and
// is reconnected as soon as the socket accepts again. Requests the dead clogd had taken are
// never answered: the model re-sends them after 15 s, as the kernel does.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "logd/ulog_codec.h"
#include "region/status.h"
#include "tests/sim/data_checker.h"
#include "tests/sim/event_loop.h"
#include "tests/sim/legs.h"
#include "tests/sim/mirror_model.h"
#include "tests/sim/sim_rng.h"

namespace clogd::cluster_test {

using sim::SimTime;

struct DriverMirror {
  std::string uuid;
  std::string ctr;  // what the kernel sends: "<sectors> clustered-disk <dev> 1024 nosync"
  bool integrated_flush = false;
};

struct DriverConfig {
  int nodes = 3;
  uint64_t regions = 64;
  uint64_t blocks_per_region = 8;
  uint64_t seed = 1;
  std::vector<DriverMirror> mirrors;
  // Workload: per node and mirror one write (or read, 1 in 5) every min..max µs, to that
  // node's own blocks (block % nodes == node - 1), at most `max_writes` in flight.
  SimTime op_min_us = 2'000;
  SimTime op_max_us = 8'000;
  size_t max_writes = 4;
};

// One request frame sent to a clogd and what became of it.
struct RequestRecord {
  int node = 0;
  size_t mirror = 0;
  uint32_t seq = 0;
  uint32_t type = 0;
  std::vector<uint8_t> payload;
  SimTime sent_us = 0;
  bool answered = false;
  int32_t error = 0;
  SimTime answered_us = 0;
  bool over_link = false;  // false: answered -ESRCH by the driver (no clogd connected)
  // Never answered, and the model sent its next request (the kernel gave up on it after
  // 15 s and re-sent it under a new seq): the clogd that took it died.
  bool abandoned = false;
};

class ModelDriver {
 public:
  explicit ModelDriver(DriverConfig config);
  ~ModelDriver();
  ModelDriver(const ModelDriver&) = delete;
  ModelDriver& operator=(const ModelDriver&) = delete;

  // Where node `node`'s clogd listens (its --kernel-socket).
  void SetSocket(int node, const std::string& path);
  // The node's kernel boots: a fresh kernel (seq counter) and, once the node's clogd
  // accepts the link (waited for, at most `bound`: tables are loaded after the daemon
  // started), one MirrorModel per mirror, started (CTR, GET_REGION_SIZE, RESUME); the
  // workload runs if enabled for the node.
  Status BootNode(int node, std::chrono::milliseconds bound);
  // The node dies: its models crash (writes in flight land or not), its link closes.
  void CrashNode(int node);
  bool node_up(int node) const;
  // Starts or stops the workload (writes in flight finish either way).
  void SetWorkload(int node, bool on);
  void SetWorkloadAll(bool on);

  // Runs in real time for `duration`.
  void RunFor(std::chrono::milliseconds duration);
  // Runs until `done()` holds (checked after every step), at most `bound`; returns done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds bound);
  SimTime Now() const { return loop_.Now(); }

  // One write by `node` to `block` of `mirror` outside the workload; `done` gets the result
  // and the virtual time of its completion.
  void Write(int node, size_t mirror, uint64_t block, std::function<void(Status, SimTime)> done);
  // A block of `node`'s own share in `region` (the workload's blocks are disjoint per node).
  uint64_t BlockOf(int node, uint64_t region) const;
  // A write of `node` (workload or Write) to a block of `region` has not completed yet: it
  // may be waiting in the model where the region hash does not show it (requeued).
  bool WritingIn(int node, size_t mirror, uint64_t region);

  sim::MirrorModel* model(int node, size_t mirror);
  sim::SimLegs& legs(size_t mirror);
  sim::DataChecker& checker(size_t mirror);
  size_t mirror_count() const { return mirrors_.size(); }
  const DriverMirror& mirror(size_t m) const { return config_.mirrors[m]; }

  bool connected(int node) const;
  uint64_t connections(int node) const;  // successful connects so far
  // Requests of `node`'s models waiting for an answer (sent over the link or not).
  size_t Outstanding(int node) const;
  size_t Outstanding(int node, size_t mirror) const;
  // Every request sent so far, in send order.
  const std::vector<RequestRecord>& requests() const { return requests_; }
  // Regions whose resync finished (SET_REGION_SYNC in_sync=1 sent) per node, since `since`.
  std::set<uint64_t> RecoveredSince(size_t mirror, SimTime since, int node = 0) const;
  // Writes the workload issued/completed (ok or not) per node and mirror.
  uint64_t writes_issued(int node, size_t mirror) const;
  uint64_t writes_done(int node, size_t mirror) const;
  uint64_t writes_ok(int node, size_t mirror) const;
  size_t writes_in_flight(int node, size_t mirror) const;
  // The model is running, nothing waits: no request outstanding, no bio in the target,
  // no workload write in flight.
  bool Quiet(int node, size_t mirror);
  // Every live node's every mirror is quiet.
  bool AllQuiet();

  // Problems found so far: data checker violations, model protocol errors, frames clogd
  // sent that make no sense. Empty is good.
  std::vector<std::string> Problems() const;
  // The data invariants now: acked writes on every live leg, and (all quiet, all in
  // sync) all live legs identical.
  std::vector<std::string> CheckAckedWrites() const;
  std::vector<std::string> CheckQuiescent() const;
  // A line per node and mirror: writes, requests, latencies, -ESRCH, timeouts.
  std::string Summary() const;

 private:
  struct Link;
  struct Node;
  struct Mirror;

  void Step(std::chrono::milliseconds max_wait);
  void PumpLinks();
  void Connect(Node& node);
  void Disconnect(Node& node, const std::string& why);
  void ReadLink(Node& node);
  void OnMessage(Node& node, const std::vector<uint8_t>& message);
  void ToDaemon(Node& node, size_t m, const logd::UlogRequest& request);
  // `send_failed`: not an answer but the kernel's send failing (no listener), which leaves
  // the model's reply buffer as it was.
  void OnReply(Node& node, const logd::UlogReply& reply, bool send_failed = false);
  void Rearm(Node& node, const std::string& uuid, uint64_t link_generation);
  void SendRearmDone(Node& node, const std::string& uuid, uint64_t link_generation);
  void ScheduleOp(Node& node, size_t m);
  void Op(Node& node, size_t m);
  Node& node_ref(int node);
  const Node& node_ref(int node) const;
  SimTime WallUs() const;

  DriverConfig config_;
  std::chrono::steady_clock::time_point start_;
  sim::EventLoop loop_;
  sim::SimRng rng_;
  std::vector<std::unique_ptr<Mirror>> mirrors_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<RequestRecord> requests_;
  // Keys: node * 1e6 + boot (a rebooted kernel counts seqs from 1 again).
  std::map<std::pair<int, uint32_t>, size_t> by_seq_;  // (node-boot, seq) -> requests_ index
  std::map<std::pair<int, size_t>, size_t> waiting_;   // (node-boot, mirror) -> unanswered
  std::vector<std::string> problems_;
  uint64_t next_value_ = 0;
};

}  // namespace clogd::cluster_test
