// RequestRecord: the last kernel seq survives the process that noted it, a fresh record
// releases nothing, a foreign file is refused and left alone, the release window wraps.
#include "logd/request_record.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace clogd::logd {
namespace {

class RequestRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clog-request-record-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/clogd.seq";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string path_;
};

TEST_F(RequestRecordTest, AFreshRecordHasNoPreviousRequest) {
  auto record = RequestRecord::Open(path_);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_FALSE(record->previous_last().has_value());
  EXPECT_EQ(std::filesystem::file_size(path_), 16u);
}

TEST_F(RequestRecordTest, TheLastSeqOutlivesAProcessKilledWithoutCleanup) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto record = RequestRecord::Open(path_);
    if (!record.ok()) _exit(2);
    record->Note(41);
    record->Note(42);
    // Killed: no destructor, no msync; the shared mapping's page holds the stores.
    raise(SIGKILL);
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited with " << WEXITSTATUS(status);

  auto restarted = RequestRecord::Open(path_);
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  ASSERT_TRUE(restarted->previous_last().has_value());
  EXPECT_EQ(*restarted->previous_last(), 42u);
}

TEST_F(RequestRecordTest, AProcessThatTookNoRequestLeavesNothingToRelease) {
  {
    auto first = RequestRecord::Open(path_);
    ASSERT_TRUE(first.ok());
    first->Note(7);
  }
  {
    auto second = RequestRecord::Open(path_);  // took nothing before it went
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->previous_last(), std::optional<uint32_t>(7));
  }
  auto third = RequestRecord::Open(path_);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->previous_last().has_value());
}

TEST_F(RequestRecordTest, AForeignFileIsRefusedByNameAndLeftAsItWas) {
  {
    std::ofstream out(path_);
    out << "not a record, but somebody's file";
  }
  auto record = RequestRecord::Open(path_);
  ASSERT_FALSE(record.ok());
  EXPECT_NE(record.status().message().find(path_), std::string::npos) << record.status().message();
  EXPECT_NE(record.status().message().find("not a clogd request record"), std::string::npos);
  std::ifstream in(path_);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "not a record, but somebody's file");
}

TEST_F(RequestRecordTest, ARecordOfTheRightSizeWithAnotherMagicIsRefused) {
  {
    std::ofstream out(path_, std::ios::binary);
    out << std::string(16, 'x');
  }
  auto record = RequestRecord::Open(path_);
  ASSERT_FALSE(record.ok());
  EXPECT_EQ(record.status().code(), Errc::kCorrupt);
}

TEST_F(RequestRecordTest, TheReleaseWindowSurroundsTheLastSeqAndWraps) {
  auto seqs = RequestRecord::SeqsToRelease(1000);
  ASSERT_EQ(seqs.size(), RequestRecord::kReleaseBehind + 1 + RequestRecord::kReleaseAhead);
  // Highest first (request_record.h says why).
  EXPECT_EQ(seqs.front(), 1000 + RequestRecord::kReleaseAhead);
  EXPECT_EQ(seqs.back(), 1000 - RequestRecord::kReleaseBehind);
  EXPECT_TRUE(std::is_sorted(seqs.rbegin(), seqs.rend()));
  EXPECT_NE(std::find(seqs.begin(), seqs.end(), 1000u), seqs.end());

  auto wrapped = RequestRecord::SeqsToRelease(3);  // the kernel's u32 counter wraps
  EXPECT_EQ(wrapped.back(), uint32_t{3} - RequestRecord::kReleaseBehind);
  EXPECT_NE(std::find(wrapped.begin(), wrapped.end(), 0u), wrapped.end());
  EXPECT_NE(std::find(wrapped.begin(), wrapped.end(), 0xffffffffu), wrapped.end());
}

TEST(RequestRecordPath, SitsBesideThePidfile) {
  EXPECT_EQ(RequestRecordPathFor("/run/clogd.pid"), "/run/clogd.seq");
  EXPECT_EQ(RequestRecordPathFor("/tmp/x/lock"), "/tmp/x/lock.seq");
  EXPECT_EQ(RequestRecordPathFor(".pid"), ".pid.seq");
}

}  // namespace
}  // namespace clogd::logd
