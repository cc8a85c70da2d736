// PeekSlots reads what LogDevice wrote — the newest valid copy of each slot asked for,
// falling back to the older copy when the newer one is damaged — and reads only a few
// blocks, never the in-sync bitmap.
#include "logd/slot_peek.h"

#include <gtest/gtest.h>

#include "region/log_format.h"
#include "region/memory_device.h"

namespace clogd::logd {
namespace {

using region::RegionNo;

constexpr uint64_t kRegions = uint64_t{1} << 20;

class SlotPeekTest : public ::testing::Test {
 protected:
  SlotPeekTest() : dev_(4 << 20, 512, "mem") {
    region::OpenParams p;
    p.nr_regions = kRegions;
    p.region_size = 1024;
    p.uuid = "LVM-peek";
    auto log = region::LogDevice::Open(dev_, p);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    log_.emplace(std::move(log).value());
  }
  region::SlotRecord Write(uint32_t slot, region::NodeId node, std::vector<RegionNo> regions) {
    region::SlotRecord r{node, 0, false, std::move(regions)};
    EXPECT_TRUE(log_->WriteSlot(slot, r).ok());
    return r;
  }

  region::MemoryDevice dev_;
  std::optional<region::LogDevice> log_;
};

TEST_F(SlotPeekTest, ReadsTheNewestRecordOfEachSlotAskedFor) {
  Write(0, 1, {1, 2});
  Write(2, 7, {5, 900000});
  Write(2, 7, {5});  // newer: node 7 cleared 900000
  std::vector<RegionNo> many;
  for (RegionNo r = 0; r < 3000; ++r) many.push_back(r * 3);  // > one 4 KiB block of list
  Write(3, 9, many);

  const uint64_t reads_before = dev_.reads();
  auto peek = PeekSlots(dev_, kRegions, {2, 3, 5});
  ASSERT_TRUE(peek.ok()) << peek.status().ToString();
  EXPECT_TRUE(peek->problems.empty());
  ASSERT_EQ(peek->slots.size(), 3u);
  EXPECT_EQ(peek->slots.at(2).node_id, 7u);
  EXPECT_EQ(peek->slots.at(2).regions, (std::vector<RegionNo>{5}));
  EXPECT_EQ(peek->slots.at(3).regions, many);
  EXPECT_EQ(peek->slots.at(5).node_id, 0u) << "never written: free";
  EXPECT_FALSE(peek->slots.contains(0)) << "only the slots asked for";
  // 1 superblock read + per slot 2 copies, plus one more for the long list.
  EXPECT_LE(dev_.reads() - reads_before, 1u + 2 * 3 + 2);
}

TEST_F(SlotPeekTest, ADamagedNewerCopyFallsBackToTheOlderOne) {
  Write(1, 4, {10});      // sequence 1 -> one copy
  Write(1, 4, {10, 11});  // sequence 2 -> the other copy
  // Damage the copy holding {10, 11} (the newer): flip a byte in its region list.
  auto peek = PeekSlots(dev_, kRegions, {1});
  ASSERT_TRUE(peek.ok());
  ASSERT_EQ(peek->slots.at(1).regions, (std::vector<RegionNo>{10, 11}));
  const auto layout = log_->layout();
  for (int copy = 0; copy < 2; ++copy) {
    std::vector<uint8_t> block(4096);
    ASSERT_TRUE(dev_.Read(layout.SlotOffset(1, copy), block).ok());
    auto rec = region::DecodeSlot(block);
    if (rec.ok() && rec->regions.size() == 2) {
      std::vector<uint8_t> bad = {0xFF};
      dev_.Load(layout.SlotOffset(1, copy) + region::kSlotHeaderBytes, bad);
    }
  }
  peek = PeekSlots(dev_, kRegions, {1});
  ASSERT_TRUE(peek.ok());
  EXPECT_EQ(peek->slots.at(1).regions, (std::vector<RegionNo>{10}));

  // Both copies damaged: a problem line naming the slot, not a made-up record.
  for (int copy = 0; copy < 2; ++copy) {
    std::vector<uint8_t> bad = {0xEE};
    dev_.Load(layout.SlotOffset(1, copy) + region::kSlotHeaderBytes, bad);
  }
  peek = PeekSlots(dev_, kRegions, {1, 99});
  ASSERT_TRUE(peek.ok());
  EXPECT_FALSE(peek->slots.contains(1));
  ASSERT_EQ(peek->problems.size(), 2u);
  EXPECT_NE(peek->problems[0].find("slot 1: copy 0:"), std::string::npos) << peek->problems[0];
  EXPECT_NE(peek->problems[1].find("slot 99: past the slot count"), std::string::npos);
}

TEST_F(SlotPeekTest, NoValidSuperblockIsAnError) {
  region::MemoryDevice blank(4 << 20, 512, "blank");
  auto peek = PeekSlots(blank, kRegions, {0});
  ASSERT_FALSE(peek.ok());
  EXPECT_EQ(peek.status().code(), Errc::kCorrupt);
  EXPECT_NE(peek.status().message().find("superblock copy 0: all zero"), std::string::npos)
      << peek.status().message();
}

}  // namespace
}  // namespace clogd::logd
