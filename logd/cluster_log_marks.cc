// This node's own marks as the cluster sees them: a clear is lazy (one lost only costs an
// extra resync) and lingers a while so that a hot region is marked again without a message
// (clustered-core) or a slot write (clustered-disk) (young_clears_, cleared_in_slot_,
// LingerTick); PublishOwnMarks sends what is
// pending (the slot of a clustered-disk log, MARKS of a clustered-core one) and releases
// busy regions this node no longer holds; marks a restarted daemon inherited and its kernel
// did not mark again are dropped.
#include "logd/cluster_log.h"

namespace clogd::logd {

bool ClusterLog::ForgetOwnMark(RegionNo r) {
  if (own_dirty_.erase(r) == 0) return false;
  delta_marks_.erase(r);
  delta_clears_.insert(r);
  if (!options_.schedule) {
    slot_dirty_ = true;
    return true;
  }
  young_clears_.insert(r);
  if (ReplicatesMarks()) {
    slot_dirty_ = true;
  } else {
    // The slot may lack r only if a write is due anyway (slot_dirty_): r goes with it.
    cleared_in_slot_.insert(r);
  }
  ScheduleOnce(linger_scheduled_, kLingerUs, [this] { LingerTick(); });
  return true;
}

Status ClusterLog::WriteOwnSlot(uint32_t slot) {
  std::erase_if(cleared_in_slot_, [&](RegionNo r) { return !young_clears_.contains(r); });
  region::SlotRecord rec;
  rec.node_id = me_;
  rec.regions.assign(own_dirty_.begin(), own_dirty_.end());
  rec.regions.insert(rec.regions.end(), cleared_in_slot_.begin(), cleared_in_slot_.end());
  std::sort(rec.regions.begin(), rec.regions.end());
  Status s = log_dev_->WriteSlot(slot, rec);
  if (s.ok()) slot_dirty_ = false;
  return s;
}

std::vector<RegionNo> ClusterLog::ClearsOlderThanATick() const {
  std::vector<RegionNo> old;
  for (RegionNo r : delta_clears_) {
    if (!young_clears_.contains(r)) old.push_back(r);
  }
  return old;
}

void ClusterLog::LingerTick() {
  // The clears older than a tick go now, alone if no FLUSH took them; the younger ones
  // wait for the next tick.
  if (ready_ && !ReplicatesMarks()) {
    const uint32_t slot = state_.SlotOf(me_);
    const bool old = std::any_of(cleared_in_slot_.begin(), cleared_in_slot_.end(),
                                 [&](RegionNo r) { return !young_clears_.contains(r); });
    if (old && slot != kNoSlot) {
      if (Status s = WriteOwnSlot(slot); !s.ok()) {
        FailDevice(s);
        PublishOwnMarks();
      }
    }
  }
  if (ready_ && ReplicatesMarks()) {
    const std::vector<RegionNo> old = ClearsOlderThanATick();
    if (!old.empty()) {
      Send(MarksMsg{next_id_++, {}, old});
      for (RegionNo r : old) delta_clears_.erase(r);
      DrainOutbox();
    }
  }
  young_clears_.clear();
  if (ReplicatesMarks() ? !delta_clears_.empty() : !cleared_in_slot_.empty()) {
    ScheduleOnce(linger_scheduled_, kLingerUs, [this] { LingerTick(); });
  }
}

void ClusterLog::DropAdoptedMarkOf(RegionNo r) {
  if (adopted_marks_.erase(r) > 0 && ForgetOwnMark(r)) PublishOwnMarks();
}

void ClusterLog::DropStaleAdoptedMarks() {
  for (RegionNo r : adopted_marks_) ForgetOwnMark(r);
  adopted_marks_.clear();
  PublishOwnMarks();
}

void ClusterLog::PublishOwnMarks() {
  if (!ready_) return;
  if (!ReplicatesMarks()) {
    if (slot_dirty_) {
      const uint32_t slot = state_.SlotOf(me_);
      if (slot != kNoSlot) {
        if (Status s = WriteOwnSlot(slot); !s.ok()) {
          FailDevice(s);
          PublishOwnMarks();  // replicated from now on: its clears and IDLEs go out so
          return;
        }
      }
    }
    delta_marks_.clear();
    delta_clears_.clear();
  } else if (!delta_marks_.empty() || !delta_clears_.empty()) {
    Send(MarksMsg{next_id_++,
                  {delta_marks_.begin(), delta_marks_.end()},
                  {delta_clears_.begin(), delta_clears_.end()}});
    delta_marks_.clear();
    delta_clears_.clear();
    young_clears_.clear();
  }
  // Busy regions this node no longer holds are released in either mode: a node whose log
  // device failed publishes its clears as MARKS, which release only what it clears from
  // now on, not what the cluster still holds busy from before (a clear lost with a killed
  // daemon: clog-sim --seed 1298 --nodes 5).
  std::vector<RegionNo> idle;
  if (auto mine = state_.busy.find(me_); mine != state_.busy.end()) {
    for (RegionNo r : mine->second) {
      if (!own_dirty_.contains(r)) idle.push_back(r);
    }
  }
  if (!idle.empty()) Send(IdleMsg{idle});
}

}  // namespace clogd::logd
