// LogDevice opened with may_write false (a cluster member's CTR): a device that needs
// formatting, importing or re-initialising is left exactly as found, refuses writes, and
// is written only by Initialize (the node that bootstraps the log); Reload picks up what
// another node wrote.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "region/log_format.h"
#include "region/memory_device.h"
#include "tests/unit/region/test_bytes.h"

namespace clogd::region {
namespace {

using testbytes::AllZero;
using ::testing::HasSubstr;

OpenParams Params(uint64_t nr_regions, bool may_write) {
  OpenParams p;
  p.nr_regions = nr_regions;
  p.region_size = 1024;
  p.uuid = "LVM-test";
  p.may_write = may_write;
  return p;
}

TEST(LogDeviceDeferred, ABlankDeviceIsLeftBlankAndRefusesWrites) {
  MemoryDevice dev(1 << 20);
  Result<LogDevice> log = LogDevice::Open(dev, Params(100, false));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->outcome(), OpenOutcome::kUninitialized);
  EXPECT_EQ(dev.writes(), 0u);
  EXPECT_TRUE(AllZero(dev.durable()));
  EXPECT_TRUE(log->loaded_in_sync().none()) << "nothing is known in sync before the format";
  EXPECT_EQ(log->loaded_slots().size(), log->layout().slot_count);

  SlotRecord mine;
  mine.node_id = 2;
  mine.regions = {4};
  for (const Status& s : {log->WriteSlot(0, mine), log->WriteInSync(RegionBitmap(100)),
                          log->MarkActive(1), log->MarkCleanShutdown(RegionBitmap(100))}) {
    EXPECT_EQ(s.code(), Errc::kNotFound) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr("not initialised")) << s.ToString();
  }
  Status reload = log->Reload();
  EXPECT_EQ(reload.code(), Errc::kNotFound) << reload.ToString();
  EXPECT_EQ(dev.writes(), 0u);
  EXPECT_TRUE(AllZero(dev.durable()));
}

// Node 2's CTR left the device blank; node 1 bootstrapped the log and serves it (its slot
// holds a mark). Node 2 reads what node 1 wrote and wipes nothing.
TEST(LogDeviceDeferred, ReloadOpensTheLogAnotherNodeFormatted) {
  MemoryDevice dev(1 << 20);
  Result<LogDevice> member = LogDevice::Open(dev, Params(100, false));
  ASSERT_TRUE(member.ok()) << member.status().ToString();

  Result<LogDevice> server = LogDevice::Open(dev, Params(100, false));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(server->Initialize().ok());
  EXPECT_EQ(server->outcome(), OpenOutcome::kFormattedNew);
  ASSERT_TRUE(server->MarkActive(1).ok());
  SlotRecord marks;
  marks.node_id = 1;
  marks.regions = {7, 9};
  ASSERT_TRUE(server->WriteSlot(0, marks).ok());

  const std::vector<uint8_t> served = dev.durable();
  ASSERT_TRUE(member->Reload().ok());
  EXPECT_EQ(member->outcome(), OpenOutcome::kOpenedCluster);
  EXPECT_EQ(member->superblock().generation, 1u);
  EXPECT_EQ(member->loaded_slots()[0].regions, (std::vector<RegionNo>{7, 9}));
  // Initialize on a device that is a cluster log now only reloads it.
  ASSERT_TRUE(member->Initialize().ok());
  EXPECT_EQ(member->outcome(), OpenOutcome::kOpenedCluster);
  EXPECT_EQ(dev.durable(), served) << "node 2 wrote over the log node 1 serves";
  SlotRecord mine;
  mine.node_id = 2;
  mine.regions = {50};
  EXPECT_TRUE(member->WriteSlot(1, mine).ok());
  ASSERT_TRUE(server->WriteInSync(RegionBitmap(100)).ok()) << "part 1 became a valid dm-log";
}

TEST(LogDeviceDeferred, ADmLogIsImportedOnlyByInitialize) {
  MemoryDevice dev(1 << 20);
  dev.Load(0, testbytes::DmLogImage(100, {0, 3}));
  const std::vector<uint8_t> before = dev.durable();
  Result<LogDevice> log = LogDevice::Open(dev, Params(100, false));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->outcome(), OpenOutcome::kUninitialized);
  EXPECT_EQ(dev.durable(), before);
  ASSERT_TRUE(log->Initialize().ok());
  EXPECT_EQ(log->outcome(), OpenOutcome::kImportedDmLog);
  EXPECT_TRUE(log->loaded_in_sync().Test(3));
  EXPECT_FALSE(log->loaded_in_sync().Test(4));
}

// Damage is refused at the CTR as before, unless the operator asked to re-initialise:
// then the bootstrap does it.
TEST(LogDeviceDeferred, ReinitialisingIsLeftToInitialize) {
  MemoryDevice dev(1 << 20);
  dev.Load(0, std::vector<uint8_t>(4096, 0x5A));
  Result<LogDevice> refused = LogDevice::Open(dev, Params(100, false));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Errc::kCorrupt) << refused.status().ToString();

  OpenParams p = Params(100, false);
  p.reinitialize = true;
  const std::vector<uint8_t> before = dev.durable();
  Result<LogDevice> log = LogDevice::Open(dev, p);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->outcome(), OpenOutcome::kUninitialized);
  EXPECT_EQ(dev.durable(), before);
  ASSERT_TRUE(log->Initialize().ok());
  EXPECT_EQ(log->outcome(), OpenOutcome::kReinitialized);
  EXPECT_TRUE(LogDevice::Open(dev, Params(100, false)).ok());
}

}  // namespace
}  // namespace clogd::region
