// FormatRegionRanges: the text of region sets in log lines.
#include "region/region_ranges.h"

#include <gtest/gtest.h>

namespace clogd::region {
namespace {

TEST(RegionRanges, EmptyIsNone) { EXPECT_EQ(FormatRegionRanges({}), "none"); }

TEST(RegionRanges, RunsJoinAndSinglesStayAlone) {
  EXPECT_EQ(FormatRegionRanges({3, 4, 5, 6, 7, 12, 40, 41}), "3-7,12,40-41");
  EXPECT_EQ(FormatRegionRanges({0}), "0");
  EXPECT_EQ(FormatRegionRanges({5, 5, 6}), "5-6");
}

TEST(RegionRanges, LongSetsAreCutAfterMaxRanges) {
  EXPECT_EQ(FormatRegionRanges({1, 3, 5, 7}, 2), "1,3,...");
  EXPECT_EQ(FormatRegionRanges({1, 3}, 2), "1,3");
}

}  // namespace
}  // namespace clogd::region
