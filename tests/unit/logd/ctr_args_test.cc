// Unit tests for the CTR string parser: every log type and option, devices as paths and
// major:minor, the LVM example, and each malformed form refused with a naming message.
#include "logd/ctr_args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace clogd::logd {
namespace {

using ::testing::HasSubstr;

CtrArgs MustParse(std::string_view s) {
  Result<CtrArgs> r = ParseCtrString(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().ToString();
  return r.ok() ? *r : CtrArgs{};
}

std::string Refused(std::string_view s) {
  Result<CtrArgs> r = ParseCtrString(s);
  EXPECT_FALSE(r.ok()) << "accepted: " << s;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Errc::kInvalidArgument);
  return r.status().message();
}

TEST(CtrArgs, LvmExample) {
  const CtrArgs a = MustParse("4724028 clustered-disk 253:2 1024");
  EXPECT_EQ(a.target_sectors, 4724028u);
  EXPECT_EQ(a.type, LogType::kClusteredDisk);
  EXPECT_EQ(a.device, "253:2");
  EXPECT_EQ(a.region_size, 1024u);
  EXPECT_EQ(a.sync, SyncMode::kDefault);
  EXPECT_FALSE(a.block_on_error);
  EXPECT_EQ(a.RegionCount(), 4614u);  // 4724028 / 1024 = 4613.3
  EXPECT_EQ(a.ToArgString(), "clustered-disk 253:2 1024");
}

TEST(CtrArgs, EveryTypeWithAllOptions) {
  struct Case {
    const char* ctr;
    LogType type;
    const char* device;
    SyncMode sync;
    const char* args;
  };
  const Case cases[] = {
      {"8192 clustered-core 512 sync block_on_error", LogType::kClusteredCore, "",
       SyncMode::kForceSync, "clustered-core 512 sync block_on_error"},
      {"8192 clustered-disk /dev/vg/lv_mlog 512 nosync block_on_error", LogType::kClusteredDisk,
       "/dev/vg/lv_mlog", SyncMode::kNoSync,
       "clustered-disk /dev/vg/lv_mlog 512 nosync block_on_error"},
      {"8192 core 512 nosync block_on_error", LogType::kCore, "", SyncMode::kNoSync,
       "core 512 nosync block_on_error"},
      {"8192 disk 8:16 512 sync block_on_error", LogType::kDisk, "8:16", SyncMode::kForceSync,
       "disk 8:16 512 sync block_on_error"},
      // Options in the other order are accepted; ToArgString is canonical.
      {"8192 disk /dev/sda 512 block_on_error nosync", LogType::kDisk, "/dev/sda",
       SyncMode::kNoSync, "disk /dev/sda 512 nosync block_on_error"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.ctr);
    const CtrArgs a = MustParse(c.ctr);
    EXPECT_EQ(a.target_sectors, 8192u);
    EXPECT_EQ(a.type, c.type);
    EXPECT_EQ(a.device, c.device);
    EXPECT_EQ(a.region_size, 512u);
    EXPECT_EQ(a.sync, c.sync);
    EXPECT_TRUE(a.block_on_error);
    EXPECT_EQ(a.RegionCount(), 16u);
    EXPECT_EQ(a.ToArgString(), c.args);
    // The canonical form parses back to the same thing.
    const CtrArgs b = MustParse("8192 " + a.ToArgString());
    EXPECT_EQ(b.ToArgString(), a.ToArgString());
  }
}

TEST(CtrArgs, Minimal) {
  const CtrArgs a = MustParse("1 core 2");
  EXPECT_EQ(a.type, LogType::kCore);
  EXPECT_EQ(a.RegionCount(), 1u);
  EXPECT_EQ(a.ToArgString(), "core 2");
  const CtrArgs b = MustParse("  100\tclustered-core  4 \n");  // whitespace runs are separators
  EXPECT_EQ(b.RegionCount(), 25u);
}

TEST(CtrArgs, TypeHelpers) {
  EXPECT_STREQ(LogTypeName(LogType::kClusteredCore), "clustered-core");
  EXPECT_STREQ(LogTypeName(LogType::kClusteredDisk), "clustered-disk");
  EXPECT_STREQ(LogTypeName(LogType::kCore), "core");
  EXPECT_STREQ(LogTypeName(LogType::kDisk), "disk");
  EXPECT_TRUE(IsDiskLog(LogType::kDisk));
  EXPECT_TRUE(IsDiskLog(LogType::kClusteredDisk));
  EXPECT_FALSE(IsDiskLog(LogType::kCore));
  EXPECT_FALSE(IsDiskLog(LogType::kClusteredCore));
  EXPECT_TRUE(IsClusteredLog(LogType::kClusteredCore));
  EXPECT_TRUE(IsClusteredLog(LogType::kClusteredDisk));
  EXPECT_FALSE(IsClusteredLog(LogType::kCore));
  EXPECT_FALSE(IsClusteredLog(LogType::kDisk));
}

TEST(CtrArgs, RegionCountEdges) {
  CtrArgs a;
  a.target_sectors = UINT64_MAX;
  a.region_size = 1u << 31;
  EXPECT_EQ(a.RegionCount(), (UINT64_MAX >> 31) + 1);
  a.target_sectors = 1u << 31;
  EXPECT_EQ(a.RegionCount(), 1u);
  a.target_sectors = (1ULL << 31) + 1;
  EXPECT_EQ(a.RegionCount(), 2u);
  const CtrArgs big = MustParse("18446744073709551615 core 2147483648");
  EXPECT_EQ(big.region_size, 2147483648u);
  EXPECT_EQ(big.RegionCount(), 1ULL << 33);
}

TEST(CtrArgs, RegionSizeRefusals) {
  EXPECT_THAT(Refused("1000 core"), HasSubstr("missing region size after log type 'core'"));
  EXPECT_THAT(Refused("1000 disk /dev/sda"),
              HasSubstr("missing region size after device '/dev/sda'"));
  EXPECT_THAT(Refused("1000 core 0"), HasSubstr("region size 0: must be non-zero"));
  EXPECT_THAT(Refused("1000 core abc"), HasSubstr("CTR: region size 'abc' is not a number"));
  EXPECT_THAT(Refused("1000 core -1024"), HasSubstr("region size '-1024' is not a number"));
  EXPECT_THAT(Refused("1000 core 0x400"), HasSubstr("region size '0x400' is not a number"));
  EXPECT_THAT(Refused("1000 core 1000"), HasSubstr("region size 1000 is not a power of two"));
  EXPECT_THAT(Refused("1000 core 4294967296"),
              HasSubstr("region size '4294967296' does not fit 32 bits"));
  EXPECT_THAT(Refused("1000 core 99999999999999999999999"),
              HasSubstr("region size '99999999999999999999999' does not fit 32 bits"));
}

TEST(CtrArgs, TargetLengthRefusals) {
  EXPECT_THAT(Refused(""), HasSubstr("CTR: empty constructor string"));
  EXPECT_THAT(Refused("   "), HasSubstr("CTR: empty constructor string"));
  EXPECT_THAT(Refused("clustered-disk 253:2 1024"),
              HasSubstr("target length 'clustered-disk' is not a number"));
  EXPECT_THAT(Refused("0 core 1024"), HasSubstr("target length 0: must be non-zero"));
  EXPECT_THAT(Refused("18446744073709551616 core 1024"),
              HasSubstr("target length '18446744073709551616' does not fit 64 bits"));
  EXPECT_THAT(Refused("+5 core 1024"), HasSubstr("target length '+5' is not a number"));
  EXPECT_THAT(Refused("4724028"), HasSubstr("missing log type after target length 4724028"));
}

TEST(CtrArgs, TypeAndDeviceRefusals) {
  EXPECT_THAT(Refused("1000 foo 1024"),
              HasSubstr("CTR: unknown log type 'foo' (expected clustered-core, clustered-disk, "
                        "core or disk)"));
  EXPECT_THAT(Refused("1000 Core 1024"), HasSubstr("unknown log type 'Core'"));
  EXPECT_THAT(Refused("1000 clustered-disk 1024"),
              HasSubstr("log type 'clustered-disk' needs a device (a path or major:minor) before "
                        "the region size, got '1024'"));
  EXPECT_THAT(Refused("1000 disk"), HasSubstr("log type 'disk' needs a device"));
  EXPECT_THAT(Refused("1000 disk sda 1024"), HasSubstr("got 'sda'"));
  EXPECT_THAT(Refused("1000 disk 253:x 1024"),
              HasSubstr("device '253:x' is neither a path nor major:minor (minor 'x'"));
  EXPECT_THAT(Refused("1000 disk :2 1024"), HasSubstr("(major '' is not a number)"));
  EXPECT_THAT(Refused("1000 disk 253: 1024"), HasSubstr("(minor '' is not a number)"));
  EXPECT_THAT(Refused("1000 disk 4096:0 1024"),
              HasSubstr("device '4096:0': major '4096' out of range (max 4095)"));
  EXPECT_THAT(Refused("1000 disk 8:1048576 1024"),
              HasSubstr("minor '1048576' out of range (max 1048575)"));
  EXPECT_THAT(Refused("1000 disk 8:99999999999999999999999 1024"),
              HasSubstr("out of range (max 1048575)"));
  EXPECT_THAT(Refused("1000 core /dev/sda 1024"),
              HasSubstr("log type 'core' takes no device, got '/dev/sda'"));
  EXPECT_THAT(Refused("1000 clustered-core 253:2 1024"),
              HasSubstr("log type 'clustered-core' takes no device, got '253:2'"));
  // The device name must fit the kernel's 128-byte CTR reply buffer with its NUL.
  const std::string path127 = "/" + std::string(126, 'd');
  EXPECT_EQ(MustParse("1000 disk " + path127 + " 1024").device, path127);
  EXPECT_THAT(Refused("1000 disk /" + std::string(127, 'd') + " 1024"),
              HasSubstr("device name of 128 characters is longer than 127"));
  // Largest valid major:minor.
  EXPECT_EQ(MustParse("1000 disk 4095:1048575 1024").device, "4095:1048575");
}

TEST(CtrArgs, OptionRefusals) {
  EXPECT_THAT(Refused("1000 core 1024 sync nosync"),
              HasSubstr("options 'sync' and 'nosync' are mutually exclusive"));
  EXPECT_THAT(Refused("1000 core 1024 nosync block_on_error sync"),
              HasSubstr("mutually exclusive"));
  EXPECT_THAT(Refused("1000 core 1024 sync sync"), HasSubstr("option 'sync' repeated"));
  EXPECT_THAT(Refused("1000 core 1024 nosync nosync"), HasSubstr("option 'nosync' repeated"));
  EXPECT_THAT(Refused("1000 core 1024 block_on_error block_on_error"),
              HasSubstr("option 'block_on_error' repeated"));
  EXPECT_THAT(Refused("1000 core 1024 foo"),
              HasSubstr("unexpected word 'foo' after region size 1024"));
  EXPECT_THAT(Refused("1000 disk 253:2 1024 sync foo block_on_error bar"),
              HasSubstr("unexpected words 'foo' 'bar' after region size 1024"));
  EXPECT_THAT(Refused("1000 core 1024 integrated_flush"), HasSubstr("'integrated_flush'"));
  EXPECT_THAT(Refused("1000 core 1024 SYNC"), HasSubstr("unexpected word 'SYNC'"));
}

TEST(CtrArgs, ControlCharactersRefused) {
  EXPECT_THAT(Refused(std::string_view("1000 core\0 1024", 15)),
              HasSubstr("control character 0 at byte 9"));
  EXPECT_THAT(Refused("1000 core 1024\x01"), HasSubstr("control character 1 at byte 14"));
}

}  // namespace
}  // namespace clogd::logd
