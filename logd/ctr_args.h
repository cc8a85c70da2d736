// Parser for the constructor string the kernel's userspace log sends with CTR:
//   "<target length in sectors> <log type> [<log device>] <region size> [sync|nosync]
//    [block_on_error]"
// log types: clustered-core, clustered-disk, core, disk (the disk types take a device,
// given as a path or major:minor). The kernel strips the uuid and integrated_flush before
// sending; both are handled by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "region/status.h"

namespace clogd::logd {

enum class LogType { kClusteredCore, kClusteredDisk, kCore, kDisk };
enum class SyncMode { kDefault, kForceSync, kNoSync };

const char* LogTypeName(LogType type);  // "clustered-disk", ...
bool IsDiskLog(LogType type);
bool IsClusteredLog(LogType type);

struct CtrArgs {
  uint64_t target_sectors = 0;  // the mirror's length (ti->len)
  LogType type = LogType::kCore;
  std::string device;        // empty for core types; a path or "major:minor"
  uint32_t region_size = 0;  // sectors, a power of two
  SyncMode sync = SyncMode::kDefault;
  bool block_on_error = false;

  // ceil(target_sectors / region_size)
  uint64_t RegionCount() const;
  // The log's own arguments as a table shows them, e.g. "clustered-disk 253:2 1024 nosync"
  // (without the leading target length).
  std::string ToArgString() const;
};

// The log's STATUS_INFO as dm-log formats it: "3 <type> <dev> A|D" for disk types (D: the
// device failed), "1 <type>" for core types.
std::string LogStatusInfo(const CtrArgs& args, bool device_failed);
// The log's STATUS_TABLE, dm-log's shape: "<type> <#args> [dev] <region size> [sync|nosync]
// [block_on_error] " — ending with a space, because dm-raid1 appends the leg count.
std::string LogStatusTable(const CtrArgs& args);

// Refuses with a message naming the bad argument: a missing or non-numeric target
// length; an unknown log type; a missing device for a disk type; a missing, zero,
// non-numeric or non-power-of-two region size; unknown or repeated options; extra words.
Result<CtrArgs> ParseCtrString(std::string_view ctr);

}  // namespace clogd::logd
