// RegionBitmap: edge sizes, counts, searches (checked against a naive model, including
// across summary-level boundaries at 2^24 bits) and the little-endian byte image.
#include "region/region_bitmap.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace clogd::region {
namespace {

RegionNo NaiveNext(const std::vector<bool>& bits, RegionNo from, bool value) {
  for (RegionNo r = from; r < bits.size(); ++r) {
    if (bits[r] == value) return r;
  }
  return kNoRegion;
}

class BitmapSizes : public ::testing::TestWithParam<uint64_t> {};

TEST_P(BitmapSizes, EmptyAndFull) {
  const uint64_t n = GetParam();
  RegionBitmap clear(n);
  EXPECT_EQ(clear.size(), n);
  EXPECT_EQ(clear.count(), 0u);
  EXPECT_TRUE(clear.none());
  EXPECT_EQ(clear.all(), n == 0);
  EXPECT_EQ(clear.FindNextSet(0), kNoRegion);
  EXPECT_EQ(clear.FindNextClear(0), n == 0 ? kNoRegion : 0);
  if (n > 0) {
    EXPECT_EQ(clear.FindNextClear(n - 1), n - 1);
  }
  EXPECT_EQ(clear.FindNextClear(n), kNoRegion);

  RegionBitmap full(n, true);
  EXPECT_EQ(full.count(), n);
  EXPECT_TRUE(full.all());
  EXPECT_EQ(full.FindNextClear(0), kNoRegion);  // bits past size() never count as clear
  EXPECT_EQ(full.FindNextSet(0), n == 0 ? kNoRegion : 0);
  if (n > 0) {
    EXPECT_EQ(full.FindNextSet(n - 1), n - 1);
  }
  EXPECT_EQ(full.FindNextSet(n), kNoRegion);
  // Padding bits in the last word are zero (the words go to disk as they are).
  if (n % 64 != 0) {
    EXPECT_EQ(full.Word(full.WordCount() - 1), (uint64_t{1} << (n % 64)) - 1);
  }

  // Outside the map: no-ops.
  EXPECT_FALSE(full.Test(n));
  EXPECT_FALSE(clear.Set(n));
  EXPECT_FALSE(full.Clear(n));
  EXPECT_EQ(clear.count(), 0u);
  EXPECT_EQ(full.count(), n);

  if (n > 0) {
    EXPECT_TRUE(clear.Set(n - 1));
    EXPECT_FALSE(clear.Set(n - 1));
    EXPECT_EQ(clear.count(), 1u);
    EXPECT_EQ(clear.FindNextSet(0), n - 1);
    EXPECT_TRUE(full.Clear(n - 1));
    EXPECT_FALSE(full.Clear(n - 1));
    EXPECT_EQ(full.count(), n - 1);
    EXPECT_EQ(full.FindNextClear(0), n - 1);
    clear.ClearAll();
    EXPECT_TRUE(clear.none());
    full.SetAll();
    EXPECT_TRUE(full.all());
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, BitmapSizes,
                         ::testing::Values(0, 1, 63, 64, 65, 4095, 4096, 4097, 262145,
                                           uint64_t{1} << 24));

TEST(RegionBitmap, SearchAcrossSummaryLevelsAt2To24) {
  const uint64_t n = uint64_t{1} << 24;
  RegionBitmap b(n);
  const std::vector<RegionNo> points = {0, 63, 64, 4095, 4096, 262143, 262144, 9999999, n - 1};
  for (RegionNo r : points) b.Set(r);
  EXPECT_EQ(b.count(), points.size());
  RegionNo at = 0;
  for (RegionNo r : points) {
    EXPECT_EQ(b.FindNextSet(at), r);
    at = r + 1;
  }
  EXPECT_EQ(b.FindNextSet(at), kNoRegion);

  RegionBitmap f(n, true);
  for (RegionNo r : points) f.Clear(r);
  at = 0;
  for (RegionNo r : points) {
    EXPECT_EQ(f.FindNextClear(at), r);
    at = r + 1;
  }
  EXPECT_EQ(f.FindNextClear(at), kNoRegion);
  // Clearing and setting back restores every summary.
  for (RegionNo r : points) f.Set(r);
  EXPECT_TRUE(f.all());
  EXPECT_EQ(f.FindNextClear(0), kNoRegion);
  EXPECT_EQ(f, RegionBitmap(n, true));
}

TEST(RegionBitmap, RandomOperationsMatchNaiveModel) {
  std::mt19937_64 rng(42);
  for (uint64_t n : {1u, 64u, 65u, 200u, 5000u, 300000u}) {
    RegionBitmap b(n);
    std::vector<bool> model(n, false);
    uint64_t count = 0;
    for (int i = 0; i < 4000; ++i) {
      const RegionNo r = rng() % n;
      const int op = static_cast<int>(rng() % 10);
      if (op < 4) {
        EXPECT_EQ(b.Set(r), !model[r]);
        if (!model[r]) ++count;
        model[r] = true;
      } else if (op < 8) {
        EXPECT_EQ(b.Clear(r), model[r]);
        if (model[r]) --count;
        model[r] = false;
      } else {
        EXPECT_EQ(b.FindNextSet(r), NaiveNext(model, r, true)) << "n=" << n << " from " << r;
        EXPECT_EQ(b.FindNextClear(r), NaiveNext(model, r, false)) << "n=" << n << " from " << r;
      }
      ASSERT_EQ(b.count(), count);
    }
    // Sparse and dense extremes: walk every set / clear bit.
    RegionNo walked = 0;
    for (RegionNo r = b.FindNextSet(0); r != kNoRegion; r = b.FindNextSet(r + 1)) {
      ASSERT_TRUE(model[r]);
      ++walked;
    }
    EXPECT_EQ(walked, count);
    walked = 0;
    for (RegionNo r = b.FindNextClear(0); r != kNoRegion; r = b.FindNextClear(r + 1)) {
      ASSERT_FALSE(model[r]);
      ++walked;
    }
    EXPECT_EQ(walked, n - count);
  }
}

TEST(RegionBitmap, ByteImageIsLittleEndianBitOrder) {
  RegionBitmap b(20);
  b.Set(0);
  b.Set(9);
  b.Set(19);
  EXPECT_EQ(b.ToBytes(), (std::vector<uint8_t>{0x01, 0x02, 0x08}));
  std::vector<uint8_t> padded(6, 0xEE);
  b.ToBytes(padded);
  EXPECT_EQ(padded, (std::vector<uint8_t>{0x01, 0x02, 0x08, 0, 0, 0}));
  // Region r is bit r%8 of byte r/8, and word w holds bytes 8w..8w+7.
  RegionBitmap w(128);
  w.Set(8 * 9 + 3);  // byte 9, bit 3 -> word 1, bit 11
  EXPECT_EQ(w.Word(1), uint64_t{1} << 11);
  EXPECT_EQ(w.ToBytes()[9], 0x08);
}

TEST(RegionBitmap, FromBytesIgnoresBitsPastSize) {
  RegionBitmap b(20);
  const std::vector<uint8_t> image = {0xFF, 0x00, 0xFF, 0xFF};  // byte 3 is past the map
  b.FromBytes(image);
  EXPECT_EQ(b.count(), 8u + 4u);  // byte 2 holds regions 16..19 only
  EXPECT_TRUE(b.Test(19));
  EXPECT_EQ(b.FindNextClear(8), 8u);
  EXPECT_EQ(b.FindNextClear(16), kNoRegion);
  EXPECT_EQ(b.Word(0), 0xF00FFu);
  EXPECT_EQ(b.ToBytes(), (std::vector<uint8_t>{0xFF, 0x00, 0x0F}));
  RegionBitmap round(20);
  round.FromBytes(b.ToBytes());
  EXPECT_EQ(round, b);
}

}  // namespace
}  // namespace clogd::region
