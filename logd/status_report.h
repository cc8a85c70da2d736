// What `clogctl status` and `clogctl nodes` show: a snapshot of every log a LogEngine
// serves (single-node and clustered), built from the engine's read-only accessors, with
// its stable JSON encoding (fields in logd/README.md) and the human text (≤ 80 columns).
// Pure: no I/O except through the optional SlotReader the caller passes in.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "logd/log_engine.h"
#include "logd/slot_peek.h"
#include "region/status.h"

namespace clogd::logd {

// The JSON layout version; bumped only when a field changes meaning or goes away.
inline constexpr uint32_t kStatusFormatVersion = 1;

struct NodeDirty {
  NodeId node = 0;
  // Where the regions come from (JSON "source"):
  //   "state"   a single-node log's own marks;
  //   "replica" clustered-core: the marks every member replicates;
  //   "own"     clustered-disk: this node's marks;
  //   "device"  clustered-disk: another member's slot, read from the log device just now;
  //   "unknown" clustered-disk: another member's marks are only in its slot, not read.
  std::string source;
  bool known = true;
  bool overflow = false;  // "device": the slot overflowed, every region counts as dirty
  std::vector<RegionNo> regions;
};

struct RecoveringRegion {
  RegionNo region = 0;
  NodeId node = 0;  // the node copying it
  bool operator==(const RecoveringRegion&) const = default;
};

struct NodeRegions {
  NodeId node = 0;
  std::vector<RegionNo> regions;
};

struct LogReport {
  std::string uuid;
  std::string type;  // core, disk, clustered-core, clustered-disk
  // "cluster": served cluster-wide over CPG; "local": served for this node alone
  // (also a clustered-* log in a daemon without cluster links).
  std::string mode;
  std::optional<uint64_t> luid;  // local logs: the kernel's id for this table instance
  std::string device;            // empty for core types
  uint32_t region_size = 0;      // sectors
  uint64_t regions = 0;
  // Unknown (nullopt) until the state is loaded (local: RESUME; cluster: ready).
  std::optional<uint64_t> in_sync;
  std::optional<uint64_t> out_of_sync;
  std::vector<RecoveringRegion> recovering;
  std::vector<NodeDirty> dirty;
  std::vector<NodeRegions> busy;  // clustered-disk: out-of-sync regions members hold marked
  std::optional<NodeId> server;
  std::vector<NodeId> members;  // oldest first
  std::vector<NodeId> absent;   // daemon died on a live node: slot and marks kept
  std::optional<uint64_t> generation;
  bool ready = false;
  bool serving = false;
  std::optional<bool> quorate;             // cluster logs that are ready
  std::optional<bool> recovery_gate_open;  // cluster: no merge/report outstanding
  uint64_t pending_requests = 0;           // kernel requests waiting for an answer
  bool device_failed = false;
  std::vector<std::pair<std::string, uint64_t>> counters;  // names in logd/README.md
  std::vector<std::string> notes;  // remarks, e.g. why other members' marks are unknown
};

struct StatusReport {
  uint32_t version = kStatusFormatVersion;
  NodeId node = 0;
  std::vector<LogReport> logs;
};

// Reads chosen slots of a log device read-only (production: open it and PeekSlots). Used
// for the marks of other members of clustered-disk logs.
using SlotReader = std::function<Result<SlotPeek>(const std::string& device, uint64_t nr_regions,
                                                  const std::vector<uint32_t>& slots)>;

struct ReportOptions {
  NodeId node = 0;  // this node (single-node logs have no other way to know it)
  // Empty: other members' clustered-disk marks are reported as "unknown".
  SlotReader slot_reader;
};

StatusReport BuildStatusReport(const LogEngine& engine, const ReportOptions& options);

// One line of JSON (no newline).
std::string StatusJson(const StatusReport& report);
// kInvalidArgument naming the field that is missing or has the wrong type.
Result<StatusReport> StatusFromJson(const std::string& json);
// Human text, every line ≤ 80 columns.
std::string FormatStatus(const StatusReport& report);

// `nodes`: this node's id and each log's members and server.
struct NodesReport {
  struct Log {
    std::string uuid;
    std::string mode;
    std::vector<NodeId> members;
    std::vector<NodeId> absent;
    std::optional<NodeId> server;
    bool serving = false;
  };
  uint32_t version = kStatusFormatVersion;
  NodeId node = 0;
  std::vector<Log> logs;
};

NodesReport NodesOf(const StatusReport& report);
std::string NodesJson(const NodesReport& report);
Result<NodesReport> NodesFromJson(const std::string& json);
std::string FormatNodes(const NodesReport& report);

// Shortens `s` to at most `width` characters, eliding the middle with "..." (uuids are
// up to 128 characters and must still fit a line).
std::string Elide(const std::string& s, size_t width);

}  // namespace clogd::logd
