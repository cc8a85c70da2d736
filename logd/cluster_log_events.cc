// The cluster-facing half of the state machine: agreed deliveries, membership changes
// (the announce round that follows is in cluster_log_join.cc), failure merges and the log
// server's durable writes.
#include <algorithm>
#include <utility>

#include "logd/cluster_log.h"
#include "region/region_ranges.h"

namespace clogd::logd {

void ClusterLog::OnDeliver(NodeId from, std::span<const uint8_t> message) {
  auto msg = DecodeClusterMsg(message);
  if (!msg.ok()) {
    ++stats_.messages_refused;
    Log(Severity::kWarning,
        "refused a message from node " + std::to_string(from) + ": " + msg.status().ToString());
    return;
  }
  if (msg->sender != from) {
    ++stats_.messages_refused;
    Log(Severity::kWarning, "refused a message from node " + std::to_string(from) +
                                " claiming to be from node " + std::to_string(msg->sender));
    return;
  }
  if (const auto* a = std::get_if<AnnounceMsg>(&msg->body)) {
    OnAnnounce(from, *a);
  } else if (const auto* c = std::get_if<CheckpointMsg>(&msg->body)) {
    if (!ready_) OnCheckpoint(*c);
  } else if (const auto* d = std::get_if<DeltaMsg>(&msg->body)) {
    if (!ready_) OnDelta(*d);
  } else if (const auto* need = std::get_if<NeedCheckpointMsg>(&msg->body)) {
    OnNeedCheckpoint(from, *need);
  } else if (ready_) {
    Apply(*msg);
  } else if (round_.decided) {
    buffered_.push_back(std::move(msg).value());  // after the snapshot point: replay later
  }
  Pump();
}

void ClusterLog::Apply(const ClusterMsg& msg) {
  const NodeId from = msg.sender;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, MarksMsg>) {
          for (RegionNo r : m.marks) state_.log.Mark(from, r);
          for (RegionNo r : m.clears) state_.log.Clear(from, r);
          // A cleared region is no longer busy for its sender (reported at a failure).
          if (auto it = state_.busy.find(from); it != state_.busy.end()) {
            for (RegionNo r : m.clears) it->second.erase(r);
            if (it->second.empty()) state_.busy.erase(it);
          }
          if (from == me_) delivered_ids_.insert(m.flush_id);
        } else if constexpr (std::is_same_v<T, OutOfSyncMsg>) {
          auto it = state_.awaiting_merge.find(m.slot);
          if (it != state_.awaiting_merge.end() && it->second == m.failed) {
            state_.awaiting_merge.erase(it);
            state_.awaiting_free[m.slot] = m.failed;
            MergeDeparted(m.failed, m.regions, m.overflow);
            ServerDuties();
          }
        } else if constexpr (std::is_same_v<T, ReportMsg>) {
          auto it = state_.awaiting_reports.find(m.failed);
          if (it != state_.awaiting_reports.end()) {
            it->second.erase(from);
            if (it->second.empty()) state_.awaiting_reports.erase(it);
          }
          for (RegionNo r : m.marked) {
            if (!state_.log.InSync(r)) state_.busy[from].insert(r);
          }
          if (from == me_) IdleClearedSince(m.marked);
        } else if constexpr (std::is_same_v<T, BusyMsg>) {
          for (RegionNo r : m.regions) state_.busy[from].insert(r);
          if (from == me_) {
            delivered_ids_.insert(m.flush_id);
            IdleClearedSince(m.regions);
          }
        } else if constexpr (std::is_same_v<T, IdleMsg>) {
          auto it = state_.busy.find(from);
          if (it != state_.busy.end()) {
            for (RegionNo r : m.regions) it->second.erase(r);
            if (it->second.empty()) state_.busy.erase(it);
          }
        } else if constexpr (std::is_same_v<T, ClaimMsg>) {
          // Same replicated state everywhere, so every member decides the same.
          const bool ok = m.region < state_.log.nr_regions() && ClaimableAnywhere(m.region);
          if (ok) state_.recovery.SetOwner(m.region, from);
          if (from == me_) claim_results_[m.region] = ok;
        } else if constexpr (std::is_same_v<T, DoneMsg>) {
          // From the owner: its copy finished. From anyone with in_sync=false: a write
          // to the region failed on some leg, so it is out of sync now.
          const bool owner = state_.recovery.Owner(m.region) == from;
          if (m.region < state_.log.nr_regions() && (owner || !m.in_sync)) {
            if (owner) state_.recovery.Release(m.region);
            if (state_.log.SetInSync(m.region, m.in_sync)) {
              NoteInSyncChange(m.region, m.in_sync);
              if (m.in_sync) {
                ++pending_to_sync_;
              } else {
                pending_out_of_sync_ = true;
                if (!owner) OutOfSyncByFailedWrite(m.region, from);
              }
              if (state_.server == me_) PersistInSync(false);
            }
          }
          if (from == me_) dones_delivered_.insert(m.region);
        } else if constexpr (std::is_same_v<T, DeviceFailedMsg>) {
          if (!state_.device_suspect) {
            Log(Severity::kWarning, "node " + std::to_string(from) +
                                        " cannot write the log device: the device's in-sync "
                                        "map is not trusted until a clean deactivation");
          }
          state_.device_suspect = true;
          if (state_.server == me_) {
            pending_out_of_sync_ = true;
            PersistInSync(true);
          }
        } else if constexpr (std::is_same_v<T, LegRemovalMsg>) {
          OnLegRemoval(from, m);
        } else if constexpr (std::is_same_v<T, LegVoteMsg>) {
          OnLegVote(from, m);
        } else if constexpr (std::is_same_v<T, LegReplaceMsg>) {
          OnLegReplace(from, m);
        } else if constexpr (std::is_same_v<T, AbsentMsg>) {
          if (state_.awaiting_absent.erase(m.node) > 0) {
            for (RegionNo r : m.regions) state_.busy[m.node].insert(r);
          }
        } else if constexpr (std::is_same_v<T, SlotFreedMsg>) {
          auto it = state_.awaiting_free.find(m.slot);
          if (it != state_.awaiting_free.end() && it->second == m.node) {
            state_.awaiting_free.erase(it);
          }
        }
      },
      msg.body);
}

void ClusterLog::IdleClearedSince(const std::vector<RegionNo>& regions) {
  // The kernel cleared some of these between the message's sending and its delivery: the
  // clear found them not busy yet, so nothing would release them (clog-sim --seed 4644).
  auto mine = state_.busy.find(me_);
  if (mine == state_.busy.end()) return;
  std::vector<RegionNo> idle;
  for (RegionNo r : regions) {
    if (mine->second.contains(r) && !own_dirty_.contains(r)) idle.push_back(r);
  }
  if (!idle.empty()) Send(IdleMsg{idle});
}

std::string ClusterLog::QuorumCount() const {
  const std::string of = " of " + std::to_string(options_.expected_nodes) + " nodes";
  if (round_.ring_nodes != 0) return "corosync ring of " + std::to_string(round_.ring_nodes) + of;
  return "group of " + std::to_string(round_.members.size()) + of;
}

void ClusterLog::OnMembership(const Membership& m) {
  if (std::find(m.joined.begin(), m.joined.end(), me_) != m.joined.end()) joined_ = true;
  if (!joined_) return;
  const bool next_quorate = QuorateWith(m.members.size(), m.ring_nodes);
  if (m.joined.empty() && m.left.empty() && next_quorate == Quorate()) {
    // The ring changed under the group (a node outside it came or went) and quorum with it
    // did not: nothing to do.
    round_.ring_nodes = m.ring_nodes;
    return;
  }
  view_id_ = m.view_id;
  // Losing quorum: what this node holds now is what the majority held when it went on
  // without us; it is the base of a delta when we are back.
  if (serving() && !next_quorate) RetainBase();
  const bool was_serving = serving();
  if (ready_ && leg_tx_) DecideLegTx(false, "the membership changed before every member voted");
  if (ready_) {
    ++state_.generation;
    state_.members = m.members;
    for (size_t i = 0; i < m.left.size(); ++i) {
      const NodeId gone = m.left[i];
      const bool process_down =
          i < m.left_reasons.size() && m.left_reasons[i] == Membership::LeaveReason::kProcessDown;
      if (process_down) {
        // The daemon died, the node did not: its kernel may still write its marked
        // regions and copy the one it owns. Keep all of it until the daemon is back.
        Log(Severity::kWarning, "node " + std::to_string(gone) +
                                    "'s clogd is gone, its node is not: its marks are kept "
                                    "until its clogd rejoins");
        state_.absent.insert(gone);
        if (disk() && state_.SlotOf(gone) != kNoSlot) state_.awaiting_absent.insert(gone);
        continue;
      }
      state_.absent.erase(gone);
      state_.awaiting_absent.erase(gone);
      state_.recovery.ReleaseNode(gone);
      state_.busy.erase(gone);
      for (auto it = state_.awaiting_reports.begin(); it != state_.awaiting_reports.end();) {
        it->second.erase(gone);
        it = it->second.empty() ? state_.awaiting_reports.erase(it) : std::next(it);
      }
      if (disk()) {
        const uint32_t slot = state_.SlotOf(gone);
        if (slot != kNoSlot) {
          state_.slot_owner.erase(slot);
          state_.awaiting_merge[slot] = gone;  // the server reads it
        }
      }
      // clustered-core, or a disk member whose device had failed: its replicated marks.
      const region::DirtySet dirty = state_.log.DirtyOf(gone);
      state_.log.SetDirty(gone, {});
      MergeDeparted(gone, {dirty.begin(), dirty.end()}, false);
      AwaitFenceGrace(gone);
    }
    if (std::find(m.members.begin(), m.members.end(), state_.server) == m.members.end()) {
      state_.server = 0;  // chosen when the announce round decides
    }
  } else {
    state_.members = m.members;
    chunks_.clear();
    buffered_.clear();
    // A checkpoint asked for in an earlier view is never sent (the request names that
    // view): this view's round sends a delta or a checkpoint afresh, and a delta refused
    // again is asked for again.
    asked_for_checkpoint_ = false;
  }
  if (ready_) {
    for (NodeId back : m.joined) {
      // Back: it reports what its kernel holds marked (the announce round awaits that),
      // so its slot need not be read any more (a server whose device failed cannot).
      state_.absent.erase(back);
      state_.awaiting_absent.erase(back);
    }
  }
  round_ = Round{m.view_id, m.members, m.ring_nodes, {}, false};
  if (ready_ && !was_serving) unconfirmed_ = true;
  // Without quorum the state is kept but not served: if the majority went on elsewhere,
  // the next announce round finds this state stale and replaces it with a checkpoint; if
  // it did not (its daemons died), this is the state that survives.
  const uint64_t prior = last_quorate_view_;
  if (serving()) last_quorate_view_ = m.view_id;
  if (ready_ && !Quorate()) {
    Log(Severity::kWarning,
        "no quorum (" + QuorumCount() + "): holding kernel requests until a majority is back");
    FreezeKernel();
  }
  AnnounceMsg announce{m.view_id, ready_, ready_ ? prior : 0, 0, 0};
  if (!ready_ && retained_) {
    announce.base_history = retained_->history;
    announce.base_version = retained_->version;
  }
  Send(announce);
  DrainOutbox();
}

void ClusterLog::MergeDeparted(NodeId node, const std::vector<RegionNo>& regions, bool overflow) {
  if (options_.break_variant == BreakVariant::kSkipFailedNodeResync) return;
  uint64_t merged = 0;
  std::vector<RegionNo> merged_regions;  // for the log line
  std::vector<RegionNo> hidden;
  bool hid_all = false;
  if (overflow) {
    merged = state_.log.SyncCount();
    state_.log.MarkAllOutOfSync();
    NoteInSyncReset();
    // As for single regions below, for the whole map at once (the kernel's in-sync hint
    // would otherwise let it write regions it still takes for in sync without asking
    // IS_REMOTE_RECOVERING: clog-sim --seed 152 --nodes 3, a failed log device).
    if (options_.rearm_kernel && merged > 0) {
      hide_all_out_of_sync_ = true;
      hid_all = true;
    }
  } else {
    for (RegionNo r : regions) {
      if (r < state_.log.nr_regions() && state_.log.SetInSync(r, false)) {
        NoteInSyncChange(r, false);
        ++merged;
        merged_regions.push_back(r);
        if (options_.rearm_kernel) {
          hidden_out_of_sync_.insert(r);
          hidden.push_back(r);
        }
      }
    }
  }
  stats_.regions_merged += merged;
  if (merged > 0) pending_out_of_sync_ = true;
  if (merged == 0 && !overflow) return;
  // The region list lets an administrator (and the failure tests) compare the resync with
  // what the node had marked.
  std::sort(merged_regions.begin(), merged_regions.end());
  Log(Severity::kInfo,
      "node " + std::to_string(node) + " left: " + std::to_string(merged) +
          " of its regions are out of sync (regions " +
          (overflow ? std::string("all") : region::FormatRegionRanges(merged_regions)) + ")");
  // Every member re-arms its kernel and reports its marks among them before anyone may
  // start copying (a write could be in flight to any of them).
  state_.awaiting_reports[node] = {state_.members.begin(), state_.members.end()};
  state_.awaiting_reports[node].erase(node);
  reported_.erase(node);
  Report(node);
  // The hidden regions are revealed at the POSTSUSPEND of a suspend that begins after
  // this point (PRESUSPEND takes the set): the kernel is quiesced there, so no write is
  // between its two IN_SYNC questions when the answer changes.
  if ((!hidden.empty() || hid_all) && options_.rearm_kernel) {
    reveal_wanted_ = true;
    RevealHidden();
  }
}

void ClusterLog::Report(NodeId failed) {
  // Sent at once: every write this kernel may have in flight to a merged region was marked
  // (the region was in sync, so not NOSYNC), and every later mark of an out-of-sync region
  // is published (BUSY) before it is answered. Waiting for a rearm here deadlocked: a
  // suspend already draining a write requeued on an out-of-sync region waited for that
  // region's recovery, which waited for this report (clog-sim --seed 30903 --nodes 5).
  reported_.insert(failed);
  // A lazy clear of a region that is out of sync now is waited for by its recovery.
  for (RegionNo r : delta_clears_) {
    if (!state_.log.InSync(r)) {
      PublishOwnMarks();
      break;
    }
  }
  std::vector<RegionNo> marked;
  for (RegionNo r : own_dirty_) {
    if (!state_.log.InSync(r)) marked.push_back(r);
  }
  Send(ReportMsg{failed, marked});
}

void ClusterLog::AwaitFenceGrace(NodeId gone, bool at_bootstrap) {
  // The node may only be cut off (a partition), not dead: its kernel writes the regions it
  // holds DIRTY without asking the log until its own daemon sees the others go, at about
  // the same time as we see it go, and freezes it (FreezeKernel). Without a fence that
  // confirms it is down, nobody may copy before that freeze has drained it, so claims wait
  // (RecoveryGateOpen) until every member's grace has run out (CLUSTER.md "Partitions").
  if (options_.fence_grace_us == 0 || gone >= kFenceGrace) return;
  const NodeId key = kFenceGrace | gone;
  auto& awaited = state_.awaiting_reports[key];
  awaited = {state_.members.begin(), state_.members.end()};
  awaited.erase(gone);
  if (awaited.empty()) {
    state_.awaiting_reports.erase(key);
    return;
  }
  // (Worded so that it never matches "node N left", which scripts and tests look for.)
  Log(Severity::kInfo,
      "fence grace: no region is copied for " + std::to_string(options_.fence_grace_us / 1000) +
          (at_bootstrap
               ? " ms: node " + std::to_string(gone) + " has regions marked and is not in the group"
               : " ms after the departure of node " + std::to_string(gone)) +
          ", so that it has frozen its writes if it was only cut off");
  reported_.erase(key);
  StartFenceGrace(key);
}

void ClusterLog::StartFenceGrace(NodeId key) {
  reported_.insert(key);  // the timer reports, not ReportWhereAwaited
  if (!options_.schedule) {
    Send(ReportMsg{key, {}});
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  options_.schedule(options_.fence_grace_us, [this, alive, key] {
    if (alive.expired() || !*alive.lock()) return;
    auto it = state_.awaiting_reports.find(key);
    if (it == state_.awaiting_reports.end() || !it->second.contains(me_)) return;
    // Not serving (quorum lost meanwhile): the state may be replaced; ReportWhereAwaited
    // starts the grace again when this node serves.
    if (!serving()) {
      reported_.erase(key);
      return;
    }
    Send(ReportMsg{key, {}});
  });
}

void ClusterLog::ServerDuties() {
  if (state_.server != me_ || !disk()) return;
  if (device_failed_) {
    // The departed members' slots cannot be read here: every region is suspect. Absent
    // members stay awaited (recovery waits for their daemons), slots stay reserved.
    for (const auto& [slot, gone] : state_.awaiting_merge) Send(OutOfSyncMsg{gone, slot, true, {}});
    return;
  }
  // Only the slots it needs, each read fresh (ReadSlot also refreshes what a later write of
  // that slot builds on), not a Reload of every slot: this runs in the loop, and every
  // kernel request of this node waits behind it (a Reload of 63 slots x 2 copies held it
  // about 200 ms per departure on the 3-VM fault runs). A read that fails with an I/O error
  // fails the device for this node, as a failed Reload did.
  Status s;
  for (const auto& [slot, gone] : state_.awaiting_merge) {
    auto rec = log_dev_->ReadSlot(slot);
    if (!rec.ok() && rec.status().code() == Errc::kIoError) {
      s = rec.status();
      break;
    }
    if (!rec.ok()) {
      // An unreadable slot: every region is suspect.
      Log(Severity::kError, "slot " + std::to_string(slot) + " of departed node " +
                                std::to_string(gone) + ": " + rec.status().ToString());
      Send(OutOfSyncMsg{gone, slot, true, {}});
      continue;
    }
    std::vector<RegionNo> regions;
    if (rec->node_id == gone) regions = rec->regions;
    Send(OutOfSyncMsg{gone, slot, rec->node_id == gone && rec->overflow, regions});
  }
  for (NodeId gone : state_.awaiting_absent) {
    if (!s.ok()) break;
    auto rec = log_dev_->ReadSlot(state_.SlotOf(gone));
    if (!rec.ok() && rec.status().code() == Errc::kIoError) {
      s = rec.status();
      break;
    }
    std::vector<RegionNo> regions;
    if (rec.ok() && rec->node_id == gone) regions = rec->regions;
    if (rec.ok() && rec->overflow) {
      for (RegionNo r = 0; r < state_.log.nr_regions(); ++r) regions.push_back(r);
    }
    Send(AbsentMsg{gone, regions});
  }
  if (!state_.awaiting_free.empty()) {
    // The merged map is durable before any departed slot is released (H2/H4).
    PersistInSync(true);
    for (const auto& [slot, gone] : state_.awaiting_free) {
      if (device_failed_) break;
      // Fresh: the write builds on the copy and sequence last read (another server may
      // have merged this slot).
      if (auto current = log_dev_->ReadSlot(slot);
          !current.ok() && current.status().code() == Errc::kIoError) {
        FailDevice(current.status());
        break;
      }
      region::SlotRecord freed;
      if (Status w = log_dev_->WriteSlot(slot, freed); !w.ok()) {
        FailDevice(w);
        break;
      }
      Send(SlotFreedMsg{gone, slot});
    }
  }
  if (!s.ok()) {
    FailDevice(s);
    // The slots not read yet are merged as unreadable (every region), else they stayed
    // awaited, and every IN_SYNC/GET_SYNC_COUNT held, until some later departure
    // (clog-sim --seed 46 --nodes 5 --legs 4). A slot already sent goes again: the second
    // OUT_OF_SYNC finds it merged and changes nothing.
    ServerDuties();
  }
}

void ClusterLog::PersistInSync(bool force) {
  if (!disk() || device_failed_ || state_.server != me_) return;
  if (pending_to_sync_ == 0 && !pending_out_of_sync_) return;
  uint64_t batch = options_.in_sync_write_batch;
  if (batch == 0) batch = std::max<uint64_t>(1, state_.log.nr_regions() / 64);
  if (!force && !pending_out_of_sync_ && pending_to_sync_ < batch &&
      state_.log.SyncCount() != state_.log.nr_regions()) {
    return;
  }
  // While marks may live only in memory (some member's device failed), or while a table
  // with an empty new leg may be resumed (a replacement prepared here), a bootstrap from
  // the device must resync everything: it is told so by an all-out-of-sync map.
  const bool distrust = state_.device_suspect || replace_prepared_;
  Status s = log_dev_->WriteInSync(distrust ? region::RegionBitmap(state_.log.nr_regions())
                                            : state_.log.in_sync());
  if (!s.ok()) {
    FailDevice(s);
    return;
  }
  pending_to_sync_ = 0;
  pending_out_of_sync_ = false;
}

void ClusterLog::OnTransportLost() {
  Log(Severity::kError, "cluster transport lost; holding kernel requests until rejoined");
  if (ready_) RetainBase();
  if (leg_tx_) DecideLegTx(false, "this node lost the cluster");
  leg_proposed_ = false;  // lost with the group, if not delivered
  for (auto& [tx, done] : std::exchange(replace_waiters_, {})) {
    // Had the others opened it, this node's departure aborts it there.
    done(Busy("this node lost the cluster before the replacement was decided; nothing changed"));
  }
  joined_ = false;
  ready_ = false;
  round_ = Round{};
  chunks_.clear();
  buffered_.clear();
  outbox_.clear();
  // Messages not delivered yet are gone with the group: requests waiting for one start
  // over once this node has the state again (its marks stay in own_dirty_).
  for (Pending& p : pending_) {
    p.phase = 0;
    p.wait_id = 0;
    p.new_marks.clear();
  }
  delivered_ids_.clear();
  claim_results_.clear();
  dones_delivered_.clear();
  reported_.clear();
  FreezeKernel();
  ScheduleJoin(1);
}

void ClusterLog::ScheduleJoin(uint64_t attempt) {
  std::weak_ptr<bool> alive = alive_;
  if (!options_.schedule) return;
  options_.schedule(1'000'000, [this, alive, attempt] {
    if (alive.expired() || !*alive.lock()) return;
    Status s = transport_.Join(group_, this);
    if (s.ok()) {
      if (attempt > 1) Log(Severity::kInfo, "joined the cluster again");
      return;
    }
    // Once a second while corosync is away; say so at first and then every minute.
    if (attempt == 1 || attempt % 60 == 0) {
      Log(Severity::kWarning, "joining the cluster failed (" + s.ToString() +
                                  "); retrying every second, kernel requests held");
    }
    ScheduleJoin(attempt + 1);
  });
}

void ClusterLog::FreezeKernel() {
  // The others will soon see this node leave and recover the regions it has marked, while
  // its kernel could still write regions it holds DIRTY without asking the log. A noflush
  // suspend stops that (it drains what is in flight); the RESUME that ends it is held
  // until this node serves again, so the kernel stays frozen until then. This relies on
  // this node noticing first (corosync's socket hangs up at once; the others wait for the
  // token timeout); a partition needs fencing as well (CLUSTER.md).
  if (frozen_ || !options_.rearm_kernel) return;
  frozen_ = true;
  Rearm([this] { frozen_ = false; });
}

}  // namespace clogd::logd
