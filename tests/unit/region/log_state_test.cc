// LogState: per-node marks (a region stays dirty until every marking node clears it),
// failed-node merge, clean map, range checks and equality.
#include "region/log_state.h"

#include <gtest/gtest.h>

namespace clogd::region {
namespace {

TEST(LogState, MarksByTwoNodesNeedTwoClears) {
  LogState s(64, 1024);
  EXPECT_EQ(s.nr_regions(), 64u);
  EXPECT_EQ(s.region_size(), 1024u);
  s.SetInSync(5, true);
  EXPECT_TRUE(s.IsClean(5));
  EXPECT_TRUE(s.Mark(1, 5));
  EXPECT_FALSE(s.Mark(1, 5));
  EXPECT_TRUE(s.Mark(2, 5));
  EXPECT_EQ(s.MarkCount(5), 2u);
  EXPECT_EQ(s.TotalMarked(), 1u);
  EXPECT_FALSE(s.IsClean(5));

  EXPECT_TRUE(s.Clear(1, 5));
  EXPECT_FALSE(s.Clear(1, 5));
  EXPECT_FALSE(s.IsClean(5));  // node 2 still holds it (H3)
  EXPECT_TRUE(s.IsMarkedByAny(5));
  EXPECT_FALSE(s.IsMarkedBy(1, 5));
  EXPECT_TRUE(s.IsMarkedBy(2, 5));
  EXPECT_EQ(s.NodesWithMarks(), std::vector<NodeId>{2});

  EXPECT_TRUE(s.Clear(2, 5));
  EXPECT_TRUE(s.IsClean(5));
  EXPECT_EQ(s.TotalMarked(), 0u);
  EXPECT_TRUE(s.NodesWithMarks().empty());
  EXPECT_TRUE(s.DirtyOf(2).empty());
  EXPECT_TRUE(s.InSync(5));
}

TEST(LogState, MergeFailedNode) {
  LogState s(100, 512);
  for (RegionNo r = 0; r < 100; ++r) s.SetInSync(r, true);
  s.Mark(3, 40);
  s.Mark(3, 7);
  s.Mark(3, 99);
  s.Mark(4, 40);
  std::vector<RegionNo> merged = s.MergeFailedNode(3);
  EXPECT_EQ(merged, (std::vector<RegionNo>{7, 40, 99}));
  EXPECT_FALSE(s.InSync(7));
  EXPECT_FALSE(s.InSync(40));
  EXPECT_FALSE(s.InSync(99));
  EXPECT_EQ(s.SyncCount(), 97u);
  EXPECT_TRUE(s.DirtyOf(3).empty());
  EXPECT_EQ(s.MarkCount(40), 1u);  // node 4's mark survives
  EXPECT_FALSE(s.IsMarkedByAny(7));
  EXPECT_EQ(s.NextOutOfSync(0), 7u);
  EXPECT_TRUE(s.MergeFailedNode(3).empty());
  s.MarkAllOutOfSync();
  EXPECT_EQ(s.SyncCount(), 0u);
}

TEST(LogState, CleanMapAndSetDirty) {
  LogState s(10, 8);
  for (RegionNo r = 0; r < 10; ++r) s.SetInSync(r, r != 2);
  s.SetDirty(1, {3, 4, 50});  // 50 is past the end: dropped
  s.Mark(2, 4);
  RegionBitmap clean = s.CleanMap();
  EXPECT_EQ(clean.count(), 7u);  // 10 - out of sync {2} - marked {3, 4}
  EXPECT_FALSE(clean.Test(2));
  EXPECT_FALSE(clean.Test(3));
  EXPECT_FALSE(clean.Test(4));
  EXPECT_EQ(s.DirtyOf(1), (DirtySet{3, 4}));
  s.SetDirty(1, {5});
  EXPECT_FALSE(s.IsMarkedByAny(3));
  EXPECT_EQ(s.MarkCount(4), 1u);
  EXPECT_TRUE(s.IsMarkedBy(1, 5));
  s.SetDirty(1, {});
  EXPECT_EQ(s.NodesWithMarks(), std::vector<NodeId>{2});
}

TEST(LogState, CheckRegionAndIgnoredInput) {
  LogState s(64, 1024);
  EXPECT_TRUE(s.CheckRegion(63).ok());
  Status st = s.CheckRegion(70);
  EXPECT_EQ(st.code(), Errc::kOutOfRange);
  EXPECT_EQ(st.message(), "region 70 is past the end (64 regions)");
  EXPECT_FALSE(s.Mark(1, 64));
  EXPECT_FALSE(s.Mark(0, 3));
  EXPECT_EQ(s.TotalMarked(), 0u);
}

TEST(LogState, EqualityIgnoresHistory) {
  LogState a(32, 16), b(32, 16);
  a.Mark(1, 3);
  a.Clear(1, 3);
  EXPECT_EQ(a, b);
  a.Mark(2, 4);
  EXPECT_FALSE(a == b);
  b.SetDirty(2, {4});
  EXPECT_EQ(a, b);
  b.SetInSync(1, true);
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(LogState(32, 16) == LogState(32, 8));
}

}  // namespace
}  // namespace clogd::region
