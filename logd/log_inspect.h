// Read-only inspection of a log device for clogctl: what part 1 says (valid dm-log or
// not), the newest valid superblock, the in-sync/clean count, and each used slot. Never
// writes; reports damaged parts instead of refusing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "region/block_device.h"
#include "region/log_format.h"
#include "region/status.h"

namespace clogd::logd {

struct LogInspection {
  std::string device;
  uint64_t device_bytes = 0;
  uint32_t dm_magic = 0;
  uint32_t dm_version = 0;
  uint64_t nr_regions = 0;
  bool dm_log_valid = false;  // a single-node dm-log would trust part 1
  std::optional<region::Superblock> superblock;
  std::vector<std::string> problems;      // e.g. "superblock copy 1: bad checksum"
  uint64_t bitmap_set = 0;                // regions marked clean / in sync in part 1
  std::vector<region::SlotRecord> slots;  // used slots (node_id != 0)
  std::vector<uint32_t> slot_index;       // their slot numbers
};

Result<LogInspection> InspectLog(region::BlockDevice& dev);

// Human-readable, fits 80 columns.
std::string FormatInspection(const LogInspection& inspection);
// Stable JSON (documented in logd/README.md).
std::string InspectionJson(const LogInspection& inspection);

}  // namespace clogd::logd
