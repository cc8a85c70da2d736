// `clogctl status` shows what the engine really holds: region counts, recovery owners and
// each node's marks for a single-node disk log and for clustered logs driven through an
// in-process cluster with real kernel requests; the JSON carries every documented field
// and decodes back to the same report; the human text fits 80 columns.
#include "logd/status_report.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cluster_log_fixture.h"
#include "engine_fixture.h"

namespace clogd::logd {
namespace {

using testing::AsS64;
using testing::CollectingSink;
using testing::CtrPayload;
using testing::Devices;
using testing::kRegions;
using testing::Regions;
using testing::Req;

const std::string kLen = std::to_string(kRegions * 1024);

void ExpectFitsEightyColumns(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_LE(line.size(), 80u) << "line " << n << " is too wide: '" << line << "'";
  }
  EXPECT_GT(n, 0);
}

// The documented per-log JSON fields (logd/README.md); a rename breaks scripts.
const char* const kLogFields[] = {"uuid",
                                  "type",
                                  "mode",
                                  "luid",
                                  "device",
                                  "region_size",
                                  "regions",
                                  "in_sync",
                                  "out_of_sync",
                                  "recovering",
                                  "dirty",
                                  "busy",
                                  "server",
                                  "members",
                                  "absent",
                                  "generation",
                                  "ready",
                                  "serving",
                                  "quorate",
                                  "recovery_gate_open",
                                  "pending_requests",
                                  "device_failed",
                                  "counters",
                                  "notes"};

void ExpectRoundTrip(const StatusReport& report) {
  const std::string json = StatusJson(report);
  auto decoded = StatusFromJson(json);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString() << "\n" << json;
  EXPECT_EQ(StatusJson(*decoded), json) << "decoding lost or changed a field";
  const auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j.at("version"), kStatusFormatVersion);
  for (const auto& log : j.at("logs")) {
    for (const char* f : kLogFields) EXPECT_TRUE(log.contains(f)) << "missing field " << f;
    EXPECT_EQ(log.size(), std::size(kLogFields)) << "an undocumented field: " << log.dump();
  }
}

const NodeDirty* DirtyOf(const LogReport& r, NodeId n) {
  for (const auto& d : r.dirty) {
    if (d.node == n) return &d;
  }
  return nullptr;
}

// --- single-node disk log

class LocalStatusTest : public ::testing::Test {
 protected:
  LocalStatusTest() {
    devices_.Add("/dev/mem0", 2 << 20);
    EngineOptions o;
    o.node_id = 4;
    engine_ = std::make_unique<LogEngine>(devices_.Opener(), o, sink_);
  }
  UlogReply Send(uint32_t type, std::vector<uint8_t> payload = {}) {
    engine_->Submit(Req(type, 7, "LVM-local", std::move(payload)));
    return sink_.replies.back();
  }
  StatusReport Report() { return BuildStatusReport(*engine_, {.node = 4, .slot_reader = {}}); }
  uint64_t ResyncWork() {
    UlogReply w = Send(DM_ULOG_GET_RESYNC_WORK);
    EXPECT_EQ(AsS64(w), 1) << "expected resync work";
    uint64_t r = 0;
    std::memcpy(&r, w.payload.data() + 8, 8);
    return r;
  }

  Devices devices_;
  CollectingSink sink_;
  std::unique_ptr<LogEngine> engine_;
};

TEST_F(LocalStatusTest, CountsRecoveryAndMarksOfADiskLog) {
  ASSERT_EQ(Send(DM_ULOG_CTR, CtrPayload(kLen + " disk /dev/mem0 1024")).error, 0);
  {
    StatusReport before = Report();
    ASSERT_EQ(before.logs.size(), 1u);
    EXPECT_FALSE(before.logs[0].in_sync) << "before RESUME the state is not loaded";
    EXPECT_FALSE(before.logs[0].ready);
  }
  ASSERT_EQ(Send(DM_ULOG_RESUME).error, 0);
  // A new log starts out of sync; resync one region, start another, write two regions.
  const uint64_t done = ResyncWork();
  std::vector<uint8_t> set = Regions({done});
  auto one = S64Payload(1);
  set.insert(set.end(), one.begin(), one.end());
  ASSERT_EQ(Send(DM_ULOG_SET_REGION_SYNC, set).error, 0);
  const uint64_t busy = ResyncWork();
  ASSERT_EQ(Send(DM_ULOG_MARK_REGION, Regions({9, 3})).error, 0);
  ASSERT_EQ(Send(DM_ULOG_FLUSH).error, 0);

  StatusReport report = Report();
  EXPECT_EQ(report.node, 4u);
  ASSERT_EQ(report.logs.size(), 1u);
  const LogReport& r = report.logs[0];
  EXPECT_EQ(r.uuid, "LVM-local");
  EXPECT_EQ(r.type, "disk");
  EXPECT_EQ(r.mode, "local");
  EXPECT_EQ(r.luid, 7u);
  EXPECT_EQ(r.device, "/dev/mem0");
  EXPECT_EQ(r.region_size, 1024u);
  EXPECT_EQ(r.regions, kRegions);
  EXPECT_EQ(r.in_sync, 1u);
  EXPECT_EQ(r.out_of_sync, kRegions - 1);
  EXPECT_EQ(r.recovering, (std::vector<RecoveringRegion>{{busy, 4}}));
  ASSERT_EQ(r.dirty.size(), 1u);
  EXPECT_EQ(r.dirty[0].node, 4u);
  EXPECT_EQ(r.dirty[0].source, "state");
  EXPECT_EQ(r.dirty[0].regions, (std::vector<RegionNo>{3, 9}));
  EXPECT_TRUE(r.ready);
  EXPECT_TRUE(r.serving);
  EXPECT_FALSE(r.quorate) << "no quorum for a single-node log";
  EXPECT_FALSE(r.server);
  EXPECT_TRUE(r.members.empty());
  EXPECT_TRUE(r.generation.has_value()) << "a disk log has a superblock generation";
  EXPECT_FALSE(r.device_failed);
  EXPECT_EQ(r.pending_requests, 0u);
  bool slot_writes = false;
  for (const auto& [name, value] : r.counters) slot_writes |= name == "slot_writes" && value > 0;
  EXPECT_TRUE(slot_writes) << "the flush wrote the slot";
  ExpectRoundTrip(report);

  const std::string text = FormatStatus(report);
  ExpectFitsEightyColumns(text);
  EXPECT_NE(text.find("1 / 64 in sync (1.5%), 63 out of sync"), std::string::npos) << text;
  EXPECT_NE(text.find("node 4 (state): 2 regions: 3 9"), std::string::npos) << text;
}

TEST_F(LocalStatusTest, LongUuidsAndManyMarksStillFitEightyColumns) {
  const std::string uuid = "LVM-" + std::string(124, 'x');  // the longest a uuid may be
  engine_->Submit(Req(DM_ULOG_CTR, 8, uuid, CtrPayload(kLen + " core 1024")));
  engine_->Submit(Req(DM_ULOG_RESUME, 8, uuid));
  std::vector<uint64_t> many;
  for (uint64_t r = 0; r < kRegions; ++r) many.push_back(r);
  for (size_t i = 0; i < many.size(); i += 32) {
    std::vector<uint8_t> payload;
    for (size_t k = i; k < i + 32; ++k) {
      auto b = U64Payload(many[k]);
      payload.insert(payload.end(), b.begin(), b.end());
    }
    engine_->Submit(Req(DM_ULOG_MARK_REGION, 8, uuid, payload));
  }
  StatusReport report = Report();
  ASSERT_EQ(report.logs.size(), 1u);
  EXPECT_EQ(report.logs[0].dirty.at(0).regions.size(), kRegions) << "JSON keeps every mark";
  const std::string text = FormatStatus(report);
  ExpectFitsEightyColumns(text);
  EXPECT_NE(text.find("64 regions: 0 1 2"), std::string::npos) << text;
  EXPECT_NE(text.find("..."), std::string::npos) << "long lists are cut, not wrapped away";
  ExpectFitsEightyColumns(FormatNodes(NodesOf(report)));
  ExpectRoundTrip(report);
}

// --- clustered logs, three members over the in-process cluster

// The cluster state machine tests' fixture (Start, Send), with status reports on top.
class ClusterStatusTest : public testing::ClusterLogTest {
 protected:
  bool disk() const { return std::string(GetParam()) == "clustered-disk"; }

  SlotReader Reader() {
    return [this](const std::string& device, uint64_t nr_regions,
                  const std::vector<uint32_t>& slots) -> Result<SlotPeek> {
      auto dev = devices_.Opener()(device);
      if (!dev.ok()) return dev.status();
      ++device_reads_;
      return PeekSlots(**dev, nr_regions, slots);
    };
  }
  StatusReport Report(NodeId n, bool read_device = true) {
    ReportOptions o;
    o.node = n;
    if (read_device) o.slot_reader = Reader();
    return BuildStatusReport(*nodes_[n].engine, o);
  }

  int device_reads_ = 0;
};

TEST_P(ClusterStatusTest, MembersServerAndEveryNodesMarks) {
  Start(1);
  Start(2);
  Start(3);
  ASSERT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({5, 9})).error, 0);
  ASSERT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  ASSERT_EQ(Send(3, DM_ULOG_MARK_REGION, Regions({7})).error, 0);
  ASSERT_EQ(Send(3, DM_ULOG_FLUSH).error, 0);

  StatusReport report = Report(1);
  ASSERT_EQ(report.logs.size(), 1u);
  const LogReport& r = report.logs[0];
  EXPECT_EQ(r.type, GetParam());
  EXPECT_EQ(r.mode, "cluster");
  EXPECT_FALSE(r.luid);
  EXPECT_EQ(r.members, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_TRUE(r.absent.empty());
  EXPECT_EQ(r.server, 1u);
  EXPECT_TRUE(r.ready);
  EXPECT_TRUE(r.serving);
  EXPECT_EQ(r.quorate, true);
  EXPECT_EQ(r.recovery_gate_open, true);
  EXPECT_EQ(r.in_sync, kRegions);
  EXPECT_EQ(r.out_of_sync, 0u);
  EXPECT_TRUE(r.recovering.empty());
  ASSERT_NE(DirtyOf(r, 2), nullptr);
  ASSERT_NE(DirtyOf(r, 3), nullptr);
  EXPECT_EQ(DirtyOf(r, 2)->regions, (std::vector<RegionNo>{5, 9}));
  EXPECT_EQ(DirtyOf(r, 3)->regions, (std::vector<RegionNo>{7}));
  ASSERT_NE(DirtyOf(r, 1), nullptr);
  EXPECT_TRUE(DirtyOf(r, 1)->regions.empty());
  if (disk()) {
    EXPECT_EQ(DirtyOf(r, 1)->source, "own");
    EXPECT_EQ(DirtyOf(r, 2)->source, "device") << "read from node 2's slot";
    EXPECT_EQ(device_reads_, 1) << "one read of the device per report";
  } else {
    EXPECT_EQ(DirtyOf(r, 2)->source, "replica");
    EXPECT_EQ(device_reads_, 0) << "a core log has no device to read";
  }
  ExpectRoundTrip(report);
  ExpectFitsEightyColumns(FormatStatus(report));

  NodesReport nodes = NodesOf(Report(3, false));
  EXPECT_EQ(nodes.node, 3u);
  ASSERT_EQ(nodes.logs.size(), 1u);
  EXPECT_EQ(nodes.logs[0].members, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(nodes.logs[0].server, 1u);
  auto decoded = NodesFromJson(NodesJson(nodes));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(NodesJson(*decoded), NodesJson(nodes));
  ExpectFitsEightyColumns(FormatNodes(nodes));
}

TEST_P(ClusterStatusTest, OtherMembersDiskMarksAreUnknownWithoutReadingTheDevice) {
  Start(1);
  Start(2);
  ASSERT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({4})).error, 0);
  const LogReport r = Report(1, /*read_device=*/false).logs.at(0);
  ASSERT_NE(DirtyOf(r, 2), nullptr);
  if (disk()) {
    EXPECT_FALSE(DirtyOf(r, 2)->known);
    EXPECT_EQ(DirtyOf(r, 2)->source, "unknown");
    EXPECT_NE(FormatStatus(Report(1, false)).find("node 2 (unknown): not known here"),
              std::string::npos);
  } else {
    EXPECT_TRUE(DirtyOf(r, 2)->known);
    EXPECT_EQ(DirtyOf(r, 2)->regions, (std::vector<RegionNo>{4}));
  }
}

TEST_P(ClusterStatusTest, ADepartedNodesMarksShowAsOutOfSyncAndTheirRecovery) {
  Start(1);
  Start(2);
  Start(3);
  ASSERT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({5, 9})).error, 0);
  ASSERT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  cluster_.Crash(2);
  nodes_[2].engine.reset();
  cluster_.Run();

  UlogReply w = Send(3, DM_ULOG_GET_RESYNC_WORK);
  ASSERT_EQ(AsS64(w), 1) << "node 3 gets resync work";
  uint64_t claimed = 0;
  std::memcpy(&claimed, w.payload.data() + 8, 8);

  const LogReport r = Report(1).logs.at(0);
  EXPECT_EQ(r.members, (std::vector<NodeId>{1, 3}));
  EXPECT_EQ(r.in_sync, kRegions - 2);
  EXPECT_EQ(r.out_of_sync, 2u);
  EXPECT_EQ(r.recovering, (std::vector<RecoveringRegion>{{claimed, 3}}))
      << "node 1 sees node 3's claim";
  EXPECT_EQ(DirtyOf(r, 2), nullptr) << "a departed node's marks are merged, not shown";
  uint64_t merged = 0;
  for (const auto& [name, value] : r.counters) {
    if (name == "regions_merged") merged = value;
  }
  EXPECT_EQ(merged, 2u) << "every survivor merges the departed node's two regions";
  const std::string text = FormatStatus(Report(1));
  ExpectFitsEightyColumns(text);
  EXPECT_NE(text.find("62 / 64 in sync (96.8%), 2 out of sync"), std::string::npos) << text;
  EXPECT_NE(text.find("1 being copied: " + std::to_string(claimed) + " by node 3"),
            std::string::npos)
      << text;
}

// A clear lingers in the node's slot (clustered-disk) or in the replicated marks
// (clustered-core) until the next linger tick: every member reports the node's marks alike,
// the node itself too, and the region leaves them all together.
TEST_P(ClusterStatusTest, ALingeringClearShowsAlikeOnEveryMember) {
  with_timers_ = true;
  Start(1);
  Start(2);
  ASSERT_EQ(Send(2, DM_ULOG_MARK_REGION, Regions({3, 5})).error, 0);
  ASSERT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  ASSERT_EQ(Send(2, DM_ULOG_CLEAR_REGION, Regions({3})).error, 0);
  ASSERT_EQ(Send(2, DM_ULOG_FLUSH).error, 0);
  for (NodeId n : {1u, 2u}) {
    const LogReport r = Report(n).logs.at(0);
    ASSERT_NE(DirtyOf(r, 2), nullptr) << "reported by node " << n;
    EXPECT_EQ(DirtyOf(r, 2)->regions, (std::vector<RegionNo>{3, 5}))
        << "reported by node " << n << ": region 3's clear lingers";
  }
  FireTimers(2);  // the clear is a tick old now
  FireTimers(2);  // and goes out
  for (NodeId n : {1u, 2u}) {
    const LogReport r = Report(n).logs.at(0);
    ASSERT_NE(DirtyOf(r, 2), nullptr) << "reported by node " << n;
    EXPECT_EQ(DirtyOf(r, 2)->regions, (std::vector<RegionNo>{5})) << "reported by node " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, ClusterStatusTest,
                         ::testing::Values("clustered-core", "clustered-disk"));

TEST(StatusJsonTest, RefusesRepliesItCannotRead) {
  EXPECT_FALSE(StatusFromJson("not json").ok());
  EXPECT_FALSE(StatusFromJson("[1,2]").ok());
  auto wrong_version = StatusFromJson(R"({"version":99,"node":1,"logs":[]})");
  ASSERT_FALSE(wrong_version.ok());
  EXPECT_NE(wrong_version.status().message().find("99"), std::string::npos);
  auto missing = StatusFromJson(R"({"version":1,"node":1,"logs":[{"uuid":"x"}]})");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'type'"), std::string::npos)
      << missing.status().message();
  auto negative = StatusFromJson(R"({"version":1,"node":-1,"logs":[]})");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("'node'"), std::string::npos);
}

TEST(ElideTest, KeepsBothEndsWithinTheWidth) {
  EXPECT_EQ(Elide("short", 10), "short");
  EXPECT_EQ(Elide("0123456789abcdef", 10), "0123...def");
  EXPECT_EQ(Elide("0123456789abcdef", 10).size(), 10u);
}

}  // namespace
}  // namespace clogd::logd
