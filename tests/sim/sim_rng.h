// The simulator's only source of randomness: a seeded PRNG (xoshiro256**, state filled by
// splitmix64) with its own bounded draws. std::uniform_int_distribution and friends are not
// used because their output differs between standard libraries; with these helpers a seed
// gives the same run under gcc/libstdc++ and clang/libc++ alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace clogd::sim {

class SimRng {
 public:
  explicit SimRng(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& word : s_) word = SplitMix64(x);
  }

  // One splitmix64 step: advances `state` and returns the mixed value.
  static uint64_t SplitMix64(uint64_t& state) {
    state += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // 64 uniformly random bits (xoshiro256**).
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n); 0 when n == 0. Rejection sampling, so there is no modulo bias.
  uint64_t Below(uint64_t n) {
    if (n == 0) return 0;
    const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: draws below it are biased
    for (;;) {
      const uint64_t r = Next();
      if (r >= threshold) return r % n;
    }
  }

  // Uniform in [lo, hi] (both included); lo when hi <= lo.
  uint64_t Range(uint64_t lo, uint64_t hi) {
    if (hi <= lo) return lo;
    const uint64_t span = hi - lo;
    return span == UINT64_MAX ? Next() : lo + Below(span + 1);
  }

  size_t Index(size_t n) { return static_cast<size_t>(Below(n)); }

  // True with probability p (p <= 0: never, p >= 1: always). Uses 53 random bits, exact in
  // a double, so the comparison is the same on every IEEE-754 machine.
  bool Chance(double p) {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0) < p;
  }

  // True with probability 1/n (n == 0 or 1: always).
  bool OneIn(uint64_t n) { return n <= 1 || Below(n) == 0; }

  // A uniformly chosen element; v must not be empty.
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Index(v.size())];
  }

  // Fisher-Yates with our own bounded draw.
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Index(i)]);
  }

  // An independent stream, e.g. one per simulated component, so adding draws in one place
  // does not shift every other component's choices.
  SimRng Fork() { return SimRng(Next()); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t s_[4];
};

}  // namespace clogd::sim
