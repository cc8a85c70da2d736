// Block devices: MemoryDevice's durability model and fault injection, and the O_DIRECT
// device on a real file (under the build tree, since /tmp may be tmpfs without O_DIRECT).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "region/block_device.h"
#include "region/memory_device.h"

namespace clogd::region {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

TEST(MemoryDevice, WriteReadFlushCrash) {
  MemoryDevice dev(8192, 512, "mem0");
  EXPECT_EQ(dev.SizeBytes(), 8192u);
  EXPECT_EQ(dev.BlockSize(), 512u);
  EXPECT_EQ(dev.Name(), "mem0");
  const auto a = Pattern(1024, 1);
  ASSERT_TRUE(dev.Write(512, a).ok());
  std::vector<uint8_t> back(1024);
  ASSERT_TRUE(dev.Read(512, back).ok());
  EXPECT_EQ(back, a);
  EXPECT_EQ(dev.durable()[512], 0);  // not durable before Flush
  dev.Crash();
  ASSERT_TRUE(dev.Read(512, back).ok());
  EXPECT_EQ(back, std::vector<uint8_t>(1024, 0));

  ASSERT_TRUE(dev.Write(512, a).ok());
  ASSERT_TRUE(dev.Flush().ok());
  dev.Crash();
  ASSERT_TRUE(dev.Read(512, back).ok());
  EXPECT_EQ(back, a);
  EXPECT_EQ(dev.writes(), 2u);
  EXPECT_EQ(dev.bytes_written(), 2048u);
  EXPECT_EQ(dev.flushes(), 1u);
}

TEST(MemoryDevice, RefusesMisalignedAndOutOfRange) {
  MemoryDevice dev(4096, 512, "mem0");
  std::vector<uint8_t> buf(512);
  Status s = dev.Read(100, buf);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("offset 100"));
  std::vector<uint8_t> odd(100);
  s = dev.Write(0, odd);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("length 100"));
  s = dev.Write(4096, buf);
  EXPECT_EQ(s.code(), Errc::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("mem0"));
  EXPECT_EQ(dev.writes(), 0u);
}

TEST(MemoryDevice, InjectedFailures) {
  MemoryDevice dev(4096);
  const auto a = Pattern(512, 3);
  dev.FailNextWrites(2);
  EXPECT_EQ(dev.Write(0, a).code(), Errc::kIoError);
  EXPECT_EQ(dev.Write(0, a).code(), Errc::kIoError);
  EXPECT_EQ(dev.current()[1], 0);  // nothing written
  ASSERT_TRUE(dev.Write(0, a).ok());

  dev.FailNextFlushes(1);
  EXPECT_EQ(dev.Flush().code(), Errc::kIoError);
  EXPECT_EQ(dev.durable()[1], 0);
  ASSERT_TRUE(dev.Flush().ok());
  EXPECT_EQ(dev.durable()[1], a[1]);

  dev.FailReads(true);
  std::vector<uint8_t> buf(512);
  EXPECT_EQ(dev.Read(0, buf).code(), Errc::kIoError);
  dev.FailReads(false);
  EXPECT_TRUE(dev.Read(0, buf).ok());
}

TEST(MemoryDevice, TornWriteKeepsWholeBlocksOnly) {
  MemoryDevice dev(4096, 512);
  const auto a = Pattern(2048, 9);
  dev.TearNextWrite(1000);  // rounds down to one 512-byte block
  Status s = dev.Write(0, a);
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_THAT(s.message(), HasSubstr("torn"));
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 512, dev.current().begin()));
  EXPECT_EQ(dev.current()[512], 0);
  EXPECT_EQ(dev.bytes_written(), 512u);
  ASSERT_TRUE(dev.Flush().ok());
  EXPECT_EQ(dev.durable()[0], a[0]);
  // The next write is whole again.
  ASSERT_TRUE(dev.Write(0, a).ok());
  EXPECT_EQ(dev.current()[1000], a[1000]);
}

TEST(MemoryDevice, LostFlushThenCrashLosesTheWrite) {
  MemoryDevice dev(4096);
  const auto a = Pattern(512, 5);
  ASSERT_TRUE(dev.Write(0, a).ok());
  dev.LoseNextFlush();
  ASSERT_TRUE(dev.Flush().ok());  // the lie
  EXPECT_EQ(dev.durable()[1], 0);
  dev.Crash();
  EXPECT_EQ(dev.current()[1], 0);
}

TEST(MemoryDevice, CrashKeepingSomeUnflushedWrites) {
  MemoryDevice dev(4096);
  ASSERT_TRUE(dev.Write(0, Pattern(512, 1)).ok());
  ASSERT_TRUE(dev.Write(512, Pattern(512, 2)).ok());
  ASSERT_TRUE(dev.Write(1024, Pattern(512, 3)).ok());
  EXPECT_EQ(dev.PendingWrites(), 3u);
  dev.CrashKeeping([](size_t index, uint64_t, uint64_t) { return index == 1; });
  EXPECT_EQ(dev.current()[0], 0);
  EXPECT_EQ(dev.current()[512], Pattern(512, 2)[0]);
  EXPECT_EQ(dev.current()[1025], 0);
  EXPECT_EQ(dev.current(), dev.durable());
  EXPECT_EQ(dev.PendingWrites(), 0u);
}

TEST(MemoryDevice, LoadPlacesBytesInBothImages) {
  MemoryDevice dev(4096);
  const std::vector<uint8_t> b = {1, 2, 3};
  dev.Load(10, b);
  EXPECT_EQ(dev.current()[11], 2);
  EXPECT_EQ(dev.durable()[12], 3);
  EXPECT_EQ(dev.writes(), 0u);
}

// ---- O_DIRECT device

std::string ScratchFile(const std::string& name, off_t size) {
  const std::string path = std::string(CLOG_REGION_TEST_DIR) + "/" + name;
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return "";
  const int rc = ::ftruncate(fd, size);
  ::close(fd);
  return rc == 0 ? path : "";
}

TEST(DirectDevice, WriteFlushReadBack) {
  const std::string path = ScratchFile("direct_rw.img", 1 << 20);
  ASSERT_FALSE(path.empty()) << "cannot create a scratch file in " << CLOG_REGION_TEST_DIR;
  Result<std::unique_ptr<BlockDevice>> opened = OpenDirectDevice(path);
  if (!opened.ok() && opened.status().message().find("Invalid argument") != std::string::npos) {
    GTEST_SKIP() << "filesystem without O_DIRECT: " << opened.status().ToString();
  }
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  BlockDevice& dev = **opened;
  EXPECT_EQ(dev.SizeBytes(), uint64_t{1} << 20);
  EXPECT_EQ(dev.BlockSize(), 4096u);
  EXPECT_EQ(dev.Name(), path);

  const auto a = Pattern(8192, 11);
  ASSERT_TRUE(dev.Write(4096, a).ok());
  ASSERT_TRUE(dev.Flush().ok());
  std::vector<uint8_t> back(8192);
  ASSERT_TRUE(dev.Read(4096, back).ok());
  EXPECT_EQ(back, a);

  // A second handle (a fresh open) sees the data too.
  Result<std::unique_ptr<BlockDevice>> again = OpenDirectDevice(path);
  ASSERT_TRUE(again.ok());
  std::vector<uint8_t> back2(4096);
  ASSERT_TRUE((*again)->Read(8192, back2).ok());
  EXPECT_TRUE(std::equal(back2.begin(), back2.end(), a.begin() + 4096));

  std::vector<uint8_t> small(512);
  Status s = dev.Read(512, small);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("offset 512"));
  EXPECT_THAT(s.message(), HasSubstr(path));
  s = dev.Write(1 << 20, std::vector<uint8_t>(4096));
  EXPECT_EQ(s.code(), Errc::kOutOfRange);
  ::unlink(path.c_str());
}

TEST(DirectDevice, OpenErrorsNamePathAndErrno) {
  const std::string missing = std::string(CLOG_REGION_TEST_DIR) + "/does-not-exist.img";
  Result<std::unique_ptr<BlockDevice>> r = OpenDirectDevice(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::kIoError);
  EXPECT_THAT(r.status().message(), HasSubstr(missing));
  EXPECT_THAT(r.status().message(), HasSubstr(std::strerror(ENOENT)));
}

}  // namespace
}  // namespace clogd::region
