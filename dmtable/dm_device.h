// The device-mapper as the daemon and the leg-failure path use it: list devices, read a
// device's info, live table and status, suspend (noflush), load a table, resume. An
// interface, so callers can be tested with a fake; LibDeviceMapper implements it with
// libdevmapper (library clog_dmtable_os). Plus the pure part: which devices run a mirror
// whose dirty log has a given uuid, read from their table text.
// Every call blocks in the kernel: a suspend of a mirror with a userspace log waits until
// its log daemon answered PRESUSPEND/POSTSUSPEND, so a log daemon must never make these
// calls on the thread that answers the kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmtable/mirror_table.h"

namespace clogd::dmtable {

// One target line of a table (or of a status), as DM_DEVICE_TABLE/STATUS report it.
struct DmTarget {
  uint64_t start = 0;   // sectors
  uint64_t length = 0;  // sectors
  std::string type;     // "mirror", "linear", ...
  std::string params;   // everything after the type
  bool operator==(const DmTarget&) const = default;
};

struct DmInfo {
  std::string name;
  std::string uuid;  // the dm device's uuid (not the log's); may be empty
  uint32_t major = 0;
  uint32_t minor = 0;
  bool suspended = false;
  bool live_table = false;
  bool inactive_table = false;
  int32_t open_count = 0;
};

// Nothing to return but success (a TableError says why not).
struct Done {};

class DeviceMapper {
 public:
  virtual ~DeviceMapper() = default;
  virtual Expected<std::vector<std::string>> ListDevices() = 0;
  virtual Expected<DmInfo> Info(const std::string& name) = 0;
  virtual Expected<std::vector<DmTarget>> Table(const std::string& name) = 0;
  virtual Expected<std::vector<DmTarget>> Status(const std::string& name) = 0;
  // noflush: I/O the target holds stays held (dm-raid1's failed writes) instead of being
  // flushed or errored — what a rearm and a leg replacement need.
  virtual Expected<Done> Suspend(const std::string& name, bool noflush) = 0;
  // Loads `table` as the inactive table (the next Resume makes it live).
  virtual Expected<Done> Load(const std::string& name, const std::vector<DmTarget>& table) = 0;
  virtual Expected<Done> Resume(const std::string& name) = 0;
  // Drops the inactive table loaded by Load (DM_DEVICE_CLEAR); the live one stays.
  virtual Expected<Done> Clear(const std::string& name) = 0;
};

// libdevmapper's ioctls. Errors name the device, the operation and libdevmapper's own
// message. Use it from one thread (libdevmapper keeps global state).
std::unique_ptr<DeviceMapper> MakeLibDeviceMapper();

// The uuid of `target`'s dirty log if it is a mirror with a userspace or cluster log (the
// table text names it; core/disk logs have none), read only where the kernel prints it
// ("userspace <#args> <uuid> ...", "cluster <#args> <disk|core> <uuid> ..."), so a table
// the kernel accepted but our strict parser would refuse is still found. A view into
// target.params.
std::optional<std::string_view> MirrorLogUuid(const DmTarget& target);
// True if `target` is a mirror whose log has uuid `log_uuid` (MirrorLogUuid).
bool MirrorUsesLog(const DmTarget& target, std::string_view log_uuid);
// The health letters of a mirror target's status line ("<#legs> <dev>... <in>/<total> 1
// <letters> <log status...>"), one per leg (dm-raid1: A = alive; D, S, R, F, U = a write,
// sync, read, flush or unknown failure); an error names what does not parse.
Expected<std::string> MirrorHealth(std::string_view status_params);

struct NamedTable {
  std::string name;
  std::vector<DmTarget> targets;
};
// The devices (in the order given) with at least one target that MirrorUsesLog.
std::vector<std::string> DevicesUsingLog(const std::vector<NamedTable>& tables,
                                         std::string_view log_uuid);

}  // namespace clogd::dmtable
