// Scale figures of the cluster state machine (printed, never asserted):
//  * CPU per kernel request through LogEngine + ClusterLog (clustered-core and
//    clustered-disk, one node, a loopback transport: the cluster's latency is excluded);
//  * checkpoint size and encode/decode time at 2^24 regions with 16 nodes' marks;
//  * picking the next recovery region at 2^24 regions with 16 nodes' state.
#include <benchmark/benchmark.h>
#include <linux/dm-log-userspace.h>

#include <cstdio>
#include <deque>
#include <functional>

#include "logd/cluster_state.h"
#include "region/memory_device.h"
#include "tests/bench/bench_engine.h"
#include "tests/bench/per_request_main.h"

namespace clogd::logd {
namespace {

// One node alone in its group: every multicast is delivered back, in order, after the
// request that sent it has been handled.
class Loopback : public ClusterTransport {
 public:
  NodeId LocalNode() const override { return 1; }
  Status Join(const std::string&, ClusterHandler* h) override {
    handler_ = h;
    Membership m;
    m.view_id = 1;
    m.members = {1};
    m.joined = {1};
    queue_.push_back([this, m] { handler_->OnMembership(m); });
    return Status::Ok();
  }
  Status Leave(const std::string&) override { return Status::Ok(); }
  Status Multicast(const std::string&, std::span<const uint8_t> msg) override {
    ++messages;
    std::vector<uint8_t> copy(msg.begin(), msg.end());
    queue_.push_back([this, copy] { handler_->OnDeliver(1, copy); });
    return Status::Ok();
  }
  void Run() {
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
    }
  }
  uint64_t messages = 0;

 private:
  ClusterHandler* handler_ = nullptr;
  std::deque<std::function<void()>> queue_;
};

// One node serving a clustered log over the loopback.
struct ClusterFixture {
  explicit ClusterFixture(const std::string& type)
      : engine(uint64_t{1} << 16,
               type + (type == "clustered-disk" ? " /dev/bench" : "") + " 1024 nosync", &net,
               [this] { net.Run(); }) {}
  std::vector<uint8_t> Frame(uint32_t type, std::vector<uint8_t> payload) {
    return engine.Frame(type, std::move(payload));
  }
  void SendFrame(const std::vector<uint8_t>& frame) { engine.SendFrame(frame); }

  Loopback net;
  bench::BenchEngine engine;
};

// MARK, FLUSH, CLEAR, FLUSH of one region: the write path of one burst.
void BM_ClusterWritePath(benchmark::State& state, const char* type) {
  ClusterFixture f(type);
  auto mark = f.Frame(DM_ULOG_MARK_REGION, U64Payload(77));
  auto clear = f.Frame(DM_ULOG_CLEAR_REGION, U64Payload(77));
  auto flush = f.Frame(DM_ULOG_FLUSH, {});
  const uint64_t before = f.net.messages;
  for (auto _ : state) {
    f.SendFrame(mark);
    f.SendFrame(flush);
    f.SendFrame(clear);
    f.SendFrame(flush);
  }
  clogd::bench::ReportRequests(state, 4);
  state.counters["cpg_messages_per_burst"] =
      static_cast<double>(f.net.messages - before) / static_cast<double>(state.iterations());
}
BENCHMARK_CAPTURE(BM_ClusterWritePath, clustered_core, "clustered-core");
BENCHMARK_CAPTURE(BM_ClusterWritePath, clustered_disk, "clustered-disk");

void BM_ClusterInSync(benchmark::State& state, const char* type) {
  ClusterFixture f(type);
  auto q = f.Frame(DM_ULOG_IN_SYNC, U64Payload(1234));
  for (auto _ : state) f.SendFrame(q);
  clogd::bench::ReportRequests(state, 1);
}
BENCHMARK_CAPTURE(BM_ClusterInSync, clustered_core, "clustered-core");
BENCHMARK_CAPTURE(BM_ClusterInSync, clustered_disk, "clustered-disk");

// 2^24 regions, 1% out of sync in runs of 64, 16 nodes each holding 2,000 marks.
ClusterState BigState() {
  constexpr uint64_t kRegions = uint64_t{1} << 24;
  ClusterState s;
  s.log = region::LogState(kRegions, 1024);
  region::RegionBitmap in_sync(kRegions, true);
  for (uint64_t r = 0; r < kRegions; r += 6400) {
    for (uint64_t i = 0; i < 64; ++i) in_sync.Clear(r + i);
  }
  s.log.ReplaceInSync(std::move(in_sync));
  for (NodeId n = 1; n <= 16; ++n) {
    s.members.push_back(n);
    s.slot_owner[n - 1] = n;
    for (uint64_t i = 0; i < 2000; ++i) s.log.Mark(n, (i * 7919 + n * 104729) % kRegions);
  }
  for (uint64_t r = 0; r < 16 * 64; r += 64)
    s.recovery.SetOwner(r, static_cast<NodeId>(r / 64 + 1));
  s.server = 1;
  s.generation = 42;
  return s;
}

void BM_CheckpointEncode(benchmark::State& state) {
  const ClusterState s = BigState();
  size_t bytes = 0;
  for (auto _ : state) {
    auto out = s.EncodeCheckpoint();
    bytes = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["checkpoint_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_CheckpointEncode)->Unit(benchmark::kMillisecond);

void BM_CheckpointDecode(benchmark::State& state) {
  const auto bytes = BigState().EncodeCheckpoint();
  for (auto _ : state) {
    auto s = ClusterState::DecodeCheckpoint(bytes, uint64_t{1} << 24, 1024);
    if (!s.ok()) std::abort();
    benchmark::DoNotOptimize(s->generation);
  }
  state.counters["checkpoint_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_CheckpointDecode)->Unit(benchmark::kMillisecond);

// Handing out recovery work at 2^24 regions, 16 nodes: each call picks the next
// unowned out-of-sync region (the assigner's rotating scan over the in-sync bitmap).
void BM_RecoveryAssign(benchmark::State& state) {
  ClusterState s = BigState();
  NodeId n = 1;
  for (auto _ : state) {
    RegionNo r = s.recovery.Assign(n, s.log, [&s](RegionNo x) {
      return !s.log.IsMarkedByAny(x) && !s.IsBusy(x);  // the cluster's eligibility rule
    });
    if (r == region::kNoRegion) {
      state.PauseTiming();
      s.recovery.Clear();
      state.ResumeTiming();
    } else {
      s.recovery.Release(r);
    }
    n = n % 16 + 1;
  }
}
BENCHMARK(BM_RecoveryAssign);

}  // namespace
}  // namespace clogd::logd

int main(int argc, char** argv) { return clogd::bench::RunBenchmarks(argc, argv); }
