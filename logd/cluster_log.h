// One clustered log (clustered-core or clustered-disk) on this node: the per-log cluster
// state machine. Driven only by kernel requests, agreed deliveries, membership changes,
// timers and the log device; answers the kernel through the ReplySink (possibly later,
// when what a reply depends on has been agreed). The protocol is in logd/CLUSTER.md.
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "logd/cluster_msg.h"
#include "logd/cluster_state.h"
#include "logd/cluster_transport.h"
#include "logd/ctr_args.h"
#include "logd/local_log.h"
#include "logd/ulog_codec.h"
#include "region/block_device.h"
#include "region/log_format.h"

namespace clogd::logd {

class ReplySink;

struct ClusterLogStats {
  uint64_t messages_sent = 0;
  uint64_t messages_refused = 0;
  uint64_t checkpoints_sent = 0;
  uint64_t flushes = 0;
  uint64_t flush_messages = 0;  // cluster messages sent on behalf of FLUSH
  uint64_t regions_merged = 0;  // departed nodes' regions made out of sync here
  uint64_t deltas_sent = 0;     // server: rejoin deltas instead of a full checkpoint
  uint64_t checkpoints_taken = 0;
  uint64_t deltas_taken = 0;
  uint64_t deltas_refused = 0;  // did not rebuild the server's state: asked for a checkpoint
};

class ClusterLog : public ClusterHandler {
 public:
  ClusterLog(std::string uuid, CtrArgs args, std::unique_ptr<region::BlockDevice> device,
             const EngineOptions& options, ClusterTransport& transport, ReplySink& sink);
  ~ClusterLog() override;

  // Checks (and for a blank device, formats) the log device, then joins the log's group.
  Status Start();
  // Leaves: a clean shutdown if this node is the last member, else frees this node's slot.
  void Stop();
  // Serves every request type except CTR and DTR; the reply may come later.
  void Submit(const UlogRequest& request);

  void OnDeliver(NodeId from, std::span<const uint8_t> message) override;
  void OnMembership(const Membership& membership) override;
  void OnTransportLost() override;

  const std::string& uuid() const { return uuid_; }
  const CtrArgs& args() const { return args_; }
  NodeId node() const { return me_; }
  bool ready() const { return ready_; }
  // Ready and in a quorate view: answering the kernel.
  bool serving() const { return ready_ && Quorate() && !unconfirmed_; }
  const ClusterState& state() const { return state_; }
  const region::DirtySet& own_marks() const { return own_dirty_; }
  // clustered-disk: regions cleared but still in this node's slot (their clears linger): a
  // failure of this node now would resync them too, and the others read them in the slot.
  const std::set<RegionNo>& lingering_in_slot() const { return cleared_in_slot_; }
  const ClusterLogStats& stats() const { return stats_; }
  size_t pending_requests() const { return pending_.size(); }
  bool device_failed() const { return device_failed_; }
  // A leg change (removal or replacement) is open (proposed, not yet decided).
  bool leg_removal_open() const { return leg_tx_.has_value(); }

  // An operator's leg replacement (clogctl replace-leg / add-leg; CLUSTER.md "Leg
  // replacement"): every node reloads its table without leg `leg` (none if nullopt) and
  // with `device` (a path every node resolves itself) at sector `offset` as its new last
  // leg, as one transaction; then every region is copied to it. `done` gets Ok at the
  // commit (every node has the table loaded and resumes it), or why it was refused or
  // aborted (nothing changed then).
  struct LegReplacement {
    std::optional<uint32_t> leg;
    std::string device;
    uint64_t offset = 0;
  };
  void ReplaceLeg(const LegReplacement& change, std::function<void(Status)> done);
  // The in-sync map and marks as this node would answer IN_SYNC / IS_CLEAN.
  bool AnswersInSync(RegionNo r) const { return state_.log.InSync(r); }
  bool AnswersClean(RegionNo r) const;
  // The out-of-sync region this node would claim next (kNoRegion if none may be).
  RegionNo PickRecoveryCandidate() const;

 private:
  struct Pending {
    UlogRequest request;
    int phase = 0;
    uint64_t wait_id = 0;             // a flush/claim/done id awaiting its own delivery
    std::vector<RegionNo> new_marks;  // FLUSH: regions this flush marked
    RegionNo region = region::kNoRegion;
  };
  struct Round {
    uint64_t view_id = 0;
    std::vector<NodeId> members;
    uint32_t ring_nodes = 0;  // Membership::ring_nodes
    std::map<NodeId, AnnounceMsg> announces;
    bool decided = false;
  };

  bool disk() const { return log_dev_.has_value(); }
  // This node's marks outlive it through the cluster (MARKS), not through its slot: a core
  // log, or a disk log whose device failed here.
  bool ReplicatesMarks() const { return !disk() || device_failed_; }
  // A majority of the expected nodes in this node's ring (or, not knowing the ring, in the
  // group): only one side of a partition has one.
  bool QuorateWith(size_t members, uint32_t ring_nodes) const {
    const size_t counted = ring_nodes != 0 ? ring_nodes : members;
    return options_.expected_nodes == 0 || 2 * counted > options_.expected_nodes;
  }
  bool Quorate() const { return QuorateWith(round_.members.size(), round_.ring_nodes); }
  std::string QuorumCount() const;  // "ring of 1 of 3 nodes", for log lines
  void Log(Severity s, const std::string& message) const;
  // Runs `then` in `delay_us` unless a run is already scheduled under `scheduled` (a member
  // flag, set until it runs); nothing without a scheduler, or once this log is gone.
  void ScheduleOnce(bool& scheduled, uint64_t delay_us, std::function<void()> then);

  // Requests (cluster_log.cc).
  void Pump();
  bool TryAnswer(Pending& p);
  bool StepFlush(Pending& p, UlogReply& reply);
  bool StepResyncWork(Pending& p, UlogReply& reply);
  void Answer(const UlogReply& reply);
  void Send(const ClusterBody& body);
  void DrainOutbox();
  // From replicated state only (every member decides a CLAIM the same way).
  bool ClaimableAnywhere(RegionNo r) const;
  // ClaimableAnywhere, and not marked by this node (for picking a candidate).
  bool Claimable(RegionNo r) const;

  // Events (cluster_log_events.cc).
  void Apply(const ClusterMsg& msg);
  void OnAnnounce(NodeId from, const AnnounceMsg& m);
  void Decide();
  void Bootstrap();
  void SendCheckpoint(NodeId for_node = 0);
  void OnCheckpoint(const CheckpointMsg& m);
  void TakeState(ClusterState state);
  void BecomeReady();
  void ServerDuties();
  void MergeDeparted(NodeId node, const std::vector<RegionNo>& regions, bool overflow);
  // REPORT for a merge: this node's marks among the regions now out of sync.
  void Report(NodeId failed);
  void ReportWhereAwaited();
  // A node left: recovery waits until every member's fence grace for it has run out.
  // at_bootstrap: the node is outside a new group with regions marked (it did not just leave).
  void AwaitFenceGrace(NodeId gone, bool at_bootstrap = false);
  // Reports for fence key `key` once this member's grace has run out.
  void StartFenceGrace(NodeId key);
  // Own REPORT/BUSY delivered: releases the regions among them this node no longer marks.
  void IdleClearedSince(const std::vector<RegionNo>& regions);
  void PersistInSync(bool force);
  void FailDevice(const Status& s);

  // Rejoin deltas (cluster_log_delta.cc).
  uint64_t NewHistoryId() const;
  // Every in-sync change of the replicated state goes through these (same order, same
  // versions on every member).
  void NoteInSyncChange(RegionNo r, bool in_sync);
  void NoteInSyncReset();
  // Keeps the in-sync map this node holds now, for a delta when it is back.
  void RetainBase();
  // Server: a delta to each joiner that can take one, else one full checkpoint.
  void SendStateToJoiners(const std::vector<NodeId>& joiners);
  std::optional<DeltaMsg> BuildDelta(NodeId joiner, uint32_t checkpoint_crc);
  void OnDelta(const DeltaMsg& m);
  void OnNeedCheckpoint(NodeId from, const NeedCheckpointMsg& m);

  std::string uuid_;
  CtrArgs args_;
  std::unique_ptr<region::BlockDevice> device_;
  std::optional<region::LogDevice> log_dev_;
  EngineOptions options_;
  ClusterTransport& transport_;
  ReplySink& sink_;
  NodeId me_;
  std::string group_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  bool joined_ = false;
  bool ready_ = false;
  bool device_failed_ = false;
  ClusterState state_;
  Round round_;
  uint64_t view_id_ = 0;
  // The last view in which this node held the state with quorum (see AnnounceMsg).
  uint64_t last_quorate_view_ = 0;

  // Not ready yet: checkpoint chunks for round_.view_id, and deliveries after the decision.
  std::map<uint32_t, std::vector<uint8_t>> chunks_;
  std::vector<ClusterMsg> buffered_;
  // A delta did not rebuild the state: this node asked for its own checkpoint.
  bool asked_for_checkpoint_ = false;
  // The in-sync map this node held when it lost the cluster (base of a rejoin delta).
  struct RetainedBase {
    uint64_t history = 0;
    uint64_t version = 0;
    region::RegionBitmap in_sync;
  };
  std::optional<RetainedBase> retained_;
  // The in-sync changes since this node became ready, newest last; entry i took
  // sync_version from sync_changes_base_ + i to + i + 1. Bounded: older ones are dropped.
  std::deque<std::pair<RegionNo, bool>> sync_changes_;
  uint64_t sync_changes_base_ = 0;

  // This node's own marks (clustered-disk keeps them only here and in its slot).
  region::DirtySet own_dirty_;
  std::set<RegionNo> delta_marks_, delta_clears_;  // clustered-core: not yet multicast
  // clustered-core: the clears among delta_clears_ made since the last linger tick. A FLUSH's
  // MARKS leaves them out, so a region stays marked cluster-wide for kLingerUs to 2 x
  // kLingerUs after its clear (a tick publishes the older ones): one written again
  // meanwhile, as a hot region is, is marked again without a message. Only with a
  // scheduler; a failure resyncs these regions too, which costs a copy, not data.
  std::set<RegionNo> young_clears_;
  // clustered-disk: cleared regions its slot still holds. They linger the same way: the
  // slot is not written for a clear, a FLUSH writing new marks keeps the young ones, a
  // tick writes the slot without the older ones; marked again meanwhile, a region needs no
  // slot write. Invariant: the slot (as last written) holds every region in this set.
  std::set<RegionNo> cleared_in_slot_;
  // Writes own_dirty_ and the young cleared_in_slot_ to this node's slot `slot`.
  Status WriteOwnSlot(uint32_t slot);
  bool linger_scheduled_ = false;
  static constexpr uint64_t kLingerUs = 500'000;
  void LingerTick();
  std::vector<RegionNo> ClearsOlderThanATick() const;  // delta_clears_ but the young ones
  bool slot_dirty_ = false;
  uint64_t pending_to_sync_ = 0;  // server: regions gone in sync since the last map write
  bool pending_out_of_sync_ = false;
  // Report keys this node already reported for, and fence keys whose grace timer runs.
  std::set<NodeId> reported_;
  // The kernel was told "no resync work" while regions were out of sync; it will not ask
  // again until woken, so when work appears it is woken with a suspend/resume (rearm).
  bool kernel_starved_ = false;
  // WakeStarvedKernel waits kStarvedKernelCheckUs to see whether the kernel asks by itself
  // (GET_RESYNC_WORK requests counted in resync_asks_) before it suspends it.
  static constexpr uint64_t kStarvedKernelCheckUs = 600'000;
  bool wake_check_scheduled_ = false;
  uint64_t resync_asks_ = 0;
  // Regions that went out of sync at a failure merge but are still answered "in sync" to
  // this node's kernel until its rearm suspend has quiesced it (POSTSUSPEND): dm-raid1
  // asks IN_SYNC twice per write and caches NOSYNC for good if the answers differ, and a
  // cached NOSYNC region is then written on the primary only, even after another node
  // resynced it. Recovery of these waits for this node's report, sent after the rearm.
  std::set<RegionNo> hidden_out_of_sync_;
  std::set<RegionNo> reveal_at_postsuspend_;  // hidden before the current suspend began
  // A restarted daemon inherits its predecessor's marks, some of them stale (a CLEAR the
  // dead daemon answered but never published). After one rearm has drained the kernel,
  // every inherited mark the kernel did not mark again is released.
  std::set<RegionNo> adopted_marks_;
  void DropStaleAdoptedMarks();
  // The kernel asked IN_SYNC for r: dm-raid1 asks only for a region not in its region hash,
  // so it holds no write to r marked, and an inherited mark of r is stale. Released at
  // once: the rearm that would release it can wait for a write to r that waits for r's
  // copy, which that very mark holds up (clog-sim --seed 3258 --legs 3).
  void DropAdoptedMarkOf(RegionNo r);
  void ReleaseInheritedCopies(const std::vector<RegionNo>& regions);
  // Drops this node's mark of r, to be published as a clear; false if it held none.
  bool ForgetOwnMark(RegionNo r);
  // Publishes this node's pending mark changes now (slot write / MARKS, IDLE).
  void PublishOwnMarks();
  // A daemon that (re)joins does not know what its running kernel has seen: every
  // out-of-sync region is hidden until its first rearm.
  bool hide_all_out_of_sync_ = false;
  bool reveal_all_at_postsuspend_ = false;
  bool KernelSeesInSync(RegionNo r) const {
    return state_.log.InSync(r) ||
           (!state_.Uncopied(r) && (hide_all_out_of_sync_ || hidden_out_of_sync_.contains(r)));
  }
  bool rearm_in_flight_ = false;
  // Suspends the local mirror until this node serves again (transport or quorum lost).
  void FreezeKernel();
  // Joins the log's group after a second, and again every second until it works.
  void ScheduleJoin(uint64_t attempt);
  bool frozen_ = false;
  // Held the state without quorum: with quorum back (a healed partition) it serves again
  // only once the announce round has found its state the newest (Decide), never from the
  // membership change until then (clog-sim --seed 5 --nodes 3 --scenario partition).
  bool unconfirmed_ = false;
  void WakeStarvedKernel();
  // Runs `then` after a complete suspend/resume of the local mirror that began after this
  // call (one at a time; requests made meanwhile share the next one). At once without a
  // rearm hook.
  void Rearm(std::function<void()> then);
  void StartRearm();
  std::vector<std::function<void()>> rearm_waiters_;

  // Leg removal (cluster_leg_removal.cc, CLUSTER.md "Leg removal").
  struct LegTx {  // agreed: the same on every ready member
    uint64_t tx = 0;
    NodeId proposer = 0;
    uint32_t leg = 0;  // kNoLeg: none removed (a replacement that only adds)
    uint32_t legs = 0;
    std::set<NodeId> awaiting;  // members whose yes has not been delivered
    // The proposer's table lags a removal the cluster recorded: only it reloads, and
    // nobody starts a copy meanwhile, so its suspend can drain (see OnLegRemoval).
    bool catch_up = false;
    // A replacement (LEG_REPLACE): the new leg's device and offset, and whether the leg
    // it replaces failed.
    bool replace = false;
    std::string device;
    uint64_t offset = 0;
    bool leg_failed = false;

    LegChange Change() const;
  };
  // A failed write or copy (SET_REGION_SYNC 0): look at the legs, propose a removal.
  void CheckLegs();
  // Region `r`, in sync until now, went out of sync because a write to it failed on
  // `node`: as at a merge, every member hides it from its kernel until a rearm and reports
  // its marks, and its recovery waits for the reports.
  void OutOfSyncByFailedWrite(RegionNo r, NodeId node);
  // The rearm that reveals hidden regions (a merge's, a failed write's). Put off:
  //  * while a leg change is under way here (a failed leg seen, its check or transaction
  //    open), or may be coming (another node's write failed: up to 1 s for its proposal
  //    to remove the leg): that change suspends the kernel anyway, and a rearm before it
  //    resets the kernel's in-sync hint to 0, so the change's own suspend then waits out
  //    dm-log-userspace's IS_REMOTE_RECOVERING throttle (scripts/faults leg-fails: a
  //    489 ms prepare after a rearm, 122 ms without);
  //  * while this node's kernel has a write waiting for another node's copy (told
  //    "recovering", region still out of sync): its suspend would wait for that copy, and
  //    if every member suspended so, nobody would copy (clog-sim --seed 2107 --legs 3: a
  //    node left while a new leg was being copied);
  //  * on the log server, while its kernel sees a region out of sync; and on every node
  //    while there is no server: a write that comes in during the suspend may have to
  //    wait for a copy too, so one kernel, the server's, goes on copying.
  // Pump tries again.
  void RevealHidden();
  // A new table's kernel (a committed reload) has asked nothing: nothing is hidden from it.
  void UnhideAll();
  bool reveal_wanted_ = false;  // a reveal rearm is due but was put off
  // Nodes whose failed write was delivered here and whose leg removal may follow (by the
  // number of the wait that ends it); the reveal waits for it.
  std::map<NodeId, uint64_t> leg_verdict_awaited_;
  uint64_t leg_verdict_waits_ = 0;
  std::set<RegionNo> copy_awaited_;  // told "recovering" for these (IS_REMOTE_RECOVERING)
  bool KernelAwaitsACopy();
  bool KernelSeesAnyOutOfSync();
  std::array<uint64_t, 4> seen_out_of_sync_key_{~uint64_t{0}, 0, 0, 0};
  bool seen_out_of_sync_ = false;
  void OnLegHealth(const Result<LegHealth>& health);
  void OnLegRemoval(NodeId from, const LegRemovalMsg& m);
  void OnLegVote(NodeId from, const LegVoteMsg& m);
  void DecideLegTx(bool commit, const std::string& why);
  // Replacement (cluster_leg_replace.cc).
  void ProposeReplacement(const LegReplacement& change, const LegHealth& health,
                          std::function<void(Status)> done);
  void OnLegReplace(NodeId from, const LegReplaceMsg& m);
  // Commit: the new leg holds nothing, so every region goes out of sync on every member.
  void CommitReplacement(const LegTx& tx);
  // The proposer's waiter for `tx`, if any, gets `s`.
  void AnswerReplacement(uint64_t tx, const Status& s);
  // Refusals of a proposal that every member reaches alike (the same agreed state).
  std::optional<std::string> LegProposalRefusal(uint32_t epoch, uint32_t legs) const;
  std::map<uint64_t, std::function<void(Status)>> replace_waiters_;  // by tx
  // clustered-disk server: a replacement is prepared here, so the device's in-sync map is
  // written as all out of sync (a whole-cluster restart must copy the new leg).
  bool replace_prepared_ = false;
  // This node's side of a transaction, or a catch-up removal done alone.
  void PrepareLocal(uint64_t tx, const LegChange& change);
  // next: before every queued kernel op (the mirror is suspended with a table loaded).
  void FinishLocal(bool commit, bool next);
  // A table with more legs than the cluster's record (a reload this node missed).
  void CatchUpLegs(const LegHealth& health);
  bool IsCatchUp(const LegRemovalMsg& m) const;
  // Kernel operations (rearm, leg hooks) run one at a time; a loaded table also keeps
  // rearms out until it is committed or dropped (a resume would make it live).
  bool KernelOpAllowed(bool rearm) const;
  bool LocalLegBusy() const;
  void RunKernelOps();
  std::deque<std::function<void(std::function<void()> done)>> leg_ops_;
  bool leg_op_in_flight_ = false;
  std::optional<LegTx> leg_tx_;
  uint64_t preparing_tx_ = 0;  // the prepare hook runs for this transaction
  uint64_t prepared_tx_ = 0;   // the mirror is suspended with its table loaded for this one
  std::map<uint64_t, bool> early_decisions_;  // decided while its prepare ran
  bool leg_check_in_flight_ = false;
  bool leg_check_again_ = false;
  // Committed reloads decided or finished here. A look at the legs begun before one may
  // have read the old table (the device-mapper thread runs it between the reload's prepare
  // and its finish): it is looked at again instead.
  uint64_t table_changes_ = 0;
  bool leg_retry_scheduled_ = false;
  bool leg_proposed_ = false;  // our LEG_REMOVAL is not delivered yet
  // This node's table (the cluster's current one) has a failed leg: see IS_REMOTE_RECOVERING.
  bool legs_unrecoverable_ = false;
  uint32_t next_leg_tx_ = 1;
  uint32_t two_leg_warned_ = 0;  // leg count last warned about (cannot go below 2 legs)

  std::deque<Pending> pending_;
  std::deque<std::vector<uint8_t>> outbox_;
  bool drain_scheduled_ = false;
  uint64_t next_id_ = 1;
  std::set<uint64_t> delivered_ids_;        // this node's MARKS/BUSY flush ids seen delivered
  std::map<RegionNo, bool> claim_results_;  // this node's claims, once delivered: won?
  std::set<RegionNo> dones_delivered_;      // this node's DONEs seen delivered
  ClusterLogStats stats_;
};

}  // namespace clogd::logd
