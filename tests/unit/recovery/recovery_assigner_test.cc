// Recovery assignment: one owner per region, priority regions first, regions of a node
// that left become assignable again, eligibility is respected.
#include "recovery/recovery_assigner.h"

#include <gtest/gtest.h>

namespace clogd::recovery {
namespace {

region::LogState StateWithOutOfSync(std::initializer_list<RegionNo> out_of_sync) {
  region::LogState state(100, 1024);
  region::RegionBitmap bits(100, true);
  for (RegionNo r : out_of_sync) bits.Clear(r);
  state.ReplaceInSync(std::move(bits));
  return state;
}

TEST(RecoveryAssigner, EachRegionHasOneOwner) {
  auto state = StateWithOutOfSync({3, 50, 99});
  RecoveryAssigner a;
  std::set<RegionNo> seen;
  for (NodeId n : {1u, 2u, 3u}) {
    RegionNo r = a.Assign(n, state);
    ASSERT_NE(r, region::kNoRegion);
    EXPECT_TRUE(seen.insert(r).second) << "region " << r << " handed out twice";
    EXPECT_EQ(a.Owner(r), n);
  }
  EXPECT_EQ(a.Assign(4, state), region::kNoRegion);
  EXPECT_EQ(seen, (std::set<RegionNo>{3, 50, 99}));
}

TEST(RecoveryAssigner, InSyncRegionsAreNeverHandedOut) {
  auto state = StateWithOutOfSync({});
  RecoveryAssigner a;
  EXPECT_EQ(a.Assign(1, state), region::kNoRegion);
}

TEST(RecoveryAssigner, PriorityRegionComesFirst) {
  auto state = StateWithOutOfSync({3, 50, 99});
  RecoveryAssigner a;
  a.Prioritize(99);
  EXPECT_EQ(a.Assign(1, state), 99u);
}

TEST(RecoveryAssigner, DepartedNodeReleasesItsRegions) {
  auto state = StateWithOutOfSync({3, 50});
  RecoveryAssigner a;
  RegionNo r1 = a.Assign(1, state);
  RegionNo r2 = a.Assign(2, state);
  EXPECT_EQ(a.ReleaseNode(1), (std::vector<RegionNo>{r1}));
  EXPECT_FALSE(a.IsRecovering(r1));
  EXPECT_TRUE(a.IsRecoveringByOther(r2, 1));
  EXPECT_EQ(a.Assign(3, state), r1);
}

TEST(RecoveryAssigner, IneligibleRegionsAreSkipped) {
  auto state = StateWithOutOfSync({3, 50});
  RecoveryAssigner a;
  EXPECT_EQ(a.Assign(1, state, [](RegionNo r) { return r != 3; }), 50u);
  EXPECT_EQ(a.Assign(1, state, [](RegionNo r) { return r != 3; }), region::kNoRegion);
}

TEST(RecoveryAssigner, CursorWrapsAround) {
  auto state = StateWithOutOfSync({10, 20});
  RecoveryAssigner a;
  EXPECT_EQ(a.Assign(1, state), 10u);
  a.Release(10);
  EXPECT_EQ(a.Assign(1, state), 20u);
  a.Release(20);
  EXPECT_EQ(a.Assign(1, state), 10u) << "the scan continues from the start";
}

}  // namespace
}  // namespace clogd::recovery
