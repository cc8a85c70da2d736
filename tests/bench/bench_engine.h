// A log engine for the benchmarks, fed encoded request frames with its replies encoded, as
// the kernel link does; the log device is in memory (device latency excluded). Aborts on
// an error reply: a benchmark of failing requests would measure the wrong thing.
#pragma once

#include <benchmark/benchmark.h>
#include <linux/dm-log-userspace.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "logd/log_engine.h"
#include "region/memory_device.h"

namespace clogd::bench {

class BenchEngine {
 public:
  // `log_args`: the CTR string after the target length (e.g. "clustered-disk /dev/bench
  // 1024 nosync"; the device is always the in-memory one). With `cluster`, clustered logs are
  // served over it and `drain` runs after every frame (to deliver its messages).
  BenchEngine(uint64_t regions, const std::string& log_args,
              logd::ClusterTransport* cluster = nullptr, std::function<void()> drain = {})
      : drain_(std::move(drain)) {
    opener_ = [](const std::string&) -> Result<std::unique_ptr<region::BlockDevice>> {
      return std::unique_ptr<region::BlockDevice>(
          std::make_unique<region::MemoryDevice>(8 << 20, 4096, "/dev/bench"));
    };
    engine_ = std::make_unique<logd::LogEngine>(opener_, logd::EngineOptions{}, sink_, cluster);
    const std::string ctr = std::to_string(regions * 1024) + " " + log_args;
    std::vector<uint8_t> payload(ctr.begin(), ctr.end());
    payload.push_back(0);
    Send(DM_ULOG_CTR, payload);
    Send(DM_ULOG_RESUME, {});
  }

  std::vector<uint8_t> Frame(uint32_t type, std::vector<uint8_t> payload) {
    logd::UlogRequest r;
    r.luid = 1;
    r.uuid = "LVM-bench";
    r.seq = ++seq_;
    r.raw_type = r.type = type;
    r.payload = std::move(payload);
    return logd::EncodeRequest(r);
  }
  void Send(uint32_t type, std::vector<uint8_t> payload) {
    SendFrame(Frame(type, std::move(payload)));
  }
  void SendFrame(const std::vector<uint8_t>& frame) {
    engine_->SubmitFrame(frame);
    if (drain_) drain_();
  }

 private:
  class EncodingSink : public logd::ReplySink {
   public:
    void Reply(const logd::UlogReply& reply) override {
      if (reply.error != 0) std::abort();
      frame = logd::EncodeReply(reply);
      benchmark::DoNotOptimize(frame.data());
    }
    std::vector<uint8_t> frame;
  };

  std::function<void()> drain_;
  logd::DeviceOpener opener_;
  EncodingSink sink_;
  std::unique_ptr<logd::LogEngine> engine_;
  uint32_t seq_ = 0;
};

}  // namespace clogd::bench
