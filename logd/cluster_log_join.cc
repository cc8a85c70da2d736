// The announce round after each membership change (who holds the state, who serves, who
// needs a checkpoint), the state transfer to a joiner, and a member's becoming ready: what a
// restarted daemon adopts from the cluster's record of it.
#include <algorithm>

#include "logd/cluster_log.h"

namespace clogd::logd {

namespace {
constexpr size_t kCheckpointChunk = 512 * 1024;  // well under CPG's 1 MiB message limit
}

void ClusterLog::OnAnnounce(NodeId from, const AnnounceMsg& m) {
  if (m.view_id != round_.view_id || round_.decided) return;  // an earlier view's round
  round_.announces[from] = m;
  for (NodeId n : round_.members) {
    if (!round_.announces.contains(n)) return;
  }
  round_.decided = true;
  Decide();
}

void ClusterLog::Decide() {
  if (!Quorate()) {
    Log(Severity::kWarning, "view with no quorum (" + QuorumCount() + "): not serving");
    return;
  }
  // Only the state with the newest quorate history is trusted; a member holding an older
  // one (it was cut off while the others went on) takes the checkpoint like a joiner.
  uint64_t newest = 0;
  for (NodeId n : round_.members) {
    if (round_.announces[n].ready) newest = std::max(newest, round_.announces[n].quorate_view);
  }
  auto trusted = [&](NodeId n) {
    const AnnounceMsg& a = round_.announces[n];
    return a.ready && a.quorate_view == newest;
  };
  if (ready_ && !trusted(me_)) {
    Log(Severity::kWarning, "this node's state is older than the cluster's: taking a checkpoint");
    if (!retained_) RetainBase();
    ready_ = false;
    chunks_.clear();
    buffered_.clear();
  }
  if (ready_ && unconfirmed_) {  // trusted: its state is the newest, and quorate again
    unconfirmed_ = false;
    last_quorate_view_ = round_.view_id;
    // A fence grace whose timer ran out while this node did not serve starts again.
    ReportWhereAwaited();
  }
  NodeId first_ready = 0;
  for (NodeId n : round_.members) {
    if (trusted(n)) {
      first_ready = n;
      break;
    }
  }
  if (first_ready == 0) {
    // Nobody holds the state: the first member loads it and serves.
    if (round_.members.front() == me_) Bootstrap();
    return;
  }
  if (!ready_) return;  // wait for the checkpoint
  if (state_.server == 0) state_.server = first_ready;
  std::vector<NodeId> joiners;
  for (NodeId n : round_.members) {
    if (trusted(n)) continue;
    joiners.push_back(n);
    // A joiner may come back with a running kernel that still holds regions marked (its
    // corosync restarted, or it was cut off): recovery waits for its report of them.
    state_.awaiting_reports[n].insert(n);
    if (disk() && state_.SlotOf(n) == kNoSlot) {
      uint32_t slot = state_.FreeSlot(log_dev_->layout().slot_count);
      if (slot != kNoSlot) state_.slot_owner[slot] = n;
    }
  }
  if (state_.server == me_) {
    if (!joiners.empty()) SendStateToJoiners(joiners);
    ServerDuties();
  }
}

void ClusterLog::Bootstrap() {
  const uint64_t n = args_.RegionCount();
  state_ = ClusterState{};
  state_.log = region::LogState(n, args_.region_size);
  std::vector<NodeId> marked_elsewhere;  // slots with marks of nodes outside the group
  if (disk()) {
    // Formatted or imported here if no node did so before: the cluster chose this node.
    Status s = log_dev_->Initialize();
    // An unreadable device: nothing on it can be trusted, every region is out of sync.
    region::RegionBitmap in_sync = s.ok() ? log_dev_->loaded_in_sync() : region::RegionBitmap(n);
    bool overflow = false;
    for (const auto& slot : log_dev_->loaded_slots()) {
      if (slot.node_id == 0) continue;
      const bool member = std::find(round_.members.begin(), round_.members.end(), slot.node_id) !=
                          round_.members.end();
      if (!member && (slot.overflow || !slot.regions.empty())) {
        marked_elsewhere.push_back(slot.node_id);
      }
      overflow |= slot.overflow;
      for (RegionNo r : slot.regions) {
        if (r < n) in_sync.Clear(r);
      }
    }
    if (overflow) in_sync.ClearAll();
    state_.log.ReplaceInSync(std::move(in_sync));
    state_.generation = log_dev_->superblock().generation + 1;
    if (s.ok()) s = log_dev_->MarkActive(state_.generation);
    if (s.ok()) s = log_dev_->WriteInSync(state_.log.in_sync());
    const auto& slots = log_dev_->loaded_slots();
    for (uint32_t i = 0; s.ok() && i < slots.size(); ++i) {
      if (slots[i].node_id == 0) continue;
      region::SlotRecord freed;
      s = log_dev_->WriteSlot(i, freed);
    }
    cleared_in_slot_.clear();  // this node's slot is rewritten from own_dirty_ below
    if (!s.ok()) FailDevice(s);
    uint32_t next = 0;
    for (NodeId member : round_.members) state_.slot_owner[next++] = member;
  } else {
    state_.log.ReplaceInSync(region::RegionBitmap(n, args_.sync == SyncMode::kNoSync));
    state_.generation = 1;
  }
  state_.members = round_.members;
  state_.server = me_;
  state_.history = NewHistoryId();
  // Every member's kernel may be running with regions marked (the whole cluster lost
  // corosync, say): recovery waits until each has reported them.
  for (NodeId member : round_.members) state_.awaiting_reports[member].insert(member);
  // A node outside the group with marks may be one cut off from this ring, its kernel still
  // writing them until its daemon sees the ring split and freezes it: as after a departure,
  // nobody copies until the fence grace has passed. (A node that left cleanly has none.)
  for (NodeId node : marked_elsewhere) AwaitFenceGrace(node, /*at_bootstrap=*/true);
  Log(Severity::kInfo, "bootstrapped the log (" + std::to_string(state_.log.SyncCount()) + "/" +
                           std::to_string(n) + " in sync), serving");
  BecomeReady();
  if (round_.members.size() > 1) SendCheckpoint();
  ReportWhereAwaited();
}

void ClusterLog::SendCheckpoint(NodeId for_node) {
  std::vector<uint8_t> bytes = state_.EncodeCheckpoint();
  const auto count =
      static_cast<uint32_t>((bytes.size() + kCheckpointChunk - 1) / kCheckpointChunk);
  for (uint32_t i = 0; i < std::max<uint32_t>(count, 1); ++i) {
    const size_t at = size_t{i} * kCheckpointChunk;
    const size_t len = std::min(kCheckpointChunk, bytes.size() - std::min(at, bytes.size()));
    CheckpointMsg c{round_.view_id, for_node, i, std::max<uint32_t>(count, 1),
                    std::vector<uint8_t>(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                         bytes.begin() + static_cast<std::ptrdiff_t>(at + len))};
    Send(c);
  }
  ++stats_.checkpoints_sent;
}

void ClusterLog::OnCheckpoint(const CheckpointMsg& m) {
  if (m.view_id != round_.view_id) return;  // made for an earlier view (H5)
  if (!round_.decided) return;
  // After asking for its own checkpoint, a joiner takes only that one: an earlier one
  // describes a point before the messages it has buffered since.
  if (m.for_node != 0 && m.for_node != me_) return;
  if (asked_for_checkpoint_ && m.for_node != me_) return;
  chunks_[m.chunk_index] = m.bytes;
  if (chunks_.size() < m.chunk_count) return;
  std::vector<uint8_t> bytes;
  for (auto& [index, chunk] : chunks_) bytes.insert(bytes.end(), chunk.begin(), chunk.end());
  chunks_.clear();
  auto decoded = ClusterState::DecodeCheckpoint(bytes, args_.RegionCount(), args_.region_size);
  if (!decoded.ok()) {
    Log(Severity::kError, "refused checkpoint: " + decoded.status().ToString());
    return;
  }
  ++stats_.checkpoints_taken;
  TakeState(std::move(decoded).value());
}

void ClusterLog::TakeState(ClusterState state) {
  state_ = std::move(state);
  // What this node reported belonged to the state it held before; the cluster's may await
  // a report of it again under the same key (a member cut off and healed is a joiner,
  // awaited for its own marks as at its first join: clog-sim --scenario partition).
  reported_.clear();
  BecomeReady();
  std::vector<ClusterMsg> replay = std::move(buffered_);
  buffered_.clear();
  for (const ClusterMsg& msg : replay) Apply(msg);
  ReportWhereAwaited();
}

void ClusterLog::ReportWhereAwaited() {
  std::vector<NodeId> due;
  for (const auto& [failed, nodes] : state_.awaiting_reports) {
    if (nodes.contains(me_) && !reported_.contains(failed)) due.push_back(failed);
  }
  for (NodeId failed : due) {
    // A fence grace starts over here: the timer of a predecessor daemon died with it.
    if ((failed & kFailedWriteReports) == 0 && (failed & kFenceGrace) != 0) {
      StartFenceGrace(failed);
    } else {
      Report(failed);
    }
  }
}

void ClusterLog::BecomeReady() {
  ready_ = true;
  unconfirmed_ = false;
  asked_for_checkpoint_ = false;
  retained_.reset();
  sync_changes_.clear();
  sync_changes_base_ = state_.sync_version;
  last_quorate_view_ = round_.view_id;  // the state is the one of this (quorate) view
  // The kernel may have stopped asking for resync work (its in-sync hint): wake it if there
  // is any to do.
  if (state_.log.SyncCount() < state_.log.nr_regions()) kernel_starved_ = true;
  state_.absent.erase(me_);
  // A restarted daemon adopts what its kernel still holds marked: the replicated dirty set
  // (core) or its own retained slot (disk).
  for (RegionNo r : state_.log.DirtyOf(me_)) own_dirty_.insert(r);
  // So are the out-of-sync regions the cluster holds busy for it: when its slot cannot be
  // read they are all it knows of (clog-sim --seed 1298 --nodes 5).
  if (auto busy = state_.busy.find(me_); busy != state_.busy.end()) {
    own_dirty_.insert(busy->second.begin(), busy->second.end());
  }
  const bool inherited = !state_.log.DirtyOf(me_).empty() || state_.busy.contains(me_);
  if (ReplicatesMarks()) {
    // Marks this node kept through a lost transport are no longer in the replicated set
    // (they were merged when it left): publish them again so they outlive this node.
    for (RegionNo r : own_dirty_) {
      if (!state_.log.IsMarkedBy(me_, r)) delta_marks_.insert(r);
    }
  }
  if (!ReplicatesMarks()) {
    Status s = log_dev_->Reload();  // another node may own what we last read
    const uint32_t slot = state_.SlotOf(me_);
    if (s.ok() && slot != kNoSlot) {
      auto mine = log_dev_->ReadSlot(slot);
      if (mine.ok() && mine->node_id == me_) {
        for (RegionNo r : mine->regions) {
          if (!cleared_in_slot_.contains(r)) own_dirty_.insert(r);  // not a lingering clear
        }
      }
    }
    if (s.ok() && slot == kNoSlot) s = NoSpace("no free slot on the log device for this node");
    if (s.ok()) {
      region::SlotRecord rec;
      rec.node_id = me_;
      rec.regions.assign(own_dirty_.begin(), own_dirty_.end());
      // A stale record of ours from before a restart is overwritten, not merged: it was
      // merged by whoever bootstrapped or served the departure.
      region::SlotRecord freed;
      auto current = log_dev_->ReadSlot(slot);
      if (current.ok() && current->node_id != 0 && current->node_id != me_) {
        s = log_dev_->WriteSlot(slot, freed);
      }
      if (s.ok()) s = log_dev_->WriteSlot(slot, rec);
      cleared_in_slot_.clear();  // the slot holds own_dirty_ alone now
    }
    if (!s.ok()) {
      FailDevice(s);
      PublishOwnMarks();
    } else if (const region::DirtySet& replicated = state_.log.DirtyOf(me_); !replicated.empty()) {
      // A predecessor replicated its marks (its device had failed): they are in the slot
      // now, durably, so the replicated copies go.
      Send(MarksMsg{next_id_++, {}, {replicated.begin(), replicated.end()}});
    }
  } else {
    PublishOwnMarks();
  }
  if (options_.rearm_kernel) {
    // This node's kernel may be running with views older than this state (the daemon
    // restarted under it): until a suspend has quiesced it, it sees every region in sync.
    if (state_.log.SyncCount() < state_.log.nr_regions()) {
      hide_all_out_of_sync_ = true;
      Rearm([this] { hide_all_out_of_sync_ = false; });
    }
    if (inherited || !own_dirty_.empty()) {
      adopted_marks_ = own_dirty_;
      Rearm([this] { DropStaleAdoptedMarks(); });
    }
    // Copies the cluster records as this node's, from before this state: a predecessor
    // daemon may have won the claim and died before its kernel got the answer, and no
    // node could copy the region again (clog-sim --seed 4690 --nodes 5). A suspend waits
    // for the kernel's copies in flight and their SET_REGION_SYNC, so once it is through,
    // whatever this node still owns is copied by nobody: give it back.
    std::vector<RegionNo> inherited_copies;
    for (const auto& [r, owner] : state_.recovery.owners()) {
      if (owner == me_) inherited_copies.push_back(r);
    }
    if (!inherited_copies.empty()) {
      Rearm([this, inherited_copies] { ReleaseInheritedCopies(inherited_copies); });
    }
  }
  CheckLegs();  // a failed leg seen meanwhile, or a removal this node missed
}

void ClusterLog::ReleaseInheritedCopies(const std::vector<RegionNo>& regions) {
  for (RegionNo r : regions) {
    if (state_.recovery.Owner(r) != me_) continue;
    // A SET_REGION_SYNC of ours in flight settles it: its DONE is on the way.
    const bool settling = std::any_of(pending_.begin(), pending_.end(), [r](const Pending& p) {
      return p.request.type == DM_ULOG_SET_REGION_SYNC && p.phase == 1 && p.region == r;
    });
    if (settling) continue;
    Log(Severity::kInfo, "region " + std::to_string(r) +
                             ": its copy was claimed by this node's previous clogd and is not "
                             "running; released for any node to copy");
    // From the owner, an out-of-sync DONE only releases the claim.
    Send(DoneMsg{r, false});
  }
}

}  // namespace clogd::logd
