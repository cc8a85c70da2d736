// The log device behind a small interface (LevelDB's Env idea): production uses an
// O_DIRECT file or block device whose Flush() is durable; tests and the simulator use
// an in-memory device that injects faults (failed write, torn write, lost flush).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "region/status.h"

namespace clogd::region {

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  // Size of the device in bytes.
  virtual uint64_t SizeBytes() const = 0;
  // Offsets and lengths of Read/Write must be multiples of this (512 or 4096).
  virtual uint32_t BlockSize() const = 0;
  // A name for messages ("/dev/vdb", "253:2", "mem0").
  virtual std::string Name() const = 0;

  virtual Status Read(uint64_t offset, std::span<uint8_t> out) = 0;
  // A write is not durable until Flush() returns ok.
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Makes every completed Write durable (fdatasync / FUA).
  virtual Status Flush() = 0;
};

// A non-owning BlockDevice that forwards to another one: lets several users (engines,
// simulated nodes, tests) open the same device while its owner keeps it alive.
class BlockDeviceRef : public BlockDevice {
 public:
  explicit BlockDeviceRef(BlockDevice& dev) : dev_(dev) {}
  uint64_t SizeBytes() const override { return dev_.SizeBytes(); }
  uint32_t BlockSize() const override { return dev_.BlockSize(); }
  std::string Name() const override { return dev_.Name(); }
  Status Read(uint64_t offset, std::span<uint8_t> out) override { return dev_.Read(offset, out); }
  Status Write(uint64_t offset, std::span<const uint8_t> data) override {
    return dev_.Write(offset, data);
  }
  Status Flush() override { return dev_.Flush(); }

 private:
  BlockDevice& dev_;
};

// Opens a file or block device with O_DIRECT. Flush() is fdatasync(), which on a block
// device also flushes the disk's volatile write cache.
Result<std::unique_ptr<BlockDevice>> OpenDirectDevice(const std::string& path);

}  // namespace clogd::region
