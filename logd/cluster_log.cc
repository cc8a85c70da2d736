// The kernel-facing half of the cluster state machine: requests are queued and answered
// in order, each as soon as what it depends on holds (the state is here; this node's own
// message has been delivered; no other node is copying a region this FLUSH marked).
#include "logd/cluster_log.h"

#include <linux/dm-log-userspace.h>

#include <algorithm>

#include "logd/log_engine.h"

namespace clogd::logd {

using region::kNoRegion;

ClusterLog::ClusterLog(std::string uuid, CtrArgs args, std::unique_ptr<region::BlockDevice> device,
                       const EngineOptions& options, ClusterTransport& transport, ReplySink& sink)
    : uuid_(std::move(uuid)),
      args_(std::move(args)),
      device_(std::move(device)),
      options_(options),
      transport_(transport),
      sink_(sink),
      me_(transport.LocalNode()),
      group_("clogd:" + uuid_) {
  state_.log = region::LogState(args_.RegionCount(), args_.region_size);
}

ClusterLog::~ClusterLog() {
  *alive_ = false;
  // An operator waiting for a replacement is told now, not at the end of its timeout.
  for (auto& [tx, done] : replace_waiters_) {
    done(Busy("log " + uuid_ + " was closed on this node before the replacement was decided"));
  }
}

void ClusterLog::Log(Severity s, const std::string& message) const {
  if (options_.log)
    options_.log(s, "log " + uuid_ + " node " + std::to_string(me_) + ": " + message);
}

Status ClusterLog::Start() {
  if (device_) {
    // Written only by the node that bootstraps the log (Bootstrap): another node may be
    // serving it already, and a format here would wipe its slot under it.
    region::OpenParams params = LogOpenParams(uuid_, args_, options_);
    params.may_write = false;
    auto opened = region::LogDevice::Open(*device_, params);
    if (!opened.ok()) return opened.status();
    log_dev_.emplace(std::move(opened).value());
  }
  Status s = transport_.Join(group_, this);
  if (s.code() == Errc::kIoError || s.code() == Errc::kBusy) {
    // corosync is away or busy right now: the kernel's requests wait until this node has
    // joined and has the state, as after a lost transport.
    Log(Severity::kWarning, "cannot join the cluster yet (" + s.ToString() + "); retrying");
    ScheduleJoin(2);
    return Status::Ok();
  }
  return s;
}

void ClusterLog::Stop() {
  if (ready_ && ReplicatesMarks() && (!own_dirty_.empty() || !delta_clears_.empty())) {
    // DTR of the last table: it was suspended first, nothing of it is in flight, so every
    // mark of this node is stale (and a clear the kernel sent without a FLUSH after it is
    // not published yet). Cleared before leaving, or the others would take them for a
    // departed node's and resync those regions (a clustered mirror removed on every node
    // but one would leave that one copying, and its own removal waiting for it).
    for (RegionNo r : own_dirty_) delta_clears_.insert(r);
    delta_marks_.clear();
    own_dirty_.clear();
    PublishOwnMarks();
    DrainOutbox();  // sent before the leave: the others apply it first
  }
  if (ready_ && disk() && !device_failed_) {
    Status s;
    if (state_.members.size() == 1 && state_.members[0] == me_) {
      // Last one out: part 1 becomes a valid dm-log holding the clean map.
      region::RegionBitmap clean = state_.log.CleanMap();
      for (RegionNo r : own_dirty_) clean.Clear(r);
      s = log_dev_->Reload();
      if (s.ok()) s = log_dev_->MarkCleanShutdown(clean);
    }
    uint32_t slot = state_.SlotOf(me_);
    if (s.ok() && slot != kNoSlot) {
      region::SlotRecord freed;
      s = log_dev_->WriteSlot(slot, freed);
      cleared_in_slot_.clear();
    }
    if (!s.ok()) Log(Severity::kError, "shutdown write failed: " + s.ToString());
  }
  if (joined_) (void)transport_.Leave(group_);
  joined_ = false;
  ready_ = false;
}

bool ClusterLog::AnswersClean(RegionNo r) const {
  return !state_.log.IsMarkedByAny(r) && !own_dirty_.contains(r) && !state_.IsBusy(r);
}

void ClusterLog::Submit(const UlogRequest& request) {
  Pending p;
  p.request = request;
  pending_.push_back(std::move(p));
  Pump();
}

void ClusterLog::Answer(const UlogReply& reply) { sink_.Reply(reply); }

void ClusterLog::Pump() {
  while (!pending_.empty()) {
    if (!TryAnswer(pending_.front())) break;
    pending_.pop_front();
  }
  WakeStarvedKernel();
  RevealHidden();
}

void ClusterLog::ScheduleOnce(bool& scheduled, uint64_t delay_us, std::function<void()> then) {
  if (scheduled || !options_.schedule) return;
  scheduled = true;
  std::weak_ptr<bool> alive = alive_;
  options_.schedule(delay_us, [alive, &scheduled, then = std::move(then)] {
    if (alive.expired() || !*alive.lock()) return;
    scheduled = false;
    then();
  });
}

void ClusterLog::WakeStarvedKernel() {
  if (!kernel_starved_ || wake_check_scheduled_ || rearm_in_flight_ || !ready_ ||
      !options_.rearm_kernel) {
    return;
  }
  if (PickRecoveryCandidate() == kNoRegion) return;
  if (!options_.schedule) {
    kernel_starved_ = false;
    Rearm([] {});
    return;
  }
  // Only a kernel that does not ask by itself is woken with a suspend. One with writes
  // requeued on a recovering region wakes every 200 ms and asks for work anyway; a suspend
  // would wait for those writes, which wait for a recovery the suspend has stopped — and if
  // every node did that, nobody would copy (tests/cluster e2e, with the fence grace
  // keeping work back while the kernels' writes were requeued).
  wake_check_scheduled_ = true;
  const uint64_t asks = resync_asks_;
  std::weak_ptr<bool> alive = alive_;
  options_.schedule(kStarvedKernelCheckUs, [this, alive, asks] {
    if (alive.expired() || !*alive.lock()) return;
    wake_check_scheduled_ = false;
    if (resync_asks_ != asks) {
      WakeStarvedKernel();  // it asked meanwhile; if it was told "none" again, look again
      return;
    }
    if (!kernel_starved_ || rearm_in_flight_ || !ready_) return;
    if (PickRecoveryCandidate() == kNoRegion) return;
    kernel_starved_ = false;
    Rearm([] {});
  });
}

void ClusterLog::Rearm(std::function<void()> then) {
  if (!options_.rearm_kernel) {
    then();
    return;
  }
  rearm_waiters_.push_back(std::move(then));
  if (!rearm_in_flight_ && KernelOpAllowed(true)) StartRearm();
}

void ClusterLog::StartRearm() {
  rearm_in_flight_ = true;
  auto waiters = std::make_shared<std::vector<std::function<void()>>>(std::move(rearm_waiters_));
  rearm_waiters_.clear();
  std::weak_ptr<bool> alive = alive_;
  options_.rearm_kernel(uuid_, [this, alive, waiters] {
    if (alive.expired() || !*alive.lock()) return;
    rearm_in_flight_ = false;
    for (auto& fn : *waiters) fn();
    RunKernelOps();
    Pump();
  });
}

void ClusterLog::Send(const ClusterBody& body) {
  outbox_.push_back(EncodeClusterMsg(me_, body));
  ++stats_.messages_sent;
  DrainOutbox();
}

void ClusterLog::DrainOutbox() {
  while (joined_ && !outbox_.empty()) {
    Status s = transport_.Multicast(group_, outbox_.front());
    if (s.ok()) {
      outbox_.pop_front();
      continue;
    }
    if (s.code() != Errc::kBusy) {
      Log(Severity::kError, "multicast failed: " + s.ToString());
    }
    // Flow control (or not joined yet): retry shortly; never an error for the kernel.
    ScheduleOnce(drain_scheduled_, 1000, [this] { DrainOutbox(); });
    return;
  }
}

bool ClusterLog::ClaimableAnywhere(RegionNo r) const {
  if (state_.log.InSync(r) || state_.recovery.IsRecovering(r)) return false;
  if (options_.break_variant == BreakVariant::kRecoverWhileMarked) return true;
  return state_.RecoveryGateOpen() && !state_.IsBusy(r) && !state_.log.IsMarkedByAny(r);
}

bool ClusterLog::Claimable(RegionNo r) const {
  return ClaimableAnywhere(r) &&
         (options_.break_variant == BreakVariant::kRecoverWhileMarked || !own_dirty_.contains(r));
}

RegionNo ClusterLog::PickRecoveryCandidate() const {
  // No copy can succeed while a table still has a failed leg, and each one the kernel
  // starts holds up its suspend, so the leg's removal (scripts/faults leg-fails).
  if (leg_tx_ || legs_unrecoverable_) return kNoRegion;
  // Spread nodes over the map so they recover in parallel: start at a node-dependent
  // offset, then wrap.
  const uint64_t n = state_.log.nr_regions();
  const uint64_t start = (uint64_t{me_} * 0x9E3779B97F4A7C15ull) % (n == 0 ? 1 : n);
  for (int pass = 0; pass < 2; ++pass) {
    RegionNo from = pass == 0 ? start : 0;
    RegionNo limit = pass == 0 ? n : start;
    for (RegionNo r = state_.log.NextOutOfSync(from); r != kNoRegion && r < limit;
         r = state_.log.NextOutOfSync(r + 1)) {
      if (Claimable(r)) return r;
    }
  }
  return kNoRegion;
}

bool ClusterLog::TryAnswer(Pending& p) {
  const UlogRequest& req = p.request;
  UlogReply reply = ReplyTo(req);
  auto fail = [&](const Status& s) {
    Log(Severity::kWarning, RequestTypeName(req.type) + " refused: " + s.ToString());
    reply.error = s.ToErrno();
    reply.payload.clear();
    Answer(reply);
    return true;
  };
  // Without the state, or without quorum (this side may be the one to be fenced), the
  // kernel waits.
  auto needs_state = [&] { return !serving(); };
  switch (req.type) {
    case DM_ULOG_PRESUSPEND:
      reveal_at_postsuspend_ = hidden_out_of_sync_;
      reveal_all_at_postsuspend_ = hide_all_out_of_sync_;
      Answer(reply);
      return true;
    case DM_ULOG_POSTSUSPEND:
      // Quiesced: regions hidden before this suspend began may be seen as they are.
      for (RegionNo r : reveal_at_postsuspend_) hidden_out_of_sync_.erase(r);
      copy_awaited_.clear();  // nothing in flight now
      reveal_at_postsuspend_.clear();
      if (reveal_all_at_postsuspend_) hide_all_out_of_sync_ = false;
      reveal_all_at_postsuspend_ = false;
      Answer(reply);
      return true;
    case DM_ULOG_RESUME:
      if (needs_state()) return false;
      // The kernel writes the regions its region hash holds DIRTY without asking the log.
      // One of them may be copied by another node right now: the copy began while this
      // node was away and frozen (a partition healed within the others' fence grace), and
      // this node's report came too late to hold it back. Resume once it is done (H1;
      // clog-sim --seed 5 --nodes 3 --scenario partition).
      for (RegionNo r : own_dirty_) {
        if (state_.recovery.IsRecoveringByOther(r, me_)) return false;
      }
      Answer(reply);
      return true;
    case DM_ULOG_GET_REGION_SIZE:
      reply.payload = U64Payload(args_.region_size);
      Answer(reply);
      return true;
    case DM_ULOG_STATUS_INFO:
      reply.payload = StringPayload(LogStatusInfo(args_, device_failed_));
      Answer(reply);
      return true;
    case DM_ULOG_STATUS_TABLE:
      reply.payload = StringPayload(LogStatusTable(args_));
      Answer(reply);
      return true;
    case DM_ULOG_MARK_REGION:
      // Answered only once the marks are durable (disk) or agreed (core), exactly like a
      // FLUSH carrying them: a daemon that died between a MARK and its FLUSH would lose
      // them, since the kernel re-sends only the request it is waiting on.
      if (needs_state()) return false;
      if (!StepFlush(p, reply)) return false;
      if (reply.error != 0) return fail(Status(Errc::kIoError, "log device failed"));
      Answer(reply);
      return true;
    case DM_ULOG_CLEAR_REGION: {
      if (needs_state()) return false;
      auto regions = DecodeRegionListPayload(req);
      if (!regions.ok()) return fail(regions.status());
      for (RegionNo r : *regions) {
        if (Status s = state_.log.CheckRegion(r); !s.ok()) return fail(s);
      }
      if (regions->empty()) return fail(InvalidArgument("CLEAR_REGION without regions"));
      // Clears are lazy (one lost only means an extra resync) unless a region is out of
      // sync: its recovery waits for this clear, and the kernel may send no FLUSH after it.
      bool waited_for = false;
      for (RegionNo r : *regions) {
        if (ForgetOwnMark(r)) waited_for |= !state_.log.InSync(r);
      }
      if (waited_for) PublishOwnMarks();
      Answer(reply);
      return true;
    }
    case DM_ULOG_FLUSH:
      if (needs_state()) return false;
      if (!StepFlush(p, reply)) return false;
      if (reply.error != 0) return fail(Status(Errc::kIoError, "log device failed"));
      Answer(reply);
      return true;
    case DM_ULOG_IS_CLEAN:
    case DM_ULOG_IN_SYNC:
    case DM_ULOG_IS_REMOTE_RECOVERING: {
      // A departed node's slot not merged yet: its regions may still look in sync.
      if (needs_state() || !state_.awaiting_merge.empty()) return false;
      auto r = DecodeRegionPayload(req);
      if (!r.ok()) return fail(r.status());
      if (Status s = state_.log.CheckRegion(*r); !s.ok()) return fail(s);
      const bool in_sync = KernelSeesInSync(*r);
      if (req.type == DM_ULOG_IS_CLEAN) {
        reply.payload = S64Payload(in_sync && AnswersClean(*r) ? 1 : 0);
      } else if (req.type == DM_ULOG_IN_SYNC) {
        reply.payload = S64Payload(in_sync ? 1 : 0);
        DropAdoptedMarkOf(*r);
      } else {
        // Every out-of-sync region counts as recovering: no node may write a region
        // unmarked (NOSYNC) while another might copy it (H1).
        RegionNo first = state_.log.NextOutOfSync(0);
        while (first != kNoRegion && KernelSeesInSync(first)) {
          first = state_.log.NextOutOfSync(first + 1);
        }
        // Except while a leg has failed and is not removed yet (a removal is open, or
        // this node saw the failure): no copy can succeed then (every table still has
        // the failed leg, and a copy to or from it fails), and a write held back here
        // would keep its node's suspend, and so the removal, from ever finishing.
        // Let through, the write goes to the failure list (held, then requeued by the
        // suspend) or, unmarked, to the default leg of a region that stays out of sync
        // and is copied again on the new table. While this node catches up with a
        // removal the others made, their copies do succeed: no new one starts, a write
        // here waits only for one already running elsewhere, and this node's suspend
        // drains the writes let through before any copy can start again. The other
        // members, whose tables need no reload, answer as always: their unmarked writes
        // would still be in flight when copies start again.
        bool recovering = !in_sync;
        if (leg_tx_ && leg_tx_->catch_up) {
          if (leg_tx_->proposer == me_) {
            recovering = !in_sync && state_.recovery.IsRecoveringByOther(*r, me_);
          }
        } else if ((leg_tx_ && (!leg_tx_->replace || leg_tx_->leg_failed)) || legs_unrecoverable_) {
          // (A replacement of a leg that has not failed opens only in a mirror in sync:
          // nothing waits for a copy then, and nothing may be let through, as an abort
          // would resume the old table with the region NOSYNC for good.)
          recovering = false;
        }
        if (recovering) {
          copy_awaited_.insert(*r);  // a write requeued until r is copied
        } else {
          copy_awaited_.erase(*r);
        }
        reply.payload = RemoteRecoveringPayload(
            recovering, first == kNoRegion ? state_.log.nr_regions() : first);
      }
      Answer(reply);
      return true;
    }
    case DM_ULOG_GET_SYNC_COUNT:
      if (needs_state() || !state_.awaiting_merge.empty()) return false;
      reply.payload = U64Payload(state_.log.SyncCount());
      Answer(reply);
      return true;
    case DM_ULOG_GET_RESYNC_WORK:
      if (needs_state()) return false;
      if (!StepResyncWork(p, reply)) return false;
      Answer(reply);
      return true;
    case DM_ULOG_SET_REGION_SYNC: {
      if (needs_state()) return false;
      if (p.phase == 0) {
        auto a = DecodeSetRegionSyncPayload(req);
        if (!a.ok()) return fail(a.status());
        if (Status s = state_.log.CheckRegion(a->region); !s.ok()) return fail(s);
        p.region = a->region;
        dones_delivered_.erase(a->region);
        Send(DoneMsg{a->region, a->in_sync});
        p.phase = 1;
        // dm-raid1 sets a region out of sync when a write or a resync copy failed on a
        // leg: the leg may be gone.
        if (!a->in_sync) CheckLegs();
      }
      if (!dones_delivered_.contains(p.region)) return false;
      dones_delivered_.erase(p.region);
      Answer(reply);
      return true;
    }
    default:
      return fail(InvalidArgument("unknown request type " + RequestTypeName(req.raw_type)));
  }
}

bool ClusterLog::StepFlush(Pending& p, UlogReply& reply) {
  if (p.phase == 0) {
    ++stats_.flushes;
    auto payload = DecodeRegionListPayload(p.request);
    if (!payload.ok()) {
      reply.error = payload.status().ToErrno();
      return true;
    }
    for (RegionNo r : *payload) {  // MARK, or integrated FLUSH: the marks ride along
      if (!state_.log.CheckRegion(r).ok()) {
        reply.error = -EINVAL;
        return true;
      }
      adopted_marks_.erase(r);  // the kernel holds it marked: not stale
      if (own_dirty_.insert(r).second) {
        // A cleared region still in the slot needs no write to be marked there again.
        if (cleared_in_slot_.erase(r) == 0) slot_dirty_ = true;
        young_clears_.erase(r);
        // A clear never multicast, of a mark the cluster holds (delivered): nothing about
        // r is in flight (its marking FLUSH was answered after its delivery, before the
        // kernel could clear it), so r is marked cluster-wide and stays so.
        const bool still_marked =
            delta_clears_.erase(r) > 0 && ReplicatesMarks() && state_.log.IsMarkedBy(me_, r);
        if (!still_marked) delta_marks_.insert(r);
      }
    }
    p.phase = 1;
    if (!ReplicatesMarks() && slot_dirty_) {
      uint32_t slot = state_.SlotOf(me_);
      Status s = slot == kNoSlot ? NotFound("no slot assigned") : WriteOwnSlot(slot);
      if (!s.ok()) FailDevice(s);  // the marks go to the cluster instead (below)
    }
    p.new_marks.assign(delta_marks_.begin(), delta_marks_.end());
    if (!ReplicatesMarks()) {
      // Marks of out-of-sync regions must be known cluster-wide before the write goes
      // ahead, so nobody starts copying them; cleared busy regions are released.
      std::vector<RegionNo> busy, idle;
      const auto mine = state_.busy.find(me_);
      for (RegionNo r : delta_marks_) {
        if (!state_.log.InSync(r) && (mine == state_.busy.end() || !mine->second.contains(r))) {
          busy.push_back(r);
        }
      }
      if (mine != state_.busy.end()) {
        for (RegionNo r : mine->second) {
          if (!own_dirty_.contains(r)) idle.push_back(r);
        }
      }
      delta_marks_.clear();
      delta_clears_.clear();
      if (!idle.empty()) Send(IdleMsg{idle});
      if (!busy.empty()) {
        p.wait_id = next_id_++;
        ++stats_.flush_messages;
        Send(BusyMsg{p.wait_id, busy});
      }
    } else {
      // clustered-core (or a failed log device): the marks must outlive this node, so
      // they are agreed first; the clears go along, but for the young ones (lingering).
      const std::vector<RegionNo> clears = ClearsOlderThanATick();
      if (!delta_marks_.empty() || !clears.empty()) {
        p.wait_id = next_id_++;
        ++stats_.flush_messages;
        Send(MarksMsg{p.wait_id, {delta_marks_.begin(), delta_marks_.end()}, clears});
        delta_marks_.clear();
        for (RegionNo r : clears) delta_clears_.erase(r);
      }
    }
  }
  if (options_.break_variant == BreakVariant::kNoFlushDurability) return true;
  if (p.wait_id != 0) {
    if (!delivered_ids_.contains(p.wait_id)) return false;
    delivered_ids_.erase(p.wait_id);
    p.wait_id = 0;
  }
  // Never let a write start on a region another node is copying.
  if (options_.break_variant == BreakVariant::kRecoverWhileMarked) return true;
  for (RegionNo r : p.new_marks) {
    if (state_.recovery.IsRecoveringByOther(r, me_)) return false;
  }
  return true;
}

bool ClusterLog::StepResyncWork(Pending& p, UlogReply& reply) {
  if (p.phase == 0) {
    ++resync_asks_;
    RegionNo r = PickRecoveryCandidate();
    if (r == kNoRegion) {
      if (state_.log.SyncCount() < state_.log.nr_regions()) kernel_starved_ = true;
      reply.payload = ResyncWorkPayload(false, 0);
      return true;
    }
    p.region = r;
    claim_results_.erase(r);
    Send(ClaimMsg{r});
    p.phase = 1;
  }
  auto it = claim_results_.find(p.region);
  if (it == claim_results_.end()) return false;
  const bool won = it->second;
  claim_results_.erase(it);
  if (!won) kernel_starved_ = true;
  reply.payload = ResyncWorkPayload(won, won ? p.region : 0);
  return true;
}

void ClusterLog::FailDevice(const Status& s) {
  if (device_failed_) {
    Log(Severity::kError, "log device: " + s.ToString());
    return;
  }
  device_failed_ = true;
  Log(Severity::kError, "log device failed: " + s.ToString() +
                            "; serving on with this node's marks replicated in the cluster "
                            "(as clustered-core) until the log device is replaced");
  // Its marks lived in its slot; from now on they live in the replicated state: all of
  // them go out with the next FLUSH, which waits for their delivery. Until then the slot
  // still holds every mark acknowledged so far (its last write succeeded), and a server
  // that cannot read it counts every region out of sync.
  for (RegionNo r : own_dirty_) {
    if (!state_.log.IsMarkedBy(me_, r)) delta_marks_.insert(r);
  }
  slot_dirty_ = false;
  cleared_in_slot_.clear();  // cleared: not marked in the replicated state
  if (ready_) {
    Send(DeviceFailedMsg{});
  } else {
    state_.device_suspect = true;  // bootstrapping: the state is this node's to set
  }
}

}  // namespace clogd::logd
