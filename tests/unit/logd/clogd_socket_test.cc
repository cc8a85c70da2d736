// The real clogd binary over its test kernel link (TEST_LINK.md): a driver serves a core
// and a disk log through it the way dm-raid1 does, clogd refuses SIGTERM while a log is
// active and exits 0 after the last DTR, SIGQUIT forces, a second clogd with the same
// pidfile is refused, and only one driver is served at a time.
#include <gtest/gtest.h>
#include <linux/dm-log-userspace.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "clogd_process.h"
#include "engine_fixture.h"
#include "link_driver.h"
#include "logd/device_path.h"
#include "logd/log_inspect.h"

namespace clogd::logd {
namespace {

using testing::AsS64;
using testing::AsString;
using testing::ClogdProcess;
using testing::CtrPayload;
using testing::LinkDriver;
using testing::Regions;
using testing::Req;

constexpr int kBoundMs = 20'000;  // generous: ASan builds on a shared 2-core machine
constexpr uint64_t kRegions = 4096;
constexpr uint32_t kRegionSize = 1024;
const std::string kLen = std::to_string(kRegions * kRegionSize);

class ClogdSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The socket and pidfile go to a short path (sun_path holds 108 bytes); the log image
    // to the build tree, whose file system takes O_DIRECT (tmpfs may not).
    char run_tmpl[] = "/tmp/clogd-test.XXXXXX";
    ASSERT_NE(mkdtemp(run_tmpl), nullptr) << std::strerror(errno);
    run_dir_ = run_tmpl;
    std::filesystem::create_directories(CLOG_TEST_SCRATCH);
    std::string data_tmpl = std::string(CLOG_TEST_SCRATCH) + "/clogd-XXXXXX";
    ASSERT_NE(mkdtemp(data_tmpl.data()), nullptr) << std::strerror(errno);
    data_dir_ = data_tmpl;
    socket_ = run_dir_ + "/kernel.sock";
    pidfile_ = run_dir_ + "/clogd.pid";
  }
  void TearDown() override {
    std::filesystem::remove_all(run_dir_);
    std::filesystem::remove_all(data_dir_);
  }

  // Starts clogd on the test socket and connects the driver.
  void StartClogd() {
    // No control socket: the default (/run/clogd.sock) is the host's, not a test's.
    ASSERT_TRUE(clogd_.Start(CLOGD_BINARY, {"-f", "--kernel-socket", socket_, "--pidfile", pidfile_,
                                            "--control-socket", ""}));
    ASSERT_TRUE(driver_.Connect(socket_, kBoundMs))
        << "clogd did not listen on " << socket_ << "; its output:\n"
        << clogd_.output();
  }

  UlogReply Call(uint32_t type, uint64_t luid, const std::string& uuid,
                 std::vector<uint8_t> payload = {}) {
    UlogRequest request = Req(type, luid, uuid, std::move(payload));
    auto reply = driver_.Call(request, kBoundMs);
    EXPECT_TRUE(reply.has_value()) << "no reply to " << RequestTypeName(type) << "; clogd said:\n"
                                   << clogd_.output();
    if (!reply) return UlogReply{};
    EXPECT_EQ(reply->luid, luid);
    EXPECT_EQ(reply->uuid, uuid);
    return *reply;
  }

  std::string MakeImage() {
    std::string path = data_dir_ + "/log.img";
    std::ofstream(path).close();
    std::filesystem::resize_file(path, 4u << 20);  // LVM's usual log size
    return path;
  }

  std::string run_dir_, data_dir_, socket_, pidfile_;
  ClogdProcess clogd_;
  LinkDriver driver_;
};

TEST_F(ClogdSocketTest, ServesACoreAndADiskLogLikeTheKernelAsks) {
  StartClogd();
  const std::string img = MakeImage();

  // A core log, "nosync": every region starts in sync.
  EXPECT_EQ(Call(DM_ULOG_CTR, 1, "LVM-core", CtrPayload(kLen + " core 1024 nosync")).error, 0);
  EXPECT_EQ(Call(DM_ULOG_RESUME, 1, "LVM-core").error, 0);
  EXPECT_EQ(AsS64(Call(DM_ULOG_GET_REGION_SIZE, 1, "LVM-core")), kRegionSize);
  EXPECT_EQ(Call(DM_ULOG_MARK_REGION, 1, "LVM-core", Regions({5, 9})).error, 0);
  EXPECT_EQ(Call(DM_ULOG_FLUSH, 1, "LVM-core").error, 0);
  EXPECT_EQ(AsS64(Call(DM_ULOG_IS_CLEAN, 1, "LVM-core", Regions({5}))), 0) << "marked";
  EXPECT_EQ(AsS64(Call(DM_ULOG_IS_CLEAN, 1, "LVM-core", Regions({6}))), 1);
  EXPECT_EQ(AsS64(Call(DM_ULOG_IN_SYNC, 1, "LVM-core", Regions({5}))), 1);
  EXPECT_EQ(AsString(Call(DM_ULOG_STATUS_INFO, 1, "LVM-core")), "1 core");

  // A disk log on a file: new, so out of sync; the CTR reply names the device.
  UlogReply ctr = Call(DM_ULOG_CTR, 2, "LVM-disk", CtrPayload(kLen + " disk " + img + " 1024"));
  EXPECT_EQ(ctr.error, 0) << clogd_.output();
  EXPECT_EQ(AsString(ctr), img);
  EXPECT_EQ(Call(DM_ULOG_RESUME, 2, "LVM-disk").error, 0);
  EXPECT_EQ(AsS64(Call(DM_ULOG_IN_SYNC, 2, "LVM-disk", Regions({3}))), 0);
  EXPECT_EQ(Call(DM_ULOG_MARK_REGION, 2, "LVM-disk", Regions({7, 4000})).error, 0);
  EXPECT_EQ(Call(DM_ULOG_FLUSH, 2, "LVM-disk").error, 0);
  EXPECT_EQ(AsString(Call(DM_ULOG_STATUS_INFO, 2, "LVM-disk")), "3 disk " + img + " A");

  // FLUSH was answered, so the marks are on the device: read it behind clogd's back.
  auto dev = OpenLogDevice(img);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  auto seen = InspectLog(**dev);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  ASSERT_EQ(seen->slots.size(), 1u);
  EXPECT_EQ(seen->slots[0].node_id, 1u);
  EXPECT_EQ(seen->slots[0].regions, (std::vector<region::RegionNo>{7, 4000}));

  // An unknown request type is answered (-EINVAL), never left to the 15 s re-send.
  EXPECT_EQ(Call(200, 2, "LVM-disk").error, -EINVAL);

  EXPECT_EQ(Call(DM_ULOG_DTR, 1, "LVM-core").error, 0);
  EXPECT_EQ(Call(DM_ULOG_DTR, 2, "LVM-disk").error, 0);
  clogd_.Signal(SIGTERM);
  EXPECT_EQ(clogd_.WaitExit(kBoundMs), 0) << clogd_.output();
}

TEST_F(ClogdSocketTest, SigtermIsRefusedWhileALogIsActiveAndAcceptedAfterDtr) {
  StartClogd();
  EXPECT_EQ(Call(DM_ULOG_CTR, 1, "LVM-core", CtrPayload(kLen + " core 1024")).error, 0);
  EXPECT_EQ(Call(DM_ULOG_RESUME, 1, "LVM-core").error, 0);

  clogd_.Signal(SIGTERM);
  ASSERT_TRUE(clogd_.WaitForOutput("refusing to exit: 1 logs active", kBoundMs)) << clogd_.output();
  // Still there, still serving.
  EXPECT_EQ(AsS64(Call(DM_ULOG_IN_SYNC, 1, "LVM-core", Regions({1}))), 0);
  EXPECT_TRUE(clogd_.running());

  EXPECT_EQ(Call(DM_ULOG_DTR, 1, "LVM-core").error, 0);
  clogd_.Signal(SIGTERM);
  EXPECT_EQ(clogd_.WaitExit(kBoundMs), 0) << clogd_.output();
  EXPECT_NE(clogd_.output().find("SIGTERM: exiting"), std::string::npos) << clogd_.output();
}

TEST_F(ClogdSocketTest, SigquitForcesAnExitWithLogsActive) {
  StartClogd();
  EXPECT_EQ(Call(DM_ULOG_CTR, 1, "LVM-core", CtrPayload(kLen + " core 1024")).error, 0);
  clogd_.Signal(SIGQUIT);
  EXPECT_EQ(clogd_.WaitExit(kBoundMs), 0) << clogd_.output();
  EXPECT_NE(clogd_.output().find("SIGQUIT: exiting with 1 logs active"), std::string::npos)
      << clogd_.output();
}

TEST_F(ClogdSocketTest, SecondClogdWithTheSamePidfileIsRefused) {
  StartClogd();
  ClogdProcess second;
  ASSERT_TRUE(second.Start(CLOGD_BINARY, {"-f", "--kernel-socket", run_dir_ + "/other.sock",
                                          "--pidfile", pidfile_, "--control-socket", ""}));
  EXPECT_EQ(second.WaitExit(kBoundMs), 1) << second.output();
  EXPECT_NE(second.output().find("holds " + pidfile_ + "; refusing to start"), std::string::npos)
      << second.output();
  // The first one is untouched.
  EXPECT_EQ(Call(DM_ULOG_CTR, 1, "LVM-core", CtrPayload(kLen + " core 1024")).error, 0);
  EXPECT_EQ(Call(DM_ULOG_DTR, 1, "LVM-core").error, 0);
}

TEST_F(ClogdSocketTest, OneDriverAtATimeAndLogsOutliveADisconnect) {
  StartClogd();
  EXPECT_EQ(Call(DM_ULOG_CTR, 1, "LVM-core", CtrPayload(kLen + " core 1024 nosync")).error, 0);
  EXPECT_EQ(Call(DM_ULOG_RESUME, 1, "LVM-core").error, 0);
  EXPECT_EQ(Call(DM_ULOG_MARK_REGION, 1, "LVM-core", Regions({3})).error, 0);

  LinkDriver intruder;
  ASSERT_TRUE(intruder.Connect(socket_, kBoundMs));
  EXPECT_TRUE(intruder.WaitForEof(kBoundMs)) << "a second driver must be closed at once";
  EXPECT_EQ(AsS64(Call(DM_ULOG_IS_CLEAN, 1, "LVM-core", Regions({3}))), 0);

  // The driver goes away (a kernel that went away) and comes back: the log is still there.
  driver_.Close();
  ASSERT_TRUE(clogd_.WaitForOutput("driver disconnected", kBoundMs)) << clogd_.output();
  ASSERT_TRUE(driver_.Connect(socket_, kBoundMs));
  EXPECT_EQ(AsS64(Call(DM_ULOG_IS_CLEAN, 1, "LVM-core", Regions({3}))), 0);
  EXPECT_EQ(Call(DM_ULOG_DTR, 1, "LVM-core").error, 0);
}

TEST_F(ClogdSocketTest, ProtocolErrorClosesTheConnection) {
  StartClogd();
  ASSERT_TRUE(driver_.SendKind('X', {1, 2, 3}));
  EXPECT_TRUE(driver_.WaitForEof(kBoundMs));
  EXPECT_TRUE(clogd_.WaitForOutput("unknown message kind", kBoundMs)) << clogd_.output();
}

}  // namespace
}  // namespace clogd::logd
