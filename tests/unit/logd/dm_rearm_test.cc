// Rearm through the device-mapper, against a fake device-mapper (this host has none):
// which devices use a log uuid, read from their table text; each is suspended noflush and
// resumed; a device suspended by someone else is left alone; a failed resume is retried;
// the calls run on the worker thread while the loop keeps serving (the kernel's
// PRESUSPEND must be answered for the suspend to return), and `done` comes back on the
// loop thread only after success.
#include "logd/dm_rearm.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "dmtable/dm_device.h"

namespace clogd::logd {
namespace {

using dmtable::DmTarget;
using dmtable::Done;
using dmtable::Expected;
using dmtable::TableError;

constexpr int kBoundMs = 10'000;

DmTarget Mirror(const std::string& params) { return DmTarget{0, 4724028, "mirror", params}; }

TEST(MirrorUsesLogTest, FindsTheLogUuidWhereTheKernelPrintsIt) {
  // LVM 2.02's clustered-disk form, and the kernel's own table output for a userspace
  // log (integrated_flush, a space before the leg count).
  EXPECT_TRUE(dmtable::MirrorUsesLog(
      Mirror("userspace 4 LVM-abc clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors"),
      "LVM-abc"));
  EXPECT_TRUE(dmtable::MirrorUsesLog(
      Mirror("userspace 5 LVM-abc integrated_flush clustered-core 1024  2 253:3 0 253:4 0"),
      "LVM-abc"));
  // The seed syntax served by our kmod.
  EXPECT_TRUE(dmtable::MirrorUsesLog(
      Mirror("cluster 5 disk my_uuid /dev/sda 1024 block_on_error 2 /dev/sdb 0 /dev/sdc 0"),
      "my_uuid"));
  EXPECT_TRUE(
      dmtable::MirrorUsesLog(Mirror("cluster 3 core u1 1024 2 /dev/sdb 0 /dev/sdc 0"), "u1"));
}

TEST(MirrorUsesLogTest, IgnoresOtherLogsAndTargets) {
  const std::string userspace = "userspace 4 LVM-abc clustered-disk 253:2 1024 2 253:3 0 253:4 0";
  EXPECT_FALSE(dmtable::MirrorUsesLog(Mirror(userspace), "LVM-ab")) << "whole words only";
  EXPECT_FALSE(dmtable::MirrorUsesLog(Mirror(userspace), ""));
  EXPECT_FALSE(dmtable::MirrorUsesLog(Mirror(userspace), "clustered-disk"));
  EXPECT_FALSE(dmtable::MirrorUsesLog(DmTarget{0, 8, "linear", userspace}, "LVM-abc"));
  // core and disk logs have no uuid: a word that happens to match is not one.
  EXPECT_FALSE(dmtable::MirrorUsesLog(Mirror("disk 2 253:2 1024 2 253:3 0 253:4 0"), "253:2"));
  EXPECT_FALSE(dmtable::MirrorUsesLog(Mirror("core 1 1024 2 253:3 0 253:4 0"), "1024"));
  EXPECT_FALSE(dmtable::MirrorUsesLog(Mirror("cluster 3 core"), "core"));
}

TEST(MirrorUsesLogTest, DevicesUsingLogLooksAtEveryTarget) {
  std::vector<dmtable::NamedTable> tables = {
      {"vg-plain", {DmTarget{0, 100, "linear", "8:16 0"}}},
      {"vg-m1",
       {Mirror("core 1 1024 2 8:1 0 8:2 0"),
        Mirror("userspace 4 LVM-x clustered-disk 253:2 1024 2 253:3 0 253:4 0")}},
      {"vg-m2", {Mirror("userspace 4 LVM-y clustered-core 1024 2 8:3 0 8:4 0")}},
      {"vg-m3", {Mirror("userspace 3 LVM-x clustered-core 1024 2 8:5 0 8:6 0")}},
  };
  EXPECT_EQ(dmtable::DevicesUsingLog(tables, "LVM-x"),
            (std::vector<std::string>{"vg-m1", "vg-m3"}));
  EXPECT_TRUE(dmtable::DevicesUsingLog(tables, "LVM-z").empty());
}

// A device-mapper in memory; records the calls in order, with the thread they ran on.
class FakeDm : public dmtable::DeviceMapper {
 public:
  struct Dev {
    std::vector<DmTarget> table;
    bool suspended = false;
  };

  Expected<std::vector<std::string>> ListDevices() override {
    std::lock_guard<std::mutex> l(mu);
    std::vector<std::string> out;
    for (const auto& [name, d] : devs) out.push_back(name);
    return out;
  }
  Expected<dmtable::DmInfo> Info(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu);
    dmtable::DmInfo info;
    info.name = name;
    info.suspended = devs.at(name).suspended;
    info.live_table = true;
    return info;
  }
  Expected<std::vector<DmTarget>> Table(const std::string& name) override {
    std::lock_guard<std::mutex> l(mu);
    return devs.at(name).table;
  }
  Expected<std::vector<DmTarget>> Status(const std::string&) override {
    return TableError{"not faked"};
  }
  Expected<Done> Suspend(const std::string& name, bool noflush) override {
    Record(std::string(noflush ? "suspend-noflush " : "suspend ") + name);
    if (on_suspend) on_suspend();
    std::lock_guard<std::mutex> l(mu);
    if (fail_suspends > 0) {
      --fail_suspends;
      return TableError{"device-mapper: suspend " + name + " failed: injected"};
    }
    devs.at(name).suspended = true;
    return Done{};
  }
  Expected<Done> Load(const std::string&, const std::vector<DmTarget>&) override {
    return TableError{"not faked"};
  }
  Expected<Done> Clear(const std::string&) override { return TableError{"not faked"}; }
  Expected<Done> Resume(const std::string& name) override {
    Record("resume " + name);
    std::lock_guard<std::mutex> l(mu);
    if (fail_resumes > 0) {
      --fail_resumes;
      return TableError{"device-mapper: resume " + name + " failed: injected"};
    }
    devs.at(name).suspended = false;
    return Done{};
  }

  void Record(const std::string& call) {
    std::lock_guard<std::mutex> l(mu);
    calls.push_back(call);
    threads.push_back(std::this_thread::get_id());
  }
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> l(mu);
    return calls;
  }

  std::mutex mu;
  std::map<std::string, Dev> devs;
  std::vector<std::string> calls;
  std::vector<std::thread::id> threads;
  int fail_suspends = 0;
  int fail_resumes = 0;
  std::function<void()> on_suspend;  // runs on the calling thread, outside mu
};

void AddMirrors(FakeDm& dm) {
  dm.devs["vg-a"].table = {Mirror("userspace 4 LVM-x clustered-disk 253:2 1024 2 8:1 0 8:2 0")};
  dm.devs["vg-b"].table = {Mirror("userspace 4 LVM-y clustered-disk 253:5 1024 2 8:3 0 8:4 0")};
  dm.devs["vg-c"].table = {Mirror("userspace 3 LVM-x clustered-core 1024 2 8:5 0 8:6 0")};
}

TEST(RearmDevicesUsingTest, SuspendsNoflushThenResumesEachDeviceOfTheLog) {
  FakeDm dm;
  AddMirrors(dm);
  std::vector<std::string> left;
  RearmOutcome out = RearmDevicesUsing(dm, "LVM-x", left);
  EXPECT_TRUE(out.problems.empty());
  EXPECT_EQ(out.rearmed, (std::vector<std::string>{"vg-a", "vg-c"}));
  EXPECT_EQ(dm.Calls(), (std::vector<std::string>{"suspend-noflush vg-a", "resume vg-a",
                                                  "suspend-noflush vg-c", "resume vg-c"}));
  EXPECT_FALSE(dm.devs["vg-a"].suspended);
}

TEST(RearmDevicesUsingTest, LeavesADeviceSuspendedBySomeoneElseAlone) {
  FakeDm dm;
  AddMirrors(dm);
  dm.devs["vg-a"].suspended = true;  // e.g. LVM is reloading its table
  std::vector<std::string> left;
  RearmOutcome out = RearmDevicesUsing(dm, "LVM-x", left);
  EXPECT_TRUE(out.problems.empty());
  EXPECT_EQ(out.skipped, (std::vector<std::string>{"vg-a"}));
  EXPECT_EQ(dm.Calls(), (std::vector<std::string>{"suspend-noflush vg-c", "resume vg-c"}));
  EXPECT_TRUE(dm.devs["vg-a"].suspended) << "not ours to resume";
}

TEST(RearmDevicesUsingTest, AFailedResumeIsRetriedFirstNextTime) {
  FakeDm dm;
  AddMirrors(dm);
  dm.fail_resumes = 1;
  std::vector<std::string> left;
  RearmOutcome first = RearmDevicesUsing(dm, "LVM-y", left);
  ASSERT_EQ(first.problems.size(), 1u);
  EXPECT_NE(first.problems[0].find("resume vg-b failed"), std::string::npos);
  EXPECT_EQ(left, (std::vector<std::string>{"vg-b"}));
  EXPECT_TRUE(dm.devs["vg-b"].suspended);

  RearmOutcome second = RearmDevicesUsing(dm, "LVM-x", left);
  EXPECT_TRUE(second.problems.empty());
  EXPECT_TRUE(left.empty());
  EXPECT_FALSE(dm.devs["vg-b"].suspended);
  std::vector<std::string> calls = dm.Calls();
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls[2], "resume vg-b") << "the hanging device comes first";
}

class DmRearmerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(loop_.Open().ok()); }
  DmRearmer& Make() {
    auto fake = std::make_unique<FakeDm>();
    dm_ = fake.get();
    AddMirrors(*dm_);
    rearmer_.emplace(loop_, std::move(fake),
                     [this](Severity, const std::string& m) { log_ += m + "\n"; });
    return *rearmer_;
  }
  void TearDown() override { rearmer_.reset(); }

  EventLoop loop_;
  FakeDm* dm_ = nullptr;
  std::optional<DmRearmer> rearmer_;
  std::string log_;
};

TEST_F(DmRearmerTest, TheLoopKeepsServingWhileTheSuspendBlocks) {
  DmRearmer& rearmer = Make();
  // Like the kernel: the suspend returns only after the daemon answered PRESUSPEND, which
  // only the loop thread can do (here: a timer on the loop).
  std::promise<void> presuspend_answered;
  std::shared_future<void> answered = presuspend_answered.get_future().share();
  bool suspend_returned_in_time = true;
  dm_->on_suspend = [&] {
    if (answered.wait_for(std::chrono::milliseconds(kBoundMs)) != std::future_status::ready) {
      suspend_returned_in_time = false;
    }
  };
  loop_.Schedule(1'000, [&] { presuspend_answered.set_value(); });
  std::thread::id done_thread;
  bool done = false;
  rearmer.Rearm("LVM-y", [&] {
    done = true;
    done_thread = std::this_thread::get_id();
  });
  ASSERT_TRUE(loop_.RunUntil([&] { return done; }, 2 * kBoundMs));
  EXPECT_TRUE(suspend_returned_in_time);
  EXPECT_EQ(done_thread, std::this_thread::get_id()) << "done runs on the loop thread";
  std::lock_guard<std::mutex> l(dm_->mu);
  ASSERT_FALSE(dm_->threads.empty());
  EXPECT_NE(dm_->threads[0], std::this_thread::get_id()) << "device-mapper calls off the loop";
  EXPECT_NE(log_.find("suspended (noflush) and resumed in "), std::string::npos) << log_;
  EXPECT_NE(log_.find(" ms: vg-b"), std::string::npos) << log_;
}

TEST_F(DmRearmerTest, AFailedRearmIsRetriedAndDoneOnlyAfterSuccess) {
  DmRearmer& rearmer = Make();
  rearmer.set_retry_delay_us(1'000);
  dm_->fail_suspends = 2;
  int done = 0;
  rearmer.Rearm("LVM-y", [&] { ++done; });
  ASSERT_TRUE(loop_.RunUntil([&] { return done > 0; }, kBoundMs)) << log_;
  EXPECT_EQ(done, 1);
  EXPECT_EQ(dm_->Calls(), (std::vector<std::string>{"suspend-noflush vg-b", "suspend-noflush vg-b",
                                                    "suspend-noflush vg-b", "resume vg-b"}));
  EXPECT_NE(log_.find("failed (retrying"), std::string::npos) << log_;
}

TEST_F(DmRearmerTest, ALogNoLocalDeviceUsesIsDoneAtOnce) {
  DmRearmer& rearmer = Make();
  bool done = false;
  rearmer.Rearm("LVM-none", [&] { done = true; });
  ASSERT_TRUE(loop_.RunUntil([&] { return done; }, kBoundMs));
  EXPECT_TRUE(dm_->Calls().empty());
  EXPECT_NE(log_.find("no local device uses it"), std::string::npos) << log_;
}

}  // namespace
}  // namespace clogd::logd
