// Little-endian byte writer/reader for cluster messages and checkpoints. The reader never
// reads past its end: a short buffer sets an error (Problem() says where) and yields zeros,
// so decoders check ok() once at the end instead of after every field.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace clogd::logd {

inline void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline std::string ToHex(uint64_t v) {
  static const char* const kDigits = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), kDigits[v & 0xF]);
    v >>= 4;
  } while (v != 0);
  return s;
}

class WireWriter {
 public:
  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  void Bytes(std::span<const uint8_t> b) {
    U32(static_cast<uint32_t>(b.size()));
    out_.insert(out_.end(), b.begin(), b.end());
  }
  template <typename Container>
  void Regions(const Container& regions) {
    U32(static_cast<uint32_t>(regions.size()));
    for (uint64_t r : regions) U64(r);
  }
  size_t size() const { return out_.size(); }
  std::vector<uint8_t> Take() { return std::move(out_); }

 private:
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
};

class WireReader {
 public:
  explicit WireReader(std::span<const uint8_t> in) : in_(in) {}

  uint8_t U8() { return static_cast<uint8_t>(Le(1, "u8")); }
  uint16_t U16() { return static_cast<uint16_t>(Le(2, "u16")); }
  uint32_t U32() { return static_cast<uint32_t>(Le(4, "u32")); }
  uint64_t U64() { return Le(8, "u64"); }
  bool Bool() {
    uint8_t v = U8();
    if (v > 1) Fail("boolean byte " + std::to_string(v));
    return v == 1;
  }
  std::vector<uint8_t> Bytes() {
    uint32_t n = U32();
    if (!Need(n, "byte string")) return {};
    std::vector<uint8_t> b(in_.begin() + static_cast<std::ptrdiff_t>(pos_),
                           in_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return b;
  }
  std::vector<uint64_t> Regions() {
    uint32_t n = U32();
    if (!Need(uint64_t{n} * 8, "region list")) return {};
    std::vector<uint64_t> v(n);
    for (auto& r : v) r = U64();
    return v;
  }

  bool ok() const { return problem_.empty(); }
  bool AtEnd() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  std::string Problem() const {
    if (!ok()) return problem_;
    return AtEnd() ? "" : std::to_string(in_.size() - pos_) + " trailing bytes";
  }
  void Fail(const std::string& why) {
    if (problem_.empty()) problem_ = why + " at byte " + std::to_string(pos_);
  }

 private:
  bool Need(uint64_t n, const char* what) {
    if (!ok()) return false;
    if (n > in_.size() - pos_) {
      Fail(std::string(what) + " of " + std::to_string(n) + " bytes runs past the end");
      return false;
    }
    return true;
  }
  uint64_t Le(int n, const char* what) {
    if (!Need(static_cast<uint64_t>(n), what)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{in_[pos_ + static_cast<size_t>(i)]} << (8 * i);
    pos_ += static_cast<size_t>(n);
    return v;
  }

  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  std::string problem_;
};

}  // namespace clogd::logd
