// Test-only stand-in for the daemon in the mirror model's tests: an in-memory dirty log
// that answers every request the way a correct log would for its node(s) (in-sync bitmap,
// marks per node, resync work handed out once), plus knobs to misbehave on purpose: drop or
// delay replies, answer -EAGAIN or -ESRCH (no listener), force IS_REMOTE_RECOVERING, or lie
// about a region being in sync. It records every request it receives.
#pragma once

#include <cerrno>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "logd/ulog_codec.h"
#include "tests/sim/event_loop.h"
#include "tests/sim/mirror_model.h"

namespace clogd::sim::testing {

using logd::RequestType;
constexpr uint32_t Type(RequestType type) { return static_cast<uint32_t>(type); }

struct FakeLogEntry {
  SimTime at = 0;
  int node = 0;
  uint32_t seq = 0;
  uint32_t type = 0;
  uint64_t luid = 0;
  std::vector<uint8_t> payload;
};

class FakeLog {
 public:
  FakeLog(EventLoop& loop, uint64_t nr_regions, uint64_t region_size)
      : in_sync(nr_regions, true), loop_(loop), region_size_(region_size) {}

  void Attach(int node, MirrorModel* model) { models_[node] = model; }
  MirrorModel::ToDaemon Sender(int node) {
    return [this, node](const logd::UlogRequest& request) { Receive(node, request); };
  }

  // --- the log's state ---
  std::vector<bool> in_sync;
  std::map<uint64_t, std::set<int>> marks;
  std::map<uint64_t, int> resyncing;  // region -> node copying it

  // --- knobs ---
  SimTime latency_us = 10;
  std::set<int> no_work_for;            // nodes never handed resync work
  std::set<uint64_t> force_recovering;  // IS_REMOTE_RECOVERING says yes for these
  std::set<uint64_t> lie_in_sync;       // IN_SYNC says yes for these (unsafe on purpose)
  bool report_remote_recovering = true;
  int drop_next = 0;  // that many replies (of drop_type, 0 = any) are never sent
  uint32_t drop_type = 0;
  SimTime delay_next_us = 0;  // the next reply comes this much later (then reset)
  int eagain_next = 0;
  bool down = false;  // no listener: everything gets -ESRCH

  std::vector<FakeLogEntry> received;
  size_t bad_requests() const { return bad_requests_; }

  size_t Count(RequestType type, int node = -1) const {
    size_t n = 0;
    for (const FakeLogEntry& e : received) {
      if (e.type == Type(type) && (node < 0 || e.node == node)) ++n;
    }
    return n;
  }
  std::vector<uint32_t> Types(int node = -1) const {
    std::vector<uint32_t> out;
    for (const FakeLogEntry& e : received) {
      if (node < 0 || e.node == node) out.push_back(e.type);
    }
    return out;
  }
  bool Clean(uint64_t region) const {
    auto it = marks.find(region);
    return it == marks.end() || it->second.empty();
  }
  uint64_t SyncCount() const {
    uint64_t n = 0;
    for (bool b : in_sync) n += b ? 1 : 0;
    return n;
  }
  uint64_t LowestOutOfSync() const {
    for (uint64_t r = 0; r < in_sync.size(); ++r) {
      if (!in_sync[r]) return r;
    }
    return in_sync.size();
  }
  void SetAllOutOfSync() { in_sync.assign(in_sync.size(), false); }

 private:
  void Receive(int node, const logd::UlogRequest& request) {
    received.push_back(
        {loop_.Now(), node, request.seq, request.type, request.luid, request.payload});
    logd::UlogReply reply = logd::ReplyTo(request);
    if (down) {  // the kernel's send fails: no answer, the buffer stays as it was
      const uint32_t seq = request.seq;
      loop_.Schedule(latency_us, [this, node, seq] {
        auto it = models_.find(node);
        if (it != models_.end()) it->second->OnSendFailed(seq, -ESRCH);
      });
      return;
    }
    if (drop_next > 0 && (drop_type == 0 || drop_type == request.type)) {
      --drop_next;
      return;
    }
    if (eagain_next > 0) {
      --eagain_next;
      reply.error = -EAGAIN;
      // Zeros of the buffer's size: a frame sets the kernel's buffer size for the resend to
      // its payload size (KernelLink::SendRetry's empty message is the other safe way).
      reply.payload.assign(logd::KernelReplyBufferSize(request.type), 0);
      Send(node, reply);
      return;
    }
    Answer(node, request, reply);
    Send(node, reply);
  }

  void Answer(int node, const logd::UlogRequest& request, logd::UlogReply& reply) {
    switch (static_cast<RequestType>(request.type)) {
      case RequestType::kCtr:
        reply.error = logd::DecodeCtrPayload(request).ok() ? 0 : -EINVAL;
        // Re-sent after -ESRCH (with its NUL): no reply buffer, so no name.
        if (request.payload.empty() || request.payload.back() != 0) {
          reply.payload = logd::StringPayload("/dev/simlog");
        }
        return;
      case RequestType::kGetRegionSize:
        reply.payload = logd::U64Payload(region_size_);
        return;
      case RequestType::kInSync: {
        Result<uint64_t> region = logd::DecodeRegionPayload(request);
        if (!region.ok() || *region >= in_sync.size()) return Refuse(reply);
        const uint64_t r = *region;
        reply.payload = logd::S64Payload(lie_in_sync.count(r) != 0 || in_sync[r] ? 1 : 0);
        return;
      }
      case RequestType::kIsRemoteRecovering: {
        Result<uint64_t> region = logd::DecodeRegionPayload(request);
        if (!region.ok()) return Refuse(reply);
        const uint64_t r = *region;
        auto it = resyncing.find(r);
        const bool remote = report_remote_recovering && it != resyncing.end() && it->second != node;
        reply.payload = logd::RemoteRecoveringPayload(force_recovering.count(r) != 0 || remote,
                                                      LowestOutOfSync());
        return;
      }
      case RequestType::kMarkRegion:
      case RequestType::kFlush:
      case RequestType::kClearRegion: {
        Result<std::vector<uint64_t>> regions = logd::DecodeRegionListPayload(request);
        if (!regions.ok()) return Refuse(reply);
        for (uint64_t r : *regions) {
          if (request.type == Type(RequestType::kClearRegion)) {
            marks[r].erase(node);
          } else {
            marks[r].insert(node);
          }
        }
        return;
      }
      case RequestType::kGetResyncWork: {
        if (no_work_for.count(node) == 0) {
          for (uint64_t r = 0; r < in_sync.size(); ++r) {
            if (in_sync[r] || resyncing.count(r) != 0) continue;
            resyncing[r] = node;
            reply.payload = logd::ResyncWorkPayload(true, r);
            return;
          }
        }
        reply.payload = logd::ResyncWorkPayload(false, 0);
        return;
      }
      case RequestType::kSetRegionSync: {
        Result<logd::SetRegionSyncArgs> decoded = logd::DecodeSetRegionSyncPayload(request);
        if (!decoded.ok() || decoded->region >= in_sync.size()) return Refuse(reply);
        const logd::SetRegionSyncArgs args = *decoded;
        in_sync[args.region] = args.in_sync;
        resyncing.erase(args.region);
        return;
      }
      case RequestType::kGetSyncCount:
        reply.payload = logd::U64Payload(SyncCount());
        return;
      default:
        return;
    }
  }

  void Refuse(logd::UlogReply& reply) {
    ++bad_requests_;
    reply.error = -EINVAL;
  }

  void Send(int node, const logd::UlogReply& reply) {
    SimTime delay = latency_us + delay_next_us;
    delay_next_us = 0;
    loop_.Schedule(delay, [this, node, reply] {
      auto it = models_.find(node);
      if (it != models_.end()) it->second->OnReply(reply);
    });
  }

  EventLoop& loop_;
  uint64_t region_size_;
  std::map<int, MirrorModel*> models_;
  size_t bad_requests_ = 0;
};

}  // namespace clogd::sim::testing
