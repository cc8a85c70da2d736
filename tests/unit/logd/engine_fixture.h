// Test helpers for driving the log engine the way the kernel does: a reply collector, a
// device opener over shared in-memory devices (so a "restarted" engine sees the same
// disk), and request builders.
#pragma once

#include <linux/dm-log-userspace.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "logd/log_engine.h"
#include "region/memory_device.h"

namespace clogd::logd::testing {

class CollectingSink : public ReplySink {
 public:
  void Reply(const UlogReply& reply) override { replies.push_back(reply); }
  std::vector<UlogReply> replies;
};

using DeviceRef = region::BlockDeviceRef;

class Devices {
 public:
  region::MemoryDevice& Add(const std::string& name, uint64_t bytes) {
    auto dev = std::make_unique<region::MemoryDevice>(bytes, 512, name);
    auto& ref = *dev;
    devices_[name] = std::move(dev);
    return ref;
  }
  DeviceOpener Opener() {
    return [this](const std::string& name) -> Result<std::unique_ptr<region::BlockDevice>> {
      auto it = devices_.find(name);
      if (it == devices_.end()) return NotFound("no device " + name);
      return std::unique_ptr<region::BlockDevice>(std::make_unique<DeviceRef>(*it->second));
    };
  }

 private:
  std::map<std::string, std::unique_ptr<region::MemoryDevice>> devices_;
};

inline UlogRequest Req(uint32_t type, uint64_t luid = 1, std::string uuid = "LVM-test",
                       std::vector<uint8_t> payload = {}) {
  static uint32_t seq = 0;
  UlogRequest r;
  r.luid = luid;
  r.uuid = std::move(uuid);
  r.seq = ++seq;
  r.raw_type = type;
  r.type = type;
  r.payload = std::move(payload);
  return r;
}

inline std::vector<uint8_t> Regions(std::initializer_list<uint64_t> regions) {
  std::vector<uint8_t> out;
  for (uint64_t r : regions) {
    auto b = U64Payload(r);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

// The CTR string as the kernel sends it to construct a log: without its NUL.
inline std::vector<uint8_t> CtrPayload(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}
// ... and as it re-sends it after -ESRCH: with its NUL, and no room for a reply payload.
inline std::vector<uint8_t> ResentCtrPayload(const std::string& s) {
  std::vector<uint8_t> out(s.begin(), s.end());
  out.push_back(0);
  return out;
}

inline int64_t AsS64(const UlogReply& r) {
  int64_t v = 0;
  if (r.payload.size() >= 8) std::memcpy(&v, r.payload.data(), 8);
  return v;
}

inline std::string AsString(const UlogReply& r) {
  std::string s(r.payload.begin(), r.payload.end());
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

}  // namespace clogd::logd::testing
