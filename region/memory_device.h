// An in-memory BlockDevice for tests and the deterministic simulator. It models
// durability: writes land in a "current" image and become durable only when Flush()
// succeeds; Crash() throws away everything not yet durable. Faults are injected on
// request: failed writes/flushes/reads, a torn write (a crash mid-write) and a lost
// flush (the device claims durability it does not have).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "region/block_device.h"
#include "region/status.h"

namespace clogd::region {

class MemoryDevice : public BlockDevice {
 public:
  // A zero-filled device (both images). block_size must be a power of two.
  explicit MemoryDevice(uint64_t size_bytes, uint32_t block_size = 512, std::string name = "mem");

  uint64_t SizeBytes() const override { return current_.size(); }
  uint32_t BlockSize() const override { return block_size_; }
  std::string Name() const override { return name_; }

  Status Read(uint64_t offset, std::span<uint8_t> out) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;
  Status Flush() override;

  // --- fault injection
  // The next n writes return kIoError and write nothing.
  void FailNextWrites(int n) { fail_writes_ = n; }
  // The next n flushes return kIoError and make nothing durable.
  void FailNextFlushes(int n) { fail_flushes_ = n; }
  // While set, every read returns kIoError.
  void FailReads(bool fail) { fail_reads_ = fail; }
  // Only the first keep_bytes (rounded down to the block size) of the next write land
  // (not yet durable), and that write returns kIoError: a crash in the middle of a write.
  void TearNextWrite(uint64_t keep_bytes);
  // The next flush returns ok but makes nothing durable (a lying write cache).
  void LoseNextFlush() { lose_flushes_ = 1; }

  // Power loss: the current image reverts to the durable image.
  void Crash();
  // Power loss where some writes since the last durable flush happened to reach the media:
  // writes for which keep(index, offset, length) returns true (index counts unflushed
  // writes from 0, oldest first) are applied to the durable image, in order, first.
  void CrashKeeping(
      const std::function<bool(size_t index, uint64_t offset, uint64_t length)>& keep);
  // Writes not yet made durable, oldest first.
  size_t PendingWrites() const { return pending_.size(); }

  // --- inspection and setup
  const std::vector<uint8_t>& current() const { return current_; }
  const std::vector<uint8_t>& durable() const { return durable_; }
  // Places bytes in both images (as if they had been there for ages): for tests that
  // hand-build a device. No alignment rules, no counters, no faults.
  void Load(uint64_t offset, std::span<const uint8_t> bytes);

  // Counters: Write calls that passed argument checks (including failed and torn ones),
  // bytes that landed in the current image, Flush calls.
  uint64_t writes() const { return writes_; }
  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t flushes() const { return flushes_; }
  uint64_t reads() const { return reads_; }

 private:
  struct PendingWrite {
    uint64_t offset;
    std::vector<uint8_t> data;
  };

  Status CheckRange(const char* op, uint64_t offset, uint64_t length) const;

  uint32_t block_size_;
  std::string name_;
  std::vector<uint8_t> current_;
  std::vector<uint8_t> durable_;
  std::vector<PendingWrite> pending_;  // landed in current_, not yet in durable_

  int fail_writes_ = 0;
  int fail_flushes_ = 0;
  int lose_flushes_ = 0;
  bool fail_reads_ = false;
  bool tear_next_ = false;
  uint64_t tear_keep_ = 0;

  uint64_t writes_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t flushes_ = 0;
  uint64_t reads_ = 0;
};

}  // namespace clogd::region
