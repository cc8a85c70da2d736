// Leg removal: the cluster-wide reload of a mirror without a failed leg, as one transaction
// (DESIGN.md §4.6; the protocol is in CLUSTER.md "Leg removal"). A node whose kernel set a
// region out of sync looks at its legs; if one failed it proposes LEG_REMOVAL. Every ready
// member suspends its mirror (noflush: the failed writes stay held) and loads the table
// without the leg, then votes. The decision needs no coordinator: it is taken at an agreed
// point of the stream, so every member takes the same one — commit at the delivery of the
// last member's yes, abort at a no or at any membership change before that. On commit every
// member resumes the new table (the held writes go to the remaining legs) and the state
// records the removal; on abort it drops the loaded table and resumes the old one, and the
// proposer tries again later.
#include "logd/cluster_log.h"

namespace clogd::logd {

namespace {
constexpr uint64_t kLegRetryUs = 2'000'000;  // after an abort or a refused proposal
// How long a failed write's reveal waits for the failing node's proposal to remove a leg.
constexpr uint64_t kLegVerdictWaitUs = 1'000'000;
}  // namespace

LegChange ClusterLog::LegTx::Change() const {
  LegChange c;
  c.legs = legs;
  if (leg != kNoLeg) c.remove = leg;
  if (replace) {
    c.add_device = device;
    c.add_offset = offset;
  }
  return c;
}

std::optional<std::string> ClusterLog::LegProposalRefusal(uint32_t epoch, uint32_t legs) const {
  // One at a time; and not while members may still be joining (one that has not got
  // the state yet would drop the proposal and never vote).
  if (leg_tx_) return "another leg change is under way";
  if (!round_.decided) return "members are joining";
  if (epoch != state_.leg_epoch || (state_.CurrentLegs() != 0 && legs != state_.CurrentLegs())) {
    return "the mirror's legs changed since it was proposed";
  }
  if (!state_.absent.empty()) {
    // A member's daemon is gone while its kernel runs: it cannot reload, and its kernel
    // could go on using the legs the others change.
    return "node " + std::to_string(*state_.absent.begin()) +
           "'s clogd is gone while its kernel runs";
  }
  return std::nullopt;
}

bool ClusterLog::KernelOpAllowed(bool rearm) const {
  if (leg_op_in_flight_) return false;
  if (rearm) return prepared_tx_ == 0;  // its resume would make the loaded table live
  return !rearm_in_flight_;
}

bool ClusterLog::LocalLegBusy() const {
  return leg_op_in_flight_ || !leg_ops_.empty() || prepared_tx_ != 0;
}

void ClusterLog::RunKernelOps() {
  if (rearm_in_flight_ || leg_op_in_flight_) return;
  if (!leg_ops_.empty()) {
    auto op = std::move(leg_ops_.front());
    leg_ops_.pop_front();
    leg_op_in_flight_ = true;
    std::weak_ptr<bool> alive = alive_;
    op([this, alive] {
      if (alive.expired() || !*alive.lock()) return;
      leg_op_in_flight_ = false;
      RunKernelOps();
      Pump();
    });
    return;
  }
  if (!rearm_waiters_.empty() && KernelOpAllowed(true)) StartRearm();
}

void ClusterLog::OutOfSyncByFailedWrite(RegionNo r, NodeId node) {
  // Another member's kernel may take r for in sync (its region hash, or its in-sync hint
  // above r) and so write it on its default leg only, unmarked, without asking
  // IS_REMOTE_RECOVERING, while a third copies it — when the leg failed on one node's path
  // only, or a node still runs a table with a leg the others removed. So, as at a merge:
  // hidden from the kernel (answered in sync: its writes are marked, and marks of an
  // out-of-sync region are published as busy) until a suspend quiesced it, and every
  // member reports what it holds marked before anyone may copy it (clog-sim --scenario
  // h6-leg-fails --seed 54). The reports are keyed by the state's sync version with the
  // top bit set (kFailedWriteReports), which no member's node id uses.
  const NodeId key = kFailedWriteReports | static_cast<NodeId>(state_.sync_version & 0x7FFFFFFF);
  Log(Severity::kWarning, "region " + std::to_string(r) + " is out of sync: a write to it " +
                              "failed on node " + std::to_string(node));
  if (options_.rearm_kernel) hidden_out_of_sync_.insert(r);
  state_.awaiting_reports[key] = {state_.members.begin(), state_.members.end()};
  reported_.erase(key);
  Report(key);
  if (options_.rearm_kernel) {
    reveal_wanted_ = true;
    if (node != me_ && options_.schedule) {
      // The failing node reads its legs now and, if one failed, proposes its removal in a
      // few milliseconds: the reveal waits for that (or for kLegVerdictWaitUs at most).
      const uint64_t wait = ++leg_verdict_waits_;
      leg_verdict_awaited_[node] = wait;
      std::weak_ptr<bool> alive = alive_;
      options_.schedule(kLegVerdictWaitUs, [this, alive, node, wait] {
        if (alive.expired() || !*alive.lock()) return;
        if (auto it = leg_verdict_awaited_.find(node);
            it != leg_verdict_awaited_.end() && it->second == wait) {
          leg_verdict_awaited_.erase(it);
          RevealHidden();
        }
      });
    }
    RevealHidden();
  }
}

void ClusterLog::UnhideAll() {
  hidden_out_of_sync_.clear();
  reveal_at_postsuspend_.clear();
  hide_all_out_of_sync_ = false;
  reveal_all_at_postsuspend_ = false;
}

bool ClusterLog::KernelAwaitsACopy() {
  std::erase_if(copy_awaited_, [this](RegionNo r) { return state_.log.InSync(r); });
  return !copy_awaited_.empty();
}

bool ClusterLog::KernelSeesAnyOutOfSync() {
  // Looked at again only when what it depends on changed (Pump calls this for every
  // request).
  const std::array<uint64_t, 4> key{state_.log.SyncCount(), hidden_out_of_sync_.size(),
                                    hide_all_out_of_sync_ ? 1u : 0u, state_.uncopied.count()};
  if (key == seen_out_of_sync_key_) return seen_out_of_sync_;
  seen_out_of_sync_key_ = key;
  seen_out_of_sync_ = false;
  for (RegionNo r = state_.log.NextOutOfSync(0); r != region::kNoRegion;
       r = state_.log.NextOutOfSync(r + 1)) {
    if (!KernelSeesInSync(r)) {
      seen_out_of_sync_ = true;
      break;
    }
  }
  return seen_out_of_sync_;
}

void ClusterLog::RevealHidden() {
  if (!reveal_wanted_ || leg_tx_ || legs_unrecoverable_ || leg_check_in_flight_ ||
      !leg_verdict_awaited_.empty()) {
    return;
  }
  if (KernelAwaitsACopy()) return;
  // One kernel must go on copying: a write that comes in during a suspend and must wait for
  // a copy keeps the suspend from ending, and if every member suspended so, nobody would
  // copy. So the log server reveals only once its kernel sees nothing out of sync, and
  // while there is no server (it left; the announce round chooses the next), nobody does.
  if (state_.server == 0) return;
  if (state_.server == me_ && KernelSeesAnyOutOfSync()) return;
  reveal_wanted_ = false;
  Rearm([] {});
}

void ClusterLog::CheckLegs() {
  if (!options_.legs.enabled()) return;
  if (leg_check_in_flight_) {
    leg_check_again_ = true;
    return;
  }
  leg_check_in_flight_ = true;
  std::weak_ptr<bool> alive = alive_;
  options_.legs.inspect(uuid_, [this, alive, began = table_changes_](Result<LegHealth> health) {
    if (alive.expired() || !*alive.lock()) return;
    leg_check_in_flight_ = false;
    if (began != table_changes_) {
      // It may have read the table a committed reload replaced: a replacement keeps the
      // leg count, so its failed leg would pass for the new table's, and IS_REMOTE_RECOVERING
      // would let the new table's writes through unmarked (NOSYNC in its region hash for
      // good) while other nodes copy their regions (scripts/faults leg-replaced: the legs
      // differed after the resync).
      Log(Severity::kInfo, "the legs were read before a reload committed: reading them again");
      leg_check_again_ = true;
    } else {
      OnLegHealth(health);
    }
    if (leg_check_again_) {
      leg_check_again_ = false;
      CheckLegs();
    }
    RevealHidden();  // no leg change after all
  });
}

void ClusterLog::OnLegHealth(const Result<LegHealth>& health) {
  if (!health.ok()) {
    Log(Severity::kWarning, "cannot read the mirror's legs: " + health.status().ToString());
    return;
  }
  if (!serving()) return;  // checked again when this node serves (BecomeReady)
  if (state_.CurrentLegs() != 0 && health->legs > state_.CurrentLegs()) {
    CatchUpLegs(*health);
    return;
  }
  // Every node's table has the failed leg: no copy can succeed until it is removed.
  legs_unrecoverable_ = !health->failed.empty();
  if (health->failed.empty() || leg_tx_ || LocalLegBusy()) return;
  // One proposal of ours at a time; after one was set aside, the retry timer asks again.
  if (leg_proposed_ || leg_retry_scheduled_) return;
  const uint32_t leg = health->failed.front();
  if (health->legs <= 2) {
    if (two_leg_warned_ != health->legs) {
      two_leg_warned_ = health->legs;
      Log(Severity::kError,
          "leg " + std::to_string(leg) + " of the mirror failed, but a mirror keeps at least 2 " +
              "legs (dm-raid1): its writes stay held until a new leg replaces it (clogctl " +
              "replace-leg) or the leg is back");
    }
    return;
  }
  const uint64_t tx = (uint64_t{me_} << 32) | next_leg_tx_++;
  Log(Severity::kWarning, "leg " + std::to_string(leg) + " of " + std::to_string(health->legs) +
                              " failed here: proposing its removal on every node");
  leg_proposed_ = true;
  Send(LegRemovalMsg{tx, leg, health->legs, state_.leg_epoch});
}

void ClusterLog::OnLegRemoval(NodeId from, const LegRemovalMsg& m) {
  if (from == me_) leg_proposed_ = false;
  // The proposal the reveal waited for: whether it opens or is set aside, the reveal is
  // looked at again on the way out (put off while a transaction is open).
  leg_verdict_awaited_.erase(from);
  struct RevealOnReturn {
    ClusterLog* log;
    ~RevealOnReturn() { log->RevealHidden(); }
  } reveal_on_return{this};
  const std::string what = "removal of leg " + std::to_string(m.leg) + " of " +
                           std::to_string(m.legs) + " (from node " + std::to_string(from) + ")";
  auto retry = [this] { ScheduleOnce(leg_retry_scheduled_, kLegRetryUs, [this] { CheckLegs(); }); };
  if (leg_tx_ || !round_.decided) {
    Log(Severity::kInfo, what + " set aside: " + *LegProposalRefusal(m.epoch, m.legs));
    if (from == me_) retry();
    return;
  }
  if (IsCatchUp(m)) {
    // Only the proposer's table has the leg: it alone reloads. No copy starts while the
    // transaction is open, so the writes its old table holds back for copies running
    // elsewhere are let through once those end, and its suspend drains (clog-sim --seed
    // 868 --nodes 5 --legs 4: told "recovering" while others went on copying, they kept
    // its suspend from ever finishing).
    leg_tx_ = LegTx{m.tx, from, m.leg, m.legs, {from}, true, false, "", 0, false};
    Log(Severity::kWarning, what + ": node " + std::to_string(from) +
                                " catches up with a removal the cluster made; no copy starts "
                                "until it has");
    if (from == me_) PrepareLocal(m.tx, leg_tx_->Change());
    return;
  }
  if (m.legs <= 2) {
    if (from == me_) retry();
    return;
  }
  if (auto refused = LegProposalRefusal(m.epoch, m.legs)) {
    // Proposed against a table that a change committed since has reshaped, or a member
    // cannot reload now.
    Log(Severity::kWarning, what + " waits: " + *refused);
    if (from == me_) retry();
    return;
  }
  leg_tx_ = LegTx{m.tx,  from,  m.leg, m.legs, {state_.members.begin(), state_.members.end()},
                  false, false, "",    0,      false};
  Log(Severity::kWarning, what + ": suspending and loading the table without it on every node");
  PrepareLocal(m.tx, leg_tx_->Change());
}

void ClusterLog::OnLegVote(NodeId from, const LegVoteMsg& m) {
  if (!leg_tx_ || leg_tx_->tx != m.tx) return;
  if (!m.ok) {
    DecideLegTx(false, "node " + std::to_string(from) + " could not load the table without it");
    return;
  }
  leg_tx_->awaiting.erase(from);
  if (leg_tx_->awaiting.empty()) DecideLegTx(true, "");
}

void ClusterLog::DecideLegTx(bool commit, const std::string& why) {
  const LegTx tx = *leg_tx_;
  leg_tx_.reset();
  if (commit) ++table_changes_;
  const std::string leg = "leg " + std::to_string(tx.leg) + " of " + std::to_string(tx.legs);
  if (tx.replace) {
    if (commit) {
      CommitReplacement(tx);
    } else {
      Log(Severity::kWarning, "replacement by " + tx.device + " aborted: " + why);
      AnswerReplacement(tx.tx, Busy("the replacement was aborted (nothing changed): " + why));
    }
  } else if (commit && tx.catch_up) {
    Log(Severity::kWarning,
        "node " + std::to_string(tx.proposer) + " caught up: " + leg + " removed there too");
  } else if (commit) {
    legs_unrecoverable_ = false;  // the tables without the leg can copy again
    if (state_.first_legs == 0) state_.first_legs = tx.legs;
    state_.removed_legs.push_back(tx.leg);
    ++state_.leg_epoch;
    Log(Severity::kWarning, leg + " removed on every node: the mirror has " +
                                std::to_string(state_.CurrentLegs()) + " legs now");
  } else {
    Log(Severity::kWarning, "removal of " + leg + " aborted: " + why);
  }
  if (commit && (prepared_tx_ == tx.tx || preparing_tx_ == tx.tx)) {
    // This node's kernel is suspended for the new table, whose kernel has asked nothing
    // yet: nothing needs hiding from it, as at a replacement. What was hidden after this
    // suspend began would otherwise stay hidden for good (answered "in sync" while another
    // node copies it, so its writes mark it and wait for that copy; two kernels each
    // waiting so for the other's copy stopped: clog-sim --seed 77 --legs 3).
    reveal_wanted_ = false;
    UnhideAll();
  }
  if (prepared_tx_ == tx.tx) {
    FinishLocal(commit, true);
  } else if (preparing_tx_ == tx.tx) {
    early_decisions_[tx.tx] = commit;  // applied when the prepare is done
  }
  RevealHidden();  // aborted, or committed without a reload here
  if (!commit && !tx.replace && tx.proposer == me_) {
    ScheduleOnce(leg_retry_scheduled_, kLegRetryUs, [this] { CheckLegs(); });
  }
}

void ClusterLog::PrepareLocal(uint64_t tx, const LegChange& change) {
  std::weak_ptr<bool> alive = alive_;
  leg_ops_.push_back([this, alive, tx, change](std::function<void()> done) {
    const bool open = leg_tx_ && leg_tx_->tx == tx;
    if (!open) {  // aborted before its turn came
      done();
      return;
    }
    preparing_tx_ = tx;
    options_.legs.prepare(uuid_, change, [this, alive, tx, change, done](Status s) {
      if (alive.expired() || !*alive.lock()) return;
      preparing_tx_ = 0;
      const bool still_open = leg_tx_ && leg_tx_->tx == tx;
      if (!s.ok()) {
        // The hook left the mirror as it was.
        Log(Severity::kError, "cannot load the changed table here: " + s.ToString());
        early_decisions_.erase(tx);
        if (still_open && joined_) Send(LegVoteMsg{tx, false});
        done();
        return;
      }
      prepared_tx_ = tx;
      // A finish decided already goes first: the next queued op may be the prepare of
      // the next transaction, which needs this table resumed or dropped (clog-sim --seed
      // 126 --nodes 5 --legs 4: it found the mirror still suspended, voted no, forever).
      if (auto early = early_decisions_.find(tx); early != early_decisions_.end()) {
        const bool commit = early->second;
        early_decisions_.erase(early);
        FinishLocal(commit, true);
      } else if (still_open && joined_ && ready_) {
        if (!change.add_device.empty() && disk() && state_.server == me_ && !device_failed_) {
          // Before anyone may run the table with the empty leg, the device says every
          // region is out of sync (PersistInSync), in case the whole cluster restarts.
          replace_prepared_ = true;
          pending_out_of_sync_ = true;
          PersistInSync(true);
        }
        Send(LegVoteMsg{tx, true});
      } else {
        FinishLocal(false, true);
      }
      done();
    });
  });
  RunKernelOps();
}

void ClusterLog::FinishLocal(bool commit, bool next) {
  std::weak_ptr<bool> alive = alive_;
  auto op = [this, alive, commit](std::function<void()> done) {
    if (commit) {
      // Every mark this node holds now is the old table's: it is suspended (nothing in
      // flight) and goes away, and the new table has marked nothing yet. Its marks of
      // regions whose writes failed would never be cleared (dm-raid1 keeps such regions
      // NOSYNC in the old region hash), so they go now; the held writes, re-issued on the
      // new table, mark their regions again before they are written.
      for (RegionNo r : own_dirty_) {
        delta_marks_.erase(r);
        delta_clears_.insert(r);
      }
      if (!own_dirty_.empty()) slot_dirty_ = true;
      own_dirty_.clear();
      adopted_marks_.clear();
      PublishOwnMarks();
    }
    // A committed reload is a whole suspend/resume cycle with a fresh table (new region
    // hash, in-sync hint 0): it does what every rearm asked for so far would, and a
    // rearm right after it, on every node at once, would stop all recovery while writes
    // wait for it.
    if (replace_prepared_) {
      // Committed: the map is all out of sync now anyway. Aborted: the real one again.
      replace_prepared_ = false;
      pending_out_of_sync_ = true;
      PersistInSync(true);
    }
    options_.legs.finish(uuid_, commit, [this, alive, commit, done] {
      if (alive.expired() || !*alive.lock()) return;
      prepared_tx_ = 0;
      if (commit) {
        ++table_changes_;
        kernel_starved_ = false;  // the new table asks for resync work
        std::vector<std::function<void()>> waiters;
        waiters.swap(rearm_waiters_);
        for (auto& fn : waiters) fn();
      }
      done();
      CheckLegs();  // another leg, or the same one again after an abort
    });
  };
  if (next) {
    leg_ops_.push_front(std::move(op));
  } else {
    leg_ops_.push_back(std::move(op));
  }
  RunKernelOps();
}

void ClusterLog::CatchUpLegs(const LegHealth& health) {
  if (LocalLegBusy()) return;
  const uint32_t done_here = state_.first_legs - health.legs;  // removals this table has
  if (health.legs > state_.first_legs || done_here >= state_.removed_legs.size()) return;
  const uint32_t leg = state_.removed_legs[done_here];
  Log(Severity::kWarning, "this node's mirror has " + std::to_string(health.legs) +
                              " legs, the cluster's " + std::to_string(state_.CurrentLegs()) +
                              ": removing leg " + std::to_string(leg) + " here too");
  // As a transaction of the cluster's (OnLegRemoval); FinishLocal checks again for the
  // next removal this table lacks.
  if (leg_tx_ || leg_proposed_ || leg_retry_scheduled_) return;
  leg_proposed_ = true;
  Send(LegRemovalMsg{(uint64_t{me_} << 32) | next_leg_tx_++, leg, health.legs, state_.leg_epoch});
}

bool ClusterLog::IsCatchUp(const LegRemovalMsg& m) const {
  // A table with more legs than the record, proposing the removal recorded next for it.
  if (state_.first_legs == 0 || m.legs <= state_.CurrentLegs() || m.legs > state_.first_legs) {
    return false;
  }
  const uint32_t done_there = state_.first_legs - m.legs;
  return done_there < state_.removed_legs.size() && state_.removed_legs[done_there] == m.leg;
}

}  // namespace clogd::logd
