// The mirror model's resync (dm-raid1's do_recovery with dm-region-hash's recovery lists
// and a kcopyd job): ask GET_RESYNC_WORK while a recovery slot is free, quiesce the region,
// copy the default leg to the others, report with SET_REGION_SYNC (from the next pass's
// state update), and ask GET_SYNC_COUNT until the whole mirror is in sync. The copy reads a
// block, then writes it: a write from another node landing in between is overwritten with
// the old data, which is what H1 is about.
#include <memory>
#include <string>
#include <utility>

#include "tests/sim/mirror_model.h"

namespace clogd::sim {

void MirrorModel::DoRecovery(Next next) {
  RecoveryPrepare([this, next = std::move(next)] {
    // dm_rh_recovery_start: copy every region that is quiesced (even while recovery is
    // stopped: a suspend waits for these).
    std::vector<uint64_t> ready = std::move(quiesced_);
    quiesced_.clear();
    for (uint64_t region : ready) {
      auto it = hash_.find(region);
      if (it != hash_.end()) it->second.list = RegionList::kNone;
      StartCopy(region);
    }
    if (ms_in_sync_) {
      next();
      return;
    }
    GetSyncCount([this, next](uint64_t count) {
      if (count == nr_regions_ && !ms_in_sync_) {
        ms_in_sync_ = true;
        RaiseEvent("mirror in sync");
      }
      next();
    });
  });
}

// dm_rh_recovery_prepare / __rh_recovery_prepare with MAX_RECOVERY = 1.
void MirrorModel::RecoveryPrepare(Next next) {
  if (recovery_stopped_ || recovery_slots_ <= 0) {
    next();
    return;
  }
  --recovery_slots_;
  ++recovery_in_flight_;
  GetResyncWork([this, next = std::move(next)](bool has_work, uint64_t region) {
    if (has_work && region >= nr_regions_) {
      ProtocolError("GET_RESYNC_WORK handed out region " + std::to_string(region) + " of " +
                    std::to_string(nr_regions_));
      has_work = false;
    }
    if (!has_work) {
      ++recovery_slots_;
      --recovery_in_flight_;
      next();
      return;
    }
    FindRegion(region, [this, region, next](Region& reg) {
      reg.state = RegionState::kRecovering;
      TakeOffList(region, reg);
      if (reg.pending == 0) {
        reg.list = RegionList::kQuiesced;
        quiesced_.push_back(region);
      }
      Trace("recovering region=" + std::to_string(region) +
            " pending=" + std::to_string(reg.pending));
      RecoveryPrepare(next);
    });
  });
}

// recover(): a kcopyd job from the default leg to every other leg of the table (failed legs
// included: their errors fail the recovery, as in the kernel).
void MirrorModel::StartCopy(uint64_t region) {
  Copy copy;
  copy.source = table_[default_];
  for (size_t i = 0; i < table_.size(); ++i) {
    if (i != default_) copy.dests.push_back(table_[i]);
  }
  copy.next_block = legs_.FirstBlockOf(region);
  copy.end_block = copy.next_block + legs_.blocks_per_region();
  copies_[region] = std::move(copy);
  CopyNextBlock(region);
}

void MirrorModel::CopyNextBlock(uint64_t region) {
  Copy& copy = copies_.at(region);
  const bool failed = copy.read_error || !copy.failed_dests.empty();
  // Without handle_errors kcopyd ignores errors and goes on (DM_KCOPYD_IGNORE_ERROR).
  if (copy.next_block == copy.end_block || (failed && config_.handle_errors)) {
    const bool read_error = copy.read_error;
    const std::vector<int> failed_dests = copy.failed_dests;
    const int source = copy.source;
    copies_.erase(region);
    // recovery_complete
    if (read_error) FailMirror(source, kSyncError);
    for (int leg : failed_dests) FailMirror(leg, kSyncError);
    RecoveryEnd(region, !failed);
    return;
  }
  const uint64_t block = copy.next_block++;
  legs_.Read(config_.node, copy.source, block,
             Guard([this, region, block](Status status, uint64_t value) {
               Copy& c = copies_.at(region);
               if (!status.ok() || c.dests.empty()) {
                 if (!status.ok()) c.read_error = true;
                 CopyNextBlock(region);
                 return;
               }
               c.writes_left = c.dests.size();
               for (int leg : c.dests) {
                 legs_.Write(config_.node, leg, block, value,
                             Guard([this, region, leg](Status write_status) {
                               Copy& job = copies_.at(region);
                               if (!write_status.ok()) job.failed_dests.push_back(leg);
                               if (--job.writes_left == 0) CopyNextBlock(region);
                             }));
               }
             }));
}

// dm_rh_recovery_end: onto the recovered (or failed) list for the next state update.
void MirrorModel::RecoveryEnd(uint64_t region, bool success) {
  if (success) {
    ++stats_.regions_recovered;
  } else {
    ++stats_.recoveries_failed;
  }
  Trace("recovered region=" + std::to_string(region) + " ok=" + (success ? "1" : "0"));
  auto it = hash_.find(region);
  if (it != hash_.end()) {
    it->second.list = success ? RegionList::kRecovered : RegionList::kFailedRecovered;
    (success ? recovered_ : failed_recovered_).push_back(region);
  } else {
    ProtocolError("recovered region " + std::to_string(region) + " is not in the region hash");
  }
  Wake();
}

}  // namespace clogd::sim
