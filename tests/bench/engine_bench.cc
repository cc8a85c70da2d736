// Microbenchmark: decode + handle + encode of the hot-path kernel requests (MARK, FLUSH,
// CLEAR, IN_SYNC) through the single-node engine on an in-memory log device (so device
// latency is excluded; the slot encode, CRC and memory copy are included). Prints ns per
// request. Not a test: nothing here asserts a time.
#include <benchmark/benchmark.h>
#include <linux/dm-log-userspace.h>

#include <cstdio>
#include <cstring>

#include "tests/bench/bench_engine.h"
#include "tests/bench/per_request_main.h"

namespace clogd::logd {
namespace {

using Fixture = bench::BenchEngine;
constexpr const char* kDiskLog = "clustered-disk /dev/bench 1024 nosync";

std::vector<uint8_t> RegionPayload(uint64_t r) { return U64Payload(r); }

void BM_InSync(benchmark::State& state) {
  Fixture f(1 << 16, kDiskLog);
  auto frame = f.Frame(DM_ULOG_IN_SYNC, RegionPayload(1234));
  for (auto _ : state) f.SendFrame(frame);
  clogd::bench::ReportRequests(state, 1);
}
BENCHMARK(BM_InSync);

// One MARK then one CLEAR of the same region per iteration: 2 requests.
void BM_MarkClear(benchmark::State& state) {
  Fixture f(1 << 16, kDiskLog);
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
  Fixture f(1 << 16, kDiskLog);
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
  Fixture f(1 << 16, kDiskLog);
  auto flush = f.Frame(DM_ULOG_FLUSH, {});
  for (auto _ : state) f.SendFrame(flush);
  clogd::bench::ReportRequests(state, 1);
}
BENCHMARK(BM_FlushNoChange);

}  // namespace
}  // namespace clogd::logd

int main(int argc, char** argv) { return clogd::bench::RunBenchmarks(argc, argv); }
