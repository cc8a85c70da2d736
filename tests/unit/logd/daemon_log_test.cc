// Where clogd logs when systemd runs it in the foreground: $JOURNAL_STREAM names its
// stderr's device and inode when journald reads it (then lines go with their priority),
// and a malformed or stale value leaves stderr in use.
#include "logd/daemon_log.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace clogd::logd {
namespace {

TEST(NamesJournalStreamTest, MatchesDeviceAndInodeExactly) {
  EXPECT_TRUE(NamesJournalStream("8:1234", 8, 1234));
  EXPECT_FALSE(NamesJournalStream("8:1234", 8, 1235)) << "another inode";
  EXPECT_FALSE(NamesJournalStream("9:1234", 8, 1234)) << "another device";
  EXPECT_FALSE(NamesJournalStream(nullptr, 8, 1234)) << "not run by systemd";
  EXPECT_FALSE(NamesJournalStream("", 8, 1234));
  EXPECT_FALSE(NamesJournalStream("8", 8, 1234)) << "no inode";
  EXPECT_FALSE(NamesJournalStream("8:1234x", 8, 1234)) << "trailing garbage";
  EXPECT_FALSE(NamesJournalStream("x:1234", 8, 1234));
}

// With -f, stderr is the sink unless journald reads it; this test's stderr is no journal
// stream, so a $JOURNAL_STREAM naming some other file changes nothing.
TEST(DaemonLogTest, ForegroundKeepsStderrUnlessItIsTheJournalStream) {
  struct stat st {};
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  const std::string other = std::to_string(st.st_dev) + ":" +
                            std::to_string(static_cast<unsigned long long>(st.st_ino) + 1);
  ASSERT_EQ(setenv("JOURNAL_STREAM", other.c_str(), 1), 0);
  EXPECT_EQ(DaemonLog(true, false).sink(), DaemonLog::Sink::kStderr);
  unsetenv("JOURNAL_STREAM");
  EXPECT_EQ(DaemonLog(true, false).sink(), DaemonLog::Sink::kStderr);
}

}  // namespace
}  // namespace clogd::logd
