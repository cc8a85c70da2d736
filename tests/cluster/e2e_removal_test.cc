// End to end on a real cluster (see e2e_cluster_test.cc): removing a clustered mirror node
// by node. Quorum counts the corosync ring, not the log's group (logd/CLUSTER.md), so the
// last nodes with the mirror serve on and their own removal finishes.
#include "tests/cluster/e2e_fixture.h"

namespace clogd::cluster_test {
namespace {

using std::chrono::milliseconds;

// Quorum counts the corosync ring, not the log's group: both mirrors deactivated on two of
// the three nodes (suspend, then DTR: their clogds leave the groups) are still served on the
// third, which writes on and is then deactivated too. Counting the group, 1 of 3 was no
// quorum: the last node's writes and its own deactivation hung.
TEST_F(E2eClusterTest, DeactivatedOnTwoNodesTheThirdServesOnAndDeactivates) {
  constexpr int kLast = 3;
  StartCluster();
  ASSERT_FALSE(HasFatalFailure());
  driver().SetWorkloadAll(true);
  driver().RunFor(milliseconds(1500));
  int stopped = 0;
  // dmsetup remove: refused (Busy) while clogd has the mirror suspended for a moment.
  auto deactivate = [&](int n, size_t m) {
    return driver().RunUntil(
        [&] { return driver().model(n, m)->Stop([&stopped] { ++stopped; }).ok(); },
        milliseconds(5000));
  };
  for (int n : Others(kLast)) {
    driver().SetWorkload(n, false);
    for (size_t m = 0; m < 2; ++m)
      ASSERT_TRUE(deactivate(n, m)) << "node " << n << " " << TypeName(m);
  }
  ASSERT_TRUE(driver().RunUntil([&] { return stopped == 4; }, milliseconds(20'000)))
      << "the deactivations on nodes 1 and 2 did not finish\n"
      << Diagnostics();
  Statuses last;
  ASSERT_TRUE(RunUntilStatus(
      {kLast}, [&](const Statuses& s) { return Serving(s, {kLast}, {kLast}); },
      milliseconds(10'000), &last))
      << "node " << kLast << " alone in the logs' groups does not serve: " << last[kLast];
  const uint64_t before[2] = {driver().writes_ok(kLast, kDisk), driver().writes_ok(kLast, kCore)};
  EXPECT_TRUE(driver().RunUntil(
      [&] {
        return driver().writes_ok(kLast, kDisk) > before[kDisk] + 20 &&
               driver().writes_ok(kLast, kCore) > before[kCore] + 20;
      },
      milliseconds(10'000)))
      << "node " << kLast << " wrote " << driver().writes_ok(kLast, kDisk) - before[kDisk]
      << " (clustered-disk) and " << driver().writes_ok(kLast, kCore) - before[kCore]
      << " (clustered-core) blocks after the others left";
  driver().SetWorkload(kLast, false);
  stopped = 0;
  for (size_t m = 0; m < 2; ++m) ASSERT_TRUE(deactivate(kLast, m)) << TypeName(m);
  ASSERT_TRUE(driver().RunUntil([&] { return stopped == 2; }, milliseconds(20'000)))
      << "the last node's deactivation hung\n"
      << Diagnostics();
  for (int n : AllNodes()) {
    for (size_t m = 0; m < 2; ++m) {
      EXPECT_EQ(driver().writes_ok(n, m), driver().writes_issued(n, m))
          << TypeName(m) << " node " << n << ": every write completes without error";
    }
  }
  ExpectDataIntact();
}

}  // namespace
}  // namespace clogd::cluster_test
