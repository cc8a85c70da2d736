// E2eClusterTest's setup, teardown and waiting helpers. See e2e_fixture.h.
#include "tests/cluster/e2e_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <thread>

#include "tests/cluster/cluster_harness.h"

namespace clogd::cluster_test {

using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
constexpr const char* kClusterDir = "/run/clog-netns-e2e";
constexpr const char* kLockFile = "/run/clog-netns-e2e.lock";  // also taken by e2e_cluster_down
constexpr milliseconds kStartBound{30'000};
}  // namespace

std::string E2eClusterTest::error_;
int E2eClusterTest::lock_fd_ = -1;

std::vector<int> AllNodes() { return {1, 2, 3}; }

std::vector<int> Others(int node) {
  std::vector<int> out;
  for (int n : AllNodes()) {
    if (n != node) out.push_back(n);
  }
  return out;
}

void E2eClusterTest::SetUpTestSuite() {
  signal(SIGPIPE, SIG_IGN);
  setenv("CLOG_NETNS_DIR", kClusterDir, 1);
  setenv("CLOG_NETNS_PREFIX", "cloge", 1);
  error_.clear();
  if (geteuid() != 0) {
    error_ = "the e2e cluster test needs root (it creates network and mount namespaces)";
    return;
  }
  lock_fd_ = open(kLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  const auto deadline = std::chrono::steady_clock::now() + seconds(900);
  while (lock_fd_ >= 0 && flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      error_ = std::string("another e2e cluster test held ") + kLockFile + " for 15 minutes";
      return;
    }
    std::this_thread::sleep_for(milliseconds(200));  // waiting for the lock, bounded
  }
  (void)RunScript("down");  // leftovers of a killed run
  CommandResult up = RunScript("up");
  if (up.exit_code != 0) error_ = "scripts/cluster-netns.sh up failed:\n" + up.output;
}

void E2eClusterTest::TearDownTestSuite() {
  if (lock_fd_ < 0) return;
  CommandResult down = RunScript("down");
  EXPECT_EQ(down.exit_code, 0) << down.output;
  close(lock_fd_);
  lock_fd_ = -1;
}

void E2eClusterTest::SetUp() {
  ASSERT_TRUE(error_.empty()) << error_;
  CommandResult r = RunScript("restore");  // a previous test may have killed a node
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Sockets, pidfiles and the shared log device: a directory every node's mount namespace
  // sees (the nodes have their own /run), on a file system that takes O_DIRECT.
  char tmpl[] = "/tmp/clog-e2e.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
  dir_ = tmpl;
  const std::string image = dir_ + "/log.img";
  std::ofstream(image).close();
  std::filesystem::resize_file(image, 4u << 20);  // LVM's usual log size

  const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  const std::string tag = test.substr(0, 24) + "-" + std::to_string(getpid());
  uuids_ = {"LVM-e2e-disk-" + tag, "LVM-e2e-core-" + tag};
  const std::string len = std::to_string(kRegions * kRegionSectors);
  DriverConfig config;
  config.nodes = kNodes;
  config.regions = kRegions;
  config.seed = static_cast<uint64_t>(getpid());
  config.mirrors = {{uuids_[kDisk], len + " clustered-disk " + image + " 1024 nosync", false},
                    {uuids_[kCore], len + " clustered-core 1024 nosync", true}};
  driver_ = std::make_unique<ModelDriver>(config);
  clogd_ = std::make_unique<ClogdNodes>(dir_, kNodes);
  for (int n = 1; n <= kNodes; ++n) driver_->SetSocket(n, clogd_->KernelSocket(n));
}

void E2eClusterTest::TearDown() {
  if (HasFailure() && driver_ && clogd_) std::cerr << Diagnostics();
  driver_.reset();
  clogd_.reset();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

std::string E2eClusterTest::Diagnostics() {
  std::string out = "--- driver\n" + driver_->Summary();
  for (const auto& p : driver_->Problems()) out += "problem: " + p + "\n";
  for (int n = 1; n <= kNodes; ++n) {
    std::string log = clogd_->Output(n);
    if (log.size() > 6000) log = "...\n" + log.substr(log.size() - 6000);
    out += "--- clogd on node " + std::to_string(n) + " (last lines)\n" + log;
  }
  return out;
}

void E2eClusterTest::StartNode(int node, bool boot_kernel) {
  auto error = clogd_->Start(node, clogd_args_);
  ASSERT_FALSE(error) << *error;
  if (boot_kernel) {
    Status s = driver_->BootNode(node, milliseconds(15'000));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
}

void E2eClusterTest::StartCluster() {
  for (int n = 1; n <= kNodes; ++n) {
    StartNode(n, true);
    if (HasFatalFailure()) return;
  }
  Statuses last;
  const bool serving = RunUntilStatus(
      AllNodes(), [&](const Statuses& s) { return Serving(s, AllNodes(), AllNodes()); },
      kStartBound, &last);
  ASSERT_TRUE(serving) << "the three clogds did not all serve both logs within "
                       << kStartBound.count() << " ms; last status of node 1: "
                       << (last.size() > 1 ? last[1].dump() : "none");
}

void E2eClusterTest::RunScriptDriving(const std::string& args) {
  std::future<CommandResult> result = std::async(std::launch::async, RunScript, args);
  while (result.wait_for(milliseconds(0)) != std::future_status::ready) {
    driver_->RunFor(milliseconds(20));
  }
  CommandResult r = result.get();
  ASSERT_EQ(r.exit_code, 0) << "cluster-netns.sh " << args << ":\n" << r.output;
}

Statuses E2eClusterTest::StatusOf(const std::vector<int>& nodes, std::string* error) {
  Statuses out(size_t(kNodes + 1));
  for (int n : nodes) {
    auto s = clogd_->Status(n, error);
    if (s) out[size_t(n)] = *s;
  }
  return out;
}

bool E2eClusterTest::RunUntilStatus(const std::vector<int>& nodes,
                                    const std::function<bool(const Statuses&)>& done,
                                    milliseconds bound, Statuses* last, milliseconds every) {
  const auto end = std::chrono::steady_clock::now() + bound;
  for (;;) {
    Statuses s = StatusOf(nodes);
    const bool ok = done(s);
    if (last) *last = s;
    if (ok) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    driver_->RunFor(every);
  }
}

bool E2eClusterTest::Serving(const Statuses& s, const std::vector<int>& nodes,
                             const std::vector<int>& members) {
  for (int n : nodes) {
    for (size_t m = 0; m < 2; ++m) {
      const nlohmann::json log = ClogdNodes::LogOf(s[size_t(n)], uuids_[m]);
      if (log.is_null() || !log.value("serving", false)) return false;
      if (log["members"] != nlohmann::json(members)) return false;
    }
  }
  return true;
}

void E2eClusterTest::Settle(const std::vector<int>& nodes, milliseconds bound) {
  driver_->SetWorkloadAll(false);
  Statuses last;
  const bool settled = RunUntilStatus(
      nodes,
      [&](const Statuses& s) {
        if (!driver_->AllQuiet()) return false;
        for (int n : nodes) {
          for (size_t m = 0; m < 2; ++m) {
            const nlohmann::json log = ClogdNodes::LogOf(s[size_t(n)], uuids_[m]);
            if (log.is_null() || log["out_of_sync"] != 0 || log["pending_requests"] != 0 ||
                !log["recovering"].empty()) {
              return false;
            }
          }
        }
        return true;
      },
      bound, &last);
  std::string dump;
  for (int n : nodes) dump += "\nnode " + std::to_string(n) + ": " + last[size_t(n)].dump();
  ASSERT_TRUE(settled) << "not settled within " << bound.count()
                       << " ms (models quiet: " << driver_->AllQuiet() << ")" << dump;
}

void E2eClusterTest::ExpectStatusesAgree(const std::vector<int>& nodes) {
  auto key = [](const nlohmann::json& log) {
    return nlohmann::json{{"in_sync", log["in_sync"]},       {"out_of_sync", log["out_of_sync"]},
                          {"server", log["server"]},         {"members", log["members"]},
                          {"generation", log["generation"]}, {"serving", log["serving"]}};
  };
  Statuses last;
  const bool agree = RunUntilStatus(
      nodes,
      [&](const Statuses& s) {
        for (size_t m = 0; m < 2; ++m) {
          const nlohmann::json first = key(ClogdNodes::LogOf(s[size_t(nodes[0])], uuids_[m]));
          for (int n : nodes) {
            if (key(ClogdNodes::LogOf(s[size_t(n)], uuids_[m])) != first) return false;
          }
        }
        return true;
      },
      milliseconds(10'000), &last);
  for (size_t m = 0; m < 2 && !agree; ++m) {
    for (int n : nodes) {
      ADD_FAILURE() << TypeName(m) << " on node " << n << ": "
                    << key(ClogdNodes::LogOf(last[size_t(n)], uuids_[m])).dump();
    }
  }
}

void E2eClusterTest::ExpectDataIntact() {
  for (const auto& p : driver_->Problems()) ADD_FAILURE() << p;
  for (const auto& v : driver_->CheckAckedWrites()) ADD_FAILURE() << v;
  EXPECT_TRUE(driver_->AllQuiet()) << "the legs are compared when nothing is in flight";
  for (const auto& v : driver_->CheckQuiescent()) ADD_FAILURE() << v;
}

std::vector<uint64_t> E2eClusterTest::DirtyOf(const nlohmann::json& log, int of,
                                              std::string* source) {
  if (log.is_null()) return {};
  for (const auto& d : log["dirty"]) {
    if (d.value("node", 0) == of) {
      if (source) *source = d.value("source", "");
      return d["regions"].get<std::vector<uint64_t>>();
    }
  }
  if (source) *source = "absent";
  return {};
}

uint64_t E2eClusterTest::Counter(const nlohmann::json& status, const std::string& uuid,
                                 const std::string& name) {
  const nlohmann::json log = ClogdNodes::LogOf(status, uuid);
  if (log.is_null() || !log.contains("counters")) return 0;
  return log["counters"].value(name, uint64_t{0});
}

}  // namespace clogd::cluster_test
