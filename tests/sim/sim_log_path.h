// One node's path to a shared simulated log device, with the faults a path has: while the
// path (or the device) is down every I/O fails; a write torn by the node crashing in the
// middle of it lands in part and never returns (the world crashes the node at once).
#pragma once

#include <functional>
#include <string>

#include "region/block_device.h"
#include "region/memory_device.h"

namespace clogd::sim {

class SimLogPath : public region::BlockDevice {
 public:
  enum class Fault { kNone, kDown, kTearWrite };
  // `fault` is asked before each I/O; `torn` is called after a torn write landed.
  SimLogPath(region::MemoryDevice& dev, std::function<Fault()> fault, std::function<void()> torn)
      : dev_(dev), fault_(std::move(fault)), torn_(std::move(torn)) {}

  uint64_t SizeBytes() const override { return dev_.SizeBytes(); }
  uint32_t BlockSize() const override { return dev_.BlockSize(); }
  std::string Name() const override { return dev_.Name(); }

  Status Read(uint64_t offset, std::span<uint8_t> out) override {
    if (fault_() == Fault::kDown) return IoError(Name() + ": simulated path failure (read)");
    return dev_.Read(offset, out);
  }
  Status Write(uint64_t offset, std::span<const uint8_t> data) override {
    switch (fault_()) {
      case Fault::kDown:
        return IoError(Name() + ": simulated path failure (write)");
      case Fault::kTearWrite: {
        // The first half of the blocks land; the node dies before the rest.
        const uint64_t blocks = data.size() / dev_.BlockSize();
        const uint64_t keep = (blocks / 2) * dev_.BlockSize();
        if (keep > 0) (void)dev_.Write(offset, data.first(keep));
        torn_();
        return IoError(Name() + ": simulated crash in the middle of a write");
      }
      case Fault::kNone:
        break;
    }
    return dev_.Write(offset, data);
  }
  Status Flush() override {
    if (fault_() == Fault::kDown) return IoError(Name() + ": simulated path failure (flush)");
    return dev_.Flush();
  }

 private:
  region::MemoryDevice& dev_;
  std::function<Fault()> fault_;
  std::function<void()> torn_;
};

}  // namespace clogd::sim
