// The mirror model's kmirrord: one pass at a time (dm-raid1's do_mirror) over the bios
// queued since the last one, and the region hash it drives (dm-region-hash.c): states,
// pending counts, the clean / quiesced / recovered lists, delayed bios. The order of steps
// and which request is asked where follow the kernel, because the hazards live in it: a
// region's state is read before its pending count is taken, NOSYNC regions are never marked,
// a failed leg's bios are held.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "tests/sim/data_checker.h"
#include "tests/sim/mirror_model.h"
#include "tests/sim/mirror_model_async.h"

namespace clogd::sim {

namespace {

template <typename T>
std::vector<T> Take(std::vector<T>& v) {
  std::vector<T> out = std::move(v);
  v.clear();
  return out;
}

}  // namespace

// wakeup_mirrord: queue_work on kmirrord; one more pass if one is running.
void MirrorModel::Wake() {
  if (crashed_ || (state_ != MirrorState::kRunning && state_ != MirrorState::kSuspending)) return;
  if (pass_running_) {
    rerun_ = true;
    return;
  }
  if (pass_scheduled_) return;
  pass_scheduled_ = true;
  After(0, [this] {
    pass_scheduled_ = false;
    RunPass();
  });
}

// delayed_wake: one 200 ms timer at a time.
void MirrorModel::DelayedWake() {
  if (timer_pending_) return;
  timer_pending_ = true;
  After(kRequeueDelayUs, [this] {
    timer_pending_ = false;
    Wake();
  });
}

// queue_bio: wakes kmirrord only when the list was empty (requeued bios sitting in it make
// new ones wait for the timer).
void MirrorModel::QueueBio(std::vector<BioId>& list, BioId id) {
  const bool was_empty = list.empty();
  list.push_back(id);
  if (was_empty) Wake();
}

void MirrorModel::RunPass() {
  if (state_ != MirrorState::kRunning && state_ != MirrorState::kSuspending) return;
  pass_running_ = true;
  ++stats_.passes;
  pass_reads_ = Take(reads_);
  pass_writes_ = Take(writes_);
  pass_failures_ = Take(failures_);
  UpdateStates([this] {
    DoRecovery(
        [this] { DoReads([this] { DoWrites([this] { DoFailures([this] { EndPass(); }); }); }); });
  });
}

void MirrorModel::EndPass() {
  pass_running_ = false;
  if (rerun_) {
    rerun_ = false;
    Wake();
  }
  AdvanceSuspend();
}

// dm_rh_update_states: recovered regions get SET_REGION_SYNC and their delayed bios back,
// idle regions are cleared; all leave the hash; then one log flush.
void MirrorModel::UpdateStates(Next next) {
  auto recovered = std::make_shared<std::vector<uint64_t>>(Take(recovered_));
  auto failed = std::make_shared<std::vector<uint64_t>>(Take(failed_recovered_));
  const std::vector<uint64_t> clean = Take(clean_regions_);
  auto delayed = std::make_shared<std::map<uint64_t, std::vector<BioId>>>();
  const std::vector<uint64_t>* lists[] = {recovered.get(), failed.get(), &clean};
  for (const std::vector<uint64_t>* list : lists) {
    for (uint64_t region : *list) {
      auto it = hash_.find(region);
      if (it == hash_.end()) continue;
      (*delayed)[region] = std::move(it->second.delayed);
      hash_.erase(it);
    }
  }
  AsyncFor(
      recovered->size(),
      [this, recovered, delayed](size_t i, Next cont) {
        const uint64_t region = (*recovered)[i];
        clear_list_.push_back(region);
        CompleteResyncWork(region, true, std::move((*delayed)[region]), std::move(cont));
      },
      [this, failed, delayed, clean, next = std::move(next)] {
        AsyncFor(
            failed->size(),
            [this, failed, delayed](size_t i, Next cont) {
              const uint64_t region = (*failed)[i];
              CompleteResyncWork(region, !config_.handle_errors, std::move((*delayed)[region]),
                                 std::move(cont));
            },
            [this, clean, next] {
              for (uint64_t region : clean) clear_list_.push_back(region);
              LogFlush([next](int32_t) { next(); });
            });
      });
}

void MirrorModel::CompleteResyncWork(uint64_t region, bool success, std::vector<BioId> delayed,
                                     Next next) {
  SetRegionSync(region, success, [this, delayed = std::move(delayed), next = std::move(next)] {
    for (BioId id : delayed) QueueBio(writes_, id);
    --recovery_in_flight_;
    ++recovery_slots_;
    next();
  });
}

// dm_rh_get_state: the cached state, else the log's IN_SYNC (not cached).
void MirrorModel::GetState(uint64_t region, std::function<void(RegionState)> done) {
  auto it = hash_.find(region);
  if (it != hash_.end()) {
    done(it->second.state);
    return;
  }
  InSync(region, [done = std::move(done)](bool in_sync) {
    done(in_sync ? RegionState::kClean : RegionState::kNosync);
  });
}

// __rh_find: a miss allocates the region, asking IN_SYNC again for its state.
void MirrorModel::FindRegion(uint64_t region, std::function<void(Region&)> done) {
  auto it = hash_.find(region);
  if (it != hash_.end()) {
    done(it->second);
    return;
  }
  InSync(region, [this, region, done = std::move(done)](bool in_sync) {
    auto [found, inserted] = hash_.try_emplace(region);
    if (inserted) found->second.state = in_sync ? RegionState::kClean : RegionState::kNosync;
    done(found->second);
  });
}

void MirrorModel::TakeOffList(uint64_t region, Region& reg) {
  std::vector<uint64_t>* list = nullptr;
  switch (reg.list) {
    case RegionList::kNone:
      return;
    case RegionList::kClean:
      list = &clean_regions_;
      break;
    case RegionList::kQuiesced:
      list = &quiesced_;
      break;
    case RegionList::kRecovered:
      list = &recovered_;
      break;
    case RegionList::kFailedRecovered:
      list = &failed_recovered_;
      break;
  }
  list->erase(std::remove(list->begin(), list->end(), region), list->end());
  reg.list = RegionList::kNone;
}

// rh_inc: pending + 1; a CLEAN region becomes DIRTY and queues a mark.
void MirrorModel::RhInc(BioId id, Next next) {
  const uint64_t region = legs_.RegionOf(bios_.at(id).block);
  FindRegion(region, [this, id, region, next = std::move(next)](Region& reg) {
    ++reg.pending;
    bios_.at(id).counted = true;
    if (reg.state == RegionState::kClean) {
      reg.state = RegionState::kDirty;
      TakeOffList(region, reg);
      mark_list_.push_back(region);
    }
    next();
  });
}

// dm_rh_dec: the last write out moves a RECOVERING region to quiesced, a DIRTY one to clean
// (to be cleared); NOSYNC regions stay as they are.
void MirrorModel::RhDec(uint64_t region) {
  auto it = hash_.find(region);
  if (it == hash_.end()) return;
  Region& reg = it->second;
  if (--reg.pending > 0) return;
  if (reg.state == RegionState::kRecovering) {
    reg.list = RegionList::kQuiesced;
    quiesced_.push_back(region);
  } else if (reg.state == RegionState::kDirty) {
    reg.state = RegionState::kClean;
    reg.list = RegionList::kClean;
    clean_regions_.push_back(region);
  }
  Wake();
}

// do_reads: in-sync regions read any leg without errors, others the default leg.
void MirrorModel::DoReads(Next next) {
  auto batch = std::make_shared<std::vector<BioId>>(Take(pass_reads_));
  AsyncFor(
      batch->size(),
      [this, batch](size_t i, Next cont) {
        const BioId id = (*batch)[i];
        const uint64_t region = legs_.RegionOf(bios_.at(id).block);
        GetState(region, [this, id, cont = std::move(cont)](RegionState state) {
          int leg = -1;
          if (state == RegionState::kClean || state == RegionState::kDirty) {
            leg = ChooseReadLeg();
          } else if (leg_errors_[default_] == 0) {
            leg = table_[default_];
          }
          if (leg < 0) {
            EndBio(id, IoError("no leg to read from"));
          } else {
            ReadFromLeg(id, leg);
          }
          cont();
        });
      },
      std::move(next));
}

int MirrorModel::ChooseReadLeg() {
  std::vector<int> candidates;
  for (size_t i = 0; i < table_.size(); ++i) {
    if (leg_errors_[i] == 0) candidates.push_back(table_[i]);
  }
  return candidates.empty() ? -1 : rng_.Pick(candidates);
}

void MirrorModel::ReadFromLeg(BioId id, int leg) {
  const Bio& bio = bios_.at(id);
  legs_.Read(config_.node, leg, bio.block, Guard([this, id, leg](Status status, uint64_t value) {
               Bio& b = bios_.at(id);
               if (status.ok()) {
                 if (checker_ != nullptr) {
                   (void)checker_->OnReadDone(config_.node, b.block, leg, b.read_floor, value);
                 }
                 EndBio(id, Status::Ok(), value);
                 return;
               }
               FailMirror(leg, kReadError);  // read_callback: try another leg if one is left
               if (AnyValidLeg()) {
                 QueueBio(reads_, id);
               } else {
                 EndBio(id, status);
               }
             }));
}

// do_writes.
void MirrorModel::DoWrites(Next next) {
  if (pass_writes_.empty()) {
    next();
    return;
  }
  struct Lists {
    std::vector<BioId> batch, sync, nosync, recover, requeue;
  };
  auto lists = std::make_shared<Lists>();
  lists->batch = Take(pass_writes_);
  AsyncFor(
      lists->batch.size(),
      [this, lists](size_t i, Next cont) {
        const BioId id = lists->batch[i];
        const uint64_t region = legs_.RegionOf(bios_.at(id).block);
        IsRemoteRecovering(region, [this, id, region, lists, cont](bool recovering) {
          if (recovering) {
            lists->requeue.push_back(id);
            cont();
            return;
          }
          GetState(region, [id, lists, cont](RegionState state) {
            switch (state) {
              case RegionState::kClean:
              case RegionState::kDirty:
                lists->sync.push_back(id);
                break;
              case RegionState::kNosync:
                lists->nosync.push_back(id);
                break;
              case RegionState::kRecovering:
                lists->recover.push_back(id);
                break;
            }
            cont();
          });
        });
      },
      [this, lists, next = std::move(next)] {
        if (!lists->requeue.empty()) {
          stats_.requeued_writes += lists->requeue.size();
          writes_.insert(writes_.end(), lists->requeue.begin(), lists->requeue.end());
          DelayedWake();
        }
        auto counted = std::make_shared<std::vector<BioId>>(lists->sync);
        counted->insert(counted->end(), lists->nosync.begin(), lists->nosync.end());
        AsyncFor(
            counted->size(), [this, counted](size_t i, Next cont) { RhInc((*counted)[i], cont); },
            [this, lists, next] {
              LogFlush([this, lists, next](int32_t error) {
                if (error != 0) log_failure_ = true;
                if (log_failure_ && config_.handle_errors) {
                  failures_.insert(failures_.end(), lists->sync.begin(), lists->sync.end());
                  if (!lists->sync.empty()) Wake();
                } else {
                  for (BioId id : lists->sync) DoWrite(id);
                }
                AsyncFor(
                    lists->recover.size(),
                    [this, lists](size_t i, Next cont) {  // dm_rh_delay
                      const BioId id = lists->recover[i];
                      FindRegion(legs_.RegionOf(bios_.at(id).block), [id, cont](Region& reg) {
                        reg.delayed.push_back(id);
                        cont();
                      });
                    },
                    [this, lists, next] {
                      for (BioId id : lists->nosync) {
                        if (leg_failure_ && config_.handle_errors) {
                          failures_.push_back(id);
                          Wake();
                        } else {
                          WriteDefaultLeg(id);
                        }
                      }
                      next();
                    });
              });
            });
      });
}

// do_write: every leg of the table, failed ones included (they answer with errors).
void MirrorModel::DoWrite(BioId id) {
  Bio& bio = bios_.at(id);
  bio.legs_left = table_.size();
  for (int leg : table_) {
    legs_.Write(config_.node, leg, bio.block, bio.value,
                Guard([this, id, leg](Status status) { OnLegWriteDone(id, leg, status); }));
  }
}

// NOSYNC: the default leg alone; its error goes straight to the caller (no hold).
void MirrorModel::WriteDefaultLeg(BioId id) {
  const Bio& bio = bios_.at(id);
  legs_.Write(config_.node, table_[default_], bio.block, bio.value,
              Guard([this, id](Status status) { EndBio(id, status); }));
}

// write_callback.
void MirrorModel::OnLegWriteDone(BioId id, int leg, Status status) {
  Bio& bio = bios_.at(id);
  if (!status.ok()) bio.failed_legs.push_back(leg);
  if (--bio.legs_left > 0) return;
  if (bio.failed_legs.empty()) {
    EndBio(id, Status::Ok());
    return;
  }
  for (int failed : bio.failed_legs) FailMirror(failed, kWriteError);
  QueueBio(failures_, id);
}

// do_failures: tell the log the region is out of sync (dm_rh_mark_nosync), then hold the
// bio (handle_errors) or complete it.
void MirrorModel::DoFailures(Next next) {
  auto batch = std::make_shared<std::vector<BioId>>(Take(pass_failures_));
  AsyncFor(
      batch->size(),
      [this, batch](size_t i, Next cont) {
        const BioId id = (*batch)[i];
        const uint64_t region = legs_.RegionOf(bios_.at(id).block);
        auto finish = [this, id, cont] {
          if (!AnyValidLeg()) {
            EndBio(id, IoError("all legs of the mirror have failed"));
          } else if (config_.handle_errors) {
            HoldBio(id);
          } else {
            EndBio(id, Status::Ok());
          }
          cont();
        };
        if (log_failure_) {
          finish();
          return;
        }
        ms_in_sync_ = false;
        SetRegionSync(region, false, [this, region, finish] {
          FindRegion(region, [this, region, finish](Region& reg) {
            const bool recovering = reg.state == RegionState::kRecovering;
            reg.state = RegionState::kNosync;
            if (!recovering) {
              finish();
              return;
            }
            CompleteResyncWork(region, false, Take(reg.delayed), finish);
          });
        });
      },
      std::move(next));
}

// hold_bio: held until a suspend, which requeues it (noflush) or fails it.
void MirrorModel::HoldBio(BioId id) {
  if (!suspended_flag_) {
    holds_.push_back(id);
    return;
  }
  if (suspend_ && !suspend_->stop) {
    RequeueBio(id);
  } else {
    EndBio(id, IoError("held write failed by a suspend with flush"));
  }
}

// BLK_STS_DM_REQUEUE: the bio leaves the target (its pending count dropped) and dm core
// re-issues it after the next resume.
void MirrorModel::RequeueBio(BioId id) {
  Bio& bio = bios_.at(id);
  if (bio.counted) RhDec(legs_.RegionOf(bio.block));
  bio.counted = false;
  bio.failed_legs.clear();
  if (bio.in_target) --target_bios_;
  bio.in_target = false;
  deferred_.push_back(id);
  Trace("requeue block=" + std::to_string(bio.block));
}

void MirrorModel::EndBio(BioId id, Status status, uint64_t value) {
  auto it = bios_.find(id);
  if (it == bios_.end()) return;
  Bio bio = std::move(it->second);
  bios_.erase(it);
  if (bio.in_target) --target_bios_;
  if (bio.write) {
    if (bio.counted) RhDec(legs_.RegionOf(bio.block));
    if (status.ok()) {
      ++stats_.writes_acked;
      if (checker_ != nullptr) checker_->OnWriteAcked(config_.node, bio.block, bio.value);
    } else {
      ++stats_.writes_failed;
    }
    Trace("write done block=" + std::to_string(bio.block) + " value=" + std::to_string(bio.value) +
          " ok=" + (status.ok() ? "1" : "0"));
    if (bio.write_done) bio.write_done(status);
  } else {
    ++stats_.reads_done;
    Trace("read done block=" + std::to_string(bio.block) + " value=" + std::to_string(value));
    if (bio.read_done) bio.read_done(status, value);
  }
  AdvanceSuspend();
}

// fail_mirror: count the error, switch the default leg away from a failed one when the
// mirror is in sync, raise a dm event (once per leg and error type, with handle_errors).
void MirrorModel::FailMirror(int leg, ErrorType type) {
  auto pos = std::find(table_.begin(), table_.end(), leg);
  if (pos == table_.end()) return;
  const size_t index = static_cast<size_t>(pos - table_.begin());
  leg_failure_ = true;
  ++leg_errors_[index];
  if ((leg_error_types_[index] & type) != 0) return;
  leg_error_types_[index] = static_cast<uint8_t>(leg_error_types_[index] | type);
  if (!config_.handle_errors) return;
  if (index == default_ && ms_in_sync_) {
    for (size_t i = 0; i < table_.size(); ++i) {
      if (leg_errors_[i] == 0) {
        default_ = i;
        break;
      }
    }
  }
  const char* what = type == kWriteError ? "write" : type == kSyncError ? "sync" : "read";
  RaiseEvent("leg " + std::to_string(leg) + " failed (" + what + " error)");
}

bool MirrorModel::AnyValidLeg() const {
  return std::any_of(leg_errors_.begin(), leg_errors_.end(), [](uint32_t n) { return n == 0; });
}

}  // namespace clogd::sim
