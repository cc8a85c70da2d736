// The production BlockDevice: a file or block device opened with O_DIRECT, so log writes
// bypass the page cache and Flush() (fdatasync) makes them durable on the media, including
// the disk's volatile write cache. O_DIRECT wants aligned memory, so all I/O goes through
// a posix_memalign'd bounce buffer.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "region/block_device.h"

namespace clogd::region {
namespace {

// Buffer alignment that satisfies O_DIRECT on every logical block size we accept.
constexpr size_t kBufferAlign = 4096;

std::string ErrnoText(int err) { return std::string(std::strerror(err)); }

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};

class DirectDevice : public BlockDevice {
 public:
  DirectDevice(std::string path, int fd, uint64_t size, uint32_t block_size)
      : path_(std::move(path)), fd_(fd), size_(size), block_size_(block_size) {}
  ~DirectDevice() override { ::close(fd_); }
  DirectDevice(const DirectDevice&) = delete;
  DirectDevice& operator=(const DirectDevice&) = delete;

  uint64_t SizeBytes() const override { return size_; }
  uint32_t BlockSize() const override { return block_size_; }
  std::string Name() const override { return path_; }

  Status Read(uint64_t offset, std::span<uint8_t> out) override {
    CLOG_RETURN_IF_ERROR(CheckRange("read", offset, out.size()));
    CLOG_RETURN_IF_ERROR(EnsureBuffer(out.size()));
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, buffer_.get() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError(path_ + ": read at offset " + std::to_string(offset + done) + " length " +
                       std::to_string(out.size() - done) + ": " + ErrnoText(errno));
      }
      if (n == 0) {
        return IoError(path_ + ": read at offset " + std::to_string(offset + done) +
                       ": unexpected end of device");
      }
      done += static_cast<size_t>(n);
    }
    std::memcpy(out.data(), buffer_.get(), out.size());
    return Status::Ok();
  }

  Status Write(uint64_t offset, std::span<const uint8_t> data) override {
    CLOG_RETURN_IF_ERROR(CheckRange("write", offset, data.size()));
    CLOG_RETURN_IF_ERROR(EnsureBuffer(data.size()));
    if (!data.empty()) std::memcpy(buffer_.get(), data.data(), data.size());
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::pwrite(fd_, buffer_.get() + done, data.size() - done,
                                 static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError(path_ + ": write at offset " + std::to_string(offset + done) + " length " +
                       std::to_string(data.size() - done) + ": " + ErrnoText(errno));
      }
      if (n == 0) {
        return IoError(path_ + ": write at offset " + std::to_string(offset + done) +
                       ": device accepted no bytes");
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status Flush() override {
    for (;;) {
      if (::fdatasync(fd_) == 0) return Status::Ok();
      if (errno != EINTR) return IoError(path_ + ": fdatasync: " + ErrnoText(errno));
    }
  }

 private:
  Status CheckRange(const char* op, uint64_t offset, uint64_t length) const {
    if (offset % block_size_ != 0 || length % block_size_ != 0) {
      return InvalidArgument(path_ + ": " + op + " at offset " + std::to_string(offset) +
                             " length " + std::to_string(length) + " is not aligned to the " +
                             std::to_string(block_size_) + "-byte block size");
    }
    if (offset > size_ || length > size_ - offset) {
      return OutOfRange(path_ + ": " + op + " at offset " + std::to_string(offset) + " length " +
                        std::to_string(length) + " is past the end of the device (" +
                        std::to_string(size_) + " bytes)");
    }
    return Status::Ok();
  }

  // Grows the bounce buffer to at least `length` bytes; it is kept for the next request
  // because the log writes the same few sizes over and over.
  Status EnsureBuffer(size_t length) {
    if (length <= buffer_size_ && buffer_) return Status::Ok();
    const size_t want =
        length == 0 ? kBufferAlign : (length + kBufferAlign - 1) / kBufferAlign * kBufferAlign;
    void* p = nullptr;
    const int rc = ::posix_memalign(&p, kBufferAlign, want);
    if (rc != 0) {
      return IoError(path_ + ": cannot allocate a " + std::to_string(want) +
                     "-byte aligned buffer: " + ErrnoText(rc));
    }
    buffer_.reset(static_cast<uint8_t*>(p));
    buffer_size_ = want;
    return Status::Ok();
  }

  std::string path_;
  int fd_;
  uint64_t size_;
  uint32_t block_size_;
  std::unique_ptr<uint8_t, FreeDeleter> buffer_;
  size_t buffer_size_ = 0;
};

}  // namespace

Result<std::unique_ptr<BlockDevice>> OpenDirectDevice(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return IoError(path + ": cannot open with O_DIRECT: " + ErrnoText(errno));

  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError(path + ": fstat: " + ErrnoText(err));
  }
  uint64_t size = 0;
  uint32_t block_size = 4096;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) {
      const int err = errno;
      ::close(fd);
      return IoError(path + ": ioctl BLKGETSIZE64: " + ErrnoText(err));
    }
    int sector = 0;
    if (::ioctl(fd, BLKSSZGET, &sector) != 0) {
      const int err = errno;
      ::close(fd);
      return IoError(path + ": ioctl BLKSSZGET: " + ErrnoText(err));
    }
    if (sector <= 0 || (sector & (sector - 1)) != 0) {
      ::close(fd);
      return IoError(path + ": logical block size " + std::to_string(sector) +
                     " is not a positive power of two");
    }
    block_size = static_cast<uint32_t>(sector);
  } else {
    ::close(fd);
    return InvalidArgument(path + ": not a regular file or block device");
  }
  return std::unique_ptr<BlockDevice>(std::make_unique<DirectDevice>(path, fd, size, block_size));
}

}  // namespace clogd::region
