// A fixed-size bitmap over region numbers with the set-bit count kept incrementally
// (never recounted) and summary levels so that FindNextSet / FindNextClear skip whole
// empty (full) stretches: level 0 has one bit per 64-region word, each level above one bit
// per word of the level below, so a search touches O(levels) words, not O(n/64).
// Bit order in Bytes form is the kernel's little-endian bitmap order
// (region r is bit r%8 of byte r/8), so the words can be written to disk as they are.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace clogd::region {

using RegionNo = uint64_t;
inline constexpr RegionNo kNoRegion = ~RegionNo{0};

class RegionBitmap {
 public:
  RegionBitmap() = default;
  explicit RegionBitmap(uint64_t nr_bits, bool initial_value = false);

  uint64_t size() const { return nr_bits_; }
  uint64_t count() const { return count_; }  // number of set bits, O(1)
  bool all() const { return count_ == nr_bits_; }
  bool none() const { return count_ == 0; }

  bool Test(RegionNo r) const;
  // Set/Clear return true if the bit changed.
  bool Set(RegionNo r);
  bool Clear(RegionNo r);
  void SetAll();
  void ClearAll();

  // First set (clear) bit at or after `from`, or kNoRegion.
  RegionNo FindNextSet(RegionNo from) const;
  RegionNo FindNextClear(RegionNo from) const;

  // Little-endian byte image, ceil(size/8) bytes; bits past size() are zero.
  std::vector<uint8_t> ToBytes() const;
  // Writes the image into `out` (at least ceil(size/8) bytes; the rest is zeroed).
  void ToBytes(std::span<uint8_t> out) const;
  // Loads from a little-endian byte image of at least ceil(size/8) bytes; bits past
  // size() in the image are ignored.
  void FromBytes(std::span<const uint8_t> in);

  // The 64-bit word holding bit r, as stored (for incremental on-disk updates).
  uint64_t Word(uint64_t word_index) const { return words_[word_index]; }
  uint64_t WordCount() const { return words_.size(); }

  bool operator==(const RegionBitmap& other) const {
    return nr_bits_ == other.nr_bits_ && words_ == other.words_;
  }

 private:
  void RebuildSummaries();
  void UpdateSummary(uint64_t word_index);

  uint64_t nr_bits_ = 0;
  uint64_t count_ = 0;
  std::vector<uint64_t> words_;
  // Bit w set: words_[w] != 0 (for FindNextSet).
  std::vector<uint64_t> any_set_;
  // Bit w set: words_[w] has a clear bit below nr_bits_ (for FindNextClear).
  std::vector<uint64_t> any_clear_;
  // Levels above any_set_ / any_clear_: bit i of level k+1 set iff word i of level k
  // (level 0 being any_set_ / any_clear_) is non-zero. The top level is one word.
  std::vector<std::vector<uint64_t>> set_upper_;
  std::vector<std::vector<uint64_t>> clear_upper_;
};

}  // namespace clogd::region
