// LogDevice: opening a log device (open, import, format, or refuse it writing nothing),
// and re-reading it (Reload, ReadSlot). The durable writes are in log_device_write.cc;
// the rules for what is accepted and refused are in region/README.md.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "region/log_format.h"

namespace clogd::region {
namespace {

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string Num(uint64_t v) { return std::to_string(v); }

uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }

bool AllZero(std::span<const uint8_t> b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

constexpr const char* kReinitHint =
    "refusing it; re-initialise explicitly to overwrite it (full resync)";

// Both superblock copies at one candidate location.
struct SbProbe {
  std::vector<uint8_t> raw;  // 2 * kFormatAlign bytes
  std::optional<Superblock> sb[2];
  Status err[2];
  bool has_magic[2] = {false, false};

  bool AnyMagic() const { return has_magic[0] || has_magic[1]; }
  bool AnyValid() const { return sb[0].has_value() || sb[1].has_value(); }
  // The newest valid copy (the higher sequence; copy 0 on a tie), or -1.
  int Newest() const {
    if (sb[0] && sb[1]) return sb[1]->sequence > sb[0]->sequence ? 1 : 0;
    if (sb[0]) return 0;
    if (sb[1]) return 1;
    return -1;
  }
  std::string Describe() const {
    auto one = [&](int c) { return sb[c] ? std::string("valid") : err[c].message(); };
    if (!sb[0] && !sb[1] && err[0].message() == err[1].message()) {
      return "superblock copy 0 and 1: " + err[0].message();
    }
    return "superblock copy 0: " + one(0) + ", copy 1: " + one(1);
  }
};

Status ProbeSuperblocks(BlockDevice& dev, uint64_t cluster_offset, SbProbe& p) {
  p.raw.assign(2 * kFormatAlign, 0);
  CLOG_RETURN_IF_ERROR(dev.Read(cluster_offset, p.raw));
  for (int c = 0; c < 2; ++c) {
    std::span<const uint8_t> block = std::span<const uint8_t>(p.raw).subspan(
        static_cast<size_t>(c) * kFormatAlign, kFormatAlign);
    p.has_magic[c] = DecodeDmLogHeader(block).magic == kSuperblockMagic;  // same first u32
    if (AllZero(block)) {
      p.err[c] = Corrupt("all zero");
      continue;
    }
    Result<Superblock> r = DecodeSuperblock(block);
    if (r.ok()) {
      p.sb[c] = std::move(r).value();
    } else {
      p.err[c] = r.status();
    }
  }
  return Status::Ok();
}

Status Wrap(const std::string& where, const Status& s) {
  return s.ok() ? s : Status(s.code(), where + ": " + s.message());
}

}  // namespace

// What one slot's two copies hold: a record, or why the copy is unusable.
struct LogDevice::SlotCopies {
  std::optional<SlotRecord> rec[2];
  Status err[2];

  int Newest() const {
    if (rec[0] && rec[1]) return rec[1]->sequence > rec[0]->sequence ? 1 : 0;
    if (rec[0]) return 0;
    if (rec[1]) return 1;
    return -1;
  }
};

Result<LogDevice> LogDevice::Open(BlockDevice& dev, const OpenParams& params) {
  LogDevice ld;
  ld.dev_ = &dev;
  ld.params_ = params;
  const std::string where = ld.Where();
  if (params.nr_regions == 0) return InvalidArgument(where + ": region count is 0");
  if (params.region_size == 0) return InvalidArgument(where + ": region size is 0");
  if (params.uuid.size() > kMaxUuidLength) {
    return InvalidArgument(where + ": uuid is " + Num(params.uuid.size()) + " bytes, at most " +
                           Num(kMaxUuidLength));
  }
  const uint32_t bs = dev.BlockSize();
  if (bs == 0 || bs > kFormatAlign || kFormatAlign % bs != 0) {
    return InvalidArgument(where + ": block size " + Num(bs) + " does not divide " +
                           Num(kFormatAlign));
  }
  Result<Layout> fit = Layout::Fit(params.nr_regions, dev.SizeBytes(), params.slot_copy_bytes);
  if (!fit.ok()) return Wrap(where, fit.status());
  const Layout& want = *fit;

  std::vector<uint8_t> head(kFormatAlign);
  CLOG_RETURN_IF_ERROR(Wrap(where, dev.Read(0, head)));
  const DmLogHeader hdr = DecodeDmLogHeader(head);
  const bool dm_valid = hdr.magic == kDmLogMagic;

  // The superblock sits after part 1, whose size depends on the region count. The dm-log
  // header records the count (even when invalidated), so look there first: that is how a
  // region count mismatch is reported instead of being taken for a blank device.
  SbProbe at_params;
  CLOG_RETURN_IF_ERROR(Wrap(where, ProbeSuperblocks(dev, want.cluster_offset, at_params)));
  SbProbe at_header;
  bool use_header = false;
  if ((dm_valid || hdr.magic == 0) && hdr.nr_regions != params.nr_regions) {
    Result<Layout> hl = Layout::Compute(hdr.nr_regions, 1, kFormatAlign);
    if (hl.ok() && hl->cluster_offset + 2 * kFormatAlign <= dev.SizeBytes()) {
      CLOG_RETURN_IF_ERROR(Wrap(where, ProbeSuperblocks(dev, hl->cluster_offset, at_header)));
      use_header = at_header.AnyMagic();
    }
  }
  const SbProbe& probe = use_header ? at_header : at_params;

  // What the device needs written is left to Initialize: nothing is known of it yet but
  // the layout a format would give it, and every region counts as out of sync.
  auto uninitialized = [&]() -> Result<LogDevice> {
    ld.layout_ = want;
    ld.sb_ = Superblock{};
    ld.sb_newest_copy_ = -1;
    ld.part1_ = head;
    ld.loaded_in_sync_ = RegionBitmap(want.nr_regions);
    ld.loaded_slots_.assign(want.slot_count, SlotRecord{});
    ld.slot_sequences_.assign(want.slot_count, 0);
    ld.slot_newest_copy_.assign(want.slot_count, 0);
    ld.slot_owner_.assign(want.slot_count, 0);
    ld.outcome_ = OpenOutcome::kUninitialized;
    return std::move(ld);
  };

  // Every refusal comes through here: the operator may ask to overwrite instead.
  auto refuse = [&](Status s) -> Result<LogDevice> {
    if (!params.reinitialize || s.code() == Errc::kIoError) return s;
    if (!params.may_write) return uninitialized();
    // New superblocks must outrank any old copy a crash mid-format could leave behind.
    uint64_t base = 0;
    for (const SbProbe* p : {&at_params, &at_header}) {
      for (int c = 0; c < 2; ++c) {
        if (p->sb[c]) base = std::max(base, p->sb[c]->sequence);
      }
    }
    ld = LogDevice();
    ld.dev_ = &dev;
    ld.params_ = params;
    ld.sb_.sequence = base;
    ld.layout_ = want;
    ld.part1_ = head;  // Format only needs block 0 as it is on disk
    Status f = ld.Format(params, OpenOutcome::kReinitialized);
    if (!f.ok()) return f;
    return std::move(ld);
  };

  if (probe.AnyValid() || probe.err[0].code() == Errc::kUnsupportedVersion ||
      probe.err[1].code() == Errc::kUnsupportedVersion) {
    // (a) a cluster log.
    for (int c = 0; c < 2; ++c) {
      if (probe.err[c].code() == Errc::kUnsupportedVersion) {
        return refuse(UnsupportedVersion(where + ": superblock copy " + Num(c) + ": " +
                                         probe.err[c].message() + "; " + kReinitHint));
      }
    }
    const int newest = probe.Newest();
    const Superblock& sb = *probe.sb[newest];
    if (sb.nr_regions != params.nr_regions) {
      return refuse(InvalidArgument(where + ": superblock records " + Num(sb.nr_regions) +
                                    " regions, requested " + Num(params.nr_regions) + "; " +
                                    kReinitHint));
    }
    if (sb.region_size != params.region_size) {
      return refuse(InvalidArgument(where + ": superblock records region size " +
                                    Num(sb.region_size) + " sectors, requested " +
                                    Num(params.region_size) + "; " + kReinitHint));
    }
    Result<Layout> layout = Layout::Compute(sb.nr_regions, sb.slot_count, sb.slot_copy_bytes);
    if (!layout.ok()) return refuse(Corrupt(where + ": superblock: " + layout.status().message()));
    if (layout->total_bytes > dev.SizeBytes()) {
      return refuse(NoSpace(where + ": device is " + Num(dev.SizeBytes()) +
                            " bytes but the recorded layout needs " + Num(layout->total_bytes) +
                            " bytes"));
    }
    if (dm_valid && (hdr.version != kDmLogVersion || hdr.nr_regions != sb.nr_regions)) {
      return refuse(Corrupt(where + ": part 1 holds a dm-log header (version " + Num(hdr.version) +
                            ", " + Num(hdr.nr_regions) + " regions) that does not match the " +
                            "superblock (" + Num(sb.nr_regions) + " regions); " + kReinitHint));
    }
    if (!dm_valid && hdr.magic != 0) {
      return refuse(Corrupt(where + ": part 1 has magic " + Hex(hdr.magic) +
                            ", neither dm-log's nor invalidated (0); " + kReinitHint));
    }
    ld.layout_ = *layout;
    ld.sb_ = sb;
    ld.sb_newest_copy_ = newest;
    CLOG_RETURN_IF_ERROR(ld.LoadPart1());
    Status slots = ld.LoadSlots();
    if (!slots.ok()) {
      if (slots.code() == Errc::kIoError) return slots;
      return refuse(Status(slots.code(), slots.message() + "; " + kReinitHint));
    }
    ld.outcome_ = OpenOutcome::kOpenedCluster;
    return ld;
  }

  if (probe.AnyMagic()) {
    // Our own metadata, damaged: importing part 1 would hide that.
    return refuse(Corrupt(where + ": " + probe.Describe() + "; " + kReinitHint));
  }

  if (dm_valid) {
    // (b) a single-node dm-log.
    if (hdr.version != kDmLogVersion) {
      return refuse(UnsupportedVersion(where + ": dm-log version " + Num(hdr.version) +
                                       ", this build reads version " + Num(kDmLogVersion) + "; " +
                                       kReinitHint));
    }
    if (hdr.nr_regions != params.nr_regions) {
      return refuse(InvalidArgument(where + ": dm-log header records " + Num(hdr.nr_regions) +
                                    " regions, requested " + Num(params.nr_regions) + "; " +
                                    kReinitHint));
    }
    if (!params.may_write) return uninitialized();
    ld.layout_ = want;
    CLOG_RETURN_IF_ERROR(ld.Import(params));
    ld.outcome_ = OpenOutcome::kImportedDmLog;
    return ld;
  }

  if (AllZero(std::span<const uint8_t>(head).first(kDmLogHeaderBytes)) && AllZero(at_params.raw)) {
    // (c) blank.
    if (!params.may_write) return uninitialized();
    ld.layout_ = want;
    ld.part1_ = head;
    CLOG_RETURN_IF_ERROR(ld.Format(params, OpenOutcome::kFormattedNew));
    return ld;
  }

  // (d) something else.
  std::string dm = hdr.magic == 0 ? "dm-log magic 0 (invalidated or never written)"
                                  : "dm-log magic " + Hex(hdr.magic);
  return refuse(Corrupt(where + ": not a clogd or dm-log log (" + dm + ", " + probe.Describe() +
                        "); " + kReinitHint));
}

// Format order (each step durable before the next): part 1's header zeroed, part 1's
// bitmap, free slots, both superblock copies, part 1's valid header. A crash before the
// superblock leaves either a blank-looking device (formatted again) or, for a
// re-initialisation, a device that is refused again; never a half-written log that opens.
Status LogDevice::Format(const OpenParams& params, OpenOutcome outcome) {
  const bool all_in_sync = outcome == OpenOutcome::kFormattedNew && params.nosync;
  loaded_in_sync_ = RegionBitmap(layout_.nr_regions, all_in_sync);

  // Block 0 as on disk with the header zeroed, so no reader trusts the bitmap meanwhile.
  std::vector<uint8_t> block0(part1_.begin(), part1_.begin() + kFormatAlign);
  if (!AllZero(std::span<const uint8_t>(block0).first(kDmLogHeaderBytes))) {
    std::fill(block0.begin(), block0.begin() + static_cast<std::ptrdiff_t>(kDmLogBitmapOffset), 0);
    CLOG_RETURN_IF_ERROR(Wrap(Where(), dev_->Write(0, block0)));
    CLOG_RETURN_IF_ERROR(Sync("zeroing the dm-log header"));
  }

  part1_.assign(layout_.cluster_offset, 0);
  loaded_in_sync_.ToBytes(
      std::span<uint8_t>(part1_).subspan(kDmLogBitmapOffset, layout_.bitmap_bytes));
  CLOG_RETURN_IF_ERROR(Wrap(Where(), dev_->Write(0, part1_)));
  CLOG_RETURN_IF_ERROR(Sync("writing part 1"));

  CLOG_RETURN_IF_ERROR(FreeAllSlots());

  const uint64_t base_sequence = sb_.sequence;  // set by a re-initialisation
  sb_ = Superblock{};
  sb_.nr_regions = layout_.nr_regions;
  sb_.region_size = params.region_size;
  sb_.slot_count = layout_.slot_count;
  sb_.slot_copy_bytes = layout_.slot_copy_bytes;
  sb_.sequence = base_sequence;
  sb_.uuid = params.uuid;
  sb_newest_copy_ = 1;  // so the first write goes to copy 0
  CLOG_RETURN_IF_ERROR(WriteSuperblockCopy(sb_));
  CLOG_RETURN_IF_ERROR(WriteSuperblockCopy(sb_));

  CLOG_RETURN_IF_ERROR(WriteDmLogHeader(true));
  outcome_ = outcome;
  return Status::Ok();
}

// Import order: (with `sync`) an all-clear bitmap, free slots, then both superblock
// copies; part 1's valid header stays as dm-log left it. A crash before the superblock
// is durable just imports again.
Status LogDevice::Import(const OpenParams& params) {
  CLOG_RETURN_IF_ERROR(LoadPart1());
  if (params.force_resync) {
    loaded_in_sync_.ClearAll();
    CLOG_RETURN_IF_ERROR(WriteBitmapImage(Part1ImageWithBitmap(loaded_in_sync_)));
  }
  CLOG_RETURN_IF_ERROR(FreeAllSlots());
  sb_ = Superblock{};
  sb_.nr_regions = layout_.nr_regions;
  sb_.region_size = params.region_size;
  sb_.slot_count = layout_.slot_count;
  sb_.slot_copy_bytes = layout_.slot_copy_bytes;
  sb_.uuid = params.uuid;
  sb_newest_copy_ = 1;
  CLOG_RETURN_IF_ERROR(WriteSuperblockCopy(sb_));
  CLOG_RETURN_IF_ERROR(WriteSuperblockCopy(sb_));
  return Status::Ok();
}

// Both copies of every slot read as free (magic 0), whatever was there before.
Status LogDevice::FreeAllSlots() {
  const std::vector<uint8_t> zero(kFormatAlign, 0);
  for (uint32_t i = 0; i < layout_.slot_count; ++i) {
    for (int c = 0; c < 2; ++c) {
      CLOG_RETURN_IF_ERROR(Wrap(Where() + ": freeing slot " + Num(i) + " copy " + Num(c),
                                dev_->Write(layout_.SlotOffset(i, c), zero)));
    }
  }
  CLOG_RETURN_IF_ERROR(Sync("freeing the slots"));
  loaded_slots_.assign(layout_.slot_count, SlotRecord{});
  slot_sequences_.assign(layout_.slot_count, 0);
  slot_newest_copy_.assign(layout_.slot_count, 0);
  slot_owner_.assign(layout_.slot_count, 0);
  return Status::Ok();
}

Status LogDevice::LoadPart1() {
  part1_.assign(layout_.cluster_offset, 0);
  CLOG_RETURN_IF_ERROR(Wrap(Where() + ": reading part 1", dev_->Read(0, part1_)));
  part1_suspect_ = false;
  loaded_in_sync_ = RegionBitmap(layout_.nr_regions);
  loaded_in_sync_.FromBytes(
      std::span<const uint8_t>(part1_).subspan(kDmLogBitmapOffset, layout_.bitmap_bytes));
  return Status::Ok();
}

Status LogDevice::ReadSlotCopies(uint32_t slot, SlotCopies& out) {
  for (int c = 0; c < 2; ++c) {
    const uint64_t at = layout_.SlotOffset(slot, c);
    std::vector<uint8_t> block(kFormatAlign);
    CLOG_RETURN_IF_ERROR(
        Wrap(Where() + ": reading slot " + Num(slot) + " copy " + Num(c), dev_->Read(at, block)));
    out.rec[c].reset();
    if (DecodeDmLogHeader(block).magic == kSlotMagic) {
      // Read only as much of the copy as its count says is used.
      const uint64_t count = SlotRecordedCount(block);
      if (count > layout_.SlotCapacity()) {
        out.err[c] = Corrupt("count " + Num(count) + " exceeds the slot capacity " +
                             Num(layout_.SlotCapacity()));
        continue;
      }
      const uint64_t used = RoundUp(SlotUsedBytes(count), kFormatAlign);
      if (used > kFormatAlign) {
        block.resize(used);
        CLOG_RETURN_IF_ERROR(Wrap(Where() + ": reading slot " + Num(slot) + " copy " + Num(c),
                                  dev_->Read(at, block)));
      }
    }
    Result<SlotRecord> r = DecodeSlot(block);
    if (r.ok()) {
      out.rec[c] = std::move(r).value();
      out.err[c] = Status::Ok();
    } else {
      out.err[c] = r.status();
    }
  }
  return Status::Ok();
}

// Fills the per-slot bookkeeping from disk. A slot with neither copy valid is refused:
// our writes always leave one valid copy, so that is damage, and guessing would lose marks.
Status LogDevice::LoadSlots() {
  const uint32_t n = layout_.slot_count;
  loaded_slots_.assign(n, SlotRecord{});
  slot_sequences_.assign(n, 0);
  slot_newest_copy_.assign(n, 0);
  slot_owner_.assign(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    SlotCopies copies;
    CLOG_RETURN_IF_ERROR(ReadSlotCopies(i, copies));
    for (int c = 0; c < 2; ++c) {
      if (copies.err[c].code() == Errc::kUnsupportedVersion) {
        return UnsupportedVersion(Where() + ": slot " + Num(i) + " copy " + Num(c) + ": " +
                                  copies.err[c].message());
      }
    }
    const int newest = copies.Newest();
    if (newest < 0) {
      return Corrupt(Where() + ": slot " + Num(i) + ": copy 0: " + copies.err[0].message() +
                     ", copy 1: " + copies.err[1].message());
    }
    loaded_slots_[i] = *copies.rec[newest];
    slot_sequences_[i] = copies.rec[newest]->sequence;
    slot_newest_copy_[i] = newest;
    slot_owner_[i] = copies.rec[newest]->node_id;
  }
  return Status::Ok();
}

Status LogDevice::Reopen(bool may_write) {
  OpenParams p = params_;
  p.may_write = may_write;
  Result<LogDevice> opened = Open(*dev_, p);
  if (!opened.ok()) return opened.status();
  LogDevice fresh = std::move(opened).value();
  fresh.params_ = params_;
  *this = std::move(fresh);
  return Status::Ok();
}

Status LogDevice::RefuseUninitialized() const {
  return NotFound(Where() + ": not initialised: the node that bootstraps the cluster log " +
                  "formats or imports it first");
}

Status LogDevice::Initialize() {
  if (outcome_ != OpenOutcome::kUninitialized) return Reload();
  return Reopen(true);
}

Status LogDevice::Reload() {
  if (outcome_ == OpenOutcome::kUninitialized) {
    CLOG_RETURN_IF_ERROR(Reopen(false));
    return outcome_ == OpenOutcome::kUninitialized ? RefuseUninitialized() : Status::Ok();
  }
  SbProbe probe;
  CLOG_RETURN_IF_ERROR(Wrap(Where(), ProbeSuperblocks(*dev_, layout_.cluster_offset, probe)));
  const int newest = probe.Newest();
  if (newest < 0) return Corrupt(Where() + ": reload: " + probe.Describe());
  const Superblock& sb = *probe.sb[newest];
  if (sb.nr_regions != sb_.nr_regions || sb.region_size != sb_.region_size ||
      sb.slot_count != sb_.slot_count || sb.slot_copy_bytes != sb_.slot_copy_bytes) {
    return Corrupt(Where() + ": reload: superblock geometry changed under us (regions " +
                   Num(sb.nr_regions) + ", region size " + Num(sb.region_size) + ", slots " +
                   Num(sb.slot_count) + ")");
  }
  sb_ = sb;
  sb_newest_copy_ = newest;
  CLOG_RETURN_IF_ERROR(LoadPart1());
  return LoadSlots();
}

Result<SlotRecord> LogDevice::ReadSlot(uint32_t slot) {
  if (slot >= layout_.slot_count) {
    return OutOfRange(Where() + ": slot " + Num(slot) + " is past the end (" +
                      Num(layout_.slot_count) + " slots)");
  }
  SlotCopies copies;
  CLOG_RETURN_IF_ERROR(ReadSlotCopies(slot, copies));
  for (int c = 0; c < 2; ++c) {
    if (copies.err[c].code() == Errc::kUnsupportedVersion) {
      return UnsupportedVersion(Where() + ": slot " + Num(slot) + " copy " + Num(c) + ": " +
                                copies.err[c].message());
    }
  }
  const int newest = copies.Newest();
  if (newest < 0) {
    return Corrupt(Where() + ": slot " + Num(slot) + ": copy 0: " + copies.err[0].message() +
                   ", copy 1: " + copies.err[1].message());
  }
  slot_sequences_[slot] = copies.rec[newest]->sequence;
  slot_newest_copy_[slot] = newest;
  slot_owner_[slot] = copies.rec[newest]->node_id;
  return *copies.rec[newest];
}

}  // namespace clogd::region
