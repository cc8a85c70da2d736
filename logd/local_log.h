// One mirror log served for this node alone: its in-memory state (region/LogState),
// recovery bookkeeping, and its log device (disk types: this node's marks are in its slot
// before FLUSH returns; regions going out of sync reach the device before the marks that
// covered them are cleared). LogEngine routes kernel requests to these.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "logd/ctr_args.h"
#include "logd/logging.h"
#include "logd/ulog_codec.h"
#include "recovery/recovery_assigner.h"
#include "region/block_device.h"
#include "region/log_format.h"
#include "region/log_state.h"

namespace clogd::logd {

// Deliberately broken variants of the cluster state machine, so the simulator can show it
// catches each kind of bug (clog-sim --break NAME).
enum class BreakVariant {
  kNone,
  kSkipFailedNodeResync,  // a departed node's dirty regions are not marked out of sync
  kRecoverWhileMarked,    // recovery ignores other nodes' marks and missing reports
  kNoFlushDurability,     // FLUSH is answered before the marks are durable/agreed
};

// The local mirror's legs as `dmsetup status` shows them: how many the table of the device
// that uses a log has, and which of them (indexes in the table) this kernel saw fail.
struct LegHealth {
  uint32_t legs = 0;
  std::vector<uint32_t> failed;
};

// A reload of the local mirror with other legs: leg `remove` of its `legs` legs dropped
// (none if nullopt), and `add_device` (a path or major:minor; none if empty) at sector
// `add_offset` appended as the new last leg.
struct LegChange {
  uint32_t legs = 0;
  std::optional<uint32_t> remove;
  std::string add_device;
  uint64_t add_offset = 0;
};

// What a log daemon does to the local mirror of a log for a leg change. Each runs off the
// daemon's loop (the calls block in the kernel, which asks this daemon meanwhile) and calls
// back on it; one at a time per log.
struct LegHooks {
  std::function<void(const std::string& uuid, std::function<void(Result<LegHealth>)> done)> inspect;
  // Phase 1: suspend the mirror (noflush: held writes stay held) and load its table with
  // the change as the inactive table, after checking the live table has `change.legs`
  // legs. On an error the mirror is left as it was (resumed, nothing loaded).
  std::function<void(const std::string& uuid, const LegChange& change,
                     std::function<void(Status)> done)>
      prepare;
  // Phase 2: resume the loaded table (commit), or drop it and resume the old one (abort).
  std::function<void(const std::string& uuid, bool commit, std::function<void()> done)> finish;
  bool enabled() const { return inspect && prepare && finish; }
};

struct EngineOptions {
  region::NodeId node_id = 1;
  // Overwrite a log device that would otherwise be refused (full resync).
  bool reinitialize = false;
  uint32_t slot_copy_bytes = region::kDefaultSlotCopyBytes;
  // Regions that became in sync are written to the device lazily, once this many have
  // accumulated (0: nr_regions/64, at least 1), and always at suspend and destruction.
  uint64_t in_sync_write_batch = 0;
  LogFn log;  // may be empty
  // Runs `fn` after `delay_us` (the event loop's timer; virtual time in the simulator).
  std::function<void(uint64_t delay_us, std::function<void()> fn)> schedule;
  // Suspends (noflush) and resumes the local mirror of log `uuid`, then calls `done`: a
  // barrier for writes in flight, and it resets the kernel's in-sync hint (CLUSTER.md).
  std::function<void(const std::string& uuid, std::function<void()> done)> rearm_kernel;
  // Leg removal (DESIGN.md §4.6, CLUSTER.md "Leg removal"); see LegHooks. Empty hooks: a
  // failed leg's writes stay held (handle_errors) until an operator reloads the table.
  LegHooks legs;
  BreakVariant break_variant = BreakVariant::kNone;
  // Cluster size for quorum: a clustered log is served only while this node's corosync
  // ring (Membership::ring_nodes; the log's group when the transport does not say) holds
  // a majority of this many nodes, so a node cut off (or booting before its ring merged)
  // never serves alone, while one whose ring is whole serves even if the log is active
  // nowhere else. 0: no quorum rule (production asks corosync's votequorum).
  uint32_t expected_nodes = 0;
  // After a node leaves, nobody copies a region until this long has passed on every
  // member: the node may only be cut off, and its kernel writes its DIRTY regions without
  // asking the log until its own daemon sees the others go (at about the same time) and
  // freezes it (CLUSTER.md "Partitions"). 0: no wait (the node is known to be fenced).
  uint64_t fence_grace_us = 0;
};

struct LogCounters {
  uint64_t requests = 0;
  uint64_t slot_writes = 0;
  uint64_t in_sync_writes = 0;
  uint64_t regions_recovered = 0;
};

// How a log with these arguments opens its device (region::LogDevice::Open).
region::OpenParams LogOpenParams(const std::string& uuid, const CtrArgs& args,
                                 const EngineOptions& options);

// One mirror log on this node.
class LocalLog {
 public:
  LocalLog(std::string uuid, uint64_t luid, CtrArgs args,
           std::unique_ptr<region::BlockDevice> device, const EngineOptions& options);

  const std::string& uuid() const { return uuid_; }
  uint64_t luid() const { return luid_; }
  const CtrArgs& args() const { return args_; }
  bool loaded() const { return loaded_; }
  const region::LogState& state() const { return state_; }
  const recovery::RecoveryAssigner& recovery() const { return recovery_; }
  const LogCounters& counters() const { return counters_; }
  bool device_failed() const { return device_failed_; }
  const region::LogDevice* log_device() const { return log_dev_ ? &*log_dev_ : nullptr; }

  // Checks the log device (refusing a bad one, formatting a blank one) without loading.
  Status OpenDevice();
  // Loads the state: from `sibling` (another instance of the same uuid, e.g. the live
  // table during a reload) if given, else from the device (merging every slot's dirty
  // regions into the out-of-sync set, durably, before the slots are cleared).
  Status Load(const LocalLog* sibling);
  // Serves every request type except CTR and DTR.
  UlogReply Handle(const UlogRequest& request);
  // Destruction: a clean shutdown of the device unless `keep_active` (another instance of
  // the uuid lives on).
  Status Destroy(bool keep_active);

 private:
  Status Flush();
  Status PersistSlot();
  Status MarkRegions(std::span<const uint64_t> regions);
  Status ClearRegions(std::span<const uint64_t> regions);
  Status PersistInSync(bool force);
  void Log(Severity s, const std::string& message) const;

  std::string uuid_;
  uint64_t luid_;
  CtrArgs args_;
  std::unique_ptr<region::BlockDevice> device_;
  std::optional<region::LogDevice> log_dev_;
  EngineOptions options_;

  bool loaded_ = false;
  bool device_failed_ = false;
  region::LogState state_;
  recovery::RecoveryAssigner recovery_;
  std::optional<uint32_t> slot_;
  bool slot_dirty_ = false;           // marks/clears not yet in the slot
  uint64_t pending_to_sync_ = 0;      // regions gone in sync since the last map write
  bool pending_out_of_sync_ = false;  // regions gone out of sync since the last map write
  LogCounters counters_;
};

}  // namespace clogd::logd
