// Unit tests for dmtable/mirror_table: every log form parses into the right fields, the
// canonical formatter round-trips, leg rewrites, and the helper queries.
#include "dmtable/mirror_table.h"

#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace clogd::dmtable {
// Readable failure output for EXPECT_EQ on tables.
void PrintTo(const MirrorTable& t, std::ostream* os) { *os << Format(t); }
}  // namespace clogd::dmtable

namespace clogd::dmtable {
namespace {

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

MirrorTable MustParse(std::string_view line) {
  Expected<MirrorTable> r = Parse(line);
  EXPECT_TRUE(r.ok()) << line << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : MirrorTable{};
}

TEST(MirrorTableTest, SeedExample) {
  const std::string line =
      "0 4724028 mirror cluster 5 disk my_uuid /dev/sda 1024 block_on_error 2 /dev/sdb 0 "
      "/dev/sdc 0";
  MirrorTable t = MustParse(line);
  EXPECT_EQ(t.start, 0u);
  EXPECT_EQ(t.length, 4724028u);
  EXPECT_EQ(t.log.kind, LogKind::kCluster);
  EXPECT_TRUE(t.log.clustered_disk);
  EXPECT_EQ(t.log.uuid, "my_uuid");
  EXPECT_EQ(t.log.device, "/dev/sda");
  EXPECT_EQ(t.log.region_size, 1024u);
  EXPECT_EQ(t.log.sync, SyncMode::kDefault);
  EXPECT_TRUE(t.log.block_on_error);
  EXPECT_FALSE(t.log.integrated_flush);
  ASSERT_EQ(t.legs.size(), 2u);
  EXPECT_EQ(t.legs[0], (Leg{"/dev/sdb", 0}));
  EXPECT_EQ(t.legs[1], (Leg{"/dev/sdc", 0}));
  EXPECT_FALSE(t.handle_errors);
  EXPECT_FALSE(t.keep_log);
  EXPECT_TRUE(IsClustered(t));
  EXPECT_EQ(LogDevice(t), "/dev/sda");
  EXPECT_EQ(Format(t), line);
  EXPECT_EQ(Validate(t), std::nullopt);
}

TEST(MirrorTableTest, LvmUserspaceExample) {
  const std::string uuid = "LVM-Ue3mRkNVVqNLZ2P1fw3Ad1YvVSuFcDx8kJgWmTY3uk0u9QZAVp2pYB1Ld2KtEKnO";
  const std::string line = "0 4724028 mirror userspace 4 " + uuid +
                           " clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors";
  MirrorTable t = MustParse(line);
  EXPECT_EQ(t.length, 4724028u);
  EXPECT_EQ(t.log.kind, LogKind::kUserspace);
  EXPECT_EQ(t.log.uuid, uuid);
  EXPECT_FALSE(t.log.integrated_flush);
  EXPECT_TRUE(t.log.clustered_disk);
  EXPECT_EQ(t.log.device, "253:2");
  EXPECT_EQ(t.log.region_size, 1024u);
  ASSERT_EQ(t.legs.size(), 2u);
  EXPECT_EQ(t.legs[0], (Leg{"253:3", 0}));
  EXPECT_EQ(t.legs[1], (Leg{"253:4", 0}));
  EXPECT_TRUE(t.handle_errors);
  EXPECT_FALSE(t.keep_log);
  EXPECT_TRUE(IsClustered(t));
  EXPECT_EQ(LogDevice(t), "253:2");
  EXPECT_EQ(Format(t), line);
}

TEST(MirrorTableTest, CoreLog) {
  MirrorTable t = MustParse("10 2048 mirror core 1 512 2 /dev/a 8 /dev/b 16");
  EXPECT_EQ(t.start, 10u);
  EXPECT_EQ(t.length, 2048u);
  EXPECT_EQ(t.log.kind, LogKind::kCore);
  EXPECT_EQ(t.log.region_size, 512u);
  EXPECT_TRUE(t.log.uuid.empty());
  EXPECT_TRUE(t.log.device.empty());
  EXPECT_EQ(t.legs[0], (Leg{"/dev/a", 8}));
  EXPECT_EQ(t.legs[1], (Leg{"/dev/b", 16}));
  EXPECT_FALSE(IsClustered(t));
  EXPECT_EQ(LogDevice(t), std::nullopt);
}

TEST(MirrorTableTest, CoreLogWithOptions) {
  MirrorTable t = MustParse("0 4096 mirror core 3 1024 nosync block_on_error 2 8:16 0 8:32 0");
  EXPECT_EQ(t.log.sync, SyncMode::kNoSync);
  EXPECT_TRUE(t.log.block_on_error);
  t = MustParse("0 4096 mirror core 2 1024 sync 2 8:16 0 8:32 0");
  EXPECT_EQ(t.log.sync, SyncMode::kSync);
  EXPECT_FALSE(t.log.block_on_error);
}

TEST(MirrorTableTest, DiskLog) {
  MirrorTable t = MustParse(
      "0 8192 mirror disk 3 /dev/log 1024 sync 3 /dev/a 0 /dev/b 0 /dev/c 0 2 handle_errors "
      "keep_log");
  EXPECT_EQ(t.log.kind, LogKind::kDisk);
  EXPECT_EQ(t.log.device, "/dev/log");
  EXPECT_FALSE(t.log.clustered_disk);
  EXPECT_EQ(t.log.sync, SyncMode::kSync);
  EXPECT_EQ(t.legs.size(), 3u);
  EXPECT_TRUE(t.handle_errors);
  EXPECT_TRUE(t.keep_log);
  EXPECT_FALSE(IsClustered(t));
  EXPECT_EQ(LogDevice(t), "/dev/log");
}

TEST(MirrorTableTest, UserspaceClusteredCoreWithIntegratedFlush) {
  MirrorTable t = MustParse(
      "0 8192 mirror userspace 5 LVM-abc integrated_flush clustered-core 1024 nosync 2 "
      "/dev/a 0 /dev/b 0");
  EXPECT_EQ(t.log.kind, LogKind::kUserspace);
  EXPECT_EQ(t.log.uuid, "LVM-abc");
  EXPECT_TRUE(t.log.integrated_flush);
  EXPECT_FALSE(t.log.clustered_disk);
  EXPECT_TRUE(t.log.device.empty());
  EXPECT_EQ(t.log.sync, SyncMode::kNoSync);
  EXPECT_TRUE(IsClustered(t));
  EXPECT_EQ(LogDevice(t), std::nullopt);
}

TEST(MirrorTableTest, ClusterCoreSeedForm) {
  MirrorTable t = MustParse("0 8192 mirror cluster 3 core u1 64 2 /dev/a 0 /dev/b 0");
  EXPECT_EQ(t.log.kind, LogKind::kCluster);
  EXPECT_FALSE(t.log.clustered_disk);
  EXPECT_EQ(t.log.uuid, "u1");
  EXPECT_EQ(t.log.region_size, 64u);
  EXPECT_TRUE(IsClustered(t));
  EXPECT_EQ(LogDevice(t), std::nullopt);
}

TEST(MirrorTableTest, OptionsInAnyOrderAndExtraWhitespace) {
  MirrorTable t = MustParse(
      "  0\t8192 mirror core 3 1024 block_on_error nosync 2 /dev/a 0 "
      "/dev/b 0\n");
  EXPECT_EQ(t.log.sync, SyncMode::kNoSync);
  EXPECT_TRUE(t.log.block_on_error);
  // Canonical order: [[no]sync] [block_on_error].
  EXPECT_EQ(Format(t), "0 8192 mirror core 3 1024 nosync block_on_error 2 /dev/a 0 /dev/b 0");
}

TEST(MirrorTableTest, ZeroFeaturesAccepted) {
  MirrorTable t = MustParse("0 8192 mirror core 1 1024 2 /dev/a 0 /dev/b 0 0");
  EXPECT_FALSE(t.handle_errors);
  EXPECT_EQ(Format(t), "0 8192 mirror core 1 1024 2 /dev/a 0 /dev/b 0");
}

TEST(MirrorTableTest, MaxLegsAndLargeOffsets) {
  std::string line = "0 8192 mirror core 1 1024 9";
  for (int i = 0; i < 9; ++i) line += " /dev/l" + std::to_string(i) + " 18446744073709551615";
  MirrorTable t = MustParse(line);
  ASSERT_EQ(t.legs.size(), 9u);
  EXPECT_EQ(t.legs[8].offset, 18446744073709551615u);
  EXPECT_EQ(Format(t), line);
}

// Canonical lines of every form: Format(Parse(line)) == line and Parse(Format(t)) == t.
TEST(MirrorTableTest, RoundTripsEveryForm) {
  const std::vector<std::string> lines = {
      "0 1024 mirror core 1 2 2 /dev/a 0 /dev/b 0",
      "0 4096 mirror core 2 1024 sync 2 8:16 0 8:32 0",
      "0 4096 mirror core 3 1024 nosync block_on_error 2 8:16 0 8:32 0 1 handle_errors",
      "100 8192 mirror disk 2 /dev/log 1024 2 /dev/a 0 /dev/b 0",
      "0 8192 mirror disk 4 253:2 4096 nosync block_on_error 3 253:3 0 253:4 0 253:5 0 2 "
      "handle_errors keep_log",
      "0 4724028 mirror userspace 4 LVM-x clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 "
      "handle_errors",
      "0 4724028 mirror userspace 5 LVM-x integrated_flush clustered-disk 253:2 1024 2 253:3 "
      "0 253:4 0",
      "0 4724028 mirror userspace 3 LVM-x clustered-core 1024 2 253:3 0 253:4 0",
      "0 4724028 mirror userspace 6 LVM-x integrated_flush clustered-core 1024 sync "
      "block_on_error 2 253:3 0 253:4 0 1 handle_errors",
      "0 4724028 mirror cluster 5 disk my_uuid /dev/sda 1024 block_on_error 2 /dev/sdb 0 "
      "/dev/sdc 0",
      "0 4724028 mirror cluster 3 core my_uuid 1024 2 /dev/sdb 0 /dev/sdc 0",
      "0 4724028 mirror cluster 6 disk my_uuid /dev/sda 1024 nosync block_on_error 2 "
      "/dev/sdb 0 /dev/sdc 7 2 handle_errors keep_log",
  };
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    Expected<MirrorTable> t = Parse(line);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(Format(*t), line);
    EXPECT_EQ(Validate(*t), std::nullopt);
    Expected<MirrorTable> again = Parse(Format(*t));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *t);
    EXPECT_EQ(std::to_string(LogArgCount(t->log)), Words(line)[4]);
    // The parameter form round-trips too.
    const std::string params = line.substr(line.find("mirror ") + 7);
    Expected<MirrorTable> p = ParseParams(params);
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(FormatParams(*p), params);
    EXPECT_EQ(p->start, 0u);
    EXPECT_EQ(p->length, 0u);
    MirrorTable with_pos = *p;
    with_pos.start = t->start;
    with_pos.length = t->length;
    EXPECT_EQ(with_pos, *t);
    EXPECT_EQ(Validate(*p), std::nullopt);
  }
}

TEST(MirrorTableTest, BuiltByHandRoundTrips) {
  MirrorTable t;
  t.start = 0;
  t.length = 1 << 20;
  t.log.kind = LogKind::kUserspace;
  t.log.uuid = "LVM-built";
  t.log.integrated_flush = true;
  t.log.clustered_disk = true;
  t.log.device = "/dev/mapper/vg-lv_mlog";
  t.log.region_size = 1024;
  t.log.sync = SyncMode::kNoSync;
  t.legs = {{"/dev/sdb", 0}, {"/dev/sdc", 2048}};
  t.handle_errors = true;
  ASSERT_EQ(Validate(t), std::nullopt);
  const std::string line = Format(t);
  EXPECT_EQ(line,
            "0 1048576 mirror userspace 6 LVM-built integrated_flush clustered-disk "
            "/dev/mapper/vg-lv_mlog 1024 nosync 2 /dev/sdb 0 /dev/sdc 2048 1 handle_errors");
  Expected<MirrorTable> back = Parse(line);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, t);
}

TEST(MirrorTableTest, ValidateNamesInconsistentFields) {
  MirrorTable t = MustParse("0 8192 mirror core 1 1024 2 /dev/a 0 /dev/b 0");
  MirrorTable bad = t;
  bad.log.device = "/dev/log";
  ASSERT_TRUE(Validate(bad).has_value());
  EXPECT_NE(Validate(bad)->message.find("core log takes no log device"), std::string::npos);
  bad = t;
  bad.log.uuid = "u";
  EXPECT_NE(Validate(bad)->message.find("takes no uuid"), std::string::npos);
  bad = t;
  bad.log.region_size = 1000;
  EXPECT_NE(Validate(bad)->message.find("region size 1000"), std::string::npos);
  bad = t;
  bad.legs.pop_back();
  EXPECT_NE(Validate(bad)->message.find("#legs is 1"), std::string::npos);
  bad = t;
  bad.keep_log = true;
  EXPECT_NE(Validate(bad)->message.find("keep_log requires"), std::string::npos);
  bad = t;
  bad.log.kind = LogKind::kCluster;
  EXPECT_NE(Validate(bad)->message.find("missing uuid"), std::string::npos);
  bad = t;
  bad.legs[1].device = "/dev/x y";
  EXPECT_NE(Validate(bad)->message.find("whitespace"), std::string::npos);
}

TEST(MirrorTableTest, WithoutLeg) {
  MirrorTable t = MustParse(
      "0 8192 mirror userspace 4 LVM-x clustered-disk 253:2 1024 3 253:3 0 253:4 8 253:5 16 1 "
      "handle_errors");
  Expected<MirrorTable> r = WithoutLeg(t, "253:4");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Format(*r),
            "0 8192 mirror userspace 4 LVM-x clustered-disk 253:2 1024 2 253:3 0 253:5 16 1 "
            "handle_errors");
  // Removing the primary promotes the next leg.
  r = WithoutLeg(t, "253:3");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->legs.front(), (Leg{"253:4", 8}));
  EXPECT_EQ(r->log, t.log);
  // The input is untouched.
  EXPECT_EQ(t.legs.size(), 3u);
}

TEST(MirrorTableTest, WithoutLegRefusals) {
  MirrorTable t = MustParse("0 8192 mirror core 1 1024 3 /dev/a 0 /dev/b 0 /dev/c 0");
  Expected<MirrorTable> r = WithoutLeg(t, "/dev/zz");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no leg '/dev/zz'"), std::string::npos);
  EXPECT_NE(r.error().message.find("/dev/a, /dev/b, /dev/c"), std::string::npos);
  r = WithoutLeg(t, "/dev/b");
  ASSERT_TRUE(r.ok());
  Expected<MirrorTable> last = WithoutLeg(*r, "/dev/a");
  ASSERT_FALSE(last.ok());
  EXPECT_NE(last.error().message.find("would leave 1 leg"), std::string::npos);
  EXPECT_NE(last.error().message.find("linear"), std::string::npos);
}

TEST(MirrorTableTest, WithLeg) {
  MirrorTable t = MustParse("0 8192 mirror disk 2 /dev/log 1024 2 /dev/a 0 /dev/b 0");
  Expected<MirrorTable> r = WithLeg(t, "/dev/c", 64);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Format(*r), "0 8192 mirror disk 2 /dev/log 1024 3 /dev/a 0 /dev/b 0 /dev/c 64");
  Expected<MirrorTable> back = WithoutLeg(*r, "/dev/c");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, t);

  Expected<MirrorTable> dup = WithLeg(t, "/dev/b", 0);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("'/dev/b' is already leg 2"), std::string::npos);
  Expected<MirrorTable> log = WithLeg(t, "/dev/log", 0);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.error().message.find("is the log device"), std::string::npos);
  Expected<MirrorTable> bad = WithLeg(t, "sdc", 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("'sdc' is neither"), std::string::npos);
  Expected<MirrorTable> space = WithLeg(t, "/dev/c d", 0);
  ASSERT_FALSE(space.ok());
  EXPECT_NE(space.error().message.find("contains whitespace"), std::string::npos);

  MirrorTable full = t;
  for (int i = 3; i <= 9; ++i) {
    Expected<MirrorTable> next = WithLeg(full, "/dev/l" + std::to_string(i), 0);
    ASSERT_TRUE(next.ok()) << next.error().message;
    full = *next;
  }
  EXPECT_EQ(full.legs.size(), 9u);
  EXPECT_EQ(Validate(full), std::nullopt);
  Expected<MirrorTable> over = WithLeg(full, "/dev/l10", 0);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.error().message.find("at most 9"), std::string::npos);
}

// Mutated lines (words dropped, repeated, swapped or replaced) are either refused with a
// "mirror table: " message or accepted as a valid table that round-trips.
TEST(MirrorTableTest, MutatedLinesAreRefusedOrRoundTrip) {
  const std::vector<std::string> seeds = {
      "0 4724028 mirror cluster 5 disk my_uuid /dev/sda 1024 block_on_error 2 /dev/sdb 0 "
      "/dev/sdc 0",
      "0 4724028 mirror userspace 5 LVM-x integrated_flush clustered-disk 253:2 1024 2 253:3 "
      "0 253:4 0 2 handle_errors keep_log",
      "0 4096 mirror core 3 1024 nosync block_on_error 3 8:16 0 8:32 0 8:48 0",
  };
  const std::vector<std::string> pool = {
      "0",      "1",    "2",    "9",    "x",        "sync",          "nosync",
      "/dev/z", "8:99", "core", "disk", "keep_log", "handle_errors", "clustered-core"};
  std::mt19937 rng(12345);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::string> w = Words(seeds[static_cast<std::size_t>(iter) % seeds.size()]);
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !w.empty(); ++e) {
      const std::size_t i = rng() % w.size();
      switch (rng() % 4) {
        case 0:
          w.erase(w.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        case 1:
          w.insert(w.begin() + static_cast<std::ptrdiff_t>(i), w[i]);
          break;
        case 2:
          std::swap(w[i], w[rng() % w.size()]);
          break;
        default:
          w[i] = pool[rng() % pool.size()];
          break;
      }
    }
    std::string line;
    for (const std::string& word : w) line += (line.empty() ? "" : " ") + word;
    Expected<MirrorTable> t = Parse(line);
    if (!t.ok()) {
      ASSERT_EQ(t.error().message.rfind("mirror table: ", 0), 0u) << line;
      continue;
    }
    ++accepted;
    ASSERT_EQ(Validate(*t), std::nullopt) << line;
    Expected<MirrorTable> again = Parse(Format(*t));
    ASSERT_TRUE(again.ok()) << line;
    ASSERT_EQ(*again, *t) << line;
  }
  EXPECT_GT(accepted, 0);
}

TEST(MirrorTableTest, ExpectedAccessors) {
  Expected<int> v(3);
  EXPECT_TRUE(v.ok());
  EXPECT_TRUE(static_cast<bool>(v));
  EXPECT_EQ(*v, 3);
  Expected<int> e(TableError{"mirror table: x"});
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "mirror table: x");
}

TEST(MirrorTableTest, Names) {
  EXPECT_STREQ(LogKindName(LogKind::kCore), "core");
  EXPECT_STREQ(LogKindName(LogKind::kDisk), "disk");
  EXPECT_STREQ(LogKindName(LogKind::kUserspace), "userspace");
  EXPECT_STREQ(LogKindName(LogKind::kCluster), "cluster");
  EXPECT_STREQ(SyncModeName(SyncMode::kDefault), "");
  EXPECT_STREQ(SyncModeName(SyncMode::kSync), "sync");
  EXPECT_STREQ(SyncModeName(SyncMode::kNoSync), "nosync");
}

}  // namespace
}  // namespace clogd::dmtable
