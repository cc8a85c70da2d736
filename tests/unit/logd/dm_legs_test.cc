// Leg removal through the device-mapper, against an in-memory device-mapper (this host has
// none): the legs' health read from a mirror status line, the table without the leg loaded
// after a noflush suspend, resumed on commit, cleared on abort, a bad table or a failed load
// leaving the mirror as it was, and a reload a killed clogd left behind dropped at start.
#include "logd/dm_legs.h"

#include <gtest/gtest.h>

#include <map>

namespace clogd::logd {
namespace {

using dmtable::DmTarget;
using dmtable::Done;
using dmtable::Expected;
using dmtable::TableError;

constexpr const char* kThreeLegs =
    "userspace 4 LVM-x clustered-disk 253:2 1024 3 253:3 0 253:4 0 253:5 0 1 handle_errors";

class MemDm : public dmtable::DeviceMapper {
 public:
  struct Dev {
    std::vector<DmTarget> live, inactive;
    std::string status;
    bool suspended = false;
  };
  Expected<std::vector<std::string>> ListDevices() override {
    std::vector<std::string> out;
    for (const auto& [name, d] : devs) out.push_back(name);
    return out;
  }
  Expected<dmtable::DmInfo> Info(const std::string& name) override {
    dmtable::DmInfo info;
    info.name = name;
    info.suspended = devs.at(name).suspended;
    info.live_table = true;
    info.inactive_table = !devs.at(name).inactive.empty();
    return info;
  }
  Expected<std::vector<DmTarget>> Table(const std::string& name) override {
    return devs.at(name).live;
  }
  Expected<std::vector<DmTarget>> Status(const std::string& name) override {
    const Dev& d = devs.at(name);
    return std::vector<DmTarget>{{0, d.live[0].length, "mirror", d.status}};
  }
  Expected<Done> Suspend(const std::string& name, bool noflush) override {
    calls.push_back((noflush ? "suspend-noflush " : "suspend ") + name);
    devs.at(name).suspended = true;
    return Done{};
  }
  Expected<Done> Load(const std::string& name, const std::vector<DmTarget>& table) override {
    calls.push_back("load " + name + ": " + table[0].params);
    if (fail_load) return TableError{"device-mapper: reload ioctl on " + name + " failed"};
    devs.at(name).inactive = table;
    return Done{};
  }
  Expected<Done> Resume(const std::string& name) override {
    calls.push_back("resume " + name);
    Dev& d = devs.at(name);
    if (!d.inactive.empty()) d.live = std::move(d.inactive);
    d.inactive.clear();
    d.suspended = false;
    return Done{};
  }
  Expected<Done> Clear(const std::string& name) override {
    calls.push_back("clear " + name);
    devs.at(name).inactive.clear();
    return Done{};
  }

  std::map<std::string, Dev> devs;
  std::vector<std::string> calls;
  bool fail_load = false;
};

MemDm ThreeLegMirror(const std::string& health) {
  MemDm dm;
  dm.devs["vg-plain"].live = {{0, 100, "linear", "8:16 0"}};
  dm.devs["vg-plain"].status = "";
  MemDm::Dev& m = dm.devs["vg-mirror"];
  m.live = {{0, 8192, "mirror", kThreeLegs}};
  m.status = "3 253:3 253:4 253:5 7/8 1 " + health + " 3 clustered-disk 253:2 A";
  return dm;
}

TEST(MirrorHealthTest, ReadsOneLetterPerLeg) {
  auto h = dmtable::MirrorHealth("2 253:3 253:4 12/12 1 AD 3 clustered-disk 253:2 A");
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(*h, "AD");
  for (const char* bad : {"", "x 253:3 1/1 1 A", "2 253:3 253:4 12/12 1 A 1 core",
                          "2 253:3 253:4 12 1 AA", "2 253:3 253:4 12/12 0 AA"}) {
    auto b = dmtable::MirrorHealth(bad);
    EXPECT_FALSE(b.ok()) << "'" << bad << "'";
  }
}

LegChange Removal(uint32_t leg, uint32_t legs) { return LegChange{legs, leg, "", 0}; }

TEST(DmLegsTest, ReadLegsFindsTheMirrorOfTheLogAndItsFailedLegs) {
  MemDm dm = ThreeLegMirror("ADA");
  auto legs = ReadLegs(dm, "LVM-x");
  ASSERT_TRUE(legs.ok()) << legs.error().message;
  EXPECT_EQ(legs->device, "vg-mirror");
  EXPECT_EQ(legs->legs, 3u);
  EXPECT_EQ(legs->failed, (std::vector<uint32_t>{1}));
  auto none = ReadLegs(dm, "LVM-y");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "no device-mapper device has a mirror using log LVM-y");
}

TEST(DmLegsTest, PrepareLoadsTheTableWithoutTheLegThenCommitResumesIt) {
  MemDm dm = ThreeLegMirror("ADA");
  auto device = PrepareLegChange(dm, "LVM-x", Removal(1, 3));
  ASSERT_TRUE(device.ok()) << device.error().message;
  EXPECT_EQ(*device, "vg-mirror");
  const std::vector<std::string> prepared = {
      "suspend-noflush vg-mirror",
      "load vg-mirror: userspace 4 LVM-x clustered-disk 253:2 1024 2 253:3 0 253:5 0 1 "
      "handle_errors"};
  EXPECT_EQ(dm.calls, prepared);
  EXPECT_TRUE(dm.devs["vg-mirror"].suspended);
  ASSERT_TRUE(FinishLegChange(dm, "LVM-x", /*commit=*/true).ok());
  EXPECT_EQ(dm.calls.back(), "resume vg-mirror");
  EXPECT_FALSE(dm.devs["vg-mirror"].suspended);
  EXPECT_EQ(dm.devs["vg-mirror"].live[0].params,
            "userspace 4 LVM-x clustered-disk 253:2 1024 2 253:3 0 253:5 0 1 handle_errors");
}

TEST(DmLegsTest, AbortClearsTheLoadedTableAndResumesTheOld) {
  MemDm dm = ThreeLegMirror("ADA");
  ASSERT_TRUE(PrepareLegChange(dm, "LVM-x", Removal(1, 3)).ok());
  ASSERT_TRUE(FinishLegChange(dm, "LVM-x", /*commit=*/false).ok());
  EXPECT_EQ(dm.calls[2], "clear vg-mirror");
  EXPECT_EQ(dm.calls[3], "resume vg-mirror");
  EXPECT_EQ(dm.devs["vg-mirror"].live[0].params, kThreeLegs);
  EXPECT_FALSE(dm.devs["vg-mirror"].suspended);
}

TEST(DmLegsTest, AWrongLegCountOrAFailedLoadLeavesTheMirrorAsItWas) {
  MemDm dm = ThreeLegMirror("ADA");
  auto wrong = PrepareLegChange(dm, "LVM-x", Removal(1, 4));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().message, "vg-mirror has 3 legs, the change was proposed for 4");
  EXPECT_TRUE(dm.calls.empty()) << "nothing is suspended for a table that does not match";

  dm.fail_load = true;
  auto failed = PrepareLegChange(dm, "LVM-x", Removal(1, 3));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "device-mapper: reload ioctl on vg-mirror failed");
  EXPECT_EQ(dm.calls.back(), "resume vg-mirror");
  EXPECT_FALSE(dm.devs["vg-mirror"].suspended);
  EXPECT_EQ(dm.devs["vg-mirror"].live[0].params, kThreeLegs);
}

TEST(DmLegsTest, AReplacementDropsTheLegAndAppendsTheNewOneLast) {
  MemDm dm = ThreeLegMirror("DAA");  // the first leg, the resync source, failed
  ASSERT_TRUE(PrepareLegChange(dm, "LVM-x", LegChange{3, 0, "253:9", 128}).ok());
  EXPECT_EQ(dm.calls.back(),
            "load vg-mirror: userspace 4 LVM-x clustered-disk 253:2 1024 3 253:4 0 253:5 0 "
            "253:9 128 1 handle_errors");
  ASSERT_TRUE(FinishLegChange(dm, "LVM-x", /*commit=*/true).ok());
  EXPECT_FALSE(dm.devs["vg-mirror"].suspended);
}

TEST(DmLegsTest, ALegCanReplaceItselfAndATwoLegMirrorKeepsTwo) {
  MemDm dm = ThreeLegMirror("AAA");
  ASSERT_TRUE(PrepareLegChange(dm, "LVM-x", Removal(2, 3)).ok());
  ASSERT_TRUE(FinishLegChange(dm, "LVM-x", /*commit=*/true).ok());
  // A leg that came back after a transient failure is put back as a new (resynced) leg.
  ASSERT_TRUE(PrepareLegChange(dm, "LVM-x", LegChange{2, 1, "253:4", 0}).ok());
  ASSERT_TRUE(FinishLegChange(dm, "LVM-x", /*commit=*/true).ok());
  EXPECT_EQ(dm.devs["vg-mirror"].live[0].params,
            "userspace 4 LVM-x clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors");
}

TEST(DmLegsTest, ABadNewLegIsRefusedBeforeAnythingIsSuspended) {
  MemDm dm = ThreeLegMirror("AAA");
  struct Case {
    LegChange change;
    std::string error;
  };
  const std::vector<Case> cases = {
      {LegChange{3, std::nullopt, "253:5", 0},
       "vg-mirror: mirror table: device '253:5' is already leg 3"},
      {LegChange{3, std::nullopt, "253:2", 0},
       "vg-mirror: mirror table: device '253:2' is the log device"},
      {LegChange{3, std::nullopt, "/nonexistent/leg", 0},
       "new leg /nonexistent/leg: No such file or directory"},
      {LegChange{3, std::nullopt, "/dev/null", 0}, "new leg /dev/null is not a block device"},
  };
  for (const Case& c : cases) {
    auto r = PrepareLegChange(dm, "LVM-x", c.change);
    ASSERT_FALSE(r.ok()) << c.change.add_device;
    EXPECT_EQ(r.error().message, c.error);
  }
  EXPECT_TRUE(dm.calls.empty());
}

TEST(DmLegsTest, ALeftoverReloadIsDroppedAtStartAndOthersAreLeftAlone) {
  MemDm dm = ThreeLegMirror("ADA");
  ASSERT_TRUE(PrepareLegChange(dm, "LVM-x", Removal(1, 3)).ok());  // then clogd was killed
  // Someone else's suspended reload of a plain device is not ours to touch.
  dm.devs["vg-plain"].suspended = true;
  dm.devs["vg-plain"].inactive = {{0, 200, "linear", "8:16 0"}};
  std::vector<std::string> problems;
  EXPECT_EQ(DropLeftoverReloads(dm, problems), (std::vector<std::string>{"vg-mirror"}));
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(dm.devs["vg-mirror"].live[0].params, kThreeLegs);
  EXPECT_FALSE(dm.devs["vg-mirror"].suspended);
  EXPECT_TRUE(dm.devs["vg-plain"].suspended);
}

}  // namespace
}  // namespace clogd::logd
