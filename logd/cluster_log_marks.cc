// This node's own marks as the cluster sees them: a clear is lazy (one lost only costs an
// extra resync) and, in a clustered-core log, lingers a while so that a hot region is marked
// again without a message (young_clears_, LingerTick); PublishOwnMarks sends what is
// pending (the slot of a clustered-disk log, MARKS of a clustered-core one) and releases
// busy regions this node no longer holds; marks a restarted daemon inherited and its kernel
// did not mark again are dropped.
#include "logd/cluster_log.h"

namespace clogd::logd {

bool ClusterLog::ForgetOwnMark(RegionNo r) {
  if (own_dirty_.erase(r) == 0) return false;
  slot_dirty_ = true;
  delta_marks_.erase(r);
  delta_clears_.insert(r);
  if (ReplicatesMarks() && options_.schedule) {
    young_clears_.insert(r);
    ScheduleOnce(linger_scheduled_, kLingerUs, [this] { LingerTick(); });
  }
  return true;
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
  if (ready_ && ReplicatesMarks()) {
    const std::vector<RegionNo> old = ClearsOlderThanATick();
    if (!old.empty()) {
      Send(MarksMsg{next_id_++, {}, old});
      for (RegionNo r : old) delta_clears_.erase(r);
      DrainOutbox();
    }
  }
  young_clears_.clear();
  if (!delta_clears_.empty() && ReplicatesMarks()) {
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
      region::SlotRecord rec;
      rec.node_id = me_;
      rec.regions.assign(own_dirty_.begin(), own_dirty_.end());
      const uint32_t slot = state_.SlotOf(me_);
      if (slot != kNoSlot) {
        if (Status s = log_dev_->WriteSlot(slot, rec); !s.ok()) {
          FailDevice(s);
          PublishOwnMarks();  // replicated from now on: its clears and IDLEs go out so
          return;
        }
        slot_dirty_ = false;
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
