// The real clogd with its control socket, asked by the real clogctl: logs driven over the
// test kernel link (TEST_LINK.md) show up in `clogctl status` with the marks the kernel
// made; the socket is 0600 and gone after a clean exit; a control socket that cannot be
// created is logged and the kernel is served anyway.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/dm-log-userspace.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "clogd_process.h"
#include "engine_fixture.h"
#include "link_driver.h"

extern char** environ;

namespace clogd::logd {
namespace {

using testing::ClogdProcess;
using testing::CtrPayload;
using testing::LinkDriver;
using testing::Regions;
using testing::Req;

constexpr int kBoundMs = 20'000;  // generous: ASan builds on a shared 2-core machine
constexpr uint64_t kRegions = 4096;
const std::string kLen = std::to_string(kRegions * 1024);

struct ToolRun {
  int exit_code = -1;
  std::string out, err;
};

// Runs `args` with stdout and stderr captured; kills it after bound_ms.
ToolRun RunTool(std::vector<std::string> args, int bound_ms) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2], err[2];
  ToolRun run;
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return run;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  if (rc == 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms);
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    std::string* to[2] = {&run.out, &run.err};
    int open_fds = 2;
    while (open_fds > 0 && std::chrono::steady_clock::now() < deadline) {
      if (poll(fds, 2, 100) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        char buf[4096];
        const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
          to[i]->append(buf, size_t(n));
        } else {
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
    if (open_fds > 0) kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  close(out[0]);
  close(err[0]);
  return run;
}

class ClogdControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char run_tmpl[] = "/tmp/clogd-ctl.XXXXXX";
    ASSERT_NE(mkdtemp(run_tmpl), nullptr) << std::strerror(errno);
    run_dir_ = run_tmpl;
    std::filesystem::create_directories(CLOG_TEST_SCRATCH);
    std::string data_tmpl = std::string(CLOG_TEST_SCRATCH) + "/clogd-ctl-XXXXXX";
    ASSERT_NE(mkdtemp(data_tmpl.data()), nullptr) << std::strerror(errno);
    data_dir_ = data_tmpl;
    control_ = run_dir_ + "/control.sock";
  }
  void TearDown() override {
    std::filesystem::remove_all(run_dir_);
    std::filesystem::remove_all(data_dir_);
  }

  void StartClogd(const std::string& control) {
    const std::string kernel = run_dir_ + "/kernel.sock";
    ASSERT_TRUE(clogd_.Start(CLOGD_BINARY, {"-f", "--kernel-socket", kernel, "--pidfile",
                                            run_dir_ + "/clogd.pid", "--control-socket", control}));
    ASSERT_TRUE(driver_.Connect(kernel, kBoundMs)) << clogd_.output();
  }
  int Call(uint32_t type, uint64_t luid, const std::string& uuid,
           std::vector<uint8_t> payload = {}) {
    auto reply = driver_.Call(Req(type, luid, uuid, std::move(payload)), kBoundMs);
    EXPECT_TRUE(reply.has_value()) << RequestTypeName(type) << "\n" << clogd_.output();
    return reply ? reply->error : -1;
  }

  std::string run_dir_, data_dir_, control_;
  ClogdProcess clogd_;
  LinkDriver driver_;
};

TEST_F(ClogdControlTest, StatusShowsTheLogsTheKernelDrove) {
  StartClogd(control_);
  const std::string img = data_dir_ + "/log.img";
  std::ofstream(img).close();
  std::filesystem::resize_file(img, 4u << 20);
  // Once clogd answered, its loop runs, and the control socket was created before it.
  ASSERT_EQ(Call(DM_ULOG_CTR, 1, "LVM-core", CtrPayload(kLen + " core 1024 nosync")), 0);
  ASSERT_EQ(Call(DM_ULOG_RESUME, 1, "LVM-core"), 0);
  ASSERT_EQ(Call(DM_ULOG_CTR, 2, "LVM-disk", CtrPayload(kLen + " disk " + img + " 1024")), 0);
  ASSERT_EQ(Call(DM_ULOG_RESUME, 2, "LVM-disk"), 0);
  ASSERT_EQ(Call(DM_ULOG_MARK_REGION, 2, "LVM-disk", Regions({7, 4000})), 0);
  ASSERT_EQ(Call(DM_ULOG_FLUSH, 2, "LVM-disk"), 0);

  struct stat st {};
  ASSERT_EQ(lstat(control_.c_str(), &st), 0) << clogd_.output();
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ToolRun json = RunTool({CLOGCTL_PATH, "status", "--json", "--socket", control_}, kBoundMs);
  ASSERT_EQ(json.exit_code, 0) << json.err << clogd_.output();
  auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  EXPECT_EQ(j["node"], 1);
  ASSERT_EQ(j["logs"].size(), 2u) << json.out;
  const auto& core = j["logs"][0];
  const auto& disk = j["logs"][1];
  EXPECT_EQ(core["uuid"], "LVM-core");
  EXPECT_EQ(core["in_sync"], kRegions);
  EXPECT_EQ(disk["uuid"], "LVM-disk");
  EXPECT_EQ(disk["device"], img);
  EXPECT_EQ(disk["out_of_sync"], kRegions) << "a new disk log starts out of sync";
  ASSERT_EQ(disk["dirty"].size(), 1u) << json.out;
  EXPECT_EQ(disk["dirty"][0]["node"], 1);
  EXPECT_EQ(disk["dirty"][0]["regions"], nlohmann::json::array({7, 4000}));

  ToolRun text = RunTool({CLOGCTL_PATH, "status", "--socket", control_}, kBoundMs);
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("node 1 (state): 2 regions: 7 4000"), std::string::npos) << text.out;
  ToolRun nodes = RunTool({CLOGCTL_PATH, "nodes", "--socket", control_}, kBoundMs);
  EXPECT_EQ(nodes.exit_code, 0) << nodes.err;
  EXPECT_NE(nodes.out.find("this node: 1"), std::string::npos) << nodes.out;

  EXPECT_EQ(Call(DM_ULOG_DTR, 1, "LVM-core"), 0);
  EXPECT_EQ(Call(DM_ULOG_DTR, 2, "LVM-disk"), 0);
  clogd_.Signal(SIGTERM);
  EXPECT_EQ(clogd_.WaitExit(kBoundMs), 0) << clogd_.output();
  EXPECT_FALSE(std::filesystem::exists(control_)) << "removed at exit";
  ToolRun gone = RunTool({CLOGCTL_PATH, "status", "--socket", control_}, kBoundMs);
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("is clogd running?"), std::string::npos) << gone.err;
}

TEST_F(ClogdControlTest, AControlSocketThatCannotBeCreatedDoesNotStopTheKernelService) {
  const std::string not_a_socket = run_dir_ + "/plain-file";
  std::ofstream(not_a_socket).close();
  StartClogd(not_a_socket);
  EXPECT_EQ(Call(DM_ULOG_CTR, 1, "LVM-core", CtrPayload(kLen + " core 1024")), 0);
  EXPECT_TRUE(clogd_.WaitForOutput("is not a socket", kBoundMs)) << clogd_.output();
  EXPECT_TRUE(std::filesystem::is_regular_file(not_a_socket)) << "left alone";
  EXPECT_EQ(Call(DM_ULOG_DTR, 1, "LVM-core"), 0);
  clogd_.Signal(SIGTERM);
  EXPECT_EQ(clogd_.WaitExit(kBoundMs), 0) << clogd_.output();
}

}  // namespace
}  // namespace clogd::logd
