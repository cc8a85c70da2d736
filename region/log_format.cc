// Pure encode/decode of the on-disk log format and the layout arithmetic. Every field is
// written and read byte by byte in little-endian order (never by copying structs), so the
// format is the same on every host. Byte offsets are documented in region/README.md.
// Decode errors name the problem only ("bad checksum (stored .., computed ..)"); the
// caller adds where (device, copy).
#include "region/log_format.h"

#include <cstdio>
#include <string>

#include "region/crc32c.h"

namespace clogd::region {
namespace {

// Superblock field offsets.
constexpr size_t kSbMagic = 0;
constexpr size_t kSbVersion = 4;
constexpr size_t kSbNrRegions = 8;
constexpr size_t kSbRegionSize = 16;
constexpr size_t kSbSlotCount = 20;
constexpr size_t kSbSlotCopyBytes = 24;
constexpr size_t kSbFlags = 28;
constexpr size_t kSbGeneration = 32;
constexpr size_t kSbSequence = 40;
constexpr size_t kSbUuidLen = 48;
constexpr size_t kSbUuid = 52;

// Slot copy field offsets.
constexpr size_t kSlMagic = 0;
constexpr size_t kSlVersion = 4;
constexpr size_t kSlNodeId = 8;
constexpr size_t kSlFlags = 12;
constexpr size_t kSlSequence = 16;
constexpr size_t kSlCount = 24;
constexpr size_t kSlCrc = 28;

void Put32(std::span<uint8_t> b, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(std::span<uint8_t> b, size_t at, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Get32(std::span<const uint8_t> b, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v |= static_cast<uint32_t>(b[at + i]) << (8 * i);
  return v;
}
uint64_t Get64(std::span<const uint8_t> b, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }

// The slot checksum skips its own field: bytes [0, 28) then the region list.
uint32_t SlotCrc(std::span<const uint8_t> block, uint64_t count) {
  const uint32_t head = Crc32c(block.subspan(0, kSlCrc));
  return Crc32cExtend(head, block.subspan(kSlotHeaderBytes, 8 * count));
}

}  // namespace

uint64_t Layout::SlotCapacity() const {
  return slot_copy_bytes < kSlotHeaderBytes ? 0 : (slot_copy_bytes - kSlotHeaderBytes) / 8;
}

Result<Layout> Layout::Compute(uint64_t nr_regions, uint32_t slot_count, uint32_t slot_copy_bytes) {
  if (nr_regions == 0) return InvalidArgument("log layout: region count is 0");
  // Keeps every offset far from overflow (2^48 regions is a 32 TiB bitmap).
  if (nr_regions > (uint64_t{1} << 48)) {
    return InvalidArgument("log layout: region count " + std::to_string(nr_regions) +
                           " is too large (at most 2^48)");
  }
  if (slot_count == 0 || slot_count > kMaxSlots) {
    return InvalidArgument("log layout: slot count " + std::to_string(slot_count) +
                           " is not between 1 and " + std::to_string(kMaxSlots));
  }
  if (slot_copy_bytes == 0 || slot_copy_bytes % kFormatAlign != 0) {
    return InvalidArgument("log layout: slot copy size " + std::to_string(slot_copy_bytes) +
                           " is not a non-zero multiple of " + std::to_string(kFormatAlign));
  }
  Layout l;
  l.nr_regions = nr_regions;
  // dm-log keeps its clean bitmap in 32-bit words.
  l.bitmap_bytes = (nr_regions / 32 + (nr_regions % 32 != 0 ? 1 : 0)) * 4;
  l.cluster_offset = RoundUp(kDmLogBitmapOffset + l.bitmap_bytes, kFormatAlign);
  l.slot_count = slot_count;
  l.slot_copy_bytes = slot_copy_bytes;
  l.total_bytes = l.cluster_offset + 2 * uint64_t{kFormatAlign} +
                  2 * uint64_t{slot_count} * uint64_t{slot_copy_bytes};
  return l;
}

Result<Layout> Layout::Fit(uint64_t nr_regions, uint64_t device_bytes, uint32_t slot_copy_bytes) {
  Result<Layout> one = Compute(nr_regions, 1, slot_copy_bytes);
  if (!one.ok()) return one.status();
  if (one->total_bytes > device_bytes) {
    return NoSpace("a device of " + std::to_string(device_bytes) + " bytes is too small for " +
                   std::to_string(nr_regions) + " regions with " + std::to_string(slot_copy_bytes) +
                   "-byte slot copies (needs at least " + std::to_string(one->total_bytes) +
                   " bytes for one slot)");
  }
  const uint64_t for_slots = device_bytes - one->cluster_offset - 2 * uint64_t{kFormatAlign};
  uint64_t slots = for_slots / (2 * uint64_t{slot_copy_bytes});
  if (slots > kMaxSlots) slots = kMaxSlots;
  return Compute(nr_regions, static_cast<uint32_t>(slots), slot_copy_bytes);
}

uint32_t SlotRecordedCount(std::span<const uint8_t> block) {
  if (block.size() < kSlotHeaderBytes) return 0;
  return Get32(block, kSlCount);
}

DmLogHeader DecodeDmLogHeader(std::span<const uint8_t> block) {
  DmLogHeader h;
  if (block.size() < 16) return h;
  h.magic = Get32(block, 0);
  h.version = Get32(block, 4);
  h.nr_regions = Get64(block, 8);
  return h;
}

std::vector<uint8_t> EncodeDmLogHeader(bool valid, uint64_t nr_regions) {
  std::vector<uint8_t> b(kDmLogHeaderBytes, 0);
  // Version and region count are filled even when invalid: they tell a later Open where
  // the superblock of an active log is.
  Put32(b, 0, valid ? kDmLogMagic : 0);
  Put32(b, 4, kDmLogVersion);
  Put64(b, 8, nr_regions);
  return b;
}

std::vector<uint8_t> EncodeSuperblock(const Superblock& sb) {
  std::vector<uint8_t> b(kFormatAlign, 0);
  Put32(b, kSbMagic, kSuperblockMagic);
  Put32(b, kSbVersion, sb.format_version);
  Put64(b, kSbNrRegions, sb.nr_regions);
  Put32(b, kSbRegionSize, sb.region_size);
  Put32(b, kSbSlotCount, sb.slot_count);
  Put32(b, kSbSlotCopyBytes, sb.slot_copy_bytes);
  Put32(b, kSbFlags, sb.active ? kSuperblockFlagActive : 0);
  Put64(b, kSbGeneration, sb.generation);
  Put64(b, kSbSequence, sb.sequence);
  const size_t len = sb.uuid.size() < kMaxUuidLength ? sb.uuid.size() : kMaxUuidLength;
  Put32(b, kSbUuidLen, static_cast<uint32_t>(len));
  for (size_t i = 0; i < len; ++i) b[kSbUuid + i] = static_cast<uint8_t>(sb.uuid[i]);
  Put32(b, kSuperblockCrcOffset, Crc32c(std::span<const uint8_t>(b).first(kSuperblockCrcOffset)));
  return b;
}

Result<Superblock> DecodeSuperblock(std::span<const uint8_t> block) {
  if (block.size() < kFormatAlign) {
    return Corrupt("block is " + std::to_string(block.size()) + " bytes, expected " +
                   std::to_string(kFormatAlign));
  }
  const uint32_t magic = Get32(block, kSbMagic);
  if (magic != kSuperblockMagic) {
    return Corrupt("bad magic " + Hex(magic) + " (expected " + Hex(kSuperblockMagic) + ")");
  }
  const uint32_t stored = Get32(block, kSuperblockCrcOffset);
  const uint32_t computed = Crc32c(block.first(kSuperblockCrcOffset));
  if (stored != computed) {
    return Corrupt("bad checksum (stored " + Hex(stored) + ", computed " + Hex(computed) + ")");
  }
  Superblock sb;
  sb.format_version = Get32(block, kSbVersion);
  if (sb.format_version != kFormatVersion) {
    return UnsupportedVersion("format version " + std::to_string(sb.format_version) +
                              ", this build reads version " + std::to_string(kFormatVersion));
  }
  sb.nr_regions = Get64(block, kSbNrRegions);
  sb.region_size = Get32(block, kSbRegionSize);
  sb.slot_count = Get32(block, kSbSlotCount);
  sb.slot_copy_bytes = Get32(block, kSbSlotCopyBytes);
  sb.active = (Get32(block, kSbFlags) & kSuperblockFlagActive) != 0;
  sb.generation = Get64(block, kSbGeneration);
  sb.sequence = Get64(block, kSbSequence);
  const uint32_t uuid_len = Get32(block, kSbUuidLen);
  if (uuid_len > kMaxUuidLength) {
    return Corrupt("uuid length " + std::to_string(uuid_len) + " exceeds " +
                   std::to_string(kMaxUuidLength));
  }
  sb.uuid.assign(block.begin() + kSbUuid, block.begin() + kSbUuid + uuid_len);
  // A checksummed block with impossible geometry was not written by us.
  Result<Layout> layout = Layout::Compute(sb.nr_regions, sb.slot_count, sb.slot_copy_bytes);
  if (!layout.ok()) return Corrupt("impossible geometry: " + layout.status().message());
  return sb;
}

std::vector<uint8_t> EncodeSlot(const SlotRecord& slot, uint32_t slot_copy_bytes) {
  std::vector<uint8_t> b(slot_copy_bytes < kSlotHeaderBytes ? kSlotHeaderBytes : slot_copy_bytes,
                         0);
  const uint64_t capacity = (b.size() - kSlotHeaderBytes) / 8;
  // An overflowed record lists nothing: every region counts as dirty anyway, and an empty
  // list keeps the write to one block.
  const bool overflow = slot.overflow || slot.regions.size() > capacity;
  const uint64_t count = slot.regions.size() > capacity ? 0 : slot.regions.size();
  Put32(b, kSlMagic, kSlotMagic);
  Put32(b, kSlVersion, kFormatVersion);
  Put32(b, kSlNodeId, slot.node_id);
  Put32(b, kSlFlags, overflow ? kSlotFlagOverflow : 0);
  Put64(b, kSlSequence, slot.sequence);
  Put32(b, kSlCount, static_cast<uint32_t>(count));
  for (uint64_t i = 0; i < count; ++i) Put64(b, kSlotHeaderBytes + 8 * i, slot.regions[i]);
  Put32(b, kSlCrc, SlotCrc(b, count));
  return b;
}

Result<SlotRecord> DecodeSlot(std::span<const uint8_t> block) {
  if (block.size() < kSlotHeaderBytes) {
    return Corrupt("block is " + std::to_string(block.size()) + " bytes, shorter than " +
                   std::to_string(kSlotHeaderBytes));
  }
  const uint32_t magic = Get32(block, kSlMagic);
  if (magic == 0) return SlotRecord{};  // never written: free
  if (magic != kSlotMagic) {
    return Corrupt("bad magic " + Hex(magic) + " (expected " + Hex(kSlotMagic) + ")");
  }
  const uint64_t count = Get32(block, kSlCount);
  if (SlotUsedBytes(count) > block.size()) {
    return Corrupt("count " + std::to_string(count) + " does not fit in " +
                   std::to_string(block.size()) + " bytes");
  }
  const uint32_t stored = Get32(block, kSlCrc);
  const uint32_t computed = SlotCrc(block, count);
  if (stored != computed) {
    return Corrupt("bad checksum (stored " + Hex(stored) + ", computed " + Hex(computed) + ")");
  }
  const uint32_t version = Get32(block, kSlVersion);
  if (version != kFormatVersion) {
    return UnsupportedVersion("format version " + std::to_string(version) +
                              ", this build reads version " + std::to_string(kFormatVersion));
  }
  SlotRecord r;
  r.node_id = Get32(block, kSlNodeId);
  r.overflow = (Get32(block, kSlFlags) & kSlotFlagOverflow) != 0;
  r.sequence = Get64(block, kSlSequence);
  r.regions.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const RegionNo region = Get64(block, kSlotHeaderBytes + 8 * i);
    if (!r.regions.empty() && region <= r.regions.back()) {
      return Corrupt("region list not ascending at entry " + std::to_string(i));
    }
    r.regions.push_back(region);
  }
  if (r.node_id == 0 && (count != 0 || r.overflow)) {
    return Corrupt("free (node 0) yet lists " + std::to_string(count) + " regions");
  }
  return r;
}

}  // namespace clogd::region
