// Microbenchmark: decode + handle + encode of the hot-path kernel requests (MARK, FLUSH,
// CLEAR, IN_SYNC) through the single-node engine on an in-memory log device (so device
// latency is excluded; the slot encode, CRC and memory copy are included). Prints ns per
// request. Not a test: nothing here asserts a time.
#include <benchmark/benchmark.h>
#include <linux/dm-log-userspace.h>

#include <cstdio>
#include <cstring>

#include "logd/log_engine.h"
#include "region/memory_device.h"
#include "tests/bench/per_request_main.h"

namespace clogd::logd {
namespace {

class EncodingSink : public ReplySink {
 public:
  void Reply(const UlogReply& reply) override {
    frame = EncodeReply(reply);
    benchmark::DoNotOptimize(frame.data());
  }
  std::vector<uint8_t> frame;
};

class Fixture {
 public:
  explicit Fixture(uint64_t regions) {
    const std::string device = "/dev/bench0";
    opener_ = [this](const std::string&) -> Result<std::unique_ptr<region::BlockDevice>> {
      return std::unique_ptr<region::BlockDevice>(
          std::make_unique<region::MemoryDevice>(8 << 20, 4096, "bench0"));
    };
    engine_ = std::make_unique<LogEngine>(opener_, EngineOptions{}, sink_);
    std::string ctr = std::to_string(regions * 1024) + " clustered-disk " + device + " 1024 nosync";
    std::vector<uint8_t> payload(ctr.begin(), ctr.end());
    payload.push_back(0);
    Send(DM_ULOG_CTR, payload);
    Send(DM_ULOG_RESUME, {});
  }

  std::vector<uint8_t> Frame(uint32_t type, std::vector<uint8_t> payload) {
    UlogRequest r;
    r.luid = 1;
    r.uuid = "LVM-bench";
    r.seq = ++seq_;
    r.raw_type = r.type = type;
    r.payload = std::move(payload);
    return EncodeRequest(r);
  }
  void Send(uint32_t type, std::vector<uint8_t> payload) {
    auto frame = Frame(type, std::move(payload));
    engine_->SubmitFrame(frame);
    if (!sink_.frame.empty()) {
      int32_t err = 0;
      std::memcpy(&err, sink_.frame.data() + offsetof(struct dm_ulog_request, error), 4);
      if (err != 0) std::abort();
    }
  }
  void SendFrame(const std::vector<uint8_t>& frame) { engine_->SubmitFrame(frame); }

 private:
  DeviceOpener opener_;
  EncodingSink sink_;
  std::unique_ptr<LogEngine> engine_;
  uint32_t seq_ = 0;
};

std::vector<uint8_t> RegionPayload(uint64_t r) { return U64Payload(r); }

void BM_InSync(benchmark::State& state) {
  Fixture f(1 << 16);
  auto frame = f.Frame(DM_ULOG_IN_SYNC, RegionPayload(1234));
  for (auto _ : state) f.SendFrame(frame);
  clogd::bench::ReportRequests(state, 1);
}
BENCHMARK(BM_InSync);

// One MARK then one CLEAR of the same region per iteration: 2 requests.
void BM_MarkClear(benchmark::State& state) {
  Fixture f(1 << 16);
  auto mark = f.Frame(DM_ULOG_MARK_REGION, RegionPayload(77));
  auto clear = f.Frame(DM_ULOG_CLEAR_REGION, RegionPayload(77));
  for (auto _ : state) {
    f.SendFrame(mark);
    f.SendFrame(clear);
  }
  clogd::bench::ReportRequests(state, 2);
}
BENCHMARK(BM_MarkClear);

// The write path of a burst: MARK, FLUSH (slot write + flush), CLEAR, FLUSH: 4 requests,
// two of them writing this node's slot to the (in-memory) device.
void BM_MarkFlushClearFlush(benchmark::State& state) {
  Fixture f(1 << 16);
  auto mark = f.Frame(DM_ULOG_MARK_REGION, RegionPayload(77));
  auto clear = f.Frame(DM_ULOG_CLEAR_REGION, RegionPayload(77));
  auto flush = f.Frame(DM_ULOG_FLUSH, {});
  for (auto _ : state) {
    f.SendFrame(mark);
    f.SendFrame(flush);
    f.SendFrame(clear);
    f.SendFrame(flush);
  }
  clogd::bench::ReportRequests(state, 4);
}
BENCHMARK(BM_MarkFlushClearFlush);

// FLUSH with nothing new to write (the kernel flushes after every burst).
void BM_FlushNoChange(benchmark::State& state) {
  Fixture f(1 << 16);
  auto flush = f.Frame(DM_ULOG_FLUSH, {});
  for (auto _ : state) f.SendFrame(flush);
  clogd::bench::ReportRequests(state, 1);
}
BENCHMARK(BM_FlushNoChange);

}  // namespace
}  // namespace clogd::logd

int main(int argc, char** argv) { return clogd::bench::RunBenchmarks(argc, argv); }
