// Read-only slot reader: the same newest-valid-copy rule as region::LogDevice (the higher
// sequence wins; copy 0 on a tie), through region's pure codecs.
#include "logd/slot_peek.h"

#include <algorithm>
#include <optional>

namespace clogd::logd {

namespace {

using region::kFormatAlign;

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

bool AllZero(std::span<const uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

// One copy of a slot: its record, or why it is not valid.
Result<region::SlotRecord> ReadCopy(region::BlockDevice& dev, const region::Layout& layout,
                                    uint32_t slot, int copy) {
  const uint64_t at = layout.SlotOffset(slot, copy);
  std::vector<uint8_t> block(kFormatAlign);
  CLOG_RETURN_IF_ERROR(dev.Read(at, block));
  const uint64_t count = region::SlotRecordedCount(block);
  if (count > layout.SlotCapacity()) {
    return Corrupt("count " + std::to_string(count) + " exceeds the slot capacity");
  }
  const uint64_t used = RoundUp(region::SlotUsedBytes(count), kFormatAlign);
  if (used > kFormatAlign) {
    block.resize(std::min<uint64_t>(used, layout.slot_copy_bytes));
    CLOG_RETURN_IF_ERROR(dev.Read(at, block));
  }
  return region::DecodeSlot(block);
}

}  // namespace

Result<SlotPeek> PeekSlots(region::BlockDevice& dev, uint64_t nr_regions,
                           const std::vector<uint32_t>& slots) {
  const std::string where = "log device " + dev.Name();
  auto base = region::Layout::Compute(nr_regions, 1, kFormatAlign);
  if (!base.ok()) return base.status();
  std::vector<uint8_t> sbs(2 * kFormatAlign);
  if (base->cluster_offset + sbs.size() > dev.SizeBytes()) {
    return NoSpace(where + " is too small to hold a cluster log of " + std::to_string(nr_regions) +
                   " regions");
  }
  CLOG_RETURN_IF_ERROR(dev.Read(base->cluster_offset, sbs));
  std::optional<region::Superblock> sb;
  std::string why[2];
  for (int c = 0; c < 2; ++c) {
    auto block = std::span<const uint8_t>(sbs).subspan(size_t(c) * kFormatAlign, kFormatAlign);
    if (AllZero(block)) {
      why[c] = "all zero";
      continue;
    }
    auto r = region::DecodeSuperblock(block);
    if (!r.ok()) {
      why[c] = r.status().message();
    } else if (!sb || r->sequence > sb->sequence) {
      sb = std::move(r).value();
    }
  }
  if (!sb) {
    return Corrupt(where + ": superblock copy 0: " + why[0] + ", copy 1: " + why[1]);
  }
  auto layout = region::Layout::Compute(nr_regions, sb->slot_count, sb->slot_copy_bytes);
  if (!layout.ok()) return Corrupt(where + ": superblock geometry: " + layout.status().message());
  if (layout->total_bytes > dev.SizeBytes()) {
    return Corrupt(where + ": its superblock describes " + std::to_string(layout->total_bytes) +
                   " bytes, the device has " + std::to_string(dev.SizeBytes()));
  }

  SlotPeek out;
  for (uint32_t slot : slots) {
    if (slot >= layout->slot_count) {
      out.problems.push_back("slot " + std::to_string(slot) + ": past the slot count " +
                             std::to_string(layout->slot_count));
      continue;
    }
    std::optional<region::SlotRecord> newest;
    std::string errors;
    for (int c = 0; c < 2; ++c) {
      auto rec = ReadCopy(dev, *layout, slot, c);
      if (!rec.ok()) {
        errors += (errors.empty() ? "" : ", ") + ("copy " + std::to_string(c) + ": ") +
                  rec.status().message();
      } else if (!newest || rec->sequence > newest->sequence) {
        newest = std::move(rec).value();
      }
    }
    if (newest) {
      out.slots[slot] = std::move(*newest);
    } else {
      out.problems.push_back("slot " + std::to_string(slot) + ": " + errors);
    }
  }
  return out;
}

}  // namespace clogd::logd
