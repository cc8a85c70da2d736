// Checkpoint encoding. The in-sync map travels as out-of-sync ranges, so a mostly-synced
// 2^24-region log costs bytes, not megabytes. Layout (little-endian):
//   generation u64, history u64, sync_version u64, device_suspect u8, server u32,
//   nr_regions u64, region_size u32,
//   members (u32 count, u32 each), out-of-sync ranges (u32 count, {start u64, length u64}),
//   owners (u32 count, {region u64, node u32}), dirty sets (u32 count, {node u32, list}),
//   slot owners, awaiting_merge, awaiting_free (each u32 count, {slot u32, node u32}),
//   absent (u32 list), awaiting_absent (u32 list), busy (u32 count, {node u32, list}),
//   awaiting_reports (u32 count, {failed u32, u32 list}),
//   first_legs u32, removed legs (u32 count, u32 each)   [protocol 3]
//   leg_epoch u32, uncopied ranges (u32 count, {start u64, length u64})   [protocol 4]
#include "logd/cluster_state.h"

#include <algorithm>

#include "logd/wire.h"

namespace clogd::logd {

namespace {

void PutNodes(WireWriter& w, const auto& nodes) {
  w.U32(static_cast<uint32_t>(nodes.size()));
  for (NodeId n : nodes) w.U32(n);
}

std::vector<NodeId> GetNodes(WireReader& r) {
  uint32_t n = r.U32();
  if (n > r.remaining() / 4) {
    r.Fail("node list of " + std::to_string(n));
    return {};
  }
  std::vector<NodeId> v(n);
  for (auto& x : v) x = r.U32();
  return v;
}

// The runs of bits equal to `value` (u32 count, {start u64, length u64} each).
void PutRuns(WireWriter& w, const region::RegionBitmap& bits, bool value) {
  auto next = [&](RegionNo from) {
    return value ? bits.FindNextSet(from) : bits.FindNextClear(from);
  };
  auto next_other = [&](RegionNo from) {
    return value ? bits.FindNextClear(from) : bits.FindNextSet(from);
  };
  std::vector<std::pair<RegionNo, uint64_t>> runs;
  for (RegionNo r = bits.size() == 0 ? region::kNoRegion : next(0); r != region::kNoRegion;) {
    RegionNo end = next_other(r);
    if (end == region::kNoRegion) end = bits.size();
    runs.emplace_back(r, end - r);
    r = end >= bits.size() ? region::kNoRegion : next(end);
  }
  w.U32(static_cast<uint32_t>(runs.size()));
  for (auto [start, len] : runs) {
    w.U64(start);
    w.U64(len);
  }
}

// Reads PutRuns' runs and sets them to `value` in `bits`; a run outside it fails `r`
// naming `what`. Returns the run count.
uint32_t GetRuns(WireReader& r, region::RegionBitmap& bits, bool value, const char* what) {
  const uint32_t n = r.U32();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    const uint64_t start = r.U64();
    const uint64_t len = r.U64();
    if (start >= bits.size() || len > bits.size() - start) {
      r.Fail(std::string(what) + " range " + std::to_string(start) + "+" + std::to_string(len));
      break;
    }
    for (uint64_t x = start; x < start + len; ++x) value ? bits.Set(x) : bits.Clear(x);
  }
  return n;
}

}  // namespace

uint32_t ClusterState::SlotOf(NodeId node) const {
  for (const auto& [slot, owner] : slot_owner) {
    if (owner == node) return slot;
  }
  return kNoSlot;
}

uint32_t ClusterState::FreeSlot(uint32_t slot_count) const {
  for (uint32_t s = 0; s < slot_count; ++s) {
    if (!slot_owner.contains(s) && !awaiting_merge.contains(s) && !awaiting_free.contains(s)) {
      return s;
    }
  }
  return kNoSlot;
}

bool ClusterState::IsBusy(RegionNo r) const {
  return std::any_of(busy.begin(), busy.end(),
                     [r](const auto& entry) { return entry.second.contains(r); });
}

std::vector<uint8_t> ClusterState::EncodeCheckpoint(bool with_in_sync) const {
  WireWriter w;
  w.U64(generation);
  w.U64(history);
  w.U64(sync_version);
  w.U8(device_suspect ? 1 : 0);
  w.U32(server);
  w.U64(log.nr_regions());
  w.U32(log.region_size());
  PutNodes(w, members);
  // Out-of-sync ranges (none without the in-sync map: it decodes as all in sync).
  PutRuns(w, with_in_sync ? log.in_sync() : region::RegionBitmap(log.nr_regions(), true), false);
  w.U32(static_cast<uint32_t>(recovery.owners().size()));
  for (auto [region, node] : recovery.owners()) {
    w.U64(region);
    w.U32(node);
  }
  const auto marking = log.NodesWithMarks();
  w.U32(static_cast<uint32_t>(marking.size()));
  for (NodeId n : marking) {
    w.U32(n);
    w.Regions(log.DirtyOf(n));
  }
  for (const auto* slots : {&slot_owner, &awaiting_merge, &awaiting_free}) {
    w.U32(static_cast<uint32_t>(slots->size()));
    for (auto [slot, node] : *slots) {
      w.U32(slot);
      w.U32(node);
    }
  }
  PutNodes(w, absent);
  PutNodes(w, awaiting_absent);
  w.U32(static_cast<uint32_t>(busy.size()));
  for (const auto& [node, regions] : busy) {
    w.U32(node);
    w.Regions(regions);
  }
  w.U32(static_cast<uint32_t>(awaiting_reports.size()));
  for (const auto& [failed, nodes] : awaiting_reports) {
    w.U32(failed);
    PutNodes(w, nodes);
  }
  w.U32(first_legs);
  w.U32(static_cast<uint32_t>(removed_legs.size()));
  for (uint32_t leg : removed_legs) w.U32(leg);
  w.U32(leg_epoch);
  PutRuns(w, uncopied, true);
  return w.Take();
}

Result<ClusterState> ClusterState::DecodeCheckpoint(std::span<const uint8_t> bytes,
                                                    uint64_t nr_regions, uint32_t region_size) {
  WireReader r(bytes);
  ClusterState s;
  s.generation = r.U64();
  s.history = r.U64();
  s.sync_version = r.U64();
  s.device_suspect = r.Bool();
  s.server = r.U32();
  const uint64_t n = r.U64();
  const uint32_t rs = r.U32();
  if (r.ok() && (n != nr_regions || rs != region_size)) {
    return InvalidArgument("checkpoint describes " + std::to_string(n) + " regions of " +
                           std::to_string(rs) + " sectors; this log has " +
                           std::to_string(nr_regions) + " of " + std::to_string(region_size));
  }
  s.log = region::LogState(nr_regions, region_size);
  region::RegionBitmap in_sync(nr_regions, true);
  s.members = GetNodes(r);
  GetRuns(r, in_sync, false, "out-of-sync");
  s.log.ReplaceInSync(std::move(in_sync));
  const uint32_t nowners = r.U32();
  for (uint32_t i = 0; i < nowners && r.ok(); ++i) {
    const RegionNo region = r.U64();
    const NodeId node = r.U32();
    if (region >= nr_regions) r.Fail("owned region " + std::to_string(region));
    s.recovery.SetOwner(region, node);
  }
  const uint32_t ndirty = r.U32();
  for (uint32_t i = 0; i < ndirty && r.ok(); ++i) {
    const NodeId node = r.U32();
    for (RegionNo region : r.Regions()) {
      if (region >= nr_regions) {
        r.Fail("dirty region " + std::to_string(region));
        break;
      }
      s.log.Mark(node, region);
    }
  }
  for (auto* slots : {&s.slot_owner, &s.awaiting_merge, &s.awaiting_free}) {
    const uint32_t nslots = r.U32();
    for (uint32_t i = 0; i < nslots && r.ok(); ++i) {
      const uint32_t slot = r.U32();
      (*slots)[slot] = r.U32();
    }
  }
  for (NodeId node : GetNodes(r)) s.absent.insert(node);
  for (NodeId node : GetNodes(r)) s.awaiting_absent.insert(node);
  const uint32_t nbusy = r.U32();
  for (uint32_t i = 0; i < nbusy && r.ok(); ++i) {
    const NodeId node = r.U32();
    for (RegionNo region : r.Regions()) s.busy[node].insert(region);
  }
  const uint32_t nreports = r.U32();
  for (uint32_t i = 0; i < nreports && r.ok(); ++i) {
    const NodeId failed = r.U32();
    for (NodeId node : GetNodes(r)) s.awaiting_reports[failed].insert(node);
  }
  s.first_legs = r.U32();
  const uint32_t nremoved = r.U32();
  for (uint32_t i = 0; i < nremoved && r.ok(); ++i) s.removed_legs.push_back(r.U32());
  if (r.ok() && (nremoved > s.first_legs || (s.first_legs != 0 && s.first_legs - nremoved < 2))) {
    r.Fail(std::to_string(nremoved) + " legs removed of " + std::to_string(s.first_legs));
  }
  s.leg_epoch = r.U32();
  region::RegionBitmap uncopied(nr_regions);
  if (GetRuns(r, uncopied, true, "uncopied") > 0) s.uncopied = std::move(uncopied);
  if (!r.ok() || !r.AtEnd()) return Corrupt("checkpoint: " + r.Problem());
  return s;
}

}  // namespace clogd::logd
