// Reads chosen slots of a log device, read-only and cheaply, for `clogctl status`: the
// marks of other members of a clustered-disk log live only in their slots. Reads the two
// superblock copies and, per slot asked for, only the used bytes of its two copies (a few
// 4 KiB blocks), never part 1's bitmap — so the daemon's loop stalls for a few small
// reads, not megabytes (logd/README.md has the figures).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "region/block_device.h"
#include "region/log_format.h"
#include "region/status.h"

namespace clogd::logd {

struct SlotPeek {
  std::map<uint32_t, region::SlotRecord> slots;  // slot -> its newest valid copy
  std::vector<std::string> problems;             // slots asked for that could not be read
};

// `nr_regions` places the cluster part (the superblock). kCorrupt naming both copies if no
// superblock copy is valid; a read error as kIoError. A slot past the slot count, or with
// neither copy valid, is a problem line, not an error.
Result<SlotPeek> PeekSlots(region::BlockDevice& dev, uint64_t nr_regions,
                           const std::vector<uint32_t>& slots);

}  // namespace clogd::logd
