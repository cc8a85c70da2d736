// LogDevice under faults: torn, failed and un-flushed slot writes; refusals that must name
// the problem and leave every byte alone; re-initialisation; and power cuts at every step
// of the activation / clean-shutdown protocol.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "region/crc32c.h"
#include "region/log_format.h"
#include "region/memory_device.h"
#include "tests/unit/region/test_bytes.h"

namespace clogd::region {
namespace {

using testbytes::LE32;
using testbytes::LE64;
using testbytes::PutLE32;
using ::testing::AllOf;
using ::testing::HasSubstr;

OpenParams Params(uint64_t nr_regions, uint32_t region_size = 1024) {
  OpenParams p;
  p.nr_regions = nr_regions;
  p.region_size = region_size;
  return p;
}

SlotRecord Record(NodeId node, uint64_t first, uint64_t n) {
  SlotRecord r{node, 0, false, {}};
  for (uint64_t i = 0; i < n; ++i) r.regions.push_back(first + 3 * i);
  return r;
}

SlotRecord Reopened(MemoryDevice& dev, uint64_t nr, uint32_t slot) {
  Result<LogDevice> log = LogDevice::Open(dev, Params(nr));
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? log->loaded_slots()[slot] : SlotRecord{};
}

class SlotFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<LogDevice> log = LogDevice::Open(dev_, Params(kRegions));
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_.emplace(std::move(log).value());
    a_ = Record(5, 0, 100);  // 832 bytes: one block, more than one 512-byte sector
    ASSERT_TRUE(log_->WriteSlot(0, a_).ok());  // copy 1, sequence 1
    b_ = Record(5, 1, 100);
  }
  static constexpr uint64_t kRegions = 100000;
  MemoryDevice dev_{1 << 20, 512, "mem0"};
  std::optional<LogDevice> log_;
  SlotRecord a_, b_;
};

TEST_F(SlotFaults, TornWriteKeepsThePreviousRecord) {
  dev_.TearNextWrite(512);
  Status s = log_->WriteSlot(0, b_);
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("mem0"), HasSubstr("slot 0 copy 0")));
  ASSERT_TRUE(dev_.Flush().ok());  // the torn prefix reached the media
  const uint64_t copy0 = log_->layout().SlotOffset(0, 0);
  std::span<const uint8_t> torn(dev_.durable().data() + copy0, 4096);
  EXPECT_EQ(LE32(torn, 0), kSlotMagic);                         // the header landed...
  EXPECT_EQ(DecodeSlot(torn).status().code(), Errc::kCorrupt);  // ...the list did not
  EXPECT_EQ(Reopened(dev_, kRegions, 0), a_);

  // Retrying overwrites the torn copy, never the good one.
  ASSERT_TRUE(log_->WriteSlot(0, b_).ok());
  EXPECT_EQ(b_.sequence, 2u);
  EXPECT_EQ(Reopened(dev_, kRegions, 0), b_);
}

TEST_F(SlotFaults, TornWriteWithNothingLandedAndCrash) {
  dev_.TearNextWrite(0);
  EXPECT_FALSE(log_->WriteSlot(0, b_).ok());
  dev_.Crash();
  EXPECT_EQ(Reopened(dev_, kRegions, 0), a_);
}

TEST_F(SlotFaults, LostFlushAndCrashLosesTheWrite) {
  dev_.LoseNextFlush();
  ASSERT_TRUE(log_->WriteSlot(0, b_).ok());    // the device lied
  EXPECT_EQ(Reopened(dev_, kRegions, 0), b_);  // visible before the power cut
  dev_.Crash();
  EXPECT_EQ(Reopened(dev_, kRegions, 0), a_);
}

TEST_F(SlotFaults, FailedWriteChangesNothing) {
  const std::vector<uint8_t> before = dev_.current();
  dev_.FailNextWrites(1);
  Status s = log_->WriteSlot(0, b_);
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_THAT(s.message(), HasSubstr("slot 0 copy 0"));
  EXPECT_EQ(b_.sequence, 0u);  // not claimed
  EXPECT_EQ(dev_.current(), before);
  EXPECT_EQ(Reopened(dev_, kRegions, 0), a_);
  ASSERT_TRUE(log_->WriteSlot(0, b_).ok());
  EXPECT_EQ(b_.sequence, 2u);
}

TEST_F(SlotFaults, FailedFlushIsNotCountedAsWritten) {
  dev_.FailNextFlushes(1);
  Status s = log_->WriteSlot(0, b_);
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_THAT(s.message(), HasSubstr("flush"));
  SlotRecord c = Record(5, 2, 3);
  ASSERT_TRUE(log_->WriteSlot(0, c).ok());
  EXPECT_EQ(c.sequence, 2u);  // same sequence and copy as the failed attempt
  const Layout& l = log_->layout();
  EXPECT_EQ(LE64(std::span<const uint8_t>(dev_.durable()), l.SlotOffset(0, 0) + 16), 2u);
  EXPECT_EQ(LE64(std::span<const uint8_t>(dev_.durable()), l.SlotOffset(0, 1) + 16), 1u);
  dev_.Crash();
  EXPECT_EQ(Reopened(dev_, kRegions, 0), c);
}

// ---- refusals

void ExpectRefused(MemoryDevice& dev, const OpenParams& p, Errc code,
                   const std::vector<std::string>& words) {
  const std::vector<uint8_t> before = dev.current();
  const uint64_t writes = dev.writes(), flushes = dev.flushes();
  Result<LogDevice> log = LogDevice::Open(dev, p);
  ASSERT_FALSE(log.ok()) << "opened as outcome " << static_cast<int>(log->outcome());
  EXPECT_EQ(log.status().code(), code) << log.status().ToString();
  for (const std::string& w : words) EXPECT_THAT(log.status().message(), HasSubstr(w));
  EXPECT_EQ(dev.writes(), writes);
  EXPECT_EQ(dev.flushes(), flushes);
  EXPECT_TRUE(dev.current() == before) << "refusal changed the device";
}

MemoryDevice Formatted(uint64_t nr, uint32_t region_size = 1024) {
  MemoryDevice dev(1 << 20, 512, "mem0");
  Result<LogDevice> log = LogDevice::Open(dev, Params(nr, region_size));
  EXPECT_TRUE(log.ok());
  return dev;
}

TEST(LogDeviceRefusal, GarbageThenReinitialize) {
  MemoryDevice dev(1 << 20, 512, "mem0");
  dev.Load(0, std::vector<uint8_t>(65536, 0xAB));
  ExpectRefused(dev, Params(1000), Errc::kCorrupt,
                {"log device mem0", "not a clogd or dm-log log", "dm-log magic 0xabababab",
                 "superblock copy 0 and 1: bad magic 0xabababab", "re-initialise"});
  OpenParams p = Params(1000);
  p.reinitialize = true;
  p.nosync = true;  // ignored: re-initialisation means a full resync
  Result<LogDevice> log = LogDevice::Open(dev, p);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->outcome(), OpenOutcome::kReinitialized);
  EXPECT_TRUE(log->loaded_in_sync().none());
  Result<LogDevice> again = LogDevice::Open(dev, Params(1000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outcome(), OpenOutcome::kOpenedCluster);
  EXPECT_TRUE(again->loaded_in_sync().none());
}

TEST(LogDeviceRefusal, NonZeroJunkWithZeroHeader) {
  MemoryDevice dev(1 << 20, 512, "mem0");
  dev.Load(4096 + 100, std::vector<uint8_t>{1});  // inside superblock copy 0
  ExpectRefused(dev, Params(1000), Errc::kCorrupt,
                {"dm-log magic 0", "copy 0: bad magic 0x00000000", "copy 1: all zero"});
}

TEST(LogDeviceRefusal, BadSuperblockChecksumOnBothCopies) {
  MemoryDevice dev = Formatted(1000);
  dev.Load(4096 + 200, std::vector<uint8_t>{0x77});
  dev.Load(8192 + 200, std::vector<uint8_t>{0x77});
  ExpectRefused(dev, Params(1000), Errc::kCorrupt,
                {"mem0", "superblock copy 0: bad checksum (stored 0x", "copy 1: bad checksum"});
}

TEST(LogDeviceRefusal, OneBadSuperblockCopyIsTolerated) {
  MemoryDevice dev = Formatted(1000);
  dev.Load(8192 + 200, std::vector<uint8_t>{0x77});  // the newer copy
  Result<LogDevice> log = LogDevice::Open(dev, Params(1000));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->superblock().sequence, 1u);
  ASSERT_TRUE(log->MarkActive(1).ok());  // rewrites the bad copy
  EXPECT_EQ(LogDevice::Open(dev, Params(1000))->superblock().sequence, 2u);
}

TEST(LogDeviceRefusal, WrongFormatVersion) {
  MemoryDevice dev = Formatted(1000);
  std::vector<uint8_t> copy1(dev.durable().begin() + 8192, dev.durable().begin() + 12288);
  PutLE32(copy1, 4, 2);
  PutLE32(copy1, 4092, Crc32c(std::span<const uint8_t>(copy1).first(4092)));
  dev.Load(8192, copy1);
  ExpectRefused(dev, Params(1000), Errc::kUnsupportedVersion,
                {"mem0", "superblock copy 1", "format version 2", "reads version 1"});
}

TEST(LogDeviceRefusal, RegionCountMismatch) {
  MemoryDevice dev = Formatted(1000);
  ExpectRefused(dev, Params(1001), Errc::kInvalidArgument,
                {"mem0", "superblock records 1000 regions, requested 1001"});
  // A count that moves the superblock elsewhere: found through the dm-log header.
  ExpectRefused(dev, Params(200000), Errc::kInvalidArgument,
                {"superblock records 1000 regions, requested 200000"});
  // Also while active (the header's magic is zero but its count is kept).
  {
    Result<LogDevice> log = LogDevice::Open(dev, Params(1000));
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE(log->MarkActive(1).ok());
  }
  ExpectRefused(dev, Params(200000), Errc::kInvalidArgument,
                {"superblock records 1000 regions, requested 200000"});
}

TEST(LogDeviceRefusal, RegionSizeMismatch) {
  MemoryDevice dev = Formatted(1000, 1024);
  ExpectRefused(dev, Params(1000, 512), Errc::kInvalidArgument,
                {"region size 1024 sectors, requested 512"});
}

TEST(LogDeviceRefusal, DeviceTooSmall) {
  MemoryDevice dev(8192, 512, "tiny");
  ExpectRefused(dev, Params(64), Errc::kNoSpace, {"log device tiny", "8192 bytes", "77824"});
  OpenParams p = Params(64);
  p.reinitialize = true;
  EXPECT_EQ(LogDevice::Open(dev, p).status().code(), Errc::kNoSpace);
}

TEST(LogDeviceRefusal, DmLogVersionAndRegionCount) {
  MemoryDevice dev(1 << 20, 512, "mem0");
  dev.Load(0, testbytes::DmLogImage(100, {1}, 3));
  ExpectRefused(dev, Params(100), Errc::kUnsupportedVersion,
                {"dm-log version 3", "reads version 2"});
  MemoryDevice dev2(1 << 20, 512, "mem0");
  dev2.Load(0, testbytes::DmLogImage(100, {1}));
  ExpectRefused(dev2, Params(200), Errc::kInvalidArgument,
                {"dm-log header records 100 regions, requested 200"});
}

TEST(LogDeviceRefusal, BothSlotCopiesCorrupt) {
  MemoryDevice dev = Formatted(1000);
  Layout l;
  {
    Result<LogDevice> log = LogDevice::Open(dev, Params(1000));
    ASSERT_TRUE(log.ok());
    l = log->layout();
  }
  dev.Load(l.SlotOffset(2, 0), std::vector<uint8_t>{1, 2, 3, 4});
  dev.Load(l.SlotOffset(2, 1), std::vector<uint8_t>{0x53, 0x4C, 0x4F, 0x54});  // magic, no CRC
  ExpectRefused(dev, Params(1000), Errc::kCorrupt,
                {"slot 2", "copy 0: bad magic 0x04030201", "copy 1: bad checksum"});
}

TEST(LogDeviceRefusal, ReinitializeWithAnotherRegionCount) {
  MemoryDevice dev = Formatted(1000);
  OpenParams p = Params(300000);
  p.reinitialize = true;
  Result<LogDevice> log = LogDevice::Open(dev, p);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->outcome(), OpenOutcome::kReinitialized);
  EXPECT_EQ(log->superblock().nr_regions, 300000u);
  EXPECT_EQ(LogDevice::Open(dev, Params(300000))->outcome(), OpenOutcome::kOpenedCluster);
  ExpectRefused(dev, Params(1000), Errc::kInvalidArgument, {"records 300000 regions"});
  // A valid log is simply opened even when re-initialisation is allowed.
  EXPECT_EQ(LogDevice::Open(dev, p)->outcome(), OpenOutcome::kOpenedCluster);
}

// ---- power cuts during the activation / clean-shutdown protocol

// Passes I/O through until `budget` writes+flushes have happened, then fails everything
// (the power is gone); records the order of operations.
class PowerCut : public BlockDevice {
 public:
  PowerCut(MemoryDevice& dev, int budget) : dev_(dev), budget_(budget) {}
  uint64_t SizeBytes() const override { return dev_.SizeBytes(); }
  uint32_t BlockSize() const override { return dev_.BlockSize(); }
  std::string Name() const override { return dev_.Name(); }
  Status Read(uint64_t offset, std::span<uint8_t> out) override { return dev_.Read(offset, out); }
  Status Write(uint64_t offset, std::span<const uint8_t> data) override {
    if (budget_-- <= 0) return IoError("power cut");
    ops.push_back("W" + std::to_string(offset));
    return dev_.Write(offset, data);
  }
  Status Flush() override {
    if (budget_-- <= 0) return IoError("power cut");
    ops.push_back("F");
    return dev_.Flush();
  }
  std::vector<std::string> ops;

 private:
  MemoryDevice& dev_;
  int budget_;
};

TEST(LogDeviceProtocol, WriteOrder) {
  MemoryDevice dev = Formatted(100);
  PowerCut rec(dev, 1000);
  Result<LogDevice> log = LogDevice::Open(rec, Params(100));
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE(log->MarkActive(1).ok());
  // Header block first, durable, then the superblock (copy 0: format left copy 1 newest).
  EXPECT_EQ(rec.ops, (std::vector<std::string>{"W0", "F", "W4096", "F"}));
  rec.ops.clear();
  RegionBitmap clean(100);
  clean.Set(70);  // byte 1024 + 8: block 0
  ASSERT_TRUE(log->MarkCleanShutdown(clean).ok());
  // Bitmap, superblock (inactive), valid header: each durable before the next.
  EXPECT_EQ(rec.ops, (std::vector<std::string>{"W0", "F", "W8192", "F", "W0", "F"}));
}

// After a power cut at any point (with none or all of the unflushed writes on the media),
// the device opens, an active superblock never coexists with a valid dm-log magic, and a
// valid magic only ever vouches for a complete clean map, never the in-sync map.
TEST(LogDeviceProtocol, PowerCutAtEveryStep) {
  const uint64_t n = 40000;  // bitmap spans two blocks
  RegionBitmap c0(n), s(n), c(n);
  for (RegionNo r = 0; r < n; r += 2) c0.Set(r);
  for (RegionNo r = 0; r < n; r += 3) s.Set(r);
  c = s;
  c.Clear(0);  // still marked by someone at shutdown
  c.Clear(30000);
  for (bool keep_unflushed : {false, true}) {
    bool finished = false;
    for (int budget = 0; budget < 40 && !finished; ++budget) {
      MemoryDevice dev(1 << 20, 512, "mem0");
      {
        Result<LogDevice> setup = LogDevice::Open(dev, Params(n));
        ASSERT_TRUE(setup.ok());
        ASSERT_TRUE(setup->MarkActive(1).ok());
        ASSERT_TRUE(setup->MarkCleanShutdown(c0).ok());
      }
      PowerCut cut(dev, budget);
      Result<LogDevice> log = LogDevice::Open(cut, Params(n));
      ASSERT_TRUE(log.ok());
      bool done =
          log->MarkActive(2).ok() && log->WriteInSync(s).ok() && log->MarkCleanShutdown(c).ok();
      if (keep_unflushed) {
        dev.CrashKeeping([](size_t, uint64_t, uint64_t) { return true; });
      } else {
        dev.Crash();
      }
      Result<LogDevice> after = LogDevice::Open(dev, Params(n));
      ASSERT_TRUE(after.ok()) << "budget " << budget << ": " << after.status().ToString();
      const bool magic_valid = LE32(std::span<const uint8_t>(dev.durable()), 0) == kDmLogMagic;
      if (after->superblock().active) {
        EXPECT_FALSE(magic_valid) << "budget " << budget;
      }
      if (magic_valid) {
        EXPECT_TRUE(after->loaded_in_sync() == c0 || after->loaded_in_sync() == c)
            << "budget " << budget << " keep " << keep_unflushed;
      }
      if (done) {
        EXPECT_TRUE(magic_valid);
        EXPECT_EQ(after->loaded_in_sync(), c);
        finished = true;
      }
    }
    EXPECT_TRUE(finished) << "the protocol needs more than 40 operations";
  }
}

// Keep-none or keep-all of the unflushed writes, after a power cut.
void PowerLoss(MemoryDevice& dev, bool keep_unflushed) {
  if (keep_unflushed) {
    dev.CrashKeeping([](size_t, uint64_t, uint64_t) { return true; });
  } else {
    dev.Crash();
  }
}

// A power cut while formatting a blank device never leaves a device that is refused.
TEST(LogDeviceProtocol, PowerCutWhileFormatting) {
  for (bool keep_unflushed : {false, true}) {
    for (int budget = 0; budget < 200; ++budget) {
      MemoryDevice dev(1 << 20, 512, "mem0");
      PowerCut cut(dev, budget);
      OpenParams p = Params(50000);
      p.nosync = true;
      const bool done = LogDevice::Open(cut, p).ok();
      PowerLoss(dev, keep_unflushed);
      Result<LogDevice> after = LogDevice::Open(dev, p);
      ASSERT_TRUE(after.ok()) << "budget " << budget << ": " << after.status().ToString();
      EXPECT_TRUE(after->loaded_in_sync().all());
      if (done) break;
    }
  }
}

// A power cut while re-initialising garbage: the device is refused again or opens with
// every region out of sync; never with leftover bits.
TEST(LogDeviceProtocol, PowerCutWhileReinitializing) {
  for (bool keep_unflushed : {false, true}) {
    for (int budget = 0; budget < 200; ++budget) {
      MemoryDevice dev(1 << 20, 512, "mem0");
      dev.Load(0, std::vector<uint8_t>(1 << 20, 0xFF));
      PowerCut cut(dev, budget);
      OpenParams p = Params(50000);
      p.reinitialize = true;
      const bool done = LogDevice::Open(cut, p).ok();
      PowerLoss(dev, keep_unflushed);
      Result<LogDevice> plain = LogDevice::Open(dev, Params(50000));
      if (plain.ok()) {
        EXPECT_TRUE(plain->loaded_in_sync().none()) << "budget " << budget;
      } else {
        EXPECT_FALSE(done);
        EXPECT_NE(plain.status().code(), Errc::kIoError);
        Result<LogDevice> again = LogDevice::Open(dev, p);
        ASSERT_TRUE(again.ok()) << again.status().ToString();
        EXPECT_TRUE(again->loaded_in_sync().none());
      }
      if (done) break;
    }
  }
}

// A power cut while importing a dm-log: reopening imports again or opens the cluster log,
// and never claims more regions clean than dm-log did.
TEST(LogDeviceProtocol, PowerCutWhileImporting) {
  for (bool force_resync : {false, true}) {
    for (bool keep_unflushed : {false, true}) {
      for (int budget = 0; budget < 200; ++budget) {
        MemoryDevice dev(1 << 20, 512, "mem0");
        dev.Load(0, testbytes::DmLogImage(1000, {1, 2, 3, 500}));
        dev.Load(8192, std::vector<uint8_t>(1 << 16, 0x33));  // stale slot area
        PowerCut cut(dev, budget);
        OpenParams p = Params(1000);
        p.force_resync = force_resync;
        const bool done = LogDevice::Open(cut, p).ok();
        PowerLoss(dev, keep_unflushed);
        Result<LogDevice> after = LogDevice::Open(dev, Params(1000));
        ASSERT_TRUE(after.ok()) << "budget " << budget << ": " << after.status().ToString();
        const RegionBitmap& got = after->loaded_in_sync();
        for (RegionNo r = got.FindNextSet(0); r != kNoRegion; r = got.FindNextSet(r + 1)) {
          EXPECT_TRUE(r == 1 || r == 2 || r == 3 || r == 500) << r;
        }
        if (done) {
          EXPECT_EQ(got.count(), force_resync ? 0u : 4u);
          break;
        }
      }
    }
  }
}

}  // namespace
}  // namespace clogd::region
