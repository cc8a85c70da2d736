// clog-request-load: the write path's request load for scripts/bench/request-path.sh. Plays
// the kernel on clogd's test kernel link (logd/TEST_LINK.md) of every node given: activates
// one log everywhere (CTR, RESUME), then from the first node only runs N write cycles the
// way dm-raid1 does them — MARK_REGION r + FLUSH (before a write), CLEAR_REGION r + FLUSH
// (the region went idle) — one request at a time; then N more with the mark carried in the
// FLUSH's payload, as dm-log-cluster sends it (integrated_flush). Prints one JSON line with
// the latency of each pair and of each request in it (median, p99, µs: mark_flush_*,
// mark_*, flush_after_mark_*, the same for clear, and integrated_mark_flush_*,
// integrated_clear_*...), each pass's mean time per FLUSH (per_flush_mean_us,
// integrated_per_flush_mean_us), requests per second and, from every node's control
// socket, the CPG messages the clogds sent meanwhile. Every wait is bounded.
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
#include <map>
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

// The cluster counters of log `uuid` from a clogd control socket (one JSON line each way,
// logd/README.md); an empty object if clogd did not answer.
nlohmann::json Counters(const std::string& control, const std::string& uuid) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, control.c_str(), sizeof(addr.sun_path) - 1);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "{\"cmd\":\"status\",\"device_slots\":false}\n";
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      pollfd p{fd, POLLIN, 0};
      while (reply.find('\n') == std::string::npos && poll(&p, 1, 10'000) > 0) {
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  const nlohmann::json status = nlohmann::json::parse(reply, nullptr, false);
  if (status.is_object() && status.contains("logs")) {
    for (const auto& log : status["logs"]) {
      if (log.value("uuid", "") == uuid) return log.value("counters", nlohmann::json::object());
    }
  }
  return nlohmann::json::object();
}

// Sums counter `name` over every node's counters.
uint64_t Sum(const std::vector<nlohmann::json>& counters, const std::string& name) {
  uint64_t sum = 0;
  for (const auto& c : counters) sum += c.value(name, uint64_t{0});
  return sum;
}

struct Percentiles {
  double median_us = 0;
  double p99_us = 0;
};
Percentiles Of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

int Run(const std::vector<std::string>& sockets, const std::vector<std::string>& controls,
        const std::string& uuid, const std::string& ctr, uint32_t cycles, uint64_t regions) {
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
  // Every node's CTR first: a clustered log is served once a majority of nodes has it.
  for (uint32_t type : {DM_ULOG_CTR, DM_ULOG_RESUME}) {
    for (size_t i = 0; i < links.size(); ++i) {
      auto e = links[i]->Call(i + 1, uuid, type,
                              type == DM_ULOG_CTR ? ctr_bytes : std::vector<uint8_t>{}, bound);
      if (!e || *e != 0) {
        std::cerr << "clog-request-load: " << logd::RequestTypeName(type) << " on " << sockets[i]
                  << (e ? " failed: " + std::to_string(*e) : " got no reply") << "\n";
        return 1;
      }
    }
  }
  auto counters_now = [&] {
    std::vector<nlohmann::json> all;
    for (const auto& c : controls) all.push_back(Counters(c, uuid));
    return all;
  };
  const std::vector<nlohmann::json> before = counters_now();
  Link& link = *links[0];
  // Latency samples (µs) per step: each pair, and each request of it alone.
  std::map<std::string, std::vector<double>> samples;
  uint64_t requests = 0;
  const auto start = Clock::now();
  auto us = [](Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); };
  // FIRST (MARK or CLEAR) of `region`, then FLUSH; or, `integrated`, the mark carried by the
  // FLUSH itself, as dm-log-cluster sends it (dm-log-userspace's integrated_flush).
  auto pair = [&](uint32_t first, uint64_t region, const std::string& pass, bool integrated) {
    const std::string name = pass + (first == DM_ULOG_MARK_REGION ? "mark" : "clear");
    const auto t0 = Clock::now();
    std::optional<int32_t> e1 = 0;
    if (!integrated) e1 = link.Call(1, uuid, first, U64(region), bound);
    const auto t1 = Clock::now();
    auto e2 = e1 && *e1 == 0 ? link.Call(1, uuid, DM_ULOG_FLUSH,
                                         integrated ? U64(region) : std::vector<uint8_t>{}, bound)
                             : e1;
    const auto t2 = Clock::now();
    if (!e2 || *e2 != 0) {
      std::cerr << "clog-request-load: " << name << " + FLUSH of region " << region
                << (e2 ? " failed: " + std::to_string(*e2) : " got no reply") << "\n";
      return false;
    }
    requests += integrated ? 1 : 2;
    if (!integrated) samples[name].push_back(us(t1 - t0));
    samples[name + "_flush"].push_back(us(t2 - t0));
    if (!integrated) samples["flush_after_" + name].push_back(us(t2 - t1));
    return true;
  };
  // The separate requests (LVM's `mirror userspace` tables) cycle over the first half of the
  // regions, the integrated FLUSH over the second: with enough regions (request-path.sh gives
  // 2 x cycles) no region is marked again while its clear may still linger (0.5-1 s), which
  // would spare its FLUSH the message (clustered-core) or the slot write (clustered-disk).
  const uint64_t half = std::max<uint64_t>(regions / 2, 1);
  // Each pass's mean time per FLUSH (its FLUSHes: two per cycle), tails included: what the
  // write path costs per FLUSH on average, beside the CPG round trips' mean.
  auto per_flush_us = [&](Clock::duration d) { return us(d) / (2.0 * cycles); };
  const auto separate_start = Clock::now();
  for (uint32_t i = 0; i < cycles; ++i) {
    const uint64_t region = i % half;
    if (!pair(DM_ULOG_MARK_REGION, region, "", false) ||
        !pair(DM_ULOG_CLEAR_REGION, region, "", false)) {
      return 1;
    }
  }
  const auto integrated_start = Clock::now();
  const double separate_per_flush_us = per_flush_us(integrated_start - separate_start);
  for (uint32_t i = 0; i < cycles; ++i) {
    const uint64_t region = std::min(regions - 1, half + i % half);
    if (!pair(DM_ULOG_MARK_REGION, region, "integrated_", true) ||
        !pair(DM_ULOG_CLEAR_REGION, region, "integrated_", false)) {
      return 1;
    }
  }
  const double integrated_per_flush_us = per_flush_us(Clock::now() - integrated_start);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const std::vector<nlohmann::json> after = counters_now();
  nlohmann::json out = {{"uuid", uuid},         {"cycles", cycles},
                        {"requests", requests}, {"flushes", 4 * uint64_t{cycles}},
                        {"seconds", seconds},   {"requests_per_s", double(requests) / seconds}};
  out["per_flush_mean_us"] = separate_per_flush_us;
  out["integrated_per_flush_mean_us"] = integrated_per_flush_us;
  for (const auto& [name, v] : samples) {
    const Percentiles p = Of(v);
    out[name + "_median_us"] = p.median_us;
    out[name + "_p99_us"] = p.p99_us;
  }
  if (!controls.empty()) {
    // CPG messages every clogd sent during the load, and the FLUSHes they counted.
    for (const char* name : {"messages_sent", "flushes", "flush_messages"}) {
      out[std::string("cluster_") + name] = Sum(after, name) - Sum(before, name);
    }
  }
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace clogd::cluster_test

int main(int argc, char** argv) {
  CLI::App app{"clog-request-load: MARK+FLUSH / CLEAR+FLUSH latency through clogd's test link"};
  std::vector<std::string> sockets, controls;
  std::string uuid, ctr;
  uint32_t cycles = 2000;
  uint64_t regions = 1024;
  app.add_option("--sockets", sockets, "kernel sockets of every node (load from the first)")
      ->required()
      ->delimiter(',');
  app.add_option("--controls", controls,
                 "control sockets of every node: CPG messages sent during the load")
      ->delimiter(',');
  app.add_option("--uuid", uuid, "the log's uuid")->required();
  app.add_option("--ctr", ctr, "the CTR string, e.g. '1048576 clustered-core 1024 nosync'")
      ->required();
  app.add_option("--cycles", cycles, "MARK+FLUSH, CLEAR+FLUSH cycles");
  app.add_option("--regions", regions, "cycle over this many regions (at most the log's)");
  CLI11_PARSE(app, argc, argv);
  return clogd::cluster_test::Run(sockets, controls, uuid, ctr, cycles,
                                  std::max<uint64_t>(regions, 1));
}
