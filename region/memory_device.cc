// MemoryDevice: durability is modelled with a journal of unflushed writes, so Flush()
// and Crash() cost the bytes written since the last flush, not the size of the device
// (the simulator flushes on every FLUSH request).
#include "region/memory_device.h"

#include <algorithm>
#include <utility>

namespace clogd::region {

MemoryDevice::MemoryDevice(uint64_t size_bytes, uint32_t block_size, std::string name)
    : block_size_(block_size == 0 ? 512 : block_size),
      name_(std::move(name)),
      current_(size_bytes, 0),
      durable_(size_bytes, 0) {}

Status MemoryDevice::CheckRange(const char* op, uint64_t offset, uint64_t length) const {
  if (offset % block_size_ != 0 || length % block_size_ != 0) {
    return InvalidArgument(name_ + ": " + op + " at offset " + std::to_string(offset) + " length " +
                           std::to_string(length) + " is not aligned to the " +
                           std::to_string(block_size_) + "-byte block size");
  }
  if (offset > current_.size() || length > current_.size() - offset) {
    return OutOfRange(name_ + ": " + op + " at offset " + std::to_string(offset) + " length " +
                      std::to_string(length) + " is past the end of the device (" +
                      std::to_string(current_.size()) + " bytes)");
  }
  return Status::Ok();
}

Status MemoryDevice::Read(uint64_t offset, std::span<uint8_t> out) {
  CLOG_RETURN_IF_ERROR(CheckRange("read", offset, out.size()));
  ++reads_;
  if (fail_reads_) {
    return IoError(name_ + ": read at offset " + std::to_string(offset) + " length " +
                   std::to_string(out.size()) + " failed (injected)");
  }
  std::copy_n(current_.begin() + static_cast<std::ptrdiff_t>(offset), out.size(), out.begin());
  return Status::Ok();
}

Status MemoryDevice::Write(uint64_t offset, std::span<const uint8_t> data) {
  CLOG_RETURN_IF_ERROR(CheckRange("write", offset, data.size()));
  ++writes_;
  if (fail_writes_ > 0) {
    --fail_writes_;
    return IoError(name_ + ": write at offset " + std::to_string(offset) + " length " +
                   std::to_string(data.size()) + " failed (injected)");
  }
  uint64_t land = data.size();
  const bool torn = tear_next_;
  if (torn) {
    tear_next_ = false;
    land = std::min<uint64_t>(tear_keep_ - tear_keep_ % block_size_, data.size());
  }
  if (land > 0) {
    std::copy_n(data.begin(), land, current_.begin() + static_cast<std::ptrdiff_t>(offset));
    pending_.push_back(PendingWrite{
        offset,
        std::vector<uint8_t>(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(land))});
    bytes_written_ += land;
  }
  if (torn) {
    return IoError(name_ + ": write at offset " + std::to_string(offset) + " length " +
                   std::to_string(data.size()) + " torn after " + std::to_string(land) +
                   " bytes (injected)");
  }
  return Status::Ok();
}

Status MemoryDevice::Flush() {
  ++flushes_;
  if (fail_flushes_ > 0) {
    --fail_flushes_;
    return IoError(name_ + ": flush failed (injected)");
  }
  if (lose_flushes_ > 0) {
    --lose_flushes_;
    return Status::Ok();  // the lie: nothing became durable
  }
  for (const PendingWrite& w : pending_) {
    std::copy(w.data.begin(), w.data.end(),
              durable_.begin() + static_cast<std::ptrdiff_t>(w.offset));
  }
  pending_.clear();
  return Status::Ok();
}

void MemoryDevice::TearNextWrite(uint64_t keep_bytes) {
  tear_next_ = true;
  tear_keep_ = keep_bytes;
}

void MemoryDevice::Crash() {
  CrashKeeping([](size_t, uint64_t, uint64_t) { return false; });
}

void MemoryDevice::CrashKeeping(
    const std::function<bool(size_t index, uint64_t offset, uint64_t length)>& keep) {
  for (size_t i = 0; i < pending_.size(); ++i) {
    const PendingWrite& w = pending_[i];
    if (keep(i, w.offset, w.data.size())) {
      std::copy(w.data.begin(), w.data.end(),
                durable_.begin() + static_cast<std::ptrdiff_t>(w.offset));
    }
  }
  // Only the ranges touched since the last flush can differ between the images.
  for (const PendingWrite& w : pending_) {
    const auto begin = static_cast<std::ptrdiff_t>(w.offset);
    const auto end = begin + static_cast<std::ptrdiff_t>(w.data.size());
    std::copy(durable_.begin() + begin, durable_.begin() + end, current_.begin() + begin);
  }
  pending_.clear();
  fail_writes_ = 0;
  fail_flushes_ = 0;
  lose_flushes_ = 0;
  tear_next_ = false;
}

void MemoryDevice::Load(uint64_t offset, std::span<const uint8_t> bytes) {
  if (offset > current_.size()) return;
  const uint64_t n = std::min<uint64_t>(bytes.size(), current_.size() - offset);
  const auto at = static_cast<std::ptrdiff_t>(offset);
  std::copy_n(bytes.begin(), n, current_.begin() + at);
  std::copy_n(bytes.begin(), n, durable_.begin() + at);
}

}  // namespace clogd::region
