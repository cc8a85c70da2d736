// The mirror model's lifecycle and bio entry points: table load and resume, suspend (flush
// for Stop, noflush for RearmHint and ReplaceTable) with the kernel's ordering, crash.
// See mirror_model.h for what is modelled.
#include "tests/sim/mirror_model.h"

#include <set>
#include <string>
#include <utility>

#include "logd/ctr_args.h"
#include "tests/sim/data_checker.h"

namespace clogd::sim {

namespace {
using logd::RequestType;
constexpr uint32_t T(RequestType type) { return static_cast<uint32_t>(type); }
}  // namespace

const char* RegionStateName(RegionState state) {
  switch (state) {
    case RegionState::kClean:
      return "CLEAN";
    case RegionState::kDirty:
      return "DIRTY";
    case RegionState::kNosync:
      return "NOSYNC";
    case RegionState::kRecovering:
      return "RECOVERING";
  }
  return "?";
}

MirrorModel::MirrorModel(EventLoop& loop, SimRng& rng, SimLegs& legs, MirrorConfig config,
                         ToDaemon to_daemon, DataChecker* checker, NodeKernel* kernel)
    : loop_(loop),
      rng_(rng),
      legs_(legs),
      config_(std::move(config)),
      to_daemon_(std::move(to_daemon)),
      checker_(checker),
      kernel_(kernel != nullptr ? kernel : &own_kernel_),
      alive_(std::make_shared<bool>(true)) {
  luid_ = config_.luid;
  next_luid_ = config_.luid + 1;
}

MirrorModel::~MirrorModel() { *alive_ = false; }

void MirrorModel::After(SimTime delay_us, Next fn) {
  loop_.Schedule(delay_us, Guard(std::move(fn)));
}

void MirrorModel::Trace(const std::string& line) {
  if (trace_) {
    trace_("t=" + std::to_string(loop_.Now()) + " n" + std::to_string(config_.node) + " " + line);
  }
}

void MirrorModel::ProtocolError(const std::string& what) {
  protocol_errors_.push_back("node " + std::to_string(config_.node) + ": " + what);
  Trace("protocol error: " + what);
}

void MirrorModel::RaiseEvent(const std::string& what) {
  ++stats_.dm_events;
  dm_events_.push_back(what);
  Trace("dm event: " + what);
}

int MirrorModel::default_leg() const { return table_.empty() ? -1 : table_[default_]; }

std::optional<RegionState> MirrorModel::CachedState(uint64_t region) const {
  auto it = hash_.find(region);
  if (it == hash_.end()) return std::nullopt;
  return it->second.state;
}

// The kernel refuses fewer than 2 legs; the model takes 1 so that a 2-leg mirror can lose a
// leg (LVM would turn it into a linear device, which needs no log).
Status MirrorModel::CheckTable(const std::vector<int>& legs) const {
  if (legs.empty() || legs.size() > 9) {
    return InvalidArgument("a mirror table needs 1 to 9 legs, got " + std::to_string(legs.size()));
  }
  std::set<int> seen;
  for (int leg : legs) {
    if (leg < 0 || leg >= legs_.nr_legs()) {
      return InvalidArgument("table leg " + std::to_string(leg) + " does not exist");
    }
    if (!seen.insert(leg).second) {
      return InvalidArgument("table leg " + std::to_string(leg) + " appears twice");
    }
  }
  return Status::Ok();
}

Status MirrorModel::Start() {
  if (state_ != MirrorState::kNew) return Busy("the mirror was already started");
  Result<logd::CtrArgs> args = logd::ParseCtrString(config_.ctr);
  if (!args.ok()) return args.status();
  if (config_.ctr.size() > logd::kMaxUlogPayload) {
    return InvalidArgument("ctr string of " + std::to_string(config_.ctr.size()) +
                           " bytes exceeds the kernel's " + std::to_string(logd::kMaxUlogPayload));
  }
  if (args->RegionCount() != legs_.nr_regions()) {
    return InvalidArgument("ctr string '" + config_.ctr + "' gives " +
                           std::to_string(args->RegionCount()) + " regions, the legs have " +
                           std::to_string(legs_.nr_regions()));
  }
  CLOG_RETURN_IF_ERROR(CheckTable(config_.legs));
  target_sectors_ = args->target_sectors;
  region_size_ = args->region_size;
  nr_regions_ = legs_.nr_regions();
  table_ = config_.legs;
  leg_errors_.assign(table_.size(), 0);
  leg_error_types_.assign(table_.size(), 0);
  state_ = MirrorState::kStarting;
  LoadTable(luid_, [this](bool ok) {
    if (!ok) {
      state_ = MirrorState::kFailed;
      for (BioId id : deferred_) EndBio(id, IoError("the mirror table failed to load"));
      deferred_.clear();
      return;
    }
    hint_ = 0;  // userspace_resume
    Consult(T(RequestType::kResume), {}, luid_,
            [this](int32_t, const std::vector<uint8_t>&) { ResumeTable(); });
  });
  return Status::Ok();
}

// userspace_ctr: CTR (the string without its NUL), then GET_REGION_SIZE; either failing
// fails the table load. Both go out once: no -ESRCH dance here.
void MirrorModel::LoadTable(uint64_t luid, std::function<void(bool)> done) {
  std::vector<uint8_t> ctr(config_.ctr.begin(), config_.ctr.end());
  Consult(T(RequestType::kCtr), std::move(ctr), luid,
          [this, luid, done = std::move(done)](int32_t error, const std::vector<uint8_t>&) {
            if (error != 0) {
              RaiseEvent("table load failed: CTR error " + std::to_string(error));
              done(false);
              return;
            }
            Consult(T(RequestType::kGetRegionSize), {}, luid,
                    [this, done](int32_t size_error, const std::vector<uint8_t>& reply) {
                      if (size_error != 0) {
                        RaiseEvent("table load failed: GET_REGION_SIZE error " +
                                   std::to_string(size_error));
                        done(false);
                        return;
                      }
                      uint64_t size = 0;
                      if (reply.size() >= 8) {
                        for (size_t i = 0; i < 8; ++i) size |= uint64_t{reply[i]} << (8 * i);
                      }
                      if (size != region_size_) {
                        ProtocolError("GET_REGION_SIZE answered " + std::to_string(size) +
                                      ", the table says " + std::to_string(region_size_));
                      }
                      done(true);
                    });
          });
}

// mirror_resume after the log's RESUME: recovery restarts, held-back bios go in.
void MirrorModel::ResumeTable() {
  DropInSyncCache();  // cluster_resume (and a new table's log is a new, empty instance)
  suspended_flag_ = false;
  recovery_stopped_ = false;
  recovery_slots_ = 1 - recovery_in_flight_;
  state_ = MirrorState::kRunning;
  std::vector<BioId> deferred = std::move(deferred_);
  deferred_.clear();
  for (BioId id : deferred) SubmitBio(id);
  Wake();
  if (!poll_started_ && config_.poll_period_us > 0) {
    poll_started_ = true;
    PollTick();
  }
}

void MirrorModel::PollTick() {
  After(config_.poll_period_us, [this] {
    if (state_ == MirrorState::kStopped || state_ == MirrorState::kFailed) return;
    Wake();
    PollTick();
  });
}

void MirrorModel::Write(uint64_t block, uint64_t value, WriteDone done) {
  Status refused;
  if (block >= legs_.nr_blocks()) {
    refused = OutOfRange("write to block " + std::to_string(block) + " past the end");
  } else if (crashed_ || state_ == MirrorState::kStopped || state_ == MirrorState::kFailed) {
    refused = IoError("the mirror on node " + std::to_string(config_.node) + " is gone");
  }
  if (!refused.ok()) {
    if (done) done(refused);
    return;
  }
  ++stats_.writes_issued;
  if (checker_ != nullptr) checker_->OnWriteIssued(config_.node, block, value);
  const BioId id = next_bio_++;
  Bio& bio = bios_[id];
  bio.write = true;
  bio.block = block;
  bio.value = value;
  bio.write_done = std::move(done);
  Trace("write block=" + std::to_string(block) + " value=" + std::to_string(value));
  SubmitBio(id);
}

void MirrorModel::Read(uint64_t block, ReadDone done) {
  Status refused;
  if (block >= legs_.nr_blocks()) {
    refused = OutOfRange("read of block " + std::to_string(block) + " past the end");
  } else if (crashed_ || state_ == MirrorState::kStopped || state_ == MirrorState::kFailed) {
    refused = IoError("the mirror on node " + std::to_string(config_.node) + " is gone");
  }
  if (!refused.ok()) {
    if (done) done(refused, 0);
    return;
  }
  ++stats_.reads_issued;
  const BioId id = next_bio_++;
  Bio& bio = bios_[id];
  bio.block = block;
  bio.read_done = std::move(done);
  bio.read_floor = checker_ != nullptr ? checker_->OnReadIssued(block) : 0;
  SubmitBio(id);
}

// mirror_map: into kmirrord's lists, or held by dm core while the device is not running.
void MirrorModel::SubmitBio(BioId id) {
  Bio& bio = bios_.at(id);
  if (state_ != MirrorState::kRunning) {
    deferred_.push_back(id);
    return;
  }
  bio.in_target = true;
  ++target_bios_;
  QueueBio(bio.write ? writes_ : reads_, id);
}

Status MirrorModel::Stop(std::function<void()> done) {
  if (state_ != MirrorState::kRunning) return Busy("Stop needs a running mirror");
  SuspendPlan plan;
  plan.stop = true;
  plan.done = std::move(done);
  BeginSuspend(std::move(plan));
  return Status::Ok();
}

Status MirrorModel::RearmHint(std::function<void()> done) {
  if (state_ != MirrorState::kRunning) return Busy("RearmHint needs a running mirror");
  SuspendPlan plan;
  plan.done = std::move(done);
  BeginSuspend(std::move(plan));
  return Status::Ok();
}

Status MirrorModel::ReplaceTable(std::vector<int> legs, std::function<void()> done) {
  if (state_ != MirrorState::kRunning) return Busy("ReplaceTable needs a running mirror");
  CLOG_RETURN_IF_ERROR(CheckTable(legs));
  SuspendPlan plan;
  plan.new_legs = std::move(legs);
  plan.done = std::move(done);
  BeginSuspend(std::move(plan));
  return Status::Ok();
}

Status MirrorModel::PrepareReload(std::vector<int> legs, std::function<void(bool)> loaded) {
  if (state_ != MirrorState::kRunning) return Busy("PrepareReload needs a running mirror");
  CLOG_RETURN_IF_ERROR(CheckTable(legs));
  SuspendPlan plan;
  plan.new_legs = std::move(legs);
  plan.loaded = std::move(loaded);
  BeginSuspend(std::move(plan));
  return Status::Ok();
}

Status MirrorModel::CommitReload(std::function<void()> done) {
  if (state_ != MirrorState::kSuspended || inactive_luid_ == 0) {
    return Busy("CommitReload needs a suspended mirror with a loaded table");
  }
  const uint64_t luid = inactive_luid_;
  std::vector<int> legs = std::move(inactive_legs_);
  inactive_luid_ = 0;
  inactive_legs_.clear();
  SwapInTable(luid, std::move(legs), std::move(done));
  return Status::Ok();
}

Status MirrorModel::AbortReload(std::function<void()> done) {
  if (state_ != MirrorState::kSuspended) return Busy("AbortReload needs a suspended mirror");
  const uint64_t luid = inactive_luid_;
  inactive_luid_ = 0;
  inactive_legs_.clear();
  if (luid == 0) {
    ResumeOldTable(std::move(done));
    return Status::Ok();
  }
  Trace("inactive table cleared: luid " + std::to_string(luid));
  Consult(T(RequestType::kDtr), {}, luid,
          [this, done = std::move(done)](int32_t, const std::vector<uint8_t>&) {
            ResumeOldTable(done);
          });
  return Status::Ok();
}

std::vector<int> MirrorModel::failed_table_legs() const {
  std::vector<int> failed;
  for (size_t i = 0; i < table_.size() && i < leg_errors_.size(); ++i) {
    if (leg_errors_[i] != 0) failed.push_back(table_[i]);
  }
  return failed;
}

SimLegs::Abandoned MirrorModel::Crash() {
  if (crashed_) return {};
  Trace("crash");
  crashed_ = true;
  state_ = MirrorState::kCrashed;
  consult_queue_.clear();
  current_.reset();
  return legs_.AbandonNode(config_.node);
}

// mirror_presuspend: ms->suspend, held bios out (requeued or failed), recovery stopped and
// waited for; then the log's PRESUSPEND. dm core then waits for the bios in the target;
// then POSTSUSPEND (after a pending integrated flush).
void MirrorModel::BeginSuspend(SuspendPlan plan) {
  Trace(plan.stop ? "suspend (stop)" : plan.new_legs ? "suspend (reload)" : "suspend (rearm)");
  suspend_ = std::move(plan);
  state_ = MirrorState::kSuspending;
  suspended_flag_ = true;
  std::vector<BioId> holds = std::move(holds_);
  holds_.clear();
  for (BioId id : holds) HoldBio(id);
  recovery_stopped_ = true;
  AdvanceSuspend();
}

bool MirrorModel::DrainedForSuspend() const {
  return target_bios_ == 0 && !pass_running_ && !pass_scheduled_ && recovery_in_flight_ == 0 &&
         writes_.empty() && reads_.empty() && failures_.empty();
}

void MirrorModel::AdvanceSuspend() {
  if (!suspend_ || crashed_) return;
  SuspendPlan& plan = *suspend_;
  if (!plan.presuspend_sent) {
    if (recovery_in_flight_ != 0) return;
    plan.presuspend_sent = true;
    Consult(T(RequestType::kPresuspend), {}, luid_, [this](int32_t, const std::vector<uint8_t>&) {
      suspend_->presuspend_done = true;
      AdvanceSuspend();
    });
    return;
  }
  if (!plan.presuspend_done || plan.postsuspend_started || !DrainedForSuspend()) return;
  plan.postsuspend_started = true;
  auto postsuspend = [this] {
    DropInSyncCache();  // cluster_postsuspend empties it before the delegate's POSTSUSPEND
    Consult(T(RequestType::kPostsuspend), {}, luid_,
            [this](int32_t, const std::vector<uint8_t>&) { FinishSuspend(); });
  };
  if (config_.integrated_flush && sched_flush_) {
    RunDelayedFlush(postsuspend);
  } else {
    postsuspend();
  }
}

void MirrorModel::FinishSuspend() {
  SuspendPlan plan = std::move(*suspend_);
  suspend_.reset();
  std::function<void()> done = std::move(plan.done);
  if (plan.stop) {
    Consult(T(RequestType::kDtr), {}, luid_, [this, done](int32_t, const std::vector<uint8_t>&) {
      state_ = MirrorState::kStopped;
      std::vector<BioId> deferred = std::move(deferred_);
      deferred_.clear();
      for (BioId id : deferred) EndBio(id, IoError("the mirror was removed"));
      if (done) done();
    });
    return;
  }
  if (!plan.new_legs) {  // RearmHint: resume the same table
    ResumeOldTable(done);
    return;
  }
  const uint64_t new_luid = next_luid_++;
  std::vector<int> legs = std::move(*plan.new_legs);
  if (plan.loaded) {  // PrepareReload: stay suspended with the table loaded (or not)
    std::function<void(bool)> loaded = std::move(plan.loaded);
    LoadTable(new_luid, [this, new_luid, legs, loaded](bool ok) {
      state_ = MirrorState::kSuspended;
      if (ok) {
        inactive_luid_ = new_luid;
        inactive_legs_ = legs;
      }
      Trace(ok ? "suspended with a table loaded: luid " + std::to_string(new_luid)
               : "suspended: the table load failed");
      loaded(ok);
    });
    return;
  }
  LoadTable(new_luid, [this, new_luid, legs, done](bool ok) {
    if (!ok) {  // the load failed: the old table is resumed
      ResumeOldTable(done);
      return;
    }
    SwapInTable(new_luid, legs, done);
  });
}

void MirrorModel::ResumeOldTable(std::function<void()> done) {
  hint_ = 0;
  Consult(T(RequestType::kResume), {}, luid_, [this, done](int32_t, const std::vector<uint8_t>&) {
    ResumeTable();
    if (done) done();
  });
}

void MirrorModel::SwapInTable(uint64_t new_luid, std::vector<int> legs,
                              std::function<void()> done) {
  {
    const uint64_t old_luid = luid_;
    // A new mirror_set, region hash and log instance.
    luid_ = new_luid;
    table_ = legs;
    default_ = 0;
    leg_errors_.assign(table_.size(), 0);
    leg_error_types_.assign(table_.size(), 0);
    hash_.clear();
    clean_regions_.clear();
    quiesced_.clear();
    recovered_.clear();
    failed_recovered_.clear();
    mark_list_.clear();
    clear_list_.clear();
    ms_in_sync_ = false;
    leg_failure_ = false;
    log_failure_ = false;
    hint_ = 0;
    Trace("table swapped: luid " + std::to_string(old_luid) + " -> " + std::to_string(luid_));
    Consult(T(RequestType::kResume), {}, luid_,
            [this, old_luid, done](int32_t, const std::vector<uint8_t>&) {
              ResumeTable();
              Consult(T(RequestType::kDtr), {}, old_luid,
                      [done](int32_t, const std::vector<uint8_t>&) {
                        if (done) done();
                      });
            });
  }
}

}  // namespace clogd::sim
