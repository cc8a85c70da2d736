// The parts of the simulated cluster (tests/sim/sim_world_internal.h): one clustered
// mirror as every node shares it, and one node with its daemon and its kernels. Internal to
// the simulator.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "logd/log_engine.h"
#include "region/memory_device.h"
#include "tests/sim/data_checker.h"
#include "tests/sim/event_loop.h"
#include "tests/sim/legs.h"
#include "tests/sim/mirror_model.h"

namespace clogd::sim {

inline constexpr uint64_t kRegionSectors = 1024;

// One daemon's device-mapper thread (logd/dm_rearm.h): its rearms and leg hooks run one at
// a time, in the order asked, as clogd's libdevmapper calls do (a look at the legs asked
// for during a reload's or a rearm's suspend runs after it). A job calls `free` when the
// thread may take the next one. Held in a shared_ptr.
class DmThread : public std::enable_shared_from_this<DmThread> {
 public:
  using Job = std::function<void(std::function<void()> free)>;
  void Run(Job job) {
    jobs_.push_back(std::move(job));
    RunNext();
  }

 private:
  void RunNext() {
    if (busy_ || jobs_.empty()) return;
    busy_ = true;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    job([weak = weak_from_this()] {  // a rearm may end after its daemon is gone
      if (auto self = weak.lock()) {
        self->busy_ = false;
        self->RunNext();
      }
    });
  }
  std::deque<Job> jobs_;
  bool busy_ = false;
};

struct Suspect {
  bool crashed = false;
  uint64_t generation_at_crash = 0;  // the departure shows as a newer generation
  std::set<uint64_t> regions;
};

// One clustered mirror: its legs, log device, data checker, and the regions of departed
// daemons whose writes may be unresolved.
struct SimMirror {
  std::string uuid;
  std::string type;
  std::string device_name;
  std::string ctr;
  std::unique_ptr<SimLegs> legs;
  std::unique_ptr<DataChecker> checker;
  std::unique_ptr<region::MemoryDevice> logdev;
  SimTime device_down_until = 0;  // the whole log device fails I/O until then
  std::map<NodeId, Suspect> suspects;
  std::set<uint64_t> touched;  // regions whose leg data changed since the last check
  // The table a node loads when it boots (what LVM's metadata would say): the cluster's
  // last committed leg removal updates it.
  std::vector<int> table_legs;
  int legs_failed = 0;
  // A replacement committed and its new leg may not be copied everywhere yet: writes to
  // regions not in sync have gone to the first leg alone (dm-raid1's NOSYNC path), so
  // losing that disk now loses them on any dm-raid1, clustered or not. FailALeg spares it.
  bool replacement_copying = false;
};

struct SimNode {
  NodeId id = 0;
  bool up = true;
  bool daemon_up = false;
  uint64_t incarnation = 0;  // daemon process
  uint64_t boot = 0;         // node boot
  std::unique_ptr<logd::ClusterTransport> transport;
  std::unique_ptr<logd::ReplySink> sink;
  std::unique_ptr<logd::LogEngine> daemon;
  NodeKernel kernel_shared;
  std::vector<std::unique_ptr<MirrorModel>> kernels;  // per mirror
  std::vector<std::set<uint64_t>> writing;            // per mirror: blocks being written
  // A request the dead daemon had taken is lost; the kernel re-sends it after 15 s.
  SimTime daemon_died_at = 0;
  bool daemon_ever_died = false;
  std::vector<uint64_t> timeouts_seen;  // per mirror
  // Per mirror: this node's path to the log device fails I/O until then; its next write
  // to the log device is torn by the node crashing.
  std::vector<SimTime> log_path_down_until;
  std::vector<bool> tear_log_write;
  // Per mirror: suspended (or suspending) when this daemon started: maybe a reload its
  // predecessor left half done, resolved before this daemon's own leg hooks run.
  std::vector<bool> leftover_reload;
  // Per mirror: activations after the first (a deactivated mirror activated again), so
  // that each table instance gets a luid of its own (the luid also names the boot).
  std::vector<uint64_t> reactivations;
};

}  // namespace clogd::sim
