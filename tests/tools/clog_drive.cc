// clog-drive: feeds kernel-style dirty-log requests to the single-node engine over a real
// log device (O_DIRECT file or block device) and prints each reply. Used by demo.sh and
// by tests that exercise the engine on a real file. One command per line on stdin:
//   ctr <luid> <ctr string>   resume|presuspend|postsuspend|dtr <luid>
//   mark|clear <luid> <r>...  flush <luid> [<r>...]   in_sync|is_clean <luid> <r>
//   resync <luid>             (GET_RESYNC_WORK + SET_REGION_SYNC until no work; prints
//                              the regions handed out)
//   count|status <luid>       crash (exit at once: no DTR, as if the node died)
#include <linux/dm-log-userspace.h>

#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "logd/device_path.h"
#include "logd/log_engine.h"

namespace {

using namespace clogd::logd;

class PrintSink : public ReplySink {
 public:
  void Reply(const UlogReply& reply) override { last = reply; }
  UlogReply last;
};

std::vector<uint8_t> RegionList(std::istringstream& in) {
  std::vector<uint8_t> out;
  uint64_t r;
  while (in >> r) {
    auto b = U64Payload(r);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

int64_t S64(const UlogReply& r, size_t off = 0) {
  int64_t v = 0;
  if (r.payload.size() >= off + 8) std::memcpy(&v, r.payload.data() + off, 8);
  return v;
}

}  // namespace

int main() {
  PrintSink sink;
  EngineOptions options;
  options.log = [](Severity s, const std::string& m) {
    std::cerr << "  [" << SeverityName(s) << "] " << m << "\n";
  };
  LogEngine engine(OpenLogDevice, options, sink);
  uint32_t seq = 0;
  int failures = 0;
  auto send = [&](uint32_t type, uint64_t luid, std::vector<uint8_t> payload) {
    UlogRequest r;
    r.luid = luid;
    r.uuid = "demo-" + std::to_string(luid);
    r.seq = ++seq;
    r.raw_type = r.type = type;
    r.payload = std::move(payload);
    engine.Submit(r);
    if (sink.last.error != 0) ++failures;
    return sink.last;
  };

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    uint64_t luid = 0;
    if (!(in >> cmd) || cmd[0] == '#') continue;
    if (cmd == "crash") {
      std::cout << "crash: exiting without DTR\n";
      return 0;
    }
    in >> luid;
    UlogReply reply;
    if (cmd == "ctr") {
      std::string rest;
      std::getline(in, rest);
      std::vector<uint8_t> p(rest.begin() + (rest.empty() ? 0 : 1), rest.end());
      p.push_back(0);
      reply = send(DM_ULOG_CTR, luid, p);
    } else if (cmd == "resume") {
      reply = send(DM_ULOG_RESUME, luid, {});
    } else if (cmd == "presuspend") {
      reply = send(DM_ULOG_PRESUSPEND, luid, {});
    } else if (cmd == "postsuspend") {
      reply = send(DM_ULOG_POSTSUSPEND, luid, {});
    } else if (cmd == "dtr") {
      reply = send(DM_ULOG_DTR, luid, {});
    } else if (cmd == "mark") {
      reply = send(DM_ULOG_MARK_REGION, luid, RegionList(in));
    } else if (cmd == "clear") {
      reply = send(DM_ULOG_CLEAR_REGION, luid, RegionList(in));
    } else if (cmd == "flush") {
      reply = send(DM_ULOG_FLUSH, luid, RegionList(in));
    } else if (cmd == "in_sync" || cmd == "is_clean") {
      reply = send(cmd == "in_sync" ? DM_ULOG_IN_SYNC : DM_ULOG_IS_CLEAN, luid, RegionList(in));
      std::cout << cmd << ": " << S64(reply) << "\n";
    } else if (cmd == "count") {
      reply = send(DM_ULOG_GET_SYNC_COUNT, luid, {});
      std::cout << "in sync: " << S64(reply) << "\n";
    } else if (cmd == "status") {
      reply = send(DM_ULOG_STATUS_INFO, luid, {});
      std::cout << "status: " << std::string(reply.payload.begin(), reply.payload.end()).c_str()
                << "\n";
    } else if (cmd == "resync") {
      std::cout << "resynced:";
      for (;;) {
        reply = send(DM_ULOG_GET_RESYNC_WORK, luid, {});
        if (reply.error != 0 || S64(reply) == 0) break;
        uint64_t region = static_cast<uint64_t>(S64(reply, 8));
        std::cout << " " << region;
        auto p = U64Payload(region);
        auto one = S64Payload(1);
        p.insert(p.end(), one.begin(), one.end());
        send(DM_ULOG_SET_REGION_SYNC, luid, p);
      }
      std::cout << "\n";
    } else {
      std::cerr << "clog-drive: unknown command '" << cmd << "'\n";
      return 2;
    }
    if (reply.error != 0) {
      std::cout << cmd << ": error " << reply.error << "\n";
    }
  }
  return failures == 0 ? 0 : 1;
}
