// clog-cpg-probe: CpgTransport in its own epoll loop, for the cluster tests and by hand.
// Joins a group and prints every membership change and delivery as one JSON line on stdout;
// takes commands on stdin; or measures the agreed multicast round trip (--pingpong).
//
// Output events (one JSON object per line, field "event"):
//   ready {node, pid, group, expected_votes | expected_votes_error, early_multicast}
//   membership {view_id, members, joined, left, reasons, ring_nodes}
//                                            reasons: left|process_down|node_down
//   deliver {from, data}            (not with --quiet)
//   transport_lost {}  rejoin {status}  (retried every 200 ms until ok)
//   send {status}  burst_sent {count, busy}  left {status}  join {status}
//   pingpong {count, size, members, rtt_median_us, rtt_p99_us, rtt_msgs_per_s, window,
//             throughput_msgs_per_s, busy}   busy: multicasts refused (kBusy), retried
//   error {stage, message}          (then exit 1)
// Commands: send TEXT | sendsize BYTES | burst COUNT PREFIX | leave | join | quit.
#include <sys/epoll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "logd/cpg_transport.h"

namespace clogd::logd {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

void Emit(const json& j) {
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n" << std::flush;
}

const char* ReasonName(Membership::LeaveReason r) {
  switch (r) {
    case Membership::LeaveReason::kLeft:
      return "left";
    case Membership::LeaveReason::kProcessDown:
      return "process_down";
    case Membership::LeaveReason::kNodeDown:
      return "node_down";
  }
  return "?";
}

struct Options {
  std::string group = "clog-probe";
  bool quiet = false;
  uint32_t pingpong = 0;
  uint32_t size = 64;
  uint32_t members = 1;
  uint32_t window = 64;
  bool flood_only = false;  // skip the one-at-a-time round trips
};

class Probe final : public ClusterHandler {
 public:
  explicit Probe(const Options& o)
      : opt_(o),
        transport_(
            [](Severity s, const std::string& m) {
              std::cerr << "clog-cpg-probe: " << SeverityName(s) << ": " << m << "\n";
            },
            [this](int fd, bool watch) { Watch(fd, watch); }) {}

  int Run() {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    Status s = transport_.Connect();
    if (!s.ok()) return Fail("connect", s.ToString());
    json ready = {{"event", "ready"},
                  {"node", transport_.LocalNode()},
                  {"pid", getpid()},
                  {"group", opt_.group}};
    Result<uint32_t> votes = transport_.ExpectedVotes();
    if (votes.ok()) {
      ready["expected_votes"] = *votes;
    } else {
      ready["expected_votes_error"] = votes.status().ToString();
    }
    s = transport_.Join(opt_.group, this);
    if (!s.ok()) return Fail("join", s.ToString());
    const uint8_t byte = 0;
    ready["early_multicast"] = transport_.Multicast(opt_.group, {&byte, 1}).ToString();
    Emit(ready);
    if (opt_.pingpong == 0) Watch(STDIN_FILENO, true);
    while (!done_) {
      epoll_event events[16];
      const int n = epoll_wait(epoll_, events, 16, TimeoutMs());
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == STDIN_FILENO) {
          ReadStdin();
        } else {
          transport_.Dispatch(events[i].data.fd);
        }
      }
      Tick();
    }
    return exit_code_;
  }

  void OnMembership(const Membership& m) override {
    members_ = m.members.size();
    json j = {{"event", "membership"},     {"view_id", m.view_id}, {"members", m.members},
              {"joined", m.joined},        {"left", m.left},       {"reasons", json::array()},
              {"ring_nodes", m.ring_nodes}};
    for (auto r : m.left_reasons) j["reasons"].push_back(ReasonName(r));
    Emit(j);
  }

  void OnDeliver(NodeId from, std::span<const uint8_t> message) override {
    if (opt_.pingpong > 0) {
      if (from == transport_.LocalNode() && message.size() >= 8) OwnDelivered(message);
      return;
    }
    if (!opt_.quiet) {
      Emit({{"event", "deliver"},
            {"from", from},
            {"data", std::string(message.begin(), message.end())}});
    }
  }

  void OnTransportLost() override {
    Emit({{"event", "transport_lost"}});
    members_ = 0;
    rejoin_at_ = Clock::now() + std::chrono::milliseconds(200);
  }

 private:
  int Fail(const std::string& stage, const std::string& message) {
    Emit({{"event", "error"}, {"stage", stage}, {"message", message}});
    return 1;
  }

  void Watch(int fd, bool watch) {
    if (watch) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    } else {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    }
  }

  int TimeoutMs() const {
    if (!outbox_.empty()) return 1;  // flow control: retry soon
    if (rejoin_at_) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*rejoin_at_ - Clock::now());
      return static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    return opt_.pingpong > 0 ? 1 : -1;
  }

  void Tick() {
    if (rejoin_at_ && Clock::now() >= *rejoin_at_) {
      rejoin_at_.reset();
      Status s = transport_.Join(opt_.group, this);
      Emit({{"event", "rejoin"}, {"status", s.ToString()}});
      if (!s.ok()) rejoin_at_ = Clock::now() + std::chrono::milliseconds(200);
    }
    Drain();
    if (opt_.pingpong > 0) PingPong();
  }

  // Sends what is queued, in order; kBusy leaves the rest for the next tick.
  void Drain() {
    while (!outbox_.empty()) {
      Status s = transport_.Multicast(opt_.group, outbox_.front());
      if (s.code() == Errc::kBusy) {
        ++busy_;
        return;
      }
      if (!s.ok()) Emit({{"event", "send"}, {"status", s.ToString()}});
      outbox_.pop_front();
      if (outbox_.empty() && burst_pending_ > 0) {
        Emit({{"event", "burst_sent"}, {"count", burst_pending_}, {"busy", busy_}});
        burst_pending_ = 0;
      }
    }
  }

  void ReadStdin() {
    char buf[4096];
    const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n <= 0) {  // EOF: keep running (background use), stop reading
      Watch(STDIN_FILENO, false);
      return;
    }
    line_.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = line_.find('\n')) != std::string::npos) {
      Command(line_.substr(0, nl));
      line_.erase(0, nl + 1);
    }
  }

  void Command(const std::string& line) {
    const std::string verb = line.substr(0, line.find(' '));
    const std::string arg =
        line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
    if (verb == "send") {
      std::vector<uint8_t> bytes(arg.begin(), arg.end());
      Emit({{"event", "send"}, {"status", transport_.Multicast(opt_.group, bytes).ToString()}});
    } else if (verb == "sendsize") {
      std::vector<uint8_t> bytes(std::stoul(arg), 'x');
      Emit({{"event", "send"}, {"status", transport_.Multicast(opt_.group, bytes).ToString()}});
    } else if (verb == "burst") {
      const size_t count = std::stoul(arg.substr(0, arg.find(' ')));
      const std::string prefix = arg.substr(arg.find(' ') + 1);
      for (size_t i = 0; i < count; ++i) {
        std::string text = prefix + std::to_string(i);
        outbox_.emplace_back(text.begin(), text.end());
      }
      burst_pending_ += count;
      Drain();
    } else if (verb == "leave") {
      Emit({{"event", "left"}, {"status", transport_.Leave(opt_.group).ToString()}});
    } else if (verb == "join") {
      Emit({{"event", "join"}, {"status", transport_.Join(opt_.group, this).ToString()}});
    } else if (verb == "quit") {
      done_ = true;
    } else {
      Emit({{"event", "error"}, {"stage", "command"}, {"message", "unknown command: " + line}});
    }
  }

  // --pingpong: first N sequential round trips (send, wait for the own delivery), then N
  // messages with up to --window in flight.
  void PingPong() {
    if (members_ < opt_.members || done_) return;
    const uint32_t n = opt_.pingpong;
    if (phase_ == 0 && opt_.flood_only) phase_ = 1;
    if (phase_ == 0 && in_flight_ == 0) {
      if (sent_ == n) {
        phase_ = 1;
        sent_ = received_ = 0;
      } else {
        SendPing();
      }
    }
    if (phase_ == 1) {
      while (sent_ < n && in_flight_ < opt_.window && SendPing()) {
      }
      if (received_ == n && !done_) Report();
    }
  }

  bool SendPing() {
    std::vector<uint8_t> msg(std::max<uint32_t>(opt_.size, 8), 0);
    for (int i = 0; i < 8; ++i) {
      msg[static_cast<size_t>(i)] = static_cast<uint8_t>(next_seq_ >> (8 * i));
    }
    const Clock::time_point now = Clock::now();
    Status s = transport_.Multicast(opt_.group, msg);
    if (s.code() == Errc::kBusy) {
      ++busy_;
      return false;
    }
    if (!s.ok()) {
      exit_code_ = Fail("pingpong", s.ToString());
      done_ = true;
      return false;
    }
    if (sent_ == 0) phase_start_ = now;
    ping_sent_at_ = now;
    ++next_seq_;
    ++sent_;
    ++in_flight_;
    return true;
  }

  void OwnDelivered(std::span<const uint8_t> message) {
    uint64_t seq = 0;
    for (int i = 0; i < 8; ++i) seq |= uint64_t{message[static_cast<size_t>(i)]} << (8 * i);
    if (in_flight_ == 0 || seq != next_seq_ - in_flight_) {
      exit_code_ = Fail("pingpong", "own message " + std::to_string(seq) + " out of order");
      done_ = true;
      return;
    }
    --in_flight_;
    ++received_;
    if (phase_ == 0) {
      const Clock::time_point now = Clock::now();
      rtts_us_.push_back(std::chrono::duration<double, std::micro>(now - ping_sent_at_).count());
      if (received_ == opt_.pingpong) {
        rtt_total_s_ = std::chrono::duration<double>(now - phase_start_).count();
      }
    }
    PingPong();
  }

  void Report() {
    const double total = std::chrono::duration<double>(Clock::now() - phase_start_).count();
    json j = {{"event", "pingpong"},
              {"count", opt_.pingpong},
              {"size", opt_.size},
              {"members", members_},
              {"window", opt_.window},
              {"throughput_msgs_per_s", static_cast<double>(opt_.pingpong) / total},
              {"busy", busy_}};
    if (!rtts_us_.empty()) {  // not with --flood-only
      std::sort(rtts_us_.begin(), rtts_us_.end());
      auto pct = [&](double p) {
        return rtts_us_[std::min(rtts_us_.size() - 1,
                                 static_cast<size_t>(p * static_cast<double>(rtts_us_.size())))];
      };
      j["rtt_median_us"] = pct(0.5);
      j["rtt_p99_us"] = pct(0.99);
      j["rtt_msgs_per_s"] = static_cast<double>(opt_.pingpong) / rtt_total_s_;
    }
    Emit(j);
    done_ = true;
  }

  Options opt_;
  CpgTransport transport_;
  int epoll_ = -1;
  bool done_ = false;
  int exit_code_ = 0;
  size_t members_ = 0;
  std::optional<Clock::time_point> rejoin_at_;
  std::deque<std::vector<uint8_t>> outbox_;
  size_t burst_pending_ = 0;
  uint64_t busy_ = 0;  // multicasts refused by flow control (kBusy) and retried
  std::string line_;
  // --pingpong
  int phase_ = 0;
  uint32_t sent_ = 0, received_ = 0, in_flight_ = 0;
  uint64_t next_seq_ = 0;
  Clock::time_point ping_sent_at_, phase_start_;
  double rtt_total_s_ = 0;
  std::vector<double> rtts_us_;
};

}  // namespace
}  // namespace clogd::logd

int main(int argc, char** argv) {
  clogd::logd::Options o;
  CLI::App app{"clog-cpg-probe: CpgTransport on real corosync, JSON lines out"};
  app.add_option("--group", o.group, "CPG group to join");
  app.add_flag("--quiet", o.quiet, "do not print deliveries");
  app.add_option("--pingpong", o.pingpong, "measure N round trips, then N pipelined messages");
  app.add_option("--size", o.size, "pingpong message size in bytes (>= 8)");
  app.add_option("--members", o.members, "pingpong starts when the group has this many members");
  app.add_option("--window", o.window, "messages in flight in the throughput phase");
  app.add_flag("--flood-only", o.flood_only, "pingpong: only the throughput phase");
  CLI11_PARSE(app, argc, argv);
  clogd::logd::Probe probe(o);
  return probe.Run();
}
