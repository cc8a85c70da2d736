// The on-disk format of a cluster mirror log (byte offsets in region/README.md):
//   part 1, at 0:     a kernel dm-log disk log (header + clean bitmap at byte 1024), so a
//                     log can move between clustered and single-node use without a resync;
//                     while any node has the log active its magic is invalidated, so a
//                     single-node dm-log reads "no valid log" (full resync) after a crash;
//   part 2, aligned:  two superblock copies (sequence + CRC32C), then per-node slots, each
//                     two alternating copies holding that node's dirty region list.
// Encode/Decode are pure; LogDevice does the I/O over a BlockDevice.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "region/block_device.h"
#include "region/region_bitmap.h"
#include "region/status.h"

namespace clogd::region {

using NodeId = uint32_t;  // corosync node id; 0 is never a node

inline constexpr uint32_t kDmLogMagic = 0x4D695272;  // "MiRr", kernel dm-log
inline constexpr uint32_t kDmLogVersion = 2;
inline constexpr uint64_t kDmLogBitmapOffset = 1024;
inline constexpr uint32_t kFormatAlign = 4096;
inline constexpr uint32_t kSuperblockMagic = 0x474F4C43;  // "CLOG" little-endian
inline constexpr uint32_t kSlotMagic = 0x544F4C53;        // "SLOT" little-endian
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kMaxSlots = 64;
inline constexpr uint32_t kDefaultSlotCount = 16;
inline constexpr uint32_t kDefaultSlotCopyBytes = 32768;
inline constexpr size_t kMaxUuidLength = 128;

// Where everything is, derived from the region count and slot geometry.
struct Layout {
  uint64_t nr_regions = 0;
  uint64_t bitmap_bytes = 0;    // dm-log clean bitmap, rounded up to 32-bit words
  uint64_t cluster_offset = 0;  // start of part 2 (4096-aligned)
  uint32_t slot_count = 0;
  uint32_t slot_copy_bytes = 0;  // multiple of 4096
  uint64_t total_bytes = 0;      // bytes of device the log uses

  uint64_t SuperblockOffset(int copy) const {
    return cluster_offset + uint64_t(copy) * kFormatAlign;
  }
  uint64_t SlotOffset(uint32_t slot, int copy) const {
    return cluster_offset + 2 * kFormatAlign +
           (uint64_t(slot) * 2 + uint64_t(copy)) * slot_copy_bytes;
  }
  // How many region numbers one slot copy holds before it overflows.
  uint64_t SlotCapacity() const;

  // kInvalidArgument for zero regions, a slot count of 0 or > kMaxSlots, or a slot copy size
  // that is not a multiple of 4096.
  static Result<Layout> Compute(uint64_t nr_regions, uint32_t slot_count, uint32_t slot_copy_bytes);
  // The most slots (≤ kMaxSlots) of the given copy size that fit on a device of this size;
  // kNoSpace (naming both sizes) if not even one fits.
  static Result<Layout> Fit(uint64_t nr_regions, uint64_t device_bytes, uint32_t slot_copy_bytes);
};

struct Superblock {
  uint32_t format_version = kFormatVersion;
  uint64_t nr_regions = 0;
  uint32_t region_size = 0;  // sectors
  uint32_t slot_count = 0;
  uint32_t slot_copy_bytes = 0;
  uint64_t generation = 0;  // bumped by every cluster configuration change
  uint64_t sequence = 0;    // bumped by every superblock write; the newer valid copy wins
  bool active = false;      // some node has the log active: the dm-log part is not valid
  std::string uuid;         // the mirror log's uuid, ≤ kMaxUuidLength bytes

  bool operator==(const Superblock&) const = default;
};

struct SlotRecord {
  NodeId node_id = 0;             // 0: the slot is free
  uint64_t sequence = 0;          // bumped by every write of this slot; the newer valid copy wins
  bool overflow = false;          // the dirty set did not fit: every region counts as dirty
  std::vector<RegionNo> regions;  // sorted, unique

  bool operator==(const SlotRecord&) const = default;
};

// Fixed sizes and flag bits of the format (offsets of every field: region/README.md).
inline constexpr uint32_t kDmLogHeaderBytes = 512;  // EncodeDmLogHeader's size
inline constexpr uint32_t kSuperblockCrcOffset = kFormatAlign - 4;
inline constexpr uint32_t kSuperblockFlagActive = 1u << 0;
inline constexpr uint32_t kSlotHeaderBytes = 32;  // region numbers start here
inline constexpr uint32_t kSlotFlagOverflow = 1u << 0;

// Bytes of a slot copy that a record of `count` regions uses (header + list).
inline uint64_t SlotUsedBytes(uint64_t count) { return kSlotHeaderBytes + 8 * count; }
// The count field of an encoded slot copy (0 if the block is too short to hold one):
// tells a reader how much of the copy to read before decoding it.
uint32_t SlotRecordedCount(std::span<const uint8_t> block);

// The dm-log header as found on disk (no validation).
struct DmLogHeader {
  uint32_t magic = 0;
  uint32_t version = 0;
  uint64_t nr_regions = 0;
};
// Reads the first 16 bytes of `block` (fields of a shorter block read as zero).
DmLogHeader DecodeDmLogHeader(std::span<const uint8_t> block);

// Pure codecs. Encoded blocks are exactly kFormatAlign (superblock) or slot_copy_bytes.
std::vector<uint8_t> EncodeSuperblock(const Superblock& sb);
// kCorrupt for bad magic or checksum, kUnsupportedVersion (naming both) for another version.
Result<Superblock> DecodeSuperblock(std::span<const uint8_t> block);
// Regions beyond the capacity set `overflow` in the encoded record.
std::vector<uint8_t> EncodeSlot(const SlotRecord& slot, uint32_t slot_copy_bytes);
Result<SlotRecord> DecodeSlot(std::span<const uint8_t> block);
// The first 512 bytes of the device: dm-log header {magic, version, nr_regions}, LE.
// With valid=false the magic is zero, which dm-log reads as "no valid log".
std::vector<uint8_t> EncodeDmLogHeader(bool valid, uint64_t nr_regions);

// How LogDevice::Open found the device.
enum class OpenOutcome {
  kOpenedCluster,  // a valid cluster log
  kFormattedNew,   // blank (all zero) device: formatted; regions start out of sync (or in
                   // sync with nosync)
  kImportedDmLog,  // a valid single-node dm-log: its clean bitmap became the in-sync map
  kReinitialized,  // refused content overwritten because the operator asked (full resync)
  kUninitialized,  // blank, a dm-log, or refused content to re-initialise, opened with
                   // may_write false: left as found, nothing written (Initialize writes it)
};

struct OpenParams {
  uint64_t nr_regions = 0;
  uint32_t region_size = 0;
  std::string uuid;
  bool nosync = false;        // a new log starts in sync
  bool force_resync = false;  // `sync`: a new or imported log starts out of sync
  bool reinitialize = false;  // operator asked: overwrite a refused device (full resync)
  uint32_t slot_copy_bytes = kDefaultSlotCopyBytes;
  // false: a device that needs formatting, importing or re-initialising is opened as
  // kUninitialized instead. A cluster member opens so: its CTR may come while another node
  // already bootstraps and serves the log, and a format then would wipe that node's slot
  // and make part 1 a valid dm-log again under it. Only the node that bootstraps the log,
  // chosen by the cluster, writes it (Initialize).
  bool may_write = true;
};

// One open log device. All writes are followed by a durable Flush before they return ok.
class LogDevice {
 public:
  // Opens or creates the log as OpenOutcome describes. Refuses, naming what is wrong and
  // writing nothing: a non-blank device with a bad magic, checksum or version; a region
  // count or region size different from the one recorded; a device too small.
  static Result<LogDevice> Open(BlockDevice& dev, const OpenParams& params);

  OpenOutcome outcome() const { return outcome_; }
  const Superblock& superblock() const { return sb_; }
  const Layout& layout() const { return layout_; }

  // The in-sync map as loaded (part 1's bitmap; bit set = in sync / clean).
  const RegionBitmap& loaded_in_sync() const { return loaded_in_sync_; }
  // Every slot's newest valid copy as loaded (free slots have node_id 0).
  const std::vector<SlotRecord>& loaded_slots() const { return loaded_slots_; }

  // Writes slot `slot` (the older copy), durably; sets record.sequence (and overflow if
  // the list did not fit). Only the 4 KiB blocks holding the used bytes are written.
  // Refuses regions out of range or not ascending (kInvalidArgument), and a record for
  // node X in a slot whose newest record belongs to node Y (kBusy: free it first by
  // writing a node-0 record). On failure nothing is counted as written.
  Status WriteSlot(uint32_t slot, SlotRecord& record);
  // Writes the in-sync map into part 1's bitmap area, durably. Part 1's magic must already
  // be invalid (MarkActive), so dm-log never trusts a map that is still changing
  // (kInvalidArgument otherwise). Writes only the 4 KiB blocks that changed.
  Status WriteInSync(const RegionBitmap& in_sync);
  // Invalidates part 1's magic, then writes the superblock with active=true, durably.
  Status MarkActive(uint64_t generation);
  // Clean deactivation: writes `clean` into part 1's bitmap, the superblock with
  // active=false, then part 1's valid magic, each step durable before the next.
  Status MarkCleanShutdown(const RegionBitmap& clean);
  // Writes the superblock (next sequence, the older copy) durably.
  Status WriteSuperblock(const Superblock& sb);

  // Slot owned by `node`, else the first free slot, else kNoSpace.
  Result<uint32_t> SlotFor(NodeId node) const;

  // Other nodes write the same device (each its own slot; the log server the superblock
  // and part 1), so what this LogDevice knows can go stale. A node taking over as log
  // server calls Reload() before writing the superblock or the in-sync map: it re-reads
  // the superblock, part 1 and every slot (refreshing loaded_in_sync() and loaded_slots()).
  // kCorrupt if the superblock is gone or its geometry changed.
  // On a kUninitialized device it opens the device afresh, writing nothing, and fails
  // (kNotFound) while it is still not a cluster log.
  Status Reload();
  // Reload, or on a kUninitialized device what Open with may_write would do: format,
  // import or re-initialise it (or just open it, if another node did so meanwhile).
  Status Initialize();
  // Re-reads one slot from disk and returns its newest valid record (the log server does
  // this for a failed node's slot before merging and freeing it). kCorrupt if neither copy
  // is valid.
  Result<SlotRecord> ReadSlot(uint32_t slot);

  LogDevice(LogDevice&&) = default;
  LogDevice& operator=(LogDevice&&) = default;

 private:
  LogDevice() = default;

  struct SlotCopies;  // what Open found in one slot's two copies (log_device.cc)

  std::string Where() const;  // "log device <name>" for messages
  Status Sync(const std::string& what);
  Status LoadPart1();
  Status LoadSlots();
  Status ReadSlotCopies(uint32_t slot, SlotCopies& out);
  Status Format(const OpenParams& params, OpenOutcome outcome);
  Status Import(const OpenParams& params);
  Status FreeAllSlots();
  Status WritePart1Blocks(uint64_t first_block, uint64_t count, const std::vector<uint8_t>& image);
  Status WriteBitmapImage(std::vector<uint8_t> image);
  Status WriteDmLogHeader(bool valid);
  Status WriteSuperblockCopy(Superblock sb);
  std::vector<uint8_t> Part1ImageWithBitmap(const RegionBitmap& bits) const;
  bool Part1Valid() const;  // part1_ holds dm-log's valid magic

  Status Reopen(bool may_write);       // Open again with params_, adopting the result
  Status RefuseUninitialized() const;  // the error of a write to a kUninitialized device

  BlockDevice* dev_ = nullptr;
  OpenParams params_;  // as given to Open
  OpenOutcome outcome_ = OpenOutcome::kOpenedCluster;
  Layout layout_;
  Superblock sb_;
  RegionBitmap loaded_in_sync_;
  std::vector<SlotRecord> loaded_slots_;
  std::vector<uint64_t> slot_sequences_;  // newest sequence per slot
  std::vector<int> slot_newest_copy_;     // which copy (0/1) holds it, -1 if none valid
  int sb_newest_copy_ = -1;
  std::vector<NodeId> slot_owner_;  // node of each slot's newest record (0: free)
  // What part 1 ([0, cluster_offset)) holds on disk as far as this LogDevice knows, so
  // WriteInSync writes only the 4 KiB blocks that changed.
  std::vector<uint8_t> part1_;
  // A part 1 write failed: the disk may hold anything in part 1, so the next write of it
  // rewrites every block instead of trusting part1_.
  bool part1_suspect_ = false;
};

}  // namespace clogd::region
