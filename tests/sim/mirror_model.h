// One node's dm-raid1 mirror with the userspace dirty log, as the simulator's kernel. It
// talks to "the daemon" only through dm-ulog request frames (to_daemon / OnReply) and does
// its data I/O on the shared SimLegs. What it models, after dm-raid1.c, dm-region-hash.c and
// dm-log-userspace-{base,transfer}.c (facts, not code):
//
// * Request channel (mirror_model_channel.cc): one request outstanding per mirror, seq from
//   the node's kernel-wide counter, matched on seq only; no reply in 15 s: re-send under a new
//   seq, forever; -EAGAIN: re-send at once; -ESRCH (no listener) on a request of the running
//   log: every 2 s re-send CTR (with its NUL) until it succeeds, then RESUME, then the request.
//   CTR/DTR/PRESUSPEND/POSTSUSPEND/RESUME go out once, errors returned (no -ESRCH dance).
// * kmirrord (mirror_model_kmirrord.cc): a single-threaded pass, run when woken (new bio on an
//   empty list, region idle, recovery end, the 200 ms requeue timer, resume), doing in order:
//   update states (CLEAR idle regions, SET_REGION_SYNC recovered ones, flush), recovery,
//   reads, writes, failures. Writes: IS_REMOTE_RECOVERING (skipped below in_sync_hint;
//   throttled to one query per 250 ms per node, a throttled one counts as recovering;
//   recovering: requeue, 200 ms timer), region state (cached, else IN_SYNC), pending counts
//   (a miss allocates the region with a second IN_SYNC; CLEAN -> DIRTY queues a mark), one log
//   flush for the batch (CLEARs, MARKs, FLUSH; with integrated_flush the marks are the FLUSH
//   payload and a clear-only flush is deferred 3 s), then CLEAN/DIRTY bios go to every table
//   leg, NOSYNC ones to the default leg only (never marked), RECOVERING ones wait.
// * Recovery (mirror_model_recovery.cc): one region at a time: GET_RESYNC_WORK (not asked once
//   in_sync_hint >= region count), quiesce, copy default leg -> other table legs block by
//   block (read, then writes: separate async steps), SET_REGION_SYNC; GET_SYNC_COUNT on every
//   pass until it equals the region count (then the hint is set to it and it is not asked
//   again until a new table; only a resume resets the hint).
// * Leg errors (handle_errors): failed write -> SET_REGION_SYNC(r, 0), region NOSYNC, the bio
//   held and a dm event; held bios are requeued by a noflush suspend and re-issued on the table
//   that is resumed next (ReplaceTable). Without handle_errors the write completes.
//
// Simplified: bios are one block; one mirror per model (several may share a NodeKernel); no
// STATUS, no discards/flush bios, no keep_log, no barrier failure; kcopyd copies one block at a
// time; GET_REGION_SIZE's answer is checked but does not resize the log. `poll_period_us`
// adds a periodic kmirrord wake the kernel does not have (0, the default, is faithful).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "logd/ulog_codec.h"
#include "region/status.h"
#include "tests/sim/event_loop.h"
#include "tests/sim/legs.h"
#include "tests/sim/sim_rng.h"

namespace clogd::sim {

class DataChecker;

// Kernel timings (HZ-based there).
inline constexpr SimTime kUlogRetryTimeoutUs = 15'000'000;       // DM_ULOG_RETRY_TIMEOUT
inline constexpr SimTime kEsrchRetryUs = 2'000'000;              // userspace_do_request
inline constexpr SimTime kRemoteRecoveringThrottleUs = 250'000;  // HZ / 4, all logs
inline constexpr SimTime kRequeueDelayUs = 200'000;              // delayed_wake: HZ / 5
inline constexpr SimTime kIntegratedFlushDelayUs = 3'000'000;    // flush_log_work: 3 * HZ

// State the kernel keeps once for all userspace logs of a node.
struct NodeKernel {
  uint32_t next_seq = 1;                // dm_ulog_seq
  SimTime remote_recovering_limit = 0;  // the static `limit` of is_remote_recovering
};

enum class RegionState { kClean, kDirty, kNosync, kRecovering };
const char* RegionStateName(RegionState state);

enum class MirrorState {
  kNew,
  kStarting,  // CTR / GET_REGION_SIZE / RESUME under way
  kRunning,
  kSuspending,  // Stop, RearmHint, ReplaceTable or PrepareReload under way
  kSuspended,   // PrepareReload done: waiting for CommitReload or AbortReload
  kStopped,
  kCrashed,
  kFailed,  // CTR refused: the table never loaded
};

struct MirrorConfig {
  int node = 0;
  std::string uuid = "LVM-simmirror";
  uint64_t luid = 1;  // the first log instance; ReplaceTable takes the next ones
  // What the kernel sends with CTR: "<sectors> clustered-disk /dev/simlog <region size> ...".
  // Its target length and region size must give SimLegs::nr_regions() regions.
  std::string ctr;
  std::vector<int> legs;  // the table's legs, the default (primary) first
  bool integrated_flush = false;
  // dm-log-cluster.ko (a `mirror cluster` table): integrated_flush, and "in sync" answers
  // to a blocking IN_SYNC kept until the next postsuspend, resume or SET_REGION_SYNC of the
  // region (kmod/README.md "The in-sync cache"). Off: the stock userspace log of an LVM table.
  bool in_sync_cache = false;
  bool handle_errors = true;
  SimTime poll_period_us = 0;  // see the header comment
};

struct MirrorStats {
  uint64_t writes_issued = 0;
  uint64_t writes_acked = 0;   // completed without error
  uint64_t writes_failed = 0;  // completed with an error
  uint64_t reads_issued = 0;
  uint64_t reads_done = 0;
  uint64_t requests_sent = 0;       // frames, re-sends included
  uint64_t in_sync_cache_hits = 0;  // IN_SYNC answered by the module's cache, not sent
  uint64_t sent_by_type[32] = {};
  uint64_t timeouts = 0;  // 15 s without a reply
  uint64_t eagain_resends = 0;
  uint64_t esrch_events = 0;           // requests that started the CTR/RESUME dance
  uint64_t stale_replies = 0;          // replies whose seq is not the outstanding one
  uint64_t error_replies = 0;          // replies with an error other than -EAGAIN
  SimTime max_request_latency_us = 0;  // first send to final reply, re-sends included
  uint64_t remote_recovering_queries = 0;
  uint64_t remote_recovering_throttled = 0;  // skipped by the 250 ms limit (= recovering)
  uint64_t requeued_writes = 0;
  uint64_t passes = 0;
  uint64_t regions_recovered = 0;
  uint64_t recoveries_failed = 0;
  uint64_t dm_events = 0;
};

class MirrorModel {
 public:
  using ToDaemon = std::function<void(const logd::UlogRequest&)>;
  using WriteDone = std::function<void(Status)>;
  using ReadDone = std::function<void(Status, uint64_t value)>;

  // `checker` (optional) is told of writes issued/acked and checks reads; `kernel`
  // (optional) is shared by the mirrors of one node, else the model has its own.
  MirrorModel(EventLoop& loop, SimRng& rng, SimLegs& legs, MirrorConfig config, ToDaemon to_daemon,
              DataChecker* checker = nullptr, NodeKernel* kernel = nullptr);
  ~MirrorModel();
  MirrorModel(const MirrorModel&) = delete;
  MirrorModel& operator=(const MirrorModel&) = delete;

  // Table load + resume: CTR (no NUL), GET_REGION_SIZE, RESUME. Refuses (nothing sent) a bad
  // ctr string, a region count that does not match the legs, or bad table legs.
  Status Start();
  // Suspend (I/O drained, held writes failed), PRESUSPEND, POSTSUSPEND, DTR; then `done`.
  Status Stop(std::function<void()> done = {});
  // The node dies: nothing more is sent or completed; its writes in flight land or not
  // (returned: how many of each).
  SimLegs::Abandoned Crash();
  // What the daemon does to re-arm a kernel whose in_sync_hint stopped resync work: a noflush
  // suspend and resume of the same table (PRESUSPEND, POSTSUSPEND, RESUME): the hint becomes
  // 0; the region hash and "mirror in sync" survive, as in the kernel.
  Status RearmHint(std::function<void()> done = {});
  // Noflush suspend (held writes requeued), PRESUSPEND, POSTSUSPEND, load a table with `legs`
  // (CTR + GET_REGION_SIZE under a new luid), RESUME it, DTR the old one, re-issue the
  // requeued writes on the new table.
  Status ReplaceTable(std::vector<int> legs, std::function<void()> done = {});
  // The same in two phases, as a cluster-wide reload does it (DESIGN.md §4.6): the noflush
  // suspend and the load, after which the mirror stays suspended (kSuspended) with the new
  // table inactive and `loaded(true)` runs (`loaded(false)`: the load failed, still
  // suspended); then CommitReload resumes the loaded table (RESUME it, DTR the old one) or
  // AbortReload drops it (DTR) and resumes the old one.
  Status PrepareReload(std::vector<int> legs, std::function<void(bool loaded)> loaded);
  Status CommitReload(std::function<void()> done = {});
  Status AbortReload(std::function<void()> done = {});
  // The legs of the loaded inactive table (empty if none).
  const std::vector<int>& inactive_legs() const { return inactive_legs_; }

  // A reply from the daemon (matched on seq). May be called from inside to_daemon.
  void OnReply(const logd::UlogReply& reply);
  // The request `seq` could not be sent (no daemon listening: cn_netlink_send's -ESRCH).
  // Unlike an answer, this leaves the caller's reply buffer as it was.
  void OnSendFailed(uint32_t seq, int32_t error);
  // An empty connector message with ack = EAGAIN for `seq` (what a restarted clogd sends for
  // the requests its killed predecessor took, logd/request_record.h): re-sent at once under
  // a new seq, the reply buffer kept (fill_pkg's zero-length path).
  void OnRetryMessage(uint32_t seq);
  // The seq of the request waiting for an answer, if one was sent.
  std::optional<uint32_t> outstanding_seq() const;

  // One-block bios. `done` runs when the bio completes (never for a crashed node); a bio
  // that cannot be taken (bad block, stopped, crashed) completes at once with an error.
  void Write(uint64_t block, uint64_t value, WriteDone done = {});
  void Read(uint64_t block, ReadDone done);

  MirrorState state() const { return state_; }
  const MirrorConfig& config() const { return config_; }
  const MirrorStats& stats() const { return stats_; }
  uint64_t luid() const { return luid_; }
  uint64_t in_sync_hint() const { return hint_; }
  bool mirror_in_sync() const { return ms_in_sync_; }  // ms->in_sync
  const std::vector<int>& table_legs() const { return table_; }
  // Table legs this kernel has seen fail (what `dmsetup status` shows as D, R or S).
  std::vector<int> failed_table_legs() const;
  int default_leg() const;
  size_t held_writes() const { return holds_.size(); }
  size_t bios_in_target() const { return target_bios_; }
  bool recovering() const { return recovery_in_flight_ != 0; }
  std::optional<RegionState> CachedState(uint64_t region) const;
  // Things the daemon did wrong as the kernel sees them (short/long replies, bad work).
  const std::vector<std::string>& protocol_errors() const { return protocol_errors_; }
  // dm events raised (leg failure, log failure, sync complete), oldest first.
  const std::vector<std::string>& dm_events() const { return dm_events_; }
  // One line per request sent, reply taken and bio completed, for determinism checks.
  void SetTrace(std::function<void(const std::string&)> trace) { trace_ = std::move(trace); }

 private:
  using Next = std::function<void()>;
  using ReplyFn = std::function<void(int32_t error, const std::vector<uint8_t>& payload)>;
  using BioId = uint64_t;
  enum class RegionList { kNone, kClean, kQuiesced, kRecovered, kFailedRecovered };
  enum ErrorType : uint8_t { kWriteError = 1, kSyncError = 2, kReadError = 4 };

  struct Region {
    RegionState state = RegionState::kClean;
    int64_t pending = 0;
    RegionList list = RegionList::kNone;
    std::vector<BioId> delayed;
  };
  struct Bio {
    bool write = false;
    uint64_t block = 0;
    uint64_t value = 0;
    WriteDone write_done;
    ReadDone read_done;
    bool in_target = false;
    bool counted = false;  // region pending count holds it
    size_t legs_left = 0;
    std::vector<int> failed_legs;
    uint64_t read_floor = 0;
  };
  struct Consultation {
    uint32_t type = 0;
    std::vector<uint8_t> payload;
    uint64_t luid = 0;
    size_t reply_cap = 0;
    ReplyFn done;
    SimTime first_sent = 0;
  };
  struct Copy {  // one kcopyd job: default leg -> the other table legs
    int source = 0;
    std::vector<int> dests;
    uint64_t next_block = 0;
    uint64_t end_block = 0;
    bool read_error = false;
    std::vector<int> failed_dests;
    size_t writes_left = 0;
  };
  struct SuspendPlan {
    bool stop = false;  // flush suspend + DTR; else noflush
    std::optional<std::vector<int>> new_legs;
    std::function<void()> done;
    std::function<void(bool)> loaded;  // PrepareReload: stay suspended after the load
    bool presuspend_sent = false;
    bool presuspend_done = false;
    bool postsuspend_started = false;
  };

  // Runs fn only while this model exists and has not crashed.
  template <typename F>
  auto Guard(F fn) {
    return [this, token = alive_, fn = std::move(fn)](auto&&... args) {
      if (!*token || crashed_) return;
      fn(std::forward<decltype(args)>(args)...);
    };
  }
  void After(SimTime delay_us, Next fn);
  void Trace(const std::string& line);
  void ProtocolError(const std::string& what);
  void RaiseEvent(const std::string& what);
  Status CheckTable(const std::vector<int>& legs) const;
  // Makes the loaded table (log instance `new_luid`, `legs`) live: RESUME it, DTR the old.
  void SwapInTable(uint64_t new_luid, std::vector<int> legs, std::function<void()> done);
  void ResumeOldTable(std::function<void()> done);

  // mirror_model_channel.cc: dm_consult_userspace / userspace_do_request and the log ops.
  // `reply_cap`: the reply buffer; by default the one the kernel gives this type.
  void Consult(uint32_t type, std::vector<uint8_t> payload, uint64_t luid, ReplyFn done,
               std::optional<size_t> reply_cap = std::nullopt);
  void PumpConsults();
  void SendCurrent();
  // userspace_do_request. `reply_cap`: its caller's buffer size, which (as in the kernel) an
  // error reply frame overwrites with its own payload size before the -ESRCH retry.
  void DoRequest(uint32_t type, std::vector<uint8_t> payload, ReplyFn done,
                 std::optional<size_t> reply_cap = std::nullopt);
  void EsrchDance(std::function<void(bool resumed)> then);
  void InSync(uint64_t region, std::function<void(bool)> done);
  void IsRemoteRecovering(uint64_t region, std::function<void(bool)> done);
  void GetResyncWork(std::function<void(bool has_work, uint64_t region)> done);
  void GetSyncCount(std::function<void(uint64_t)> done);
  void SetRegionSync(uint64_t region, bool in_sync, Next done);
  void LogFlush(std::function<void(int32_t error)> done);
  void FlushGroups(uint32_t type, std::shared_ptr<std::vector<uint64_t>> regions, size_t from,
                   bool one_by_one, std::function<void(int32_t)> done);
  void ScheduleDelayedFlush();
  void RunDelayedFlush(Next done);

  // mirror_model_kmirrord.cc: the kmirrord pass, region hash, reads, writes, failures.
  void Wake();
  void DelayedWake();
  void QueueBio(std::vector<BioId>& list, BioId id);
  void RunPass();
  void EndPass();
  void UpdateStates(Next next);
  void CompleteResyncWork(uint64_t region, bool success, std::vector<BioId> delayed, Next next);
  void GetState(uint64_t region, std::function<void(RegionState)> done);
  void FindRegion(uint64_t region, std::function<void(Region&)> done);
  void TakeOffList(uint64_t region, Region& reg);
  void RhInc(BioId id, Next next);
  void RhDec(uint64_t region);
  void DoReads(Next next);
  void ReadFromLeg(BioId id, int leg);
  void DoWrites(Next next);
  void DoWrite(BioId id);
  void WriteDefaultLeg(BioId id);
  void OnLegWriteDone(BioId id, int leg, Status status);
  void DoFailures(Next next);
  void HoldBio(BioId id);
  void EndBio(BioId id, Status status, uint64_t value = 0);
  void RequeueBio(BioId id);
  void FailMirror(int leg, ErrorType type);
  bool AnyValidLeg() const;
  int ChooseReadLeg();

  // mirror_model_recovery.cc
  void DoRecovery(Next next);
  void RecoveryPrepare(Next next);
  void StartCopy(uint64_t region);
  void CopyNextBlock(uint64_t region);
  void RecoveryEnd(uint64_t region, bool success);

  // mirror_model.cc: lifecycle.
  void LoadTable(uint64_t luid, std::function<void(bool ok)> done);
  void SubmitBio(BioId id);
  void BeginSuspend(SuspendPlan plan);
  void AdvanceSuspend();
  bool DrainedForSuspend() const;
  void FinishSuspend();
  void ResumeTable();
  void PollTick();

  EventLoop& loop_;
  SimRng& rng_;
  SimLegs& legs_;
  MirrorConfig config_;
  ToDaemon to_daemon_;
  DataChecker* checker_;
  NodeKernel own_kernel_;
  NodeKernel* kernel_;
  std::shared_ptr<bool> alive_;
  bool crashed_ = false;
  MirrorState state_ = MirrorState::kNew;

  // The table and its log instance (a new table starts these afresh).
  std::vector<int> table_;
  size_t default_ = 0;                // index into table_
  std::vector<uint32_t> leg_errors_;  // per table index: error_count
  std::vector<uint8_t> leg_error_types_;
  uint64_t luid_ = 0;
  uint64_t next_luid_ = 0;
  // PrepareReload's loaded inactive table and its log instance (0: none).
  std::vector<int> inactive_legs_;
  uint64_t inactive_luid_ = 0;
  uint64_t target_sectors_ = 0;
  uint64_t region_size_ = 0;
  uint64_t nr_regions_ = 0;
  bool ms_in_sync_ = false;
  bool leg_failure_ = false;
  bool log_failure_ = false;
  bool suspended_flag_ = false;  // ms->suspend
  uint64_t hint_ = 0;            // lc->in_sync_hint
  // dm-log-cluster.ko's cache (config_.in_sync_cache): regions answered "in sync", and a
  // generation that drops an answer in flight when the cache is emptied.
  std::set<uint64_t> in_sync_cached_;
  uint64_t in_sync_generation_ = 0;
  void DropInSyncCache();

  // dm-log-userspace's queued marks and clears.
  std::vector<uint64_t> mark_list_;
  std::vector<uint64_t> clear_list_;
  bool sched_flush_ = false;
  EventLoop::EventId flush_timer_ = 0;

  // dm-region-hash.
  std::map<uint64_t, Region> hash_;
  std::vector<uint64_t> clean_regions_;
  std::vector<uint64_t> quiesced_;
  std::vector<uint64_t> recovered_;
  std::vector<uint64_t> failed_recovered_;
  int recovery_slots_ = 0;  // recovery_count semaphore (MAX_RECOVERY = 1)
  int recovery_in_flight_ = 0;
  bool recovery_stopped_ = true;  // dm_rh_stop_recovery until the first resume
  std::map<uint64_t, Copy> copies_;

  // kmirrord.
  std::vector<BioId> writes_;
  std::vector<BioId> reads_;
  std::vector<BioId> failures_;
  std::vector<BioId> holds_;
  bool pass_running_ = false;
  bool pass_scheduled_ = false;
  bool rerun_ = false;
  bool timer_pending_ = false;
  bool poll_started_ = false;
  std::vector<BioId> pass_writes_;
  std::vector<BioId> pass_reads_;
  std::vector<BioId> pass_failures_;

  std::map<BioId, Bio> bios_;
  BioId next_bio_ = 1;
  size_t target_bios_ = 0;
  std::vector<BioId> deferred_;  // waiting for a resume (dm core holds them)

  // The request channel.
  std::deque<Consultation> consult_queue_;
  std::optional<Consultation> current_;
  uint32_t current_seq_ = 0;
  EventLoop::EventId timeout_event_ = 0;

  std::optional<SuspendPlan> suspend_;
  MirrorStats stats_;
  std::vector<std::string> protocol_errors_;
  std::vector<std::string> dm_events_;
  std::function<void(const std::string&)> trace_;
};

}  // namespace clogd::sim
