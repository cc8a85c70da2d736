// RegionBitmap: 64-bit words plus two summary trees (one over "word has a set bit", one
// over "word has a clear bit") so searches skip long empty or full stretches. The count is
// adjusted on every change so SyncCount-style queries never rescan the map.
#include "region/region_bitmap.h"

#include <bit>
#include <cstddef>

namespace clogd::region {
namespace {

constexpr uint64_t kAllOnes = ~uint64_t{0};
constexpr uint64_t kNpos = ~uint64_t{0};

uint64_t WordsFor(uint64_t bits) { return bits / 64 + (bits % 64 != 0 ? 1 : 0); }

// The words of level k of a summary tree: level 0 is `l0`, level k > 0 is up[k - 1].
std::vector<uint64_t>& Level(std::vector<uint64_t>& l0, std::vector<std::vector<uint64_t>>& up,
                             size_t k) {
  return k == 0 ? l0 : up[k - 1];
}
const std::vector<uint64_t>& Level(const std::vector<uint64_t>& l0,
                                   const std::vector<std::vector<uint64_t>>& up, size_t k) {
  return k == 0 ? l0 : up[k - 1];
}

// Builds the levels above l0 until a level fits in one word.
void BuildUpper(const std::vector<uint64_t>& l0, std::vector<std::vector<uint64_t>>& up) {
  up.clear();
  const std::vector<uint64_t>* below = &l0;
  while (below->size() > 1) {
    std::vector<uint64_t> level(WordsFor(below->size()), 0);
    for (size_t i = 0; i < below->size(); ++i) {
      if ((*below)[i] != 0) level[i / 64] |= uint64_t{1} << (i % 64);
    }
    up.push_back(std::move(level));
    below = &up.back();
  }
}

// Sets bit `index` of level 0 to `value` and carries the change upwards only as far as a
// word flips between zero and non-zero, so an update costs O(1) amortised.
void SetTreeBit(std::vector<uint64_t>& l0, std::vector<std::vector<uint64_t>>& up, uint64_t index,
                bool value) {
  const size_t levels = 1 + up.size();
  for (size_t k = 0; k < levels; ++k) {
    uint64_t& word = Level(l0, up, k)[index / 64];
    const bool was_nonzero = word != 0;
    const uint64_t bit = uint64_t{1} << (index % 64);
    word = value ? (word | bit) : (word & ~bit);
    const bool now_nonzero = word != 0;
    if (was_nonzero == now_nonzero) return;
    value = now_nonzero;
    index /= 64;
  }
}

// First set bit of level 0 at or after `from`, or kNpos: climb while the current word has
// nothing at or after the position, then descend along the lowest set bits.
uint64_t FindInTree(const std::vector<uint64_t>& l0, const std::vector<std::vector<uint64_t>>& up,
                    uint64_t from) {
  const size_t levels = 1 + up.size();
  size_t k = 0;
  uint64_t index = from;
  for (;;) {
    if (k >= levels) return kNpos;
    const std::vector<uint64_t>& level = Level(l0, up, k);
    const uint64_t wi = index / 64;
    if (wi >= level.size()) return kNpos;
    const uint64_t w = level[wi] & (kAllOnes << (index % 64));
    if (w != 0) {
      index = wi * 64 + static_cast<uint64_t>(std::countr_zero(w));
      break;
    }
    index = wi + 1;  // the next word of level k is bit wi + 1 of level k + 1
    ++k;
  }
  while (k > 0) {
    --k;
    const uint64_t w = Level(l0, up, k)[index];  // non-zero: its summary bit was set
    index = index * 64 + static_cast<uint64_t>(std::countr_zero(w));
  }
  return index;
}

}  // namespace

RegionBitmap::RegionBitmap(uint64_t nr_bits, bool initial_value)
    : nr_bits_(nr_bits), words_(WordsFor(nr_bits), 0) {
  if (initial_value) {
    SetAll();
  } else {
    RebuildSummaries();
  }
}

bool RegionBitmap::Test(RegionNo r) const {
  if (r >= nr_bits_) return false;
  return (words_[r / 64] >> (r % 64)) & 1;
}

bool RegionBitmap::Set(RegionNo r) {
  if (r >= nr_bits_) return false;
  const uint64_t bit = uint64_t{1} << (r % 64);
  uint64_t& word = words_[r / 64];
  if (word & bit) return false;
  word |= bit;
  ++count_;
  UpdateSummary(r / 64);
  return true;
}

bool RegionBitmap::Clear(RegionNo r) {
  if (r >= nr_bits_) return false;
  const uint64_t bit = uint64_t{1} << (r % 64);
  uint64_t& word = words_[r / 64];
  if (!(word & bit)) return false;
  word &= ~bit;
  --count_;
  UpdateSummary(r / 64);
  return true;
}

void RegionBitmap::SetAll() {
  for (uint64_t& w : words_) w = kAllOnes;
  // Bits past size() stay zero so the words can go to disk as they are.
  if (nr_bits_ % 64 != 0) words_.back() = (uint64_t{1} << (nr_bits_ % 64)) - 1;
  count_ = nr_bits_;
  RebuildSummaries();
}

void RegionBitmap::ClearAll() {
  for (uint64_t& w : words_) w = 0;
  count_ = 0;
  RebuildSummaries();
}

RegionNo RegionBitmap::FindNextSet(RegionNo from) const {
  if (from >= nr_bits_) return kNoRegion;
  const uint64_t wi = from / 64;
  const uint64_t here = words_[wi] & (kAllOnes << (from % 64));
  if (here != 0) return wi * 64 + static_cast<uint64_t>(std::countr_zero(here));
  const uint64_t next = FindInTree(any_set_, set_upper_, wi + 1);
  if (next == kNpos) return kNoRegion;
  return next * 64 + static_cast<uint64_t>(std::countr_zero(words_[next]));
}

RegionNo RegionBitmap::FindNextClear(RegionNo from) const {
  if (from >= nr_bits_) return kNoRegion;
  const uint64_t last = words_.size() - 1;
  const uint64_t tail_mask = nr_bits_ % 64 == 0 ? kAllOnes : (uint64_t{1} << (nr_bits_ % 64)) - 1;
  auto clear_bits = [&](uint64_t wi) { return ~words_[wi] & (wi == last ? tail_mask : kAllOnes); };
  const uint64_t wi = from / 64;
  const uint64_t here = clear_bits(wi) & (kAllOnes << (from % 64));
  if (here != 0) return wi * 64 + static_cast<uint64_t>(std::countr_zero(here));
  const uint64_t next = FindInTree(any_clear_, clear_upper_, wi + 1);
  if (next == kNpos) return kNoRegion;
  return next * 64 + static_cast<uint64_t>(std::countr_zero(clear_bits(next)));
}

std::vector<uint8_t> RegionBitmap::ToBytes() const {
  std::vector<uint8_t> out(nr_bits_ / 8 + (nr_bits_ % 8 != 0 ? 1 : 0));
  ToBytes(out);
  return out;
}

void RegionBitmap::ToBytes(std::span<uint8_t> out) const {
  const uint64_t n = nr_bits_ / 8 + (nr_bits_ % 8 != 0 ? 1 : 0);
  const uint64_t fill = n < out.size() ? n : out.size();
  for (uint64_t i = 0; i < fill; ++i) {
    out[i] = static_cast<uint8_t>(words_[i / 8] >> (8 * (i % 8)));
  }
  for (uint64_t i = fill; i < out.size(); ++i) out[i] = 0;
}

void RegionBitmap::FromBytes(std::span<const uint8_t> in) {
  const uint64_t n = nr_bits_ / 8 + (nr_bits_ % 8 != 0 ? 1 : 0);
  const uint64_t take = n < in.size() ? n : in.size();
  for (uint64_t& w : words_) w = 0;
  for (uint64_t i = 0; i < take; ++i) {
    words_[i / 8] |= static_cast<uint64_t>(in[i]) << (8 * (i % 8));
  }
  if (nr_bits_ % 64 != 0) words_.back() &= (uint64_t{1} << (nr_bits_ % 64)) - 1;
  count_ = 0;
  for (uint64_t w : words_) count_ += static_cast<uint64_t>(std::popcount(w));
  RebuildSummaries();
}

void RegionBitmap::RebuildSummaries() {
  const uint64_t nwords = words_.size();
  any_set_.assign(WordsFor(nwords), 0);
  any_clear_.assign(WordsFor(nwords), 0);
  const uint64_t tail_mask = nr_bits_ % 64 == 0 ? kAllOnes : (uint64_t{1} << (nr_bits_ % 64)) - 1;
  for (uint64_t w = 0; w < nwords; ++w) {
    const uint64_t valid = w + 1 == nwords ? tail_mask : kAllOnes;
    const uint64_t bit = uint64_t{1} << (w % 64);
    if (words_[w] != 0) any_set_[w / 64] |= bit;
    if ((~words_[w] & valid) != 0) any_clear_[w / 64] |= bit;
  }
  BuildUpper(any_set_, set_upper_);
  BuildUpper(any_clear_, clear_upper_);
}

void RegionBitmap::UpdateSummary(uint64_t word_index) {
  const uint64_t valid = word_index + 1 == words_.size() && nr_bits_ % 64 != 0
                             ? (uint64_t{1} << (nr_bits_ % 64)) - 1
                             : kAllOnes;
  SetTreeBit(any_set_, set_upper_, word_index, words_[word_index] != 0);
  SetTreeBit(any_clear_, clear_upper_, word_index, (~words_[word_index] & valid) != 0);
}

}  // namespace clogd::region
