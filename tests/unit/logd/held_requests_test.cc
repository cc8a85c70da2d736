// Which kernel requests wait for the cluster link: the CTR of a clustered log and
// everything after it for that luid; not other logs' requests, not undecodable frames.
#include "logd/held_requests.h"

#include <gtest/gtest.h>
#include <linux/dm-log-userspace.h>

#include "engine_fixture.h"

namespace clogd::logd {
namespace {

using testing::CtrPayload;
using testing::Regions;
using testing::Req;

std::vector<uint8_t> Frame(const UlogRequest& r) { return EncodeRequest(r); }

TEST(HeldRequestsTest, HoldsClusteredLogsAndOnlyThem) {
  HeldRequests held;
  auto ctr_cluster = Frame(Req(DM_ULOG_CTR, 1, "LVM-c", CtrPayload("65536 clustered-core 1024")));
  auto resume_cluster = Frame(Req(DM_ULOG_RESUME, 1, "LVM-c"));
  auto ctr_disk_cluster =
      Frame(Req(DM_ULOG_CTR, 3, "LVM-d", CtrPayload("65536 clustered-disk 253:2 1024")));
  auto ctr_local = Frame(Req(DM_ULOG_CTR, 2, "LVM-l", CtrPayload("65536 core 1024")));
  auto mark_local = Frame(Req(DM_ULOG_MARK_REGION, 2, "LVM-l", Regions({1})));
  auto in_sync_unknown = Frame(Req(DM_ULOG_IN_SYNC, 9, "LVM-z", Regions({1})));

  EXPECT_TRUE(held.HoldIfClustered(ctr_cluster));
  EXPECT_FALSE(held.HoldIfClustered(ctr_local));
  EXPECT_TRUE(held.HoldIfClustered(resume_cluster)) << "its CTR waits, so it waits behind it";
  EXPECT_FALSE(held.HoldIfClustered(mark_local));
  EXPECT_FALSE(held.HoldIfClustered(in_sync_unknown)) << "the engine answers -ESRCH";
  EXPECT_TRUE(held.HoldIfClustered(ctr_disk_cluster));
  std::vector<uint8_t> garbage(10, 0xff);
  EXPECT_FALSE(held.HoldIfClustered(garbage)) << "the engine answers what it can";

  auto frames = held.TakeAll();
  EXPECT_EQ(frames,
            (std::vector<std::vector<uint8_t>>{ctr_cluster, resume_cluster, ctr_disk_cluster}))
      << "released in arrival order";
  EXPECT_EQ(held.size(), 0u);
  EXPECT_FALSE(held.HoldIfClustered(resume_cluster)) << "after release the luid is served";
}

TEST(HeldRequestsTest, DropsTheOldestBeyondCapacity) {
  HeldRequests held(2);
  auto a = Frame(Req(DM_ULOG_FLUSH, 1, "LVM-a"));
  auto b = Frame(Req(DM_ULOG_FLUSH, 2, "LVM-b"));
  auto c = Frame(Req(DM_ULOG_FLUSH, 3, "LVM-c"));
  held.Hold(a);
  held.Hold(b);
  held.Hold(c);
  EXPECT_EQ(held.dropped(), 1u);
  EXPECT_EQ(held.TakeAll(), (std::vector<std::vector<uint8_t>>{b, c}));
}

}  // namespace
}  // namespace clogd::logd
