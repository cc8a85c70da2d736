// The benchmarks' main: Google Benchmark's console output, plus one "ns per request" line
// for every benchmark that sets the counter requests_per_iter (requests per iteration).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <vector>

namespace clogd::bench {

inline void ReportRequests(benchmark::State& state, int64_t requests_per_iteration) {
  state.SetItemsProcessed(state.iterations() * requests_per_iteration);
  state.counters["requests_per_iter"] = static_cast<double>(requests_per_iteration);
}

class PerRequestReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      auto it = run.counters.find("requests_per_iter");
      if (it == run.counters.end() || it->second.value <= 0) continue;
      std::printf("  %-40s %8.1f ns CPU per request\n", run.benchmark_name().c_str(),
                  run.GetAdjustedCPUTime() / it->second.value);
    }
  }
};

inline int RunBenchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  PerRequestReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}

}  // namespace clogd::bench
