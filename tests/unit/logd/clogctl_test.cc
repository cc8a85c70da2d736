// The clogctl program against a control server this test runs (the test's loop serves it
// while clogctl runs): status and nodes in text and JSON, --watch as plain lines when
// stdout is not a terminal, and a clear one-line error with exit 1 when the daemon cannot
// be reached or refuses the caller.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "control_loop.h"
#include "engine_fixture.h"
#include "logd/control_server.h"

extern char** environ;

namespace clogd::logd {
namespace {

using testing::CollectingSink;
using testing::ControlLoop;
using testing::CtrPayload;
using testing::Devices;
using testing::Req;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class ClogctlTest : public ::testing::Test {
 protected:
  ClogctlTest() {
    devices_.Add("/dev/mem0", 2 << 20);
    EngineOptions o;
    o.node_id = 2;
    engine_ = std::make_unique<LogEngine>(devices_.Opener(), o, sink_);
    const std::string len = std::to_string(64 * 1024);
    engine_->Submit(Req(DM_ULOG_CTR, 1, "LVM-ctl", CtrPayload(len + " disk /dev/mem0 1024")));
    engine_->Submit(Req(DM_ULOG_RESUME, 1, "LVM-ctl"));
    char dir[] = "/tmp/clogctl-test-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_ = dir_ + "/clogd.sock";
  }
  ~ClogctlTest() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Serve(uid_t allowed_uid = getuid()) {
    ControlOptions o;
    o.path = socket_;
    o.node = 2;
    o.watch = loop_.Watcher();
    o.allowed_uid = allowed_uid;
    server_ = std::make_unique<ControlServer>(*engine_, o);
    loop_.Serve(server_.get());
    ASSERT_TRUE(server_->Listen().ok());
  }

  // Runs clogctl with `args`, serving the control socket meanwhile (bounded: 20 s).
  Outcome Clogctl(std::vector<std::string> args) {
    args.insert(args.begin(), CLOGCTL_PATH);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2], err[2];
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, CLOGCTL_PATH, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    Outcome run;
    EXPECT_EQ(rc, 0) << "cannot run " << CLOGCTL_PATH;
    if (rc != 0) return run;
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    auto drain = [](int fd, std::string& to) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) to.append(buf, size_t(n));
    };
    int status = 0;
    const bool exited = loop_.RunUntil(
        [&] {
          drain(out[0], run.out);
          drain(err[0], run.err);
          return waitpid(pid, &status, WNOHANG) == pid;
        },
        20000);
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "clogctl did not finish within 20 s";
    }
    drain(out[0], run.out);
    drain(err[0], run.err);
    close(out[0]);
    close(err[0]);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return run;
  }

  void ExpectOneLineError(const Outcome& run, const std::string& needle) {
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(run.out.empty()) << run.out;
    EXPECT_EQ(Lines(run.err).size(), 1u) << run.err;
    EXPECT_EQ(run.err.rfind("clogctl: ", 0), 0u) << run.err;
    EXPECT_NE(run.err.find(needle), std::string::npos) << run.err;
  }

  Devices devices_;
  CollectingSink sink_;
  std::unique_ptr<LogEngine> engine_;
  std::string dir_, socket_;
  ControlLoop loop_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ClogctlTest, StatusAndNodesAsTextFitEightyColumns) {
  Serve();
  Outcome status = Clogctl({"status", "--socket", socket_});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("clogd on node 2: 1 log"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("LVM-ctl"), std::string::npos);
  EXPECT_NE(status.out.find("0 / 64 in sync (0.0%), 64 out of sync"), std::string::npos)
      << status.out;
  for (const auto& line : Lines(status.out)) EXPECT_LE(line.size(), 80u) << line;

  Outcome nodes = Clogctl({"nodes", "--socket", socket_});
  EXPECT_EQ(nodes.exit_code, 0) << nodes.err;
  EXPECT_NE(nodes.out.find("this node: 2"), std::string::npos) << nodes.out;
}

TEST_F(ClogctlTest, JsonIsTheDaemonsReply) {
  Serve();
  Outcome status = Clogctl({"status", "--json", "--socket", socket_});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  auto j = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << status.out;
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["logs"][0]["uuid"], "LVM-ctl");
  EXPECT_EQ(j["logs"][0]["out_of_sync"], 64);

  Outcome nodes = Clogctl({"nodes", "--json", "--socket", socket_});
  EXPECT_EQ(nodes.exit_code, 0) << nodes.err;
  auto n = nlohmann::json::parse(nodes.out, nullptr, false);
  ASSERT_FALSE(n.is_discarded()) << nodes.out;
  EXPECT_EQ(n["node"], 2);
}

TEST_F(ClogctlTest, WatchPrintsOneLinePerSampleWhenNotATerminal) {
  Serve();
  Outcome watch =
      Clogctl({"status", "--watch", "--count", "3", "--interval", "0.01", "--socket", socket_});
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  auto lines = Lines(watch.out);
  ASSERT_EQ(lines.size(), 3u) << watch.out;
  const std::regex sample(R"(^\d\d:\d\d:\d\d LVM-ctl \[-+\] +0\.0%  .*$)");
  for (const auto& line : lines) {
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    EXPECT_LE(line.size(), 80u);
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << "no terminal codes into a pipe";
  }
  EXPECT_NE(lines[2].find("0/s"), std::string::npos) << "no progress: rate 0" << lines[2];
}

TEST_F(ClogctlTest, NoDaemonIsAOneLineErrorAndExitOne) {
  ExpectOneLineError(Clogctl({"status", "--socket", dir_ + "/missing.sock"}),
                     "no control socket at " + dir_ + "/missing.sock: is clogd running?");
  // A socket file left by a daemon that died.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  ExpectOneLineError(Clogctl({"nodes", "--socket", socket_}), "clogd is not running");
  ExpectOneLineError(Clogctl({"status", "--watch", "--socket", socket_}), "clogd is not running");
}

TEST_F(ClogctlTest, ARefusedCallerIsAOneLineErrorAndExitOne) {
  Serve(getuid() + 1);
  ExpectOneLineError(Clogctl({"status", "--socket", socket_}), "permission denied");
}

}  // namespace
}  // namespace clogd::logd
