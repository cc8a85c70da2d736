// One mirror log served for this node alone. The durability rules live here:
//  * FLUSH returns only after this node's marks are in its slot on the device;
//  * a region going out of sync is written to the in-sync map before the slot that
//    stops covering it (so a crash in between still resyncs it);
//  * regions coming back in sync are written lazily (stale = extra resync, never loss).
#include "logd/local_log.h"

#include <cerrno>

namespace clogd::logd {

using region::kNoRegion;
using region::RegionNo;

LocalLog::LocalLog(std::string uuid, uint64_t luid, CtrArgs args,
                   std::unique_ptr<region::BlockDevice> device, const EngineOptions& options)
    : uuid_(std::move(uuid)),
      luid_(luid),
      args_(std::move(args)),
      device_(std::move(device)),
      options_(options),
      state_(args_.RegionCount(), args_.region_size) {}

void LocalLog::Log(Severity s, const std::string& message) const {
  if (options_.log) options_.log(s, "log " + uuid_ + ": " + message);
}

region::OpenParams LogOpenParams(const std::string& uuid, const CtrArgs& args,
                                 const EngineOptions& options) {
  region::OpenParams p;
  p.nr_regions = args.RegionCount();
  p.region_size = args.region_size;
  p.uuid = uuid;
  p.nosync = args.sync == SyncMode::kNoSync;
  p.force_resync = args.sync == SyncMode::kForceSync;
  p.reinitialize = options.reinitialize;
  p.slot_copy_bytes = options.slot_copy_bytes;
  return p;
}

Status LocalLog::OpenDevice() {
  if (!device_) return Status::Ok();
  auto opened = region::LogDevice::Open(*device_, LogOpenParams(uuid_, args_, options_));
  if (!opened.ok()) return opened.status();
  log_dev_.emplace(std::move(opened).value());
  return Status::Ok();
}

Status LocalLog::Load(const LocalLog* sibling) {
  const uint64_t n = args_.RegionCount();
  if (device_) {
    // Re-read: a sibling may have written slots and the map since OpenDevice.
    CLOG_RETURN_IF_ERROR(OpenDevice());
  }
  if (sibling && sibling->loaded_) {
    state_ = sibling->state_;
    recovery_ = sibling->recovery_;
    recovery_.Clear();  // the old table's kernel recovery is over (it was suspended)
  } else if (!log_dev_) {
    region::RegionBitmap bits(n, args_.sync == SyncMode::kNoSync);
    state_ = region::LogState(n, args_.region_size);
    state_.ReplaceInSync(std::move(bits));
  } else {
    state_ = region::LogState(n, args_.region_size);
    region::RegionBitmap in_sync = log_dev_->loaded_in_sync();
    uint64_t merged = 0;
    bool overflow = false;
    for (const region::SlotRecord& slot : log_dev_->loaded_slots()) {
      if (slot.node_id == 0) continue;
      overflow |= slot.overflow;
      for (RegionNo r : slot.regions) {
        if (r < n && in_sync.Clear(r)) ++merged;
      }
    }
    if (overflow) in_sync.ClearAll();
    state_.ReplaceInSync(std::move(in_sync));
    if (merged > 0 || overflow) {
      Log(Severity::kInfo, "merged " + std::to_string(merged) +
                               " dirty regions from the slots into the out-of-sync set" +
                               (overflow ? " (a slot overflowed: full resync)" : ""));
    }
  }
  if (log_dev_) {
    // Part 1 becomes invalid before the map may change; the merged map is durable before
    // any slot that held those marks is cleared.
    CLOG_RETURN_IF_ERROR(log_dev_->MarkActive(log_dev_->superblock().generation + 1));
    CLOG_RETURN_IF_ERROR(log_dev_->WriteInSync(state_.in_sync()));
    ++counters_.in_sync_writes;
    auto mine = log_dev_->SlotFor(options_.node_id);
    if (!mine.ok()) return mine.status();
    slot_ = *mine;
    const auto& slots = log_dev_->loaded_slots();
    for (uint32_t i = 0; i < slots.size(); ++i) {
      if (i == *slot_ || slots[i].node_id == 0) continue;
      region::SlotRecord freed;  // this engine is the only node: stale slots are released
      CLOG_RETURN_IF_ERROR(log_dev_->WriteSlot(i, freed));
    }
    region::SlotRecord own;
    own.node_id = options_.node_id;
    for (RegionNo r : state_.DirtyOf(options_.node_id)) own.regions.push_back(r);
    CLOG_RETURN_IF_ERROR(log_dev_->WriteSlot(*slot_, own));
    ++counters_.slot_writes;
  }
  slot_dirty_ = false;
  pending_to_sync_ = 0;
  pending_out_of_sync_ = false;
  loaded_ = true;
  return Status::Ok();
}

Status LocalLog::MarkRegions(std::span<const uint64_t> regions) {
  for (uint64_t r : regions) CLOG_RETURN_IF_ERROR(state_.CheckRegion(r));
  for (uint64_t r : regions) {
    if (state_.Mark(options_.node_id, r)) slot_dirty_ = true;
  }
  return Status::Ok();
}

Status LocalLog::ClearRegions(std::span<const uint64_t> regions) {
  for (uint64_t r : regions) CLOG_RETURN_IF_ERROR(state_.CheckRegion(r));
  for (uint64_t r : regions) {
    if (state_.Clear(options_.node_id, r)) slot_dirty_ = true;
  }
  return Status::Ok();
}

Status LocalLog::PersistInSync(bool force) {
  if (!log_dev_ || device_failed_) return Status::Ok();
  if (pending_to_sync_ == 0 && !pending_out_of_sync_) return Status::Ok();
  uint64_t batch = options_.in_sync_write_batch;
  if (batch == 0) batch = std::max<uint64_t>(1, state_.nr_regions() / 64);
  if (!force && !pending_out_of_sync_ && pending_to_sync_ < batch &&
      state_.SyncCount() != state_.nr_regions()) {
    return Status::Ok();
  }
  Status s = log_dev_->WriteInSync(state_.in_sync());
  if (!s.ok()) return s;
  ++counters_.in_sync_writes;
  pending_to_sync_ = 0;
  pending_out_of_sync_ = false;
  return Status::Ok();
}

Status LocalLog::PersistSlot() {
  if (!log_dev_ || !slot_dirty_) return Status::Ok();
  region::SlotRecord own;
  own.node_id = options_.node_id;
  const region::DirtySet& dirty = state_.DirtyOf(options_.node_id);
  own.regions.assign(dirty.begin(), dirty.end());
  CLOG_RETURN_IF_ERROR(log_dev_->WriteSlot(*slot_, own));
  ++counters_.slot_writes;
  slot_dirty_ = false;
  return Status::Ok();
}

Status LocalLog::Flush() {
  if (device_failed_) return IoError("log device " + args_.device + " has failed");
  // Out-of-sync transitions first: the slot written next may stop covering them.
  Status s = PersistInSync(false);
  if (s.ok()) s = PersistSlot();
  if (!s.ok()) {
    device_failed_ = true;
    Log(Severity::kError, "flush failed, log device marked failed: " + s.ToString());
  }
  return s;
}

UlogReply LocalLog::Handle(const UlogRequest& request) {
  ++counters_.requests;
  UlogReply reply = ReplyTo(request);
  auto fail = [&](const Status& s) {
    Log(Severity::kWarning, RequestTypeName(request.type) + " refused: " + s.ToString());
    reply.error = s.ToErrno();
    reply.payload.clear();
    return reply;
  };
  switch (static_cast<RequestType>(request.type)) {
    case RequestType::kPresuspend:
    case RequestType::kResume:
    case RequestType::kGetRegionSize:
    case RequestType::kGetSyncCount:
    case RequestType::kGetResyncWork:
    case RequestType::kStatusInfo:
    case RequestType::kStatusTable:
    case RequestType::kPostsuspend: {
      Status s = CheckNoPayload(request);
      if (!s.ok()) return fail(s);
      break;
    }
    default:
      break;
  }
  switch (static_cast<RequestType>(request.type)) {
    case RequestType::kPresuspend:
    case RequestType::kResume:
      return reply;
    case RequestType::kPostsuspend: {
      // The next table's instance loads from the device: make it current.
      Status s = PersistInSync(true);
      if (s.ok()) s = PersistSlot();
      if (!s.ok()) return fail(s);
      return reply;
    }
    case RequestType::kGetRegionSize:
      reply.payload = U64Payload(args_.region_size);
      return reply;
    case RequestType::kIsClean:
    case RequestType::kInSync: {
      auto r = DecodeRegionPayload(request);
      if (!r.ok()) return fail(r.status());
      Status s = state_.CheckRegion(*r);
      if (!s.ok()) return fail(s);
      bool answer = request.type == DM_ULOG_IS_CLEAN ? state_.IsClean(*r) : state_.InSync(*r);
      reply.payload = S64Payload(answer ? 1 : 0);
      return reply;
    }
    case RequestType::kFlush: {
      auto regions = DecodeRegionListPayload(request);
      if (!regions.ok()) return fail(regions.status());
      Status s = MarkRegions(*regions);  // integrated flush: the marks ride along
      if (s.ok()) s = Flush();
      if (!s.ok()) return fail(s);
      return reply;
    }
    case RequestType::kMarkRegion:
    case RequestType::kClearRegion: {
      auto regions = DecodeRegionListPayload(request);
      if (!regions.ok()) return fail(regions.status());
      // A MARK is durable before it is answered: if the daemon died between a MARK and its
      // FLUSH the kernel would re-send only the FLUSH. Clears stay lazy (a lost one only
      // means an extra resync) and reach the device with the next write.
      Status s =
          request.type == DM_ULOG_MARK_REGION ? MarkRegions(*regions) : ClearRegions(*regions);
      if (s.ok() && request.type == DM_ULOG_MARK_REGION) s = Flush();
      if (!s.ok()) return fail(s);
      return reply;
    }
    case RequestType::kGetResyncWork: {
      RegionNo r = recovery_.Assign(options_.node_id, state_);
      reply.payload = ResyncWorkPayload(r != kNoRegion, r == kNoRegion ? 0 : r);
      return reply;
    }
    case RequestType::kSetRegionSync: {
      auto args = DecodeSetRegionSyncPayload(request);
      if (!args.ok()) return fail(args.status());
      Status s = state_.CheckRegion(args->region);
      if (!s.ok()) return fail(s);
      recovery_.Release(args->region);
      if (state_.SetInSync(args->region, args->in_sync)) {
        if (args->in_sync) {
          ++pending_to_sync_;
          ++counters_.regions_recovered;
        } else {
          pending_out_of_sync_ = true;
        }
      }
      // The kernel ignores errors here; a failed write shows up at the next FLUSH.
      (void)PersistInSync(false);
      return reply;
    }
    case RequestType::kGetSyncCount:
      reply.payload = U64Payload(state_.SyncCount());
      return reply;
    case RequestType::kStatusInfo:
      reply.payload = StringPayload(LogStatusInfo(args_, device_failed_));
      return reply;
    case RequestType::kStatusTable:
      reply.payload = StringPayload(LogStatusTable(args_));
      return reply;
    case RequestType::kIsRemoteRecovering: {
      auto r = DecodeRegionPayload(request);
      if (!r.ok()) return fail(r.status());
      Status s = state_.CheckRegion(*r);
      if (!s.ok()) return fail(s);
      // One node: nobody else recovers. The hint is the first region not in sync.
      RegionNo first = state_.NextOutOfSync(0);
      reply.payload =
          RemoteRecoveringPayload(false, first == kNoRegion ? state_.nr_regions() : first);
      return reply;
    }
    case RequestType::kCtr:
    case RequestType::kDtr:
      break;  // the engine handles these
  }
  return fail(InvalidArgument("unknown request type " + RequestTypeName(request.raw_type)));
}

Status LocalLog::Destroy(bool keep_active) {
  if (!log_dev_ || !loaded_ || device_failed_) return Status::Ok();
  if (keep_active) {
    CLOG_RETURN_IF_ERROR(PersistInSync(true));
    return PersistSlot();
  }
  // Clean deactivation: part 1 becomes a valid dm-log disk log holding the clean map,
  // then this node's slot is released.
  CLOG_RETURN_IF_ERROR(log_dev_->MarkCleanShutdown(state_.CleanMap()));
  region::SlotRecord freed;
  return log_dev_->WriteSlot(*slot_, freed);
}

}  // namespace clogd::logd
