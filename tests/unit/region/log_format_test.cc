// Byte-exact tests of the on-disk format: every field is read back with the test's own
// little-endian reader at the offsets region/README.md documents.
#include "region/log_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "region/crc32c.h"
#include "tests/unit/region/test_bytes.h"

namespace clogd::region {
namespace {

using testbytes::LE32;
using testbytes::LE64;
using testbytes::PutLE32;
using ::testing::HasSubstr;

TEST(DmLogHeaderCodec, ValidAndInvalid) {
  const std::vector<uint8_t> v = EncodeDmLogHeader(true, 0x123456789AULL);
  ASSERT_EQ(v.size(), 512u);
  EXPECT_EQ(LE32(v, 0), 0x4D695272u);
  EXPECT_EQ(v[0], 0x72);  // "rRiM" on disk: little-endian
  EXPECT_EQ(LE32(v, 4), 2u);
  EXPECT_EQ(LE64(v, 8), 0x123456789AULL);
  EXPECT_TRUE(testbytes::AllZero(std::span<const uint8_t>(v).subspan(16)));

  const std::vector<uint8_t> inv = EncodeDmLogHeader(false, 77);
  EXPECT_EQ(LE32(inv, 0), 0u);
  EXPECT_EQ(LE32(inv, 4), 2u);
  EXPECT_EQ(LE64(inv, 8), 77u);
  const DmLogHeader h = DecodeDmLogHeader(inv);
  EXPECT_EQ(h.magic, 0u);
  EXPECT_EQ(h.version, 2u);
  EXPECT_EQ(h.nr_regions, 77u);
}

TEST(LogLayout, Compute) {
  Result<Layout> l = Layout::Compute(64, 16, 32768);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->bitmap_bytes, 8u);
  EXPECT_EQ(l->cluster_offset, 4096u);
  EXPECT_EQ(l->SuperblockOffset(0), 4096u);
  EXPECT_EQ(l->SuperblockOffset(1), 8192u);
  EXPECT_EQ(l->SlotOffset(0, 0), 12288u);
  EXPECT_EQ(l->SlotOffset(0, 1), 12288u + 32768u);
  EXPECT_EQ(l->SlotOffset(3, 1), 12288u + 7u * 32768u);
  EXPECT_EQ(l->total_bytes, 12288u + 32u * 32768u);
  EXPECT_EQ(l->SlotCapacity(), (32768u - 32u) / 8u);

  EXPECT_EQ(Layout::Compute(65, 1, 4096)->bitmap_bytes, 12u);  // 32-bit words
  EXPECT_EQ(Layout::Compute(1, 1, 4096)->bitmap_bytes, 4u);
  // 1024 + 3072 bytes of bitmap fill exactly one 4 KiB block.
  EXPECT_EQ(Layout::Compute(3072 * 8, 1, 4096)->cluster_offset, 4096u);
  EXPECT_EQ(Layout::Compute(3072 * 8 + 1, 1, 4096)->cluster_offset, 8192u);
  const uint64_t big = uint64_t{1} << 24;
  EXPECT_EQ(Layout::Compute(big, 1, 4096)->bitmap_bytes, 2u << 20);
  EXPECT_EQ(Layout::Compute(big, 1, 4096)->cluster_offset, (2u << 20) + 4096u);

  EXPECT_EQ(Layout::Compute(0, 1, 4096).status().code(), Errc::kInvalidArgument);
  EXPECT_EQ(Layout::Compute(64, 0, 4096).status().code(), Errc::kInvalidArgument);
  EXPECT_EQ(Layout::Compute(64, kMaxSlots + 1, 4096).status().code(), Errc::kInvalidArgument);
  Result<Layout> bad = Layout::Compute(64, 1, 5000);
  EXPECT_EQ(bad.status().code(), Errc::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("5000"));
}

TEST(LogLayout, FitSixteenPlusSlotsIn4MiBAt2To24Regions) {
  Result<Layout> l = Layout::Fit(uint64_t{1} << 24, 4u << 20, kDefaultSlotCopyBytes);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_GE(l->slot_count, 16u);
  EXPECT_EQ(l->slot_count, 31u);
  EXPECT_LE(l->total_bytes, 4u << 20);
  EXPECT_EQ(Layout::Fit(64, 1u << 30, 4096)->slot_count, kMaxSlots);

  Result<Layout> small = Layout::Fit(64, 8192, 4096);
  EXPECT_EQ(small.status().code(), Errc::kNoSpace);
  EXPECT_THAT(small.status().message(), HasSubstr("8192"));
  EXPECT_THAT(small.status().message(), HasSubstr("20480"));  // 4096 + 8192 + 2 * 4096
}

Superblock SampleSuperblock() {
  Superblock sb;
  sb.nr_regions = 1000;
  sb.region_size = 1024;
  sb.slot_count = 16;
  sb.slot_copy_bytes = 32768;
  sb.generation = 0x1122334455667788ULL;
  sb.sequence = 42;
  sb.active = true;
  sb.uuid = "LVM-abcdef";
  return sb;
}

TEST(SuperblockCodec, ByteLayoutAndChecksum) {
  const std::vector<uint8_t> b = EncodeSuperblock(SampleSuperblock());
  ASSERT_EQ(b.size(), 4096u);
  EXPECT_EQ(LE32(b, 0), 0x474F4C43u);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "CLOG");
  EXPECT_EQ(LE32(b, 4), 1u);
  EXPECT_EQ(LE64(b, 8), 1000u);
  EXPECT_EQ(LE32(b, 16), 1024u);
  EXPECT_EQ(LE32(b, 20), 16u);
  EXPECT_EQ(LE32(b, 24), 32768u);
  EXPECT_EQ(LE32(b, 28), 1u);  // active
  EXPECT_EQ(LE64(b, 32), 0x1122334455667788ULL);
  EXPECT_EQ(LE64(b, 40), 42u);
  EXPECT_EQ(LE32(b, 48), 10u);
  EXPECT_EQ(std::string(b.begin() + 52, b.begin() + 62), "LVM-abcdef");
  EXPECT_TRUE(testbytes::AllZero(std::span<const uint8_t>(b).subspan(62, 4092 - 62)));
  EXPECT_EQ(LE32(b, 4092), Crc32c(std::span<const uint8_t>(b).first(4092)));

  Result<Superblock> d = DecodeSuperblock(b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, SampleSuperblock());
}

TEST(SuperblockCodec, DecodeRefusals) {
  std::vector<uint8_t> b = EncodeSuperblock(SampleSuperblock());
  std::vector<uint8_t> flipped = b;
  flipped[100] ^= 1;
  Result<Superblock> r = DecodeSuperblock(flipped);
  EXPECT_EQ(r.status().code(), Errc::kCorrupt);
  EXPECT_THAT(r.status().message(), HasSubstr("bad checksum (stored 0x"));

  std::vector<uint8_t> magic = b;
  PutLE32(magic, 0, 0xDEADBEEF);
  r = DecodeSuperblock(magic);
  EXPECT_EQ(r.status().code(), Errc::kCorrupt);
  EXPECT_THAT(r.status().message(), HasSubstr("bad magic 0xdeadbeef"));

  std::vector<uint8_t> v2 = b;
  PutLE32(v2, 4, 2);
  PutLE32(v2, 4092, Crc32c(std::span<const uint8_t>(v2).first(4092)));
  r = DecodeSuperblock(v2);
  EXPECT_EQ(r.status().code(), Errc::kUnsupportedVersion);
  EXPECT_THAT(r.status().message(), HasSubstr("format version 2"));
  EXPECT_THAT(r.status().message(), HasSubstr("version 1"));

  std::vector<uint8_t> geometry = b;
  PutLE32(geometry, 20, 0);  // zero slots, checksum fixed up
  PutLE32(geometry, 4092, Crc32c(std::span<const uint8_t>(geometry).first(4092)));
  EXPECT_EQ(DecodeSuperblock(geometry).status().code(), Errc::kCorrupt);
}

TEST(SlotCodec, ByteLayoutAndChecksumCoverage) {
  SlotRecord rec;
  rec.node_id = 7;
  rec.sequence = 0xABCDEF0123ULL;
  rec.regions = {1, 5, uint64_t{1} << 40};
  const std::vector<uint8_t> b = EncodeSlot(rec, 8192);
  ASSERT_EQ(b.size(), 8192u);
  EXPECT_EQ(LE32(b, 0), 0x544F4C53u);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "SLOT");
  EXPECT_EQ(LE32(b, 4), 1u);
  EXPECT_EQ(LE32(b, 8), 7u);
  EXPECT_EQ(LE32(b, 12), 0u);
  EXPECT_EQ(LE64(b, 16), 0xABCDEF0123ULL);
  EXPECT_EQ(LE32(b, 24), 3u);
  EXPECT_EQ(LE64(b, 32), 1u);
  EXPECT_EQ(LE64(b, 40), 5u);
  EXPECT_EQ(LE64(b, 48), uint64_t{1} << 40);
  std::span<const uint8_t> s(b);
  const uint32_t crc = Crc32cExtend(Crc32c(s.first(28)), s.subspan(32, 24));
  EXPECT_EQ(LE32(b, 28), crc);
  EXPECT_TRUE(testbytes::AllZero(s.subspan(56)));

  Result<SlotRecord> d = DecodeSlot(b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, rec);
  // Bytes past the list are not covered: stale data there is harmless.
  std::vector<uint8_t> stale = b;
  stale[56] = 0x99;
  stale[8191] = 0x99;
  EXPECT_TRUE(DecodeSlot(stale).ok());
  // Bytes inside the list are.
  std::vector<uint8_t> torn = b;
  torn[50] ^= 0x10;
  Result<SlotRecord> t = DecodeSlot(torn);
  EXPECT_EQ(t.status().code(), Errc::kCorrupt);
  EXPECT_THAT(t.status().message(), HasSubstr("bad checksum"));
  EXPECT_EQ(SlotRecordedCount(b), 3u);
}

TEST(SlotCodec, OverflowFreeAndMalformed) {
  SlotRecord big;
  big.node_id = 3;
  for (uint64_t r = 0; r < 509; ++r) big.regions.push_back(r * 2);  // capacity of 4096: 508
  const std::vector<uint8_t> b = EncodeSlot(big, 4096);
  EXPECT_EQ(LE32(b, 12), 1u);  // overflow flag
  EXPECT_EQ(LE32(b, 24), 0u);  // nothing listed
  Result<SlotRecord> d = DecodeSlot(b);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->overflow);
  EXPECT_TRUE(d->regions.empty());

  big.regions.pop_back();  // 508 fit exactly
  const std::vector<uint8_t> full = EncodeSlot(big, 4096);
  EXPECT_EQ(LE32(full, 24), 508u);
  EXPECT_EQ(DecodeSlot(full)->regions, big.regions);

  Result<SlotRecord> free_rec = DecodeSlot(std::vector<uint8_t>(4096, 0));
  ASSERT_TRUE(free_rec.ok());
  EXPECT_EQ(free_rec->node_id, 0u);
  EXPECT_EQ(free_rec->sequence, 0u);

  SlotRecord rec;
  rec.node_id = 1;
  rec.regions = {9, 4};  // not ascending; the encoder does not sort
  std::vector<uint8_t> unsorted = EncodeSlot(rec, 4096);
  Result<SlotRecord> u = DecodeSlot(unsorted);
  EXPECT_EQ(u.status().code(), Errc::kCorrupt);
  EXPECT_THAT(u.status().message(), HasSubstr("ascending"));

  std::vector<uint8_t> huge = EncodeSlot(SlotRecord{1, 1, false, {}}, 4096);
  PutLE32(huge, 24, 1000);  // count past the block
  EXPECT_THAT(DecodeSlot(huge).status().message(), HasSubstr("count 1000"));
}

}  // namespace
}  // namespace clogd::region
