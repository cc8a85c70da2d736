// LogDevice's durable writes: slots, the in-sync map, the superblock and the activation /
// clean-shutdown protocol. Every write is followed by a Flush before the caller (or the
// next protocol step) may rely on it; the ordering and why is in region/README.md.
#include <algorithm>
#include <string>

#include "region/log_format.h"

namespace clogd::region {

namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }

Status Wrap(const std::string& where, const Status& s) {
  return s.ok() ? s : Status(s.code(), where + ": " + s.message());
}

}  // namespace

std::string LogDevice::Where() const { return "log device " + dev_->Name(); }

Status LogDevice::Sync(const std::string& what) {
  Status s = dev_->Flush();
  if (!s.ok()) return Status(s.code(), Where() + ": flush after " + what + ": " + s.message());
  return s;
}

std::vector<uint8_t> LogDevice::Part1ImageWithBitmap(const RegionBitmap& bits) const {
  std::vector<uint8_t> image = part1_;
  bits.ToBytes(std::span<uint8_t>(image).subspan(kDmLogBitmapOffset, layout_.bitmap_bytes));
  return image;
}

// Writes the 4 KiB blocks of part 1 in which `image` differs from what is on disk (all of
// them if an earlier write failed), coalescing neighbours, then flushes.
Status LogDevice::WriteBitmapImage(std::vector<uint8_t> image) {
  const uint64_t blocks = layout_.cluster_offset / kFormatAlign;
  auto differs = [&](uint64_t b) {
    const auto at = static_cast<std::ptrdiff_t>(b * kFormatAlign);
    return part1_suspect_ ||
           !std::equal(image.begin() + at, image.begin() + at + kFormatAlign, part1_.begin() + at);
  };
  bool wrote = false;
  for (uint64_t b = 0; b < blocks;) {
    if (!differs(b)) {
      ++b;
      continue;
    }
    uint64_t end = b + 1;
    while (end < blocks && differs(end)) ++end;
    Status s = WritePart1Blocks(b, end - b, image);
    if (!s.ok()) return s;
    wrote = true;
    b = end;
  }
  if (!wrote) return Status::Ok();
  Status s = Sync("writing the part 1 bitmap");
  if (!s.ok()) {
    part1_suspect_ = true;
    return s;
  }
  part1_.swap(image);
  part1_suspect_ = false;
  return Status::Ok();
}

Status LogDevice::WritePart1Blocks(uint64_t first_block, uint64_t count,
                                   const std::vector<uint8_t>& image) {
  const uint64_t at = first_block * kFormatAlign;
  std::span<const uint8_t> data = std::span<const uint8_t>(image).subspan(at, count * kFormatAlign);
  Status s = dev_->Write(at, data);
  if (!s.ok()) {
    part1_suspect_ = true;
    return Wrap(Where() + ": writing part 1 bytes " + Num(at) + ".." + Num(at + data.size()), s);
  }
  return Status::Ok();
}

Status LogDevice::WriteDmLogHeader(bool valid) {
  // Block 0 as this LogDevice knows it, with the header (bytes 0..1023) replaced.
  std::vector<uint8_t> block(part1_.begin(), part1_.begin() + kFormatAlign);
  const std::vector<uint8_t> hdr = EncodeDmLogHeader(valid, layout_.nr_regions);
  std::fill(block.begin(), block.begin() + static_cast<std::ptrdiff_t>(kDmLogBitmapOffset), 0);
  std::copy(hdr.begin(), hdr.end(), block.begin());
  CLOG_RETURN_IF_ERROR(WritePart1Blocks(0, 1, block));
  Status s = Sync(valid ? "validating the dm-log header" : "invalidating the dm-log header");
  if (!s.ok()) {
    part1_suspect_ = true;
    return s;
  }
  std::copy(block.begin(), block.end(), part1_.begin());
  return Status::Ok();
}

// Writes `sb` with the next sequence into the copy not holding the newest valid one, so
// a torn write leaves the previous superblock readable.
Status LogDevice::WriteSuperblockCopy(Superblock sb) {
  const int copy = sb_newest_copy_ == 0 ? 1 : 0;
  sb.format_version = kFormatVersion;
  sb.sequence = sb_.sequence + 1;
  const std::vector<uint8_t> block = EncodeSuperblock(sb);
  CLOG_RETURN_IF_ERROR(Wrap(Where() + ": writing superblock copy " + Num(copy),
                            dev_->Write(layout_.SuperblockOffset(copy), block)));
  CLOG_RETURN_IF_ERROR(Sync("writing superblock copy " + Num(copy)));
  sb_ = std::move(sb);
  sb_newest_copy_ = copy;
  return Status::Ok();
}

bool LogDevice::Part1Valid() const { return DecodeDmLogHeader(part1_).magic == kDmLogMagic; }

Status LogDevice::WriteSlot(uint32_t slot, SlotRecord& record) {
  if (outcome_ == OpenOutcome::kUninitialized) return RefuseUninitialized();
  if (slot >= layout_.slot_count) {
    return OutOfRange(Where() + ": slot " + Num(slot) + " is past the end (" +
                      Num(layout_.slot_count) + " slots)");
  }
  if (record.node_id == 0 && (!record.regions.empty() || record.overflow)) {
    return InvalidArgument(Where() + ": slot " + Num(slot) + ": a free record (node 0) lists " +
                           Num(record.regions.size()) + " regions");
  }
  for (size_t i = 0; i < record.regions.size(); ++i) {
    const RegionNo r = record.regions[i];
    if (r >= layout_.nr_regions) {
      return InvalidArgument(Where() + ": slot " + Num(slot) + ": region " + Num(r) +
                             " is past the end (" + Num(layout_.nr_regions) + " regions)");
    }
    if (i > 0 && r <= record.regions[i - 1]) {
      return InvalidArgument(Where() + ": slot " + Num(slot) +
                             ": regions not sorted and unique at entry " + Num(i));
    }
  }
  const NodeId owner = slot_owner_[slot];
  if (record.node_id != 0 && owner != 0 && owner != record.node_id) {
    return Busy(Where() + ": slot " + Num(slot) + " belongs to node " + Num(owner) + ", not node " +
                Num(record.node_id));
  }
  const int copy = slot_newest_copy_[slot] == 0 ? 1 : 0;
  SlotRecord out = record;
  out.sequence = slot_sequences_[slot] + 1;
  const std::vector<uint8_t> block = EncodeSlot(out, layout_.slot_copy_bytes);
  // Only the blocks holding the used bytes: a FLUSH with a few marks is one 4 KiB write.
  const uint64_t used = RoundUp(SlotUsedBytes(SlotRecordedCount(block)), kFormatAlign);
  const std::string what = "slot " + Num(slot) + " copy " + Num(copy);
  CLOG_RETURN_IF_ERROR(Wrap(
      Where() + ": writing " + what,
      dev_->Write(layout_.SlotOffset(slot, copy), std::span<const uint8_t>(block).first(used))));
  CLOG_RETURN_IF_ERROR(Sync("writing " + what));
  slot_sequences_[slot] = out.sequence;
  slot_newest_copy_[slot] = copy;
  slot_owner_[slot] = out.node_id;
  record.sequence = out.sequence;
  if (record.regions.size() > layout_.SlotCapacity()) record.overflow = true;
  return Status::Ok();
}

Status LogDevice::WriteInSync(const RegionBitmap& in_sync) {
  if (outcome_ == OpenOutcome::kUninitialized) return RefuseUninitialized();
  if (in_sync.size() != layout_.nr_regions) {
    return InvalidArgument(Where() + ": in-sync map has " + Num(in_sync.size()) +
                           " regions, the log " + Num(layout_.nr_regions));
  }
  if (Part1Valid()) {
    return InvalidArgument(Where() + ": writing the in-sync map while part 1 is a valid " +
                           "dm-log would let dm-log trust a changing map; MarkActive first");
  }
  return WriteBitmapImage(Part1ImageWithBitmap(in_sync));
}

// MarkActive: part 1 invalid (durable) before the superblock says active, so "active"
// always implies "part 1 not trusted" at every instant.
Status LogDevice::MarkActive(uint64_t generation) {
  if (outcome_ == OpenOutcome::kUninitialized) return RefuseUninitialized();
  CLOG_RETURN_IF_ERROR(WriteDmLogHeader(false));
  Superblock next = sb_;
  next.active = true;
  next.generation = generation;
  return WriteSuperblockCopy(std::move(next));
}

// MarkCleanShutdown: the clean map is complete and durable before anything says the log
// is inactive, and the superblock says inactive before part 1's magic says "trust me".
Status LogDevice::MarkCleanShutdown(const RegionBitmap& clean) {
  if (outcome_ == OpenOutcome::kUninitialized) return RefuseUninitialized();
  if (clean.size() != layout_.nr_regions) {
    return InvalidArgument(Where() + ": clean map has " + Num(clean.size()) + " regions, the log " +
                           Num(layout_.nr_regions));
  }
  if (Part1Valid()) CLOG_RETURN_IF_ERROR(WriteDmLogHeader(false));
  CLOG_RETURN_IF_ERROR(WriteBitmapImage(Part1ImageWithBitmap(clean)));
  Superblock next = sb_;
  next.active = false;
  CLOG_RETURN_IF_ERROR(WriteSuperblockCopy(std::move(next)));
  return WriteDmLogHeader(true);
}

Status LogDevice::WriteSuperblock(const Superblock& sb) {
  if (outcome_ == OpenOutcome::kUninitialized) return RefuseUninitialized();
  if (sb.nr_regions != sb_.nr_regions || sb.region_size != sb_.region_size ||
      sb.slot_count != sb_.slot_count || sb.slot_copy_bytes != sb_.slot_copy_bytes) {
    return InvalidArgument(
        Where() + ": superblock geometry cannot change (regions " + Num(sb.nr_regions) + " vs " +
        Num(sb_.nr_regions) + ", region size " + Num(sb.region_size) + " vs " +
        Num(sb_.region_size) + ", slots " + Num(sb.slot_count) + " vs " + Num(sb_.slot_count) +
        ", slot copy bytes " + Num(sb.slot_copy_bytes) + " vs " + Num(sb_.slot_copy_bytes) + ")");
  }
  if (sb.uuid.size() > kMaxUuidLength) {
    return InvalidArgument(Where() + ": uuid is " + Num(sb.uuid.size()) + " bytes, at most " +
                           Num(kMaxUuidLength));
  }
  if (sb.active && Part1Valid()) {
    return InvalidArgument(Where() + ": superblock marked active while part 1 is a valid " +
                           "dm-log; use MarkActive");
  }
  return WriteSuperblockCopy(sb);
}

Result<uint32_t> LogDevice::SlotFor(NodeId node) const {
  if (node == 0) return InvalidArgument(Where() + ": node id 0 is not a node");
  for (uint32_t i = 0; i < slot_owner_.size(); ++i) {
    if (slot_owner_[i] == node) return i;
  }
  for (uint32_t i = 0; i < slot_owner_.size(); ++i) {
    if (slot_owner_[i] == 0) return i;
  }
  return NoSpace(Where() + ": all " + Num(slot_owner_.size()) +
                 " slots belong to other nodes (none free for node " + Num(node) + ")");
}

}  // namespace clogd::region
