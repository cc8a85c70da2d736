// Offline log inspection: decodes part 1's header, both superblock copies and every slot
// with the pure codecs of region/log_format.h.
#include "logd/log_inspect.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

namespace clogd::logd {

namespace {

Status ReadAt(region::BlockDevice& dev, uint64_t offset, std::vector<uint8_t>& buf) {
  if (offset + buf.size() > dev.SizeBytes()) {
    return OutOfRange("offset " + std::to_string(offset) + " past the end of " + dev.Name());
  }
  return dev.Read(offset, buf);
}

}  // namespace

Result<LogInspection> InspectLog(region::BlockDevice& dev) {
  LogInspection out;
  out.device = dev.Name();
  out.device_bytes = dev.SizeBytes();
  std::vector<uint8_t> head(4096);
  CLOG_RETURN_IF_ERROR(ReadAt(dev, 0, head));
  const region::DmLogHeader header = region::DecodeDmLogHeader(head);
  out.dm_magic = header.magic;
  out.dm_version = header.version;
  out.nr_regions = header.nr_regions;
  out.dm_log_valid = out.dm_magic == region::kDmLogMagic && out.dm_version == region::kDmLogVersion;
  if (out.nr_regions == 0) {
    out.problems.push_back("part 1 records no region count: blank or not a log");
    return out;
  }
  auto layout = region::Layout::Compute(out.nr_regions, 1, region::kFormatAlign);
  if (!layout.ok()) {
    out.problems.push_back("part 1 region count " + std::to_string(out.nr_regions) + ": " +
                           layout.status().message());
    return out;
  }
  // The bitmap, read together with the header so the read stays block-aligned.
  const uint64_t bs = dev.BlockSize();
  std::vector<uint8_t> part1((region::kDmLogBitmapOffset + layout->bitmap_bytes + bs - 1) / bs *
                             bs);
  if (ReadAt(dev, 0, part1).ok()) {
    region::RegionBitmap bits(out.nr_regions);
    bits.FromBytes(std::span<const uint8_t>(part1).subspan(region::kDmLogBitmapOffset));
    out.bitmap_set = bits.count();
  } else {
    out.problems.push_back("bitmap does not fit on the device");
  }
  // Both superblock copies; the newest valid one wins.
  for (int copy = 0; copy < 2; ++copy) {
    std::vector<uint8_t> block(region::kFormatAlign);
    Status s = ReadAt(dev, layout->SuperblockOffset(copy), block);
    if (!s.ok()) {
      out.problems.push_back("superblock copy " + std::to_string(copy) + ": " + s.message());
      continue;
    }
    auto sb = region::DecodeSuperblock(block);
    if (!sb.ok()) {
      out.problems.push_back("superblock copy " + std::to_string(copy) + ": " +
                             sb.status().message());
      continue;
    }
    if (!out.superblock || sb->sequence > out.superblock->sequence) out.superblock = *sb;
  }
  if (!out.superblock) return out;
  auto slots = region::Layout::Compute(out.nr_regions, out.superblock->slot_count,
                                       out.superblock->slot_copy_bytes);
  if (!slots.ok()) {
    out.problems.push_back("superblock slot geometry: " + slots.status().message());
    return out;
  }
  for (uint32_t i = 0; i < slots->slot_count; ++i) {
    std::optional<region::SlotRecord> newest;
    for (int copy = 0; copy < 2; ++copy) {
      std::vector<uint8_t> block(slots->slot_copy_bytes);
      if (!ReadAt(dev, slots->SlotOffset(i, copy), block).ok()) continue;
      if (std::all_of(block.begin(), block.begin() + 4, [](uint8_t b) { return b == 0; })) {
        continue;  // never written
      }
      auto rec = region::DecodeSlot(block);
      if (!rec.ok()) {
        out.problems.push_back("slot " + std::to_string(i) + " copy " + std::to_string(copy) +
                               ": " + rec.status().message());
        continue;
      }
      if (!newest || rec->sequence > newest->sequence) newest = *rec;
    }
    if (newest && newest->node_id != 0) {
      out.slots.push_back(*newest);
      out.slot_index.push_back(i);
    }
  }
  return out;
}

std::string FormatInspection(const LogInspection& in) {
  std::ostringstream o;
  o << "device:        " << in.device << " (" << in.device_bytes << " bytes)\n";
  o << "dm-log part:   " << (in.dm_log_valid ? "valid" : "not valid") << " (magic 0x" << std::hex
    << in.dm_magic << std::dec << ", version " << in.dm_version << ")\n";
  o << "regions:       " << in.nr_regions << "\n";
  if (in.superblock) {
    const auto& sb = *in.superblock;
    o << "cluster log:   format " << sb.format_version << ", "
      << (sb.active ? "active" : "cleanly shut down") << ", generation " << sb.generation
      << ", region size " << sb.region_size << " sectors\n";
    o << "uuid:          " << sb.uuid << "\n";
    o << "slots:         " << sb.slot_count << " of " << sb.slot_copy_bytes << " bytes x2\n";
  } else {
    o << "cluster log:   none\n";
  }
  o << (in.superblock && in.superblock->active ? "in sync:       " : "clean:         ")
    << in.bitmap_set << " / " << in.nr_regions << " regions\n";
  for (size_t i = 0; i < in.slots.size(); ++i) {
    const auto& s = in.slots[i];
    o << "slot " << in.slot_index[i] << ":        node " << s.node_id << ", seq " << s.sequence
      << ", " << s.regions.size() << " dirty" << (s.overflow ? " (overflowed: all dirty)" : "");
    size_t shown = 0;
    for (auto r : s.regions) {
      if (shown++ == 8) {
        o << " ...";
        break;
      }
      o << (shown == 1 ? ": " : " ") << r;
    }
    o << "\n";
  }
  for (const auto& p : in.problems) o << "problem:       " << p << "\n";
  return o.str();
}

std::string InspectionJson(const LogInspection& in) {
  nlohmann::json j;
  j["device"] = in.device;
  j["device_bytes"] = in.device_bytes;
  j["dm_log_valid"] = in.dm_log_valid;
  j["regions"] = in.nr_regions;
  j["bitmap_set"] = in.bitmap_set;
  if (in.superblock) {
    const auto& sb = *in.superblock;
    j["superblock"] = {{"format_version", sb.format_version},   {"active", sb.active},
                       {"generation", sb.generation},           {"sequence", sb.sequence},
                       {"region_size", sb.region_size},         {"slot_count", sb.slot_count},
                       {"slot_copy_bytes", sb.slot_copy_bytes}, {"uuid", sb.uuid}};
  } else {
    j["superblock"] = nullptr;
  }
  j["slots"] = nlohmann::json::array();
  for (size_t i = 0; i < in.slots.size(); ++i) {
    j["slots"].push_back({{"slot", in.slot_index[i]},
                          {"node", in.slots[i].node_id},
                          {"sequence", in.slots[i].sequence},
                          {"overflow", in.slots[i].overflow},
                          {"dirty", in.slots[i].regions}});
  }
  j["problems"] = in.problems;
  return j.dump(2);
}

}  // namespace clogd::logd
