// Test helper: records what every simulated process's ClusterHandler saw (one stream per
// Join) and checks the CPG promises the cluster state machine relies on: agreed order,
// self-delivery, per-sender FIFO, virtual synchrony, membership bookkeeping, nothing from a
// node after the change that removed it, nothing to a crashed process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "logd/cluster_transport.h"
#include "tests/sim/sim_cpg.h"

namespace clogd::sim {

struct CpgEvent {
  enum class Kind { kDeliver, kMembership, kLost };
  Kind kind = Kind::kDeliver;
  uint64_t position = 0;  // from SimCpg's delivery tap; 0 for kLost
  SimTime time = 0;
  NodeId from = 0;
  std::string message;
  logd::Membership membership;
};

// Everything one handler saw, from its Join until it ended.
struct CpgStream {
  NodeId node = 0;
  std::string group;
  std::vector<CpgEvent> events;
  std::vector<std::string> sent;    // multicast accepted (ok), in call order
  bool ended = false;               // crashed, left, lost its transport or its process exited
  std::vector<std::string> misuse;  // e.g. a callback after the stream ended
};

class CpgRecorder;

// The handler of one stream. Hooks let a test react like a daemon would (rejoin on loss,
// multicast on a membership change); they run after the event is recorded.
class StreamHandler : public logd::ClusterHandler {
 public:
  StreamHandler(CpgRecorder* recorder, size_t stream) : recorder_(recorder), stream_(stream) {}
  void OnDeliver(NodeId from, std::span<const uint8_t> message) override;
  void OnMembership(const logd::Membership& membership) override;
  void OnTransportLost() override;

  size_t stream() const { return stream_; }
  bool installed() const { return installed_; }
  // A payload naming this stream as the sender, unique within the run: "<node>:<stream>:<k>",
  // padded with `pad` bytes.
  std::string NextMessage(size_t pad = 0);

  std::function<void(const logd::Membership&)> after_membership;
  std::function<void()> after_lost;

 private:
  CpgStream& Stream();
  CpgRecorder* recorder_;
  size_t stream_;
  bool installed_ = false;
  uint64_t next_k_ = 0;
};

class CpgRecorder {
 public:
  // Installs SimCpg's delivery tap (so events carry their agreed-order position).
  CpgRecorder(SimCpg& cpg, EventLoop& loop);

  // A new stream and its handler (owned here, alive as long as the recorder).
  StreamHandler* NewStream(NodeId node, const std::string& group);
  // Multicast through `transport` from `handler`'s stream; records the message when ok.
  Status Send(logd::ClusterTransport& transport, StreamHandler* handler, size_t pad = 0);
  // The stream ended (its node crashed, it left, its process exited): any later callback is
  // misuse.
  void End(StreamHandler* handler) { streams_[handler->stream()].ended = true; }

  // Set by tests around their own transport calls: a callback while it is set is misuse
  // (handlers must run from loop events, never inside Join/Leave/Multicast).
  bool in_transport_call = false;

  std::vector<CpgStream>& streams() { return streams_; }
  const std::vector<CpgStream>& streams() const { return streams_; }

 private:
  friend class StreamHandler;
  EventLoop& loop_;
  std::vector<CpgStream> streams_;
  std::vector<std::unique_ptr<StreamHandler>> handlers_;
  // What the tap said about the callback about to run.
  NodeId tap_node_ = 0;
  std::string tap_group_;
  uint64_t tap_position_ = 0;
  bool tap_pending_ = false;
};

// Every broken promise, one line each (empty: all held). `quiescent`: the run ended with
// nothing in flight, so streams still open must have delivered their own messages and the
// open streams of a group must agree on the final membership.
std::vector<std::string> CheckCpgStreams(const std::vector<CpgStream>& streams, bool quiescent);

}  // namespace clogd::sim
