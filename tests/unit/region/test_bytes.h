// Test-side helpers: a little-endian reader/writer written independently of the code
// under test, so byte-exact format tests do not decode with the decoder they check.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace clogd::region::testbytes {

inline uint32_t LE32(std::span<const uint8_t> b, uint64_t at) {
  return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 |
         uint32_t{b[at + 3]} << 24;
}

inline uint64_t LE64(std::span<const uint8_t> b, uint64_t at) {
  return uint64_t{LE32(b, at)} | uint64_t{LE32(b, at + 4)} << 32;
}

inline void PutLE32(std::span<uint8_t> b, uint64_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

inline void PutLE64(std::span<uint8_t> b, uint64_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

inline std::vector<uint8_t> Slice(std::span<const uint8_t> b, uint64_t at, uint64_t len) {
  return std::vector<uint8_t>(b.begin() + static_cast<std::ptrdiff_t>(at),
                              b.begin() + static_cast<std::ptrdiff_t>(at + len));
}

inline bool AllZero(std::span<const uint8_t> b) {
  for (uint8_t x : b) {
    if (x != 0) return false;
  }
  return true;
}

// The first 8 KiB of a dm-log disk log as the kernel leaves it: header {magic, version,
// nr_regions} at 0, clean bitmap (bit set = clean) at byte 1024.
inline std::vector<uint8_t> DmLogImage(uint64_t nr_regions, const std::vector<uint64_t>& clean,
                                       uint32_t version = 2) {
  std::vector<uint8_t> img(8192, 0);
  PutLE32(img, 0, 0x4D695272);
  PutLE32(img, 4, version);
  PutLE64(img, 8, nr_regions);
  for (uint64_t r : clean) img[1024 + r / 8] |= static_cast<uint8_t>(1u << (r % 8));
  return img;
}

}  // namespace clogd::region::testbytes
