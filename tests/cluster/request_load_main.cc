// clog-request-load: the write path's request load for scripts/bench/request-path.sh. Plays
// the kernel on clogd's test kernel link (logd/TEST_LINK.md) of every node given: activates
// one log everywhere (CTR, RESUME), then from the first node only runs N write cycles the
// way dm-raid1 does them — MARK_REGION r + FLUSH (before a write), CLEAR_REGION r + FLUSH
// (the region went idle) — one request at a time, and prints one JSON line with the
// latency of each pair (median, p99, µs) and requests per second. Every wait is bounded.
#include <linux/dm-log-userspace.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "logd/socket_link.h"
#include "logd/ulog_codec.h"

namespace clogd::cluster_test {
namespace {

using Clock = std::chrono::steady_clock;

// One synchronous kernel link: a request out, wait for its reply (rearm requests that come
// meanwhile are answered at once: nothing is in flight between two requests).
class Link {
 public:
  ~Link() {
    if (fd_ >= 0) close(fd_);
  }
  bool Connect(const std::string& path, std::chrono::milliseconds bound) {
    const auto end = Clock::now() + bound;
    for (;;) {
      fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
      if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return true;
      close(fd_);
      fd_ = -1;
      if (Clock::now() >= end) return false;
      poll(nullptr, 0, 50);
    }
  }
  // The reply's error, or nullopt if none came within `bound`.
  std::optional<int32_t> Call(uint64_t luid, const std::string& uuid, uint32_t type,
                              std::vector<uint8_t> payload, std::chrono::milliseconds bound) {
    logd::UlogRequest r;
    r.luid = luid;
    r.uuid = uuid;
    r.seq = ++seq_;
    r.raw_type = r.type = type;
    r.payload = std::move(payload);
    std::vector<uint8_t> frame{logd::kLinkRequest};
    const std::vector<uint8_t> body = logd::EncodeRequest(r);
    frame.insert(frame.end(), body.begin(), body.end());
    if (send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size()))
      return std::nullopt;
    const auto end = Clock::now() + bound;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0)
        return std::nullopt;
      std::vector<uint8_t> buf(logd::kLinkMaxMessage + 1);
      const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
      if (n <= 0) return std::nullopt;
      buf.resize(static_cast<size_t>(n));
      if (buf[0] == logd::kLinkRearm) {
        buf[0] = logd::kLinkRearmDone;
        (void)send(fd_, buf.data(), buf.size(), MSG_NOSIGNAL);
        continue;
      }
      if (buf[0] != logd::kLinkReply) continue;
      auto reply = logd::DecodeReply(std::span<const uint8_t>(buf).subspan(1));
      if (reply.ok() && reply->seq == r.seq) return reply->error;
    }
  }

 private:
  int fd_ = -1;
  uint32_t seq_ = 0;
};

std::vector<uint8_t> U64(uint64_t v) { return logd::U64Payload(v); }

struct Percentiles {
  double median_us = 0;
  double p99_us = 0;
};
Percentiles Of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

int Run(const std::vector<std::string>& sockets, const std::string& uuid, const std::string& ctr,
        uint32_t cycles, uint64_t regions) {
  const std::chrono::milliseconds bound(30'000);
  std::vector<std::unique_ptr<Link>> links;
  for (const auto& path : sockets) {
    links.push_back(std::make_unique<Link>());
    if (!links.back()->Connect(path, bound)) {
      std::cerr << "clog-request-load: cannot connect to " << path << "\n";
      return 1;
    }
  }
  std::vector<uint8_t> ctr_bytes(ctr.begin(), ctr.end());
  ctr_bytes.push_back(0);
  for (size_t i = 0; i < links.size(); ++i) {
    for (uint32_t type : {DM_ULOG_CTR, DM_ULOG_RESUME}) {
      auto e = links[i]->Call(i + 1, uuid, type,
                              type == DM_ULOG_CTR ? ctr_bytes : std::vector<uint8_t>{}, bound);
      if (!e || *e != 0) {
        std::cerr << "clog-request-load: " << logd::RequestTypeName(type) << " on " << sockets[i]
                  << (e ? " failed: " + std::to_string(*e) : " got no reply") << "\n";
        return 1;
      }
    }
  }
  Link& link = *links[0];
  std::vector<double> mark_flush, clear_flush;
  uint64_t requests = 0;
  const auto start = Clock::now();
  for (uint32_t i = 0; i < cycles; ++i) {
    const uint64_t region = i % regions;
    for (uint32_t first : {DM_ULOG_MARK_REGION, DM_ULOG_CLEAR_REGION}) {
      const auto t0 = Clock::now();
      auto e1 = link.Call(1, uuid, first, U64(region), bound);
      auto e2 = e1 && *e1 == 0 ? link.Call(1, uuid, DM_ULOG_FLUSH, {}, bound) : e1;
      if (!e2 || *e2 != 0) {
        std::cerr << "clog-request-load: " << logd::RequestTypeName(first) << " + FLUSH of region "
                  << region << (e2 ? " failed: " + std::to_string(*e2) : " got no reply") << "\n";
        return 1;
      }
      requests += 2;
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      (first == DM_ULOG_MARK_REGION ? mark_flush : clear_flush).push_back(us);
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const Percentiles mark = Of(mark_flush), clear = Of(clear_flush);
  nlohmann::json out = {{"uuid", uuid},
                        {"cycles", cycles},
                        {"requests", requests},
                        {"flushes", 2 * uint64_t{cycles}},
                        {"seconds", seconds},
                        {"requests_per_s", double(requests) / seconds},
                        {"mark_flush_median_us", mark.median_us},
                        {"mark_flush_p99_us", mark.p99_us},
                        {"clear_flush_median_us", clear.median_us},
                        {"clear_flush_p99_us", clear.p99_us}};
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace clogd::cluster_test

int main(int argc, char** argv) {
  CLI::App app{"clog-request-load: MARK+FLUSH / CLEAR+FLUSH latency through clogd's test link"};
  std::vector<std::string> sockets;
  std::string uuid, ctr;
  uint32_t cycles = 2000;
  uint64_t regions = 1024;
  app.add_option("--sockets", sockets, "kernel sockets of every node (load from the first)")
      ->required()
      ->delimiter(',');
  app.add_option("--uuid", uuid, "the log's uuid")->required();
  app.add_option("--ctr", ctr, "the CTR string, e.g. '1048576 clustered-core 1024 nosync'")
      ->required();
  app.add_option("--cycles", cycles, "MARK+FLUSH, CLEAR+FLUSH cycles");
  app.add_option("--regions", regions, "cycle over this many regions (at most the log's)");
  CLI11_PARSE(app, argc, argv);
  return clogd::cluster_test::Run(sockets, uuid, ctr, cycles, std::max<uint64_t>(regions, 1));
}
