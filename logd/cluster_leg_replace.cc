// Leg replacement: an operator's cluster-wide reload of a mirror with a new leg, without a
// failed one or as an extra one (clogctl replace-leg / add-leg; CLUSTER.md "Leg
// replacement"). It is the leg-removal transaction (cluster_leg_removal.cc) with another
// table: every member suspends (noflush) and loads the table without the old leg and with
// the new one last, then votes; the last yes commits everywhere, a no or a membership
// change aborts everywhere. The new leg holds nothing, so at the commit every member sets
// every region out of sync, and the mirrors copy them all to it (the first leg, never the
// new one, is the source).
#include <algorithm>

#include "logd/cluster_log.h"

namespace clogd::logd {

void ClusterLog::ReplaceLeg(const LegReplacement& change, std::function<void(Status)> done) {
  if (change.device.empty()) return done(InvalidArgument("no device named for the new leg"));
  if (!options_.legs.enabled()) {
    return done(
        InvalidArgument("this clogd cannot reload mirror tables (no device-mapper access)"));
  }
  if (!serving()) {
    return done(Busy("this node does not serve log " + uuid_ +
                     " now (joining, or without quorum); try again when it does"));
  }
  if (leg_tx_) return done(Busy("a leg change of log " + uuid_ + " is under way; try again"));
  std::weak_ptr<bool> alive = alive_;
  options_.legs.inspect(
      uuid_, [this, alive, change, done, began = table_changes_](Result<LegHealth> health) {
        if (alive.expired() || !*alive.lock()) return;
        if (!health.ok()) return done(health.status());
        if (began != table_changes_) {
          // It may have read the table a reload replaced since (see CheckLegs): a failed leg
          // there is not one of the new table's.
          return done(Busy("the mirror's table changed while its legs were read; try again"));
        }
        ProposeReplacement(change, *health, done);
      });
}

void ClusterLog::ProposeReplacement(const LegReplacement& change, const LegHealth& health,
                                    std::function<void(Status)> done) {
  if (change.leg && *change.leg >= health.legs) {
    return done(InvalidArgument("the mirror has " + std::to_string(health.legs) + " legs (0 to " +
                                std::to_string(health.legs - 1) + "): there is no leg " +
                                std::to_string(*change.leg)));
  }
  const bool failed = change.leg && std::find(health.failed.begin(), health.failed.end(),
                                              *change.leg) != health.failed.end();
  if (change.leg == 0u && !failed) {
    // dm-raid1 writes a region that is not in sync to the first leg only, and copies it from
    // there: until every region is copied, the first leg may hold the only copy of a write.
    return done(
        InvalidArgument("leg 0 is the mirror's resync source and has not failed: it may "
                        "hold the only copy of writes to regions not in sync yet; "
                        "replace another leg, or add one"));
  }
  if (!change.leg && health.legs >= 9) {
    return done(InvalidArgument("the mirror has 9 legs, dm-raid1's most: name a leg to replace"));
  }
  if (state_.CurrentLegs() != 0 && health.legs != state_.CurrentLegs()) {
    return done(Busy("this node's table has " + std::to_string(health.legs) +
                     " legs, the cluster's " + std::to_string(state_.CurrentLegs()) +
                     ": it is catching up; try again"));
  }
  if (!serving()) return done(Busy("this node stopped serving log " + uuid_ + "; try again"));
  const uint64_t tx = (uint64_t{me_} << 32) | next_leg_tx_++;
  LegReplaceMsg m;
  m.tx = tx;
  m.epoch = state_.leg_epoch;
  m.leg = change.leg.value_or(kNoLeg);
  m.legs = health.legs;
  m.leg_failed = failed;
  m.offset = change.offset;
  m.device = change.device;
  replace_waiters_[tx] = std::move(done);
  Send(m);
}

void ClusterLog::OnLegReplace(NodeId from, const LegReplaceMsg& m) {
  const std::string what =
      (m.leg == kNoLeg ? "addition of " + m.device + " as leg " + std::to_string(m.legs)
                       : "replacement of leg " + std::to_string(m.leg) + " of " +
                             std::to_string(m.legs) + " by " + m.device) +
      " (from node " + std::to_string(from) + ")";
  std::optional<std::string> refused = LegProposalRefusal(m.epoch, m.legs);
  if (!refused && state_.members.size() < options_.expected_nodes) {
    // A node not in the group now may run this log's mirror on a table it loaded before
    // (its daemon not started yet) and join later: the count of its legs cannot tell it
    // lags a replacement (the removal record starts again at the commit), so it would
    // serve on the old legs (clog-sim --seed 852 --legs 4). Every node reloads, or none.
    refused = "only " + std::to_string(state_.members.size()) + " of the cluster's " +
              std::to_string(options_.expected_nodes) +
              " nodes are members of the log's group; a replacement needs every node";
  }
  if (!refused && !m.leg_failed && state_.log.SyncCount() != state_.log.nr_regions()) {
    // Writes to regions not in sync wait for their copy, and every node's suspend for
    // the reload waits for them; no copy runs meanwhile. A removal (or the replacement of
    // a failed leg) lets them through to the first leg, for the new table's fresh region
    // hash to copy again; but an abort would resume the old table, whose region hash
    // keeps such a region NOSYNC (first leg only) for good, also once it is copied
    // (clog-sim --seed 1815 --legs 3). So a leg that has not failed is replaced only in a
    // mirror in sync.
    refused = std::to_string(state_.log.nr_regions() - state_.log.SyncCount()) +
              " regions are not in sync: a leg that has not failed is replaced once they are";
  }
  if (refused) {
    Log(Severity::kWarning, what + " refused: " + *refused);
    AnswerReplacement(m.tx, Busy("refused: " + *refused + "; nothing changed, try again"));
    return;
  }
  leg_tx_ = LegTx{m.tx,  from, m.leg,    m.legs,   {state_.members.begin(), state_.members.end()},
                  false, true, m.device, m.offset, m.leg_failed};
  Log(Severity::kWarning, what + ": suspending and loading the new table on every node");
  PrepareLocal(m.tx, leg_tx_->Change());
}

void ClusterLog::CommitReplacement(const LegTx& tx) {
  const uint32_t legs = tx.legs - (tx.leg == kNoLeg ? 0 : 1) + 1;
  // The record of removals starts again from the new table (a node lagging behind it
  // cannot catch up by removals), and a proposal made against the old one is stale.
  state_.first_legs = legs;
  state_.removed_legs.clear();
  ++state_.leg_epoch;
  legs_unrecoverable_ = false;
  two_leg_warned_ = 0;
  // Every kernel is suspended (its copies drained) with the new table loaded: no copy
  // claimed before counts, and a late DONE of one (no owner now) changes nothing.
  state_.recovery.Clear();
  // Nothing is hidden from the new table's kernel: it has asked nothing yet, so it cannot
  // have cached an answer; and a region it took for in sync it would read from any leg,
  // the empty new one too (clog-sim --seed 245 --legs 3: a stale read from the new leg).
  UnhideAll();
  state_.log.MarkAllOutOfSync();
  state_.uncopied = region::RegionBitmap(state_.log.nr_regions(), true);
  NoteInSyncReset();
  pending_out_of_sync_ = true;
  pending_to_sync_ = 0;
  if (state_.server == me_) PersistInSync(true);
  Log(Severity::kWarning,
      std::string(tx.leg == kNoLeg ? "" : "leg " + std::to_string(tx.leg) + " replaced by ") +
          tx.device + (tx.leg == kNoLeg ? " added" : "") + " on every node: the mirror has " +
          std::to_string(legs) + " legs now, and every region is copied to the new one");
  AnswerReplacement(tx.tx, Status::Ok());
}

void ClusterLog::AnswerReplacement(uint64_t tx, const Status& s) {
  auto it = replace_waiters_.find(tx);
  if (it == replace_waiters_.end()) return;
  auto done = std::move(it->second);
  replace_waiters_.erase(it);
  done(s);
}

}  // namespace clogd::logd
