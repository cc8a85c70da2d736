// The mirror model's request channel and dirty-log operations: what dm-log-userspace-
// transfer.c (dm_consult_userspace: seq, 15 s re-send, -EAGAIN) and dm-log-userspace-base.c
// (userspace_do_request's -ESRCH dance, the in_sync_hint, the remote-recovering throttle,
// grouped marks/clears, integrated and delayed flush) do, on virtual time.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "tests/sim/mirror_model.h"

namespace clogd::sim {

namespace {

using logd::RequestType;

constexpr uint32_t T(RequestType type) { return static_cast<uint32_t>(type); }

// The reply buffer the kernel supplies per type (0: it expects no payload).
size_t ReplyCap(uint32_t type) {
  switch (type) {
    case T(RequestType::kCtr):
      return 128;  // DM_NAME_LEN for the log device name
    case T(RequestType::kGetRegionSize):
    case T(RequestType::kIsClean):
    case T(RequestType::kInSync):
    case T(RequestType::kGetSyncCount):
      return 8;
    case T(RequestType::kGetResyncWork):
    case T(RequestType::kIsRemoteRecovering):
      return 16;
    default:
      return 0;
  }
}

uint64_t Word(const std::vector<uint8_t>& payload, size_t index) {
  uint64_t v = 0;
  const size_t offset = index * 8;
  if (payload.size() >= offset + 8) std::memcpy(&v, payload.data() + offset, 8);
  return v;
}

std::vector<uint8_t> RegionsPayload(const std::vector<uint64_t>& regions, size_t from,
                                    size_t count) {
  std::vector<uint8_t> out;
  for (size_t i = from; i < from + count; ++i) {
    std::vector<uint8_t> one = logd::U64Payload(regions[i]);
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

std::string Hex(const std::vector<uint8_t>& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace

// --- dm_consult_userspace ---

void MirrorModel::Consult(uint32_t type, std::vector<uint8_t> payload, uint64_t luid, ReplyFn done,
                          std::optional<size_t> reply_cap) {
  Consultation c;
  c.type = type;
  c.payload = std::move(payload);
  c.luid = luid;
  c.reply_cap = reply_cap.value_or(ReplyCap(type));
  c.done = std::move(done);
  consult_queue_.push_back(std::move(c));
  PumpConsults();
}

void MirrorModel::PumpConsults() {
  if (crashed_ || current_ || consult_queue_.empty()) return;
  current_ = std::move(consult_queue_.front());
  consult_queue_.pop_front();
  current_->first_sent = loop_.Now();
  SendCurrent();
}

void MirrorModel::SendCurrent() {
  const uint32_t seq = kernel_->next_seq++;
  current_seq_ = seq;
  logd::UlogRequest request;
  request.luid = current_->luid;
  request.uuid = config_.uuid;
  request.seq = seq;
  request.raw_type = current_->type;
  request.type = current_->type;
  request.payload = current_->payload;
  ++stats_.requests_sent;
  ++stats_.sent_by_type[current_->type & 31];
  if (trace_) {
    Trace("send seq=" + std::to_string(seq) + " " + logd::RequestTypeName(current_->type) +
          " luid=" + std::to_string(current_->luid) + " " + Hex(current_->payload));
  }
  timeout_event_ = loop_.Schedule(kUlogRetryTimeoutUs, Guard([this, seq] {
                                    if (!current_ || current_seq_ != seq) return;
                                    ++stats_.timeouts;
                                    Trace("timeout seq=" + std::to_string(seq));
                                    SendCurrent();
                                  }));
  // Last: the daemon may answer from inside this call.
  to_daemon_(request);
}

void MirrorModel::OnReply(const logd::UlogReply& reply) {
  if (crashed_) return;
  if (!current_ || reply.seq != current_seq_) {
    ++stats_.stale_replies;  // the kernel drops it: nobody waits on that seq any more
    Trace("stale reply seq=" + std::to_string(reply.seq));
    return;
  }
  loop_.Cancel(timeout_event_);
  if (reply.error == -EAGAIN) {
    ++stats_.eagain_resends;
    // A reply frame sets the buffer size for the resend to its payload size (fill_pkg).
    current_->reply_cap = std::min(current_->reply_cap, reply.payload.size());
    SendCurrent();
    return;
  }
  int32_t error = reply.error;
  std::vector<uint8_t> payload = reply.payload;
  if (payload.size() > current_->reply_cap) {
    ProtocolError(logd::RequestTypeName(current_->type) + " reply of " +
                  std::to_string(payload.size()) + " bytes exceeds the kernel's " +
                  std::to_string(current_->reply_cap) + "-byte buffer (-ENOSPC)");
    error = -ENOSPC;
    payload.clear();
  }
  if (error != 0) ++stats_.error_replies;
  const SimTime latency = loop_.Now() - current_->first_sent;
  if (latency > stats_.max_request_latency_us) stats_.max_request_latency_us = latency;
  if (trace_) {
    Trace("reply seq=" + std::to_string(reply.seq) + " error=" + std::to_string(error) + " " +
          Hex(payload));
  }
  ReplyFn done = std::move(current_->done);
  current_.reset();
  done(error, payload);
  PumpConsults();
}

void MirrorModel::OnRetryMessage(uint32_t seq) {
  if (crashed_ || !current_ || seq != current_seq_) return;
  loop_.Cancel(timeout_event_);
  ++stats_.eagain_resends;
  Trace("retry message seq=" + std::to_string(seq));
  SendCurrent();
}

std::optional<uint32_t> MirrorModel::outstanding_seq() const {
  if (!current_ || current_seq_ == 0) return std::nullopt;
  return current_seq_;
}

void MirrorModel::OnSendFailed(uint32_t seq, int32_t error) {
  if (crashed_ || !current_ || seq != current_seq_) return;
  loop_.Cancel(timeout_event_);
  ++stats_.error_replies;
  if (trace_) Trace("send failed seq=" + std::to_string(seq) + " error=" + std::to_string(error));
  // The buffer keeps its size: handed on as a payload of that size (DoRequest's retry
  // takes its buffer size from the payload of the failure).
  std::vector<uint8_t> untouched(current_->reply_cap, 0);
  ReplyFn done = std::move(current_->done);
  current_.reset();
  done(error, untouched);
  PumpConsults();
}

// --- userspace_do_request ---

void MirrorModel::DoRequest(uint32_t type, std::vector<uint8_t> payload, ReplyFn done,
                            std::optional<size_t> reply_cap) {
  std::vector<uint8_t> copy = payload;
  Consult(
      type, std::move(payload), luid_,
      [this, type, copy = std::move(copy), done = std::move(done)](
          int32_t error, const std::vector<uint8_t>& reply) {
        if (error != -ESRCH) {
          done(error, reply);
          return;
        }
        ++stats_.esrch_events;
        // The kernel's fill_pkg set the caller's buffer size to this reply's payload size:
        // the retry's answer must fit in that (an -ESRCH with no payload leaves no room).
        const size_t cap_left = reply.size();
        EsrchDance([this, type, copy, done, cap_left](bool resumed) {
          if (!resumed) {
            done(-ESRCH, {});
            return;
          }
          DoRequest(type, copy, done, cap_left);
        });
      },
      reply_cap);
}

// Every 2 s: CTR (with its NUL this time, and no reply buffer: a device name in the answer
// is -ENOSPC, and the dance goes on) until one succeeds, then RESUME. The hint is not
// touched: this RESUME is sent raw, not through the log's resume method.
void MirrorModel::EsrchDance(std::function<void(bool resumed)> then) {
  After(kEsrchRetryUs, [this, then = std::move(then)] {
    std::vector<uint8_t> ctr(config_.ctr.begin(), config_.ctr.end());
    ctr.push_back(0);
    Consult(
        T(RequestType::kCtr), std::move(ctr), luid_,
        [this, then](int32_t error, const std::vector<uint8_t>&) {
          if (error != 0) {
            EsrchDance(then);
            return;
          }
          Consult(T(RequestType::kResume), {}, luid_,
                  [then](int32_t resume_error, const std::vector<uint8_t>&) {
                    then(resume_error == 0);
                  });
        },
        /*reply_cap=*/0);
  });
}

// --- dirty-log methods ---

void MirrorModel::InSync(uint64_t region, std::function<void(bool)> done) {
  if (config_.in_sync_cache && in_sync_cached_.contains(region)) {
    ++stats_.in_sync_cache_hits;
    done(true);
    return;
  }
  const uint64_t generation = in_sync_generation_;
  DoRequest(T(RequestType::kInSync), logd::U64Payload(region),
            [this, region, generation, done = std::move(done)](int32_t error,
                                                               const std::vector<uint8_t>& reply) {
              if (error != 0) {
                done(false);  // any error reads as "not in sync"
                return;
              }
              if (reply.size() < 8) ProtocolError("IN_SYNC reply shorter than 8 bytes");
              const bool in_sync = Word(reply, 0) != 0;
              if (in_sync && config_.in_sync_cache && generation == in_sync_generation_) {
                in_sync_cached_.insert(region);
              }
              done(in_sync);
            });
}

void MirrorModel::DropInSyncCache() {
  in_sync_cached_.clear();
  ++in_sync_generation_;
}

void MirrorModel::IsRemoteRecovering(uint64_t region, std::function<void(bool)> done) {
  if (region < hint_) {
    done(false);
    return;
  }
  if (kernel_->remote_recovering_limit > loop_.Now()) {
    ++stats_.remote_recovering_throttled;
    done(true);
    return;
  }
  kernel_->remote_recovering_limit = loop_.Now() + kRemoteRecoveringThrottleUs;
  ++stats_.remote_recovering_queries;
  DoRequest(T(RequestType::kIsRemoteRecovering), logd::U64Payload(region),
            [this, done = std::move(done)](int32_t error, const std::vector<uint8_t>& reply) {
              if (error != 0) {
                done(true);
                return;
              }
              if (reply.size() < 16) ProtocolError("IS_REMOTE_RECOVERING reply shorter than 16");
              hint_ = Word(reply, 1);
              done(Word(reply, 0) != 0);
            });
}

void MirrorModel::GetResyncWork(std::function<void(bool, uint64_t)> done) {
  if (hint_ >= nr_regions_) {
    done(false, 0);
    return;
  }
  DoRequest(T(RequestType::kGetResyncWork), {},
            [this, done = std::move(done)](int32_t error, const std::vector<uint8_t>& reply) {
              if (error != 0) {
                done(false, 0);
                return;
              }
              if (reply.size() < 16) ProtocolError("GET_RESYNC_WORK reply shorter than 16");
              const uint64_t i = Word(reply, 0);
              if (i > 1) ProtocolError("GET_RESYNC_WORK i=" + std::to_string(i));
              // The kernel truncates i to int and takes work when it is positive.
              const int32_t work = static_cast<int32_t>(static_cast<uint32_t>(i & 0xffffffffU));
              done(work > 0, Word(reply, 1));
            });
}

void MirrorModel::GetSyncCount(std::function<void(uint64_t)> done) {
  DoRequest(T(RequestType::kGetSyncCount), {},
            [this, done = std::move(done)](int32_t error, const std::vector<uint8_t>& reply) {
              if (error != 0) {
                done(0);
                return;
              }
              if (reply.size() < 8) ProtocolError("GET_SYNC_COUNT reply shorter than 8 bytes");
              const uint64_t count = Word(reply, 0);
              if (count >= nr_regions_) hint_ = nr_regions_;
              done(count);
            });
}

void MirrorModel::SetRegionSync(uint64_t region, bool in_sync, Next done) {
  in_sync_cached_.erase(region);  // either way: the next IN_SYNC asks the daemon
  ++in_sync_generation_;
  std::vector<uint8_t> payload = logd::U64Payload(region);
  std::vector<uint8_t> flag = logd::S64Payload(in_sync ? 1 : 0);
  payload.insert(payload.end(), flag.begin(), flag.end());
  // Errors are not reported to the caller (the kernel's method returns void).
  DoRequest(T(RequestType::kSetRegionSync), std::move(payload),
            [done = std::move(done)](int32_t, const std::vector<uint8_t>&) { done(); });
}

// userspace_flush: clears first, then marks (MARK_REGION + FLUSH, or FLUSH payloads).
void MirrorModel::LogFlush(std::function<void(int32_t)> done) {
  auto marks = std::make_shared<std::vector<uint64_t>>(std::move(mark_list_));
  auto clears = std::make_shared<std::vector<uint64_t>>(std::move(clear_list_));
  mark_list_.clear();
  clear_list_.clear();
  if (marks->empty() && clears->empty()) {
    done(0);
    return;
  }
  auto finish = [this, done = std::move(done)](int32_t error) {
    if (error != 0) RaiseEvent("log flush failed: " + std::to_string(error));
    done(error);
  };
  FlushGroups(T(RequestType::kClearRegion), clears, 0, false, [this, marks, finish](int32_t error) {
    if (error != 0) {
      finish(error);
      return;
    }
    if (!config_.integrated_flush) {
      FlushGroups(T(RequestType::kMarkRegion), marks, 0, false, [this, finish](int32_t mark_error) {
        if (mark_error != 0) {
          finish(mark_error);
          return;
        }
        DoRequest(
            T(RequestType::kFlush), {},
            [finish](int32_t flush_error, const std::vector<uint8_t>&) { finish(flush_error); });
      });
      return;
    }
    const bool only_clears = marks->empty();
    FlushGroups(T(RequestType::kFlush), marks, 0, false,
                [this, only_clears, finish](int32_t flush_error) {
                  if (flush_error != 0) {
                    finish(flush_error);
                    return;
                  }
                  if (only_clears && !sched_flush_) {
                    ScheduleDelayedFlush();
                  } else {
                    // The marks' FLUSH made the clears durable too.
                    if (flush_timer_ != 0) loop_.Cancel(flush_timer_);
                    flush_timer_ = 0;
                    sched_flush_ = false;
                  }
                  finish(0);
                });
  });
}

// flush_by_group: up to 32 regions per request; a failed MARK/CLEAR group is retried one
// region per request (flush_one_by_one), stopping at the first error.
void MirrorModel::FlushGroups(uint32_t type, std::shared_ptr<std::vector<uint64_t>> regions,
                              size_t from, bool one_by_one, std::function<void(int32_t)> done) {
  if (from >= regions->size()) {
    done(0);
    return;
  }
  const size_t count =
      one_by_one ? 1 : std::min(logd::kMaxRegionsPerRequest, regions->size() - from);
  DoRequest(type, RegionsPayload(*regions, from, count),
            [this, type, regions, from, count, one_by_one, done = std::move(done)](
                int32_t error, const std::vector<uint8_t>&) {
              if (error == 0) {
                FlushGroups(type, regions, from + count, one_by_one, done);
              } else if (type == T(RequestType::kFlush) || one_by_one) {
                done(error);
              } else {
                FlushGroups(type, regions, from, true, done);
              }
            });
}

void MirrorModel::ScheduleDelayedFlush() {
  sched_flush_ = true;
  flush_timer_ = loop_.Schedule(kIntegratedFlushDelayUs, Guard([this] {
                                  flush_timer_ = 0;
                                  RunDelayedFlush([] {});
                                }));
}

// do_flush: the FLUSH that makes clear-only batches durable under integrated_flush.
void MirrorModel::RunDelayedFlush(Next done) {
  sched_flush_ = false;
  if (flush_timer_ != 0) loop_.Cancel(flush_timer_);
  flush_timer_ = 0;
  DoRequest(T(RequestType::kFlush), {},
            [this, done = std::move(done)](int32_t error, const std::vector<uint8_t>&) {
              if (error != 0) RaiseEvent("delayed log flush failed: " + std::to_string(error));
              done();
            });
}

}  // namespace clogd::sim
