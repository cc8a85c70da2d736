// The single-node log engine answers kernel requests the way dm-raid1 expects and keeps
// the log durable: marks are on the device before FLUSH returns, a crash resyncs exactly
// the marked regions, a clean shutdown leaves a valid dm-log disk log.
#include "logd/log_engine.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "engine_fixture.h"

namespace clogd::logd {
namespace {

using testing::AsS64;
using testing::AsString;
using testing::CollectingSink;
using testing::CtrPayload;
using testing::DeviceRef;
using testing::Devices;
using testing::Regions;
using testing::Req;
using testing::ResentCtrPayload;

constexpr uint64_t kRegions = 64;
constexpr uint64_t kRegionSize = 1024;
const std::string kLen = std::to_string(kRegions * kRegionSize);

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() { dev_ = &devices_.Add("/dev/mem0", 2 << 20); }

  std::unique_ptr<LogEngine> NewEngine() {
    EngineOptions options;
    options.node_id = 1;
    options.log = [this](Severity, const std::string& m) { log_lines_.push_back(m); };
    return std::make_unique<LogEngine>(devices_.Opener(), options, sink_);
  }

  // Sends a request and returns its single reply.
  UlogReply Send(LogEngine& engine, const UlogRequest& request) {
    size_t before = sink_.replies.size();
    engine.Submit(request);
    EXPECT_EQ(sink_.replies.size(), before + 1) << "exactly one reply per request";
    UlogReply reply = sink_.replies.back();
    EXPECT_EQ(reply.seq, request.seq);
    return reply;
  }

  UlogReply Ctr(LogEngine& engine, const std::string& args, uint64_t luid = 1) {
    return Send(engine, Req(DM_ULOG_CTR, luid, "LVM-test", CtrPayload(kLen + " " + args)));
  }

  // CTR + RESUME of a clustered-disk log on mem0.
  std::unique_ptr<LogEngine> Started(const std::string& args = "clustered-disk /dev/mem0 1024") {
    auto engine = NewEngine();
    EXPECT_EQ(Ctr(*engine, args).error, 0);
    EXPECT_EQ(Send(*engine, Req(DM_ULOG_RESUME)).error, 0);
    return engine;
  }

  // What a fresh reader finds durably on mem0 (as after a power cut).
  region::LogDevice ReopenAfterCrash() {
    dev_->Crash();
    DeviceRef ref(*dev_);
    region::OpenParams p;
    p.nr_regions = kRegions;
    p.region_size = kRegionSize;
    p.uuid = "LVM-test";
    auto log = region::LogDevice::Open(ref, p);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return std::move(log).value();
  }

  static std::vector<uint64_t> SlotOf(const region::LogDevice& log, region::NodeId node) {
    for (const auto& s : log.loaded_slots()) {
      if (s.node_id == node) return s.regions;
    }
    return {};
  }

  Devices devices_;
  region::MemoryDevice* dev_ = nullptr;
  CollectingSink sink_;
  std::vector<std::string> log_lines_;
};

TEST_F(EngineTest, CtrReturnsTheLogDeviceAndRegionSize) {
  auto engine = NewEngine();
  UlogReply ctr = Ctr(*engine, "clustered-disk /dev/mem0 1024");
  EXPECT_EQ(ctr.error, 0);
  EXPECT_EQ(AsString(ctr), "/dev/mem0");
  EXPECT_EQ(ctr.payload.back(), 0) << "device name must be NUL-terminated";
  UlogReply rs = Send(*engine, Req(DM_ULOG_GET_REGION_SIZE));
  EXPECT_EQ(AsS64(rs), 1024);
}

// A restarted daemon: its -ESRCH sets the size of the kernel's reply buffer for the retry,
// and the kernel re-sends CTR with no reply buffer (a device name in the answer would be
// -ENOSPC, and the kernel would re-send it forever). PROTOCOL.md has both.
TEST_F(EngineTest, AnUnknownLogsEsrchLeavesRoomAndTheResentCtrIsAnsweredEmpty) {
  for (const std::string args : {"disk /dev/mem0 1024", "clustered-disk /dev/mem0 1024"}) {
    SCOPED_TRACE(args);
    auto engine = NewEngine();
    UlogReply unknown = Send(*engine, Req(DM_ULOG_FLUSH));
    EXPECT_EQ(unknown.error, -ESRCH) << "a log this daemon never saw";
    // The kernel retries with a buffer the size of this answer's payload: it must be room
    // for the real answer.
    UlogReply unknown_in_sync = Send(*engine, Req(DM_ULOG_IN_SYNC, 1, "LVM-test", Regions({3})));
    EXPECT_EQ(unknown_in_sync.error, -ESRCH);
    EXPECT_EQ(unknown_in_sync.payload.size(), 8u);
    UlogReply unknown_work = Send(*engine, Req(DM_ULOG_GET_RESYNC_WORK));
    EXPECT_EQ(unknown_work.error, -ESRCH);
    EXPECT_EQ(unknown_work.payload.size(), 16u);
    UlogReply ctr =
        Send(*engine, Req(DM_ULOG_CTR, 1, "LVM-test", ResentCtrPayload(kLen + " " + args)));
    EXPECT_EQ(ctr.error, 0);
    EXPECT_TRUE(ctr.payload.empty()) << AsString(ctr);
    EXPECT_EQ(Send(*engine, Req(DM_ULOG_RESUME)).error, 0);
    EXPECT_EQ(Send(*engine, Req(DM_ULOG_FLUSH)).error, 0);
  }
}

TEST_F(EngineTest, NewLogStartsOutOfSyncUnlessNosync) {
  auto engine = Started();
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_GET_SYNC_COUNT))), 0);
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_IN_SYNC, 1, "LVM-test", Regions({3})))), 0);

  Devices other;
  auto& d = other.Add("/dev/mem1", 2 << 20);
  (void)d;
  EngineOptions options;
  LogEngine nosync(other.Opener(), options, sink_);
  EXPECT_EQ(Ctr(nosync, "clustered-disk /dev/mem1 1024 nosync").error, 0);
  EXPECT_EQ(AsS64(Send(nosync, Req(DM_ULOG_GET_SYNC_COUNT))), int64_t(kRegions));
}

TEST_F(EngineTest, MarkIsDurableInTheSlotBeforeFlushReturns) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({7, 5}))).error, 0);
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_FLUSH)).error, 0);
  auto log = ReopenAfterCrash();
  EXPECT_EQ(SlotOf(log, 1), (std::vector<uint64_t>{5, 7}));
}

TEST_F(EngineTest, MarkIsDurableWhenAnsweredEvenWithoutItsFlush) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({33}))).error, 0);
  auto log = ReopenAfterCrash();
  EXPECT_EQ(SlotOf(log, 1), (std::vector<uint64_t>{33}))
      << "a daemon dying before the FLUSH must not lose the mark: the kernel re-sends only "
         "the FLUSH";
}

TEST_F(EngineTest, ClearThenFlushRemovesTheMark) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({5, 7})));
  Send(*engine, Req(DM_ULOG_FLUSH));
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_CLEAR_REGION, 1, "LVM-test", Regions({5}))).error, 0);
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_FLUSH)).error, 0);
  auto log = ReopenAfterCrash();
  EXPECT_EQ(SlotOf(log, 1), (std::vector<uint64_t>{7}));
}

TEST_F(EngineTest, IntegratedFlushCarriesTheMarks) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_FLUSH, 1, "LVM-test", Regions({9, 2}))).error, 0);
  auto log = ReopenAfterCrash();
  EXPECT_EQ(SlotOf(log, 1), (std::vector<uint64_t>{2, 9}));
}

TEST_F(EngineTest, MarkedRegionIsNotCleanButStaysInSync) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({4})));
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_IS_CLEAN, 1, "LVM-test", Regions({4})))), 0);
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_IS_CLEAN, 1, "LVM-test", Regions({5})))), 1);
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_IN_SYNC, 1, "LVM-test", Regions({4})))), 1);
}

TEST_F(EngineTest, CrashResyncsExactlyTheMarkedRegions) {
  {
    auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
    Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({5, 40, 9})));
    Send(*engine, Req(DM_ULOG_FLUSH));
    // Region 9 goes idle; its clear is lazy and reaches the device with the next write.
    Send(*engine, Req(DM_ULOG_CLEAR_REGION, 1, "LVM-test", Regions({9})));
    // A mark answered but whose FLUSH never came: the kernel may already be writing.
    Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({12})));
  }  // the node dies: no DTR
  dev_->Crash();
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_GET_SYNC_COUNT))), int64_t(kRegions - 3));
  std::vector<uint64_t> handed_out;
  for (;;) {
    UlogReply work = Send(*engine, Req(DM_ULOG_GET_RESYNC_WORK));
    ASSERT_EQ(work.payload.size(), 16u);
    int64_t has = AsS64(work);
    uint64_t region = 0;
    std::memcpy(&region, work.payload.data() + 8, 8);
    if (!has) break;
    handed_out.push_back(region);
    std::vector<uint8_t> done = Regions({region});
    auto one = U64Payload(1);
    done.insert(done.end(), one.begin(), one.end());
    EXPECT_EQ(Send(*engine, Req(DM_ULOG_SET_REGION_SYNC, 1, "LVM-test", done)).error, 0);
  }
  EXPECT_EQ(handed_out, (std::vector<uint64_t>{5, 12, 40}));
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_GET_SYNC_COUNT))), int64_t(kRegions));
}

TEST_F(EngineTest, RecoveryDoesNotHandOutARegionTwice) {
  auto engine = Started();
  UlogReply a = Send(*engine, Req(DM_ULOG_GET_RESYNC_WORK));
  UlogReply b = Send(*engine, Req(DM_ULOG_GET_RESYNC_WORK));
  EXPECT_EQ(AsS64(a), 1);
  EXPECT_EQ(AsS64(b), 1);
  EXPECT_NE(std::memcmp(a.payload.data() + 8, b.payload.data() + 8, 8), 0);
}

TEST_F(EngineTest, StatusStringsMatchTheKernelFormats) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync block_on_error");
  EXPECT_EQ(AsString(Send(*engine, Req(DM_ULOG_STATUS_INFO))), "3 clustered-disk /dev/mem0 A");
  std::string table = AsString(Send(*engine, Req(DM_ULOG_STATUS_TABLE)));
  EXPECT_EQ(table, "clustered-disk 4 /dev/mem0 1024 nosync block_on_error ");
  EXPECT_EQ(table.back(), ' ') << "dm-raid1 appends the leg count right after it";
}

TEST_F(EngineTest, CoreLogStatus) {
  auto engine = NewEngine();
  EXPECT_EQ(Ctr(*engine, "clustered-core 1024").error, 0);
  EXPECT_EQ(AsString(Send(*engine, Req(DM_ULOG_STATUS_INFO))), "1 clustered-core");
  EXPECT_EQ(AsString(Send(*engine, Req(DM_ULOG_STATUS_TABLE))), "clustered-core 1 1024 ");
}

TEST_F(EngineTest, UnknownRequestTypeGetsEinval) {
  auto engine = Started();
  UlogRequest odd = Req(99);
  EXPECT_EQ(Send(*engine, odd).error, -EINVAL);
}

TEST_F(EngineTest, RequestForUnknownLogGetsEsrchSoTheKernelReconstructs) {
  auto engine = NewEngine();
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_FLUSH, 42)).error, -ESRCH);
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_GET_REGION_SIZE, 42)).error, -EINVAL);
}

TEST_F(EngineTest, RegionPastTheEndIsRefusedWithoutStateChange) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  UlogReply r = Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({3, kRegions})));
  EXPECT_EQ(r.error, -EINVAL);
  ASSERT_FALSE(log_lines_.empty());
  EXPECT_NE(log_lines_.back().find("region 64"), std::string::npos) << log_lines_.back();
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_IS_CLEAN, 1, "LVM-test", Regions({3})))), 1)
      << "region 3 of the refused request must not be marked";
}

TEST_F(EngineTest, FailedLogWriteFailsFlushAndShowsInStatus) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  dev_->FailNextWrites(1);
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({1}))).error, -EIO);
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_FLUSH)).error, -EIO);
  EXPECT_EQ(AsString(Send(*engine, Req(DM_ULOG_STATUS_INFO))), "3 clustered-disk /dev/mem0 D");
}

TEST_F(EngineTest, BadCtrIsRefusedAndCreatesNothing) {
  auto engine = NewEngine();
  UlogReply r = Ctr(*engine, "clustered-disk /dev/mem0 0");
  EXPECT_EQ(r.error, -EINVAL);
  EXPECT_EQ(engine->LogCount(), 0u);
  ASSERT_FALSE(log_lines_.empty());
  EXPECT_NE(log_lines_.back().find("region size"), std::string::npos) << log_lines_.back();
}

TEST_F(EngineTest, GarbageLogDeviceIsRefusedAndLeftUntouched) {
  std::vector<uint8_t> garbage(4096, 0xA5);
  ASSERT_TRUE(dev_->Write(0, garbage).ok());
  ASSERT_TRUE(dev_->Flush().ok());
  auto before = std::vector<uint8_t>(dev_->durable().begin(), dev_->durable().end());
  auto engine = NewEngine();
  EXPECT_NE(Ctr(*engine, "clustered-disk /dev/mem0 1024").error, 0);
  EXPECT_EQ(engine->LogCount(), 0u);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), dev_->durable().begin()));
}

TEST_F(EngineTest, CleanShutdownLeavesAValidDmLogWithTheCleanMap) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({6})));
  Send(*engine, Req(DM_ULOG_FLUSH));
  // While active, part 1 must not read as a valid dm-log.
  uint32_t magic = 0;
  std::memcpy(&magic, dev_->durable().data(), 4);
  EXPECT_NE(magic, 0x4D695272u);
  Send(*engine, Req(DM_ULOG_CLEAR_REGION, 1, "LVM-test", Regions({6})));
  Send(*engine, Req(DM_ULOG_FLUSH));
  Send(*engine, Req(DM_ULOG_PRESUSPEND));
  Send(*engine, Req(DM_ULOG_POSTSUSPEND));
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_DTR)).error, 0);
  dev_->Crash();
  const uint8_t* d = dev_->durable().data();
  std::memcpy(&magic, d, 4);
  EXPECT_EQ(magic, 0x4D695272u);
  uint64_t nr = 0;
  std::memcpy(&nr, d + 8, 8);
  EXPECT_EQ(nr, kRegions);
  for (uint64_t r = 0; r < kRegions; ++r) {
    EXPECT_TRUE(d[1024 + r / 8] & (1u << (r % 8))) << "region " << r << " should be clean";
  }
}

TEST_F(EngineTest, TableReloadAdoptsTheLiveInstanceState) {
  auto engine = Started("clustered-disk /dev/mem0 1024 nosync");
  Send(*engine, Req(DM_ULOG_MARK_REGION, 1, "LVM-test", Regions({11})));
  Send(*engine, Req(DM_ULOG_FLUSH));
  // New table loaded (same uuid, new luid), old suspended, new resumed, old destroyed.
  EXPECT_EQ(Ctr(*engine, "clustered-disk /dev/mem0 1024 nosync", 2).error, 0);
  Send(*engine, Req(DM_ULOG_PRESUSPEND, 1));
  Send(*engine, Req(DM_ULOG_POSTSUSPEND, 1));
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_RESUME, 2)).error, 0);
  EXPECT_EQ(Send(*engine, Req(DM_ULOG_DTR, 1)).error, 0);
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_IS_CLEAN, 2, "LVM-test", Regions({11})))), 0);
  EXPECT_EQ(AsS64(Send(*engine, Req(DM_ULOG_GET_SYNC_COUNT, 2))), int64_t(kRegions));
  // The old instance's DTR must not have declared the log cleanly shut down.
  uint32_t magic = 0;
  std::memcpy(&magic, dev_->durable().data(), 4);
  EXPECT_NE(magic, 0x4D695272u);
}

TEST_F(EngineTest, UndecodableFrameWithAHeaderIsAnswered) {
  auto engine = NewEngine();
  UlogRequest r = Req(DM_ULOG_FLUSH);
  std::vector<uint8_t> frame = EncodeRequest(r);
  uint32_t bad_version = 2;
  std::memcpy(frame.data() + offsetof(struct dm_ulog_request, version), &bad_version, 4);
  engine->SubmitFrame(frame);
  ASSERT_EQ(sink_.replies.size(), 1u);
  EXPECT_EQ(sink_.replies[0].seq, r.seq);
  EXPECT_EQ(sink_.replies[0].error, -EINVAL);
  engine->SubmitFrame(std::span<const uint8_t>(frame.data(), 20));
  EXPECT_EQ(sink_.replies.size(), 1u) << "a 20-byte frame has no seq to answer";
}

}  // namespace
}  // namespace clogd::logd
