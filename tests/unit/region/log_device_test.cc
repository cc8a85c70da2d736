// LogDevice: format, reopen, import of a hand-built dm-log, slot and in-sync writes, the
// activation / clean-shutdown protocol, and a 2^24-region round trip on a 4 MiB device.
// On-disk bytes are checked with the test's own little-endian reader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "region/crc32c.h"
#include "region/log_format.h"
#include "region/memory_device.h"
#include "tests/unit/region/test_bytes.h"

namespace clogd::region {
namespace {

using testbytes::AllZero;
using testbytes::LE32;
using testbytes::LE64;
using ::testing::HasSubstr;

OpenParams Params(uint64_t nr_regions, uint32_t region_size = 1024) {
  OpenParams p;
  p.nr_regions = nr_regions;
  p.region_size = region_size;
  p.uuid = "LVM-test";
  return p;
}

std::span<const uint8_t> At(const MemoryDevice& dev, uint64_t offset, uint64_t len) {
  return std::span<const uint8_t>(dev.durable()).subspan(offset, len);
}

// The newest valid superblock copy, read with the test's own reader (checks the CRC).
struct SbView {
  int copy = -1;
  uint64_t sequence = 0;
  uint32_t flags = 0;
  uint64_t generation = 0;
};
SbView NewestSuperblock(const MemoryDevice& dev, uint64_t cluster_offset) {
  SbView best;
  for (int c = 0; c < 2; ++c) {
    std::span<const uint8_t> b = At(dev, cluster_offset + 4096u * c, 4096);
    if (LE32(b, 0) != kSuperblockMagic || LE32(b, 4092) != Crc32c(b.first(4092))) continue;
    if (best.copy < 0 || LE64(b, 40) > best.sequence) {
      best = SbView{c, LE64(b, 40), LE32(b, 28), LE64(b, 32)};
    }
  }
  return best;
}

TEST(LogDevice, FormatsBlankDeviceByteExact) {
  MemoryDevice dev(1 << 20, 512, "mem0");
  OpenParams p = Params(70);
  p.nosync = true;
  Result<LogDevice> log = LogDevice::Open(dev, p);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->outcome(), OpenOutcome::kFormattedNew);
  EXPECT_TRUE(log->loaded_in_sync().all());
  const Layout& l = log->layout();
  EXPECT_EQ(l.cluster_offset, 4096u);
  EXPECT_EQ(l.slot_count, (1048576u - 12288u) / 65536u);

  // Part 1: valid dm-log header, bitmap of 70 set bits in 12 bytes.
  EXPECT_EQ(LE32(At(dev, 0, 16), 0), kDmLogMagic);
  EXPECT_EQ(LE32(At(dev, 0, 16), 4), 2u);
  EXPECT_EQ(LE64(At(dev, 0, 16), 8), 70u);
  EXPECT_TRUE(AllZero(At(dev, 16, 1024 - 16)));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(dev.durable()[1024 + i], 0xFF);
  EXPECT_EQ(dev.durable()[1032], 0x3F);  // regions 64..69
  EXPECT_TRUE(AllZero(At(dev, 1033, 4096 - 1033)));

  // Both superblock copies valid, inactive, sequences 1 and 2.
  for (int c = 0; c < 2; ++c) {
    std::span<const uint8_t> b = At(dev, 4096u + 4096u * c, 4096);
    EXPECT_EQ(LE32(b, 0), kSuperblockMagic);
    EXPECT_EQ(LE32(b, 4), kFormatVersion);
    EXPECT_EQ(LE64(b, 8), 70u);
    EXPECT_EQ(LE32(b, 16), 1024u);
    EXPECT_EQ(LE32(b, 20), l.slot_count);
    EXPECT_EQ(LE32(b, 24), 32768u);
    EXPECT_EQ(LE32(b, 28), 0u);
    EXPECT_EQ(LE64(b, 40), uint64_t(c) + 1);
    EXPECT_EQ(LE32(b, 48), 8u);
    EXPECT_EQ(std::string(b.begin() + 52, b.begin() + 60), "LVM-test");
    EXPECT_EQ(LE32(b, 4092), Crc32c(b.first(4092)));
  }
  // Free slots: the first 4 KiB of both copies are zero.
  for (uint32_t i = 0; i < l.slot_count; ++i) {
    EXPECT_TRUE(AllZero(At(dev, l.SlotOffset(i, 0), 4096)));
    EXPECT_TRUE(AllZero(At(dev, l.SlotOffset(i, 1), 4096)));
  }

  Result<LogDevice> again = LogDevice::Open(dev, Params(70));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->outcome(), OpenOutcome::kOpenedCluster);
  EXPECT_EQ(again->superblock(), log->superblock());
  EXPECT_TRUE(again->loaded_in_sync().all());
  EXPECT_EQ(again->loaded_slots(), std::vector<SlotRecord>(l.slot_count));
}

TEST(LogDevice, NewLogStartsOutOfSyncUnlessNosync) {
  MemoryDevice dev(1 << 20);
  Result<LogDevice> log = LogDevice::Open(dev, Params(100));
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(log->loaded_in_sync().none());
  EXPECT_TRUE(AllZero(At(dev, 1024, 16)));
}

TEST(LogDevice, SlotWriteIsOneBlockAndAlternatesCopies) {
  MemoryDevice dev(1 << 20);
  Result<LogDevice> log = LogDevice::Open(dev, Params(1000));
  ASSERT_TRUE(log.ok());
  Result<uint32_t> slot = log->SlotFor(7);
  ASSERT_TRUE(slot.ok());
  EXPECT_EQ(*slot, 0u);
  const Layout l = log->layout();

  SlotRecord rec{7, 0, false, {1, 5, 9, 400, 999}};
  const uint64_t writes = dev.writes(), flushes = dev.flushes(), bytes = dev.bytes_written();
  ASSERT_TRUE(log->WriteSlot(0, rec).ok());
  EXPECT_EQ(dev.writes() - writes, 1u);
  EXPECT_EQ(dev.flushes() - flushes, 1u);
  EXPECT_EQ(dev.bytes_written() - bytes, 4096u);
  EXPECT_EQ(rec.sequence, 1u);

  // Both copies were free: the write went to copy 1.
  std::span<const uint8_t> b = At(dev, l.SlotOffset(0, 1), 4096);
  EXPECT_EQ(LE32(b, 0), kSlotMagic);
  EXPECT_EQ(LE32(b, 4), kFormatVersion);
  EXPECT_EQ(LE32(b, 8), 7u);
  EXPECT_EQ(LE32(b, 12), 0u);
  EXPECT_EQ(LE64(b, 16), 1u);
  EXPECT_EQ(LE32(b, 24), 5u);
  EXPECT_EQ(LE64(b, 32 + 8 * 3), 400u);
  EXPECT_EQ(LE32(b, 28), Crc32cExtend(Crc32c(b.first(28)), b.subspan(32, 40)));
  EXPECT_TRUE(AllZero(At(dev, l.SlotOffset(0, 0), 4096)));

  rec.regions = {2};
  ASSERT_TRUE(log->WriteSlot(0, rec).ok());
  EXPECT_EQ(rec.sequence, 2u);
  EXPECT_EQ(LE64(At(dev, l.SlotOffset(0, 0), 64), 16), 2u);
  EXPECT_EQ(LE64(At(dev, l.SlotOffset(0, 0), 64), 32), 2u);
  rec.regions = {3, 4};
  ASSERT_TRUE(log->WriteSlot(0, rec).ok());
  EXPECT_EQ(LE64(At(dev, l.SlotOffset(0, 1), 64), 16), 3u);

  Result<LogDevice> again = LogDevice::Open(dev, Params(1000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->loaded_slots()[0], rec);
  EXPECT_EQ(*again->SlotFor(7), 0u);
  EXPECT_EQ(*again->SlotFor(8), 1u);
}

TEST(LogDevice, LargeSlotRecordSpansBlocksAndOverflowIsOneBlock) {
  MemoryDevice dev(1 << 20);
  Result<LogDevice> log = LogDevice::Open(dev, Params(100000));
  ASSERT_TRUE(log.ok());
  SlotRecord rec{5, 0, false, {}};
  for (uint64_t r = 0; r < 1000; ++r) rec.regions.push_back(r * 3);  // 8032 bytes: 2 blocks
  uint64_t bytes = dev.bytes_written();
  ASSERT_TRUE(log->WriteSlot(2, rec).ok());
  EXPECT_EQ(dev.bytes_written() - bytes, 8192u);
  Result<LogDevice> again = LogDevice::Open(dev, Params(100000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->loaded_slots()[2], rec);

  SlotRecord over{5, 0, false, {}};
  for (uint64_t r = 0; r < log->layout().SlotCapacity() + 1; ++r) over.regions.push_back(r);
  bytes = dev.bytes_written();
  ASSERT_TRUE(log->WriteSlot(2, over).ok());
  EXPECT_EQ(dev.bytes_written() - bytes, 4096u);
  EXPECT_TRUE(over.overflow);
  Result<LogDevice> third = LogDevice::Open(dev, Params(100000));
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->loaded_slots()[2].overflow);
  EXPECT_EQ(third->loaded_slots()[2].node_id, 5u);
}

TEST(LogDevice, RoundTrip2To24RegionsOn4MiB) {
  const uint64_t n = uint64_t{1} << 24;
  MemoryDevice dev(4u << 20, 512, "mem4m");
  Result<LogDevice> log = LogDevice::Open(dev, Params(n, 512));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->outcome(), OpenOutcome::kFormattedNew);
  EXPECT_EQ(log->layout().slot_count, 31u);
  ASSERT_TRUE(log->MarkActive(9).ok());

  SlotRecord a{11, 0, false, {0, 12345, n - 1}};
  SlotRecord b{22, 0, false, {777}};
  ASSERT_TRUE(log->WriteSlot(*log->SlotFor(11), a).ok());
  ASSERT_TRUE(log->WriteSlot(*log->SlotFor(22), b).ok());
  EXPECT_EQ(*log->SlotFor(22), 1u);

  RegionBitmap in_sync(n);
  for (RegionNo r : {RegionNo{1}, RegionNo{1000000}, n - 1}) in_sync.Set(r);
  const uint64_t bytes = dev.bytes_written(), writes = dev.writes();
  ASSERT_TRUE(log->WriteInSync(in_sync).ok());
  EXPECT_EQ(dev.bytes_written() - bytes, 3u * 4096u);  // only the changed blocks
  EXPECT_EQ(dev.writes() - writes, 3u);
  EXPECT_TRUE(dev.durable()[1024 + 1000000 / 8] & (1u << (1000000 % 8)));

  // An unchanged map writes nothing at all.
  const uint64_t flushes = dev.flushes();
  ASSERT_TRUE(log->WriteInSync(in_sync).ok());
  EXPECT_EQ(dev.flushes(), flushes);

  Result<LogDevice> again = LogDevice::Open(dev, Params(n, 512));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->outcome(), OpenOutcome::kOpenedCluster);
  EXPECT_EQ(again->loaded_in_sync(), in_sync);
  EXPECT_TRUE(again->superblock().active);
  EXPECT_EQ(again->superblock().generation, 9u);
  EXPECT_EQ(again->superblock(), log->superblock());
  EXPECT_EQ(again->loaded_slots()[0], a);
  EXPECT_EQ(again->loaded_slots()[1], b);
  for (uint32_t i = 2; i < 31; ++i) EXPECT_EQ(again->loaded_slots()[i].node_id, 0u);
}

void BuildDmLog(MemoryDevice& dev, uint64_t nr_regions, const std::vector<RegionNo>& clean) {
  dev.Load(0, testbytes::DmLogImage(nr_regions, clean));
  // Whatever the rest of the device held before stays there (not zero).
  dev.Load(8192, std::vector<uint8_t>(12288, 0x5A));  // superblock copy 1, slot 0
}

TEST(LogDevice, ImportsDmLogKeepingItsCleanBitmap) {
  MemoryDevice dev(1 << 20);
  BuildDmLog(dev, 100, {0, 3, 8, 99});
  // Junk where the slots go must not be read back as slot data.
  std::vector<uint8_t> before(dev.durable().begin(), dev.durable().begin() + 4096);
  Result<LogDevice> log = LogDevice::Open(dev, Params(100));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->outcome(), OpenOutcome::kImportedDmLog);
  EXPECT_EQ(log->loaded_in_sync().count(), 4u);
  for (RegionNo r : {0, 3, 8, 99}) EXPECT_TRUE(log->loaded_in_sync().Test(r));
  // Part 1 untouched; superblock now present and inactive.
  EXPECT_TRUE(std::equal(before.begin(), before.end(), dev.durable().begin()));
  SbView sb = NewestSuperblock(dev, log->layout().cluster_offset);
  ASSERT_GE(sb.copy, 0);
  EXPECT_EQ(sb.flags, 0u);
  for (uint32_t i = 0; i < log->layout().slot_count; ++i) {
    EXPECT_TRUE(AllZero(At(dev, log->layout().SlotOffset(i, 0), 4096)));
  }

  Result<LogDevice> again = LogDevice::Open(dev, Params(100));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->outcome(), OpenOutcome::kOpenedCluster);
  EXPECT_EQ(again->loaded_in_sync(), log->loaded_in_sync());
}

TEST(LogDevice, ImportWithForceResyncClearsTheBitmapOnDisk) {
  MemoryDevice dev(1 << 20);
  BuildDmLog(dev, 100, {0, 3, 8, 99});
  OpenParams p = Params(100);
  p.force_resync = true;
  Result<LogDevice> log = LogDevice::Open(dev, p);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->outcome(), OpenOutcome::kImportedDmLog);
  EXPECT_TRUE(log->loaded_in_sync().none());
  EXPECT_TRUE(AllZero(At(dev, 1024, 16)));
  Result<LogDevice> again = LogDevice::Open(dev, Params(100));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->loaded_in_sync().none());
}

TEST(LogDevice, MarkActiveInvalidatesPart1AndCleanShutdownRestoresIt) {
  MemoryDevice dev(1 << 20);
  BuildDmLog(dev, 100, {1, 2});
  Result<LogDevice> log = LogDevice::Open(dev, Params(100));
  ASSERT_TRUE(log.ok());
  const uint64_t co = log->layout().cluster_offset;

  RegionBitmap bits(100);
  bits.Set(50);
  Status refused = log->WriteInSync(bits);
  EXPECT_EQ(refused.code(), Errc::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("MarkActive"));

  ASSERT_TRUE(log->MarkActive(3).ok());
  EXPECT_EQ(LE32(At(dev, 0, 16), 0), 0u);  // dm-log now reads "no valid log"
  EXPECT_EQ(LE32(At(dev, 0, 16), 4), 2u);
  EXPECT_EQ(LE64(At(dev, 0, 16), 8), 100u);
  SbView sb = NewestSuperblock(dev, co);
  EXPECT_EQ(sb.flags & 1u, 1u);
  EXPECT_EQ(sb.generation, 3u);
  EXPECT_TRUE(log->superblock().active);

  ASSERT_TRUE(log->WriteInSync(bits).ok());
  EXPECT_EQ(dev.durable()[1024 + 50 / 8], 1u << (50 % 8));
  EXPECT_EQ(dev.durable()[1024], 0u);  // regions 1 and 2 no longer in sync

  RegionBitmap clean(100);
  clean.Set(7);
  clean.Set(99);
  ASSERT_TRUE(log->MarkCleanShutdown(clean).ok());
  EXPECT_EQ(LE32(At(dev, 0, 16), 0), kDmLogMagic);
  EXPECT_EQ(dev.durable()[1024], 0x80);       // region 7
  EXPECT_EQ(dev.durable()[1024 + 6], 0x00);   // region 50 gone
  EXPECT_EQ(dev.durable()[1024 + 12], 0x08);  // region 99
  sb = NewestSuperblock(dev, co);
  EXPECT_EQ(sb.flags & 1u, 0u);
  EXPECT_FALSE(log->superblock().active);

  Result<LogDevice> again = LogDevice::Open(dev, Params(100));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->loaded_in_sync(), clean);
  EXPECT_FALSE(again->superblock().active);
}

TEST(LogDevice, SingleNodeUseAfterCleanShutdownIsPickedUp) {
  MemoryDevice dev(1 << 20);
  {
    Result<LogDevice> log = LogDevice::Open(dev, Params(100));
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE(log->MarkActive(1).ok());
    ASSERT_TRUE(log->MarkCleanShutdown(RegionBitmap(100, true)).ok());
  }
  // dm-log ran single-node meanwhile and left regions 10..17 not clean.
  dev.Load(1024 + 1, std::vector<uint8_t>{0x03});  // regions 8, 9 clean; 10..15 not
  dev.Load(1024 + 2, std::vector<uint8_t>{0xFC});  // 16, 17 not clean
  Result<LogDevice> log = LogDevice::Open(dev, Params(100));
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->outcome(), OpenOutcome::kOpenedCluster);
  EXPECT_EQ(log->loaded_in_sync().count(), 100u - 8u);
  EXPECT_EQ(log->loaded_in_sync().FindNextClear(0), 10u);
}

TEST(LogDevice, SlotForAndOwnership) {
  // 64 regions, 4 KiB slot copies, room for exactly two slots.
  MemoryDevice dev(4096 + 8192 + 2 * 2 * 4096 + 4096 - 512);
  OpenParams p = Params(64);
  p.slot_copy_bytes = 4096;
  Result<LogDevice> log = LogDevice::Open(dev, p);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->layout().slot_count, 2u);
  EXPECT_EQ(log->SlotFor(0).status().code(), Errc::kInvalidArgument);
  SlotRecord a{1, 0, false, {3}};
  SlotRecord b{2, 0, false, {4}};
  ASSERT_TRUE(log->WriteSlot(*log->SlotFor(1), a).ok());
  ASSERT_TRUE(log->WriteSlot(*log->SlotFor(2), b).ok());
  Result<uint32_t> none = log->SlotFor(3);
  EXPECT_EQ(none.status().code(), Errc::kNoSpace);
  EXPECT_THAT(none.status().message(), HasSubstr("node 3"));

  SlotRecord intruder{3, 0, false, {5}};
  Status busy = log->WriteSlot(0, intruder);
  EXPECT_EQ(busy.code(), Errc::kBusy);
  EXPECT_THAT(busy.message(), HasSubstr("belongs to node 1"));
  EXPECT_EQ(log->WriteSlot(2, a).code(), Errc::kOutOfRange);
  SlotRecord unsorted{1, 0, false, {5, 4}};
  EXPECT_EQ(log->WriteSlot(0, unsorted).code(), Errc::kInvalidArgument);
  SlotRecord past{1, 0, false, {64}};
  EXPECT_THAT(log->WriteSlot(0, past).message(), HasSubstr("region 64 is past the end"));

  // Freeing slot 0 (node 0) lets node 3 in.
  SlotRecord freed;
  ASSERT_TRUE(log->WriteSlot(0, freed).ok());
  EXPECT_EQ(*log->SlotFor(3), 0u);
  ASSERT_TRUE(log->WriteSlot(0, intruder).ok());
}

TEST(LogDevice, ReloadAndReadSlotSeeOtherWriters) {
  MemoryDevice dev(1 << 20);
  Result<LogDevice> server = LogDevice::Open(dev, Params(500));
  ASSERT_TRUE(server.ok());
  Result<LogDevice> other = LogDevice::Open(dev, Params(500));
  ASSERT_TRUE(other.ok());
  SlotRecord rec{4, 0, false, {10, 20}};
  ASSERT_TRUE(other->WriteSlot(*other->SlotFor(4), rec).ok());
  Result<SlotRecord> seen = server->ReadSlot(0);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(*seen, rec);
  EXPECT_EQ(*server->SlotFor(4), 0u);
  EXPECT_EQ(*server->SlotFor(5), 1u);
  // The server frees the failed node's slot; the write goes to the older copy.
  SlotRecord freed;
  ASSERT_TRUE(server->WriteSlot(0, freed).ok());
  EXPECT_EQ(freed.sequence, rec.sequence + 1);

  ASSERT_TRUE(server->MarkActive(2).ok());
  RegionBitmap bits(500);
  bits.Set(42);
  ASSERT_TRUE(server->WriteInSync(bits).ok());
  // `other` takes over as server.
  ASSERT_TRUE(other->Reload().ok());
  EXPECT_EQ(other->loaded_in_sync(), bits);
  EXPECT_TRUE(other->superblock().active);
  EXPECT_EQ(other->superblock(), server->superblock());
  EXPECT_EQ(other->loaded_slots()[0].node_id, 0u);
  Superblock sb = other->superblock();
  sb.generation = 77;
  ASSERT_TRUE(other->WriteSuperblock(sb).ok());
  Result<LogDevice> third = LogDevice::Open(dev, Params(500));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->superblock().generation, 77u);
  EXPECT_EQ(third->superblock().sequence, server->superblock().sequence + 1);
}

TEST(LogDevice, WriteSuperblockRefusesGeometryChanges) {
  MemoryDevice dev(1 << 20);
  Result<LogDevice> log = LogDevice::Open(dev, Params(500));
  ASSERT_TRUE(log.ok());
  Superblock sb = log->superblock();
  sb.nr_regions = 501;
  EXPECT_EQ(log->WriteSuperblock(sb).code(), Errc::kInvalidArgument);
  sb = log->superblock();
  sb.active = true;  // part 1 still valid: must go through MarkActive
  EXPECT_THAT(log->WriteSuperblock(sb).message(), HasSubstr("MarkActive"));
  sb.active = false;
  sb.uuid = "renamed";
  ASSERT_TRUE(log->WriteSuperblock(sb).ok());
  EXPECT_EQ(LogDevice::Open(dev, Params(500))->superblock().uuid, "renamed");
}

}  // namespace
}  // namespace clogd::region
