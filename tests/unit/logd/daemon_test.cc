// The Daemon in-process, on the test socket link, with a loopback cluster link in place of
// CPG: in cluster mode kernel requests wait (and "waiting for corosync" is said) until the
// link connects, then are served in order; a --node-id that disagrees with corosync is
// refused; without --cluster a clustered log is served at once as single-node; SIGHUP
// reopens logging.
#include "logd/daemon.h"

#include <gtest/gtest.h>
#include <linux/dm-log-userspace.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <map>

#include "engine_fixture.h"
#include "link_driver.h"

namespace clogd::logd {
namespace {

using testing::AsS64;
using testing::CtrPayload;
using testing::LinkDriver;
using testing::Regions;
using testing::Req;

constexpr int kBoundMs = 10'000;

// A one-node cluster on the daemon's loop: deliveries and membership changes are posted,
// so they arrive later, like CPG's. Connect fails until `up`.
class LoopbackCluster : public DaemonCluster, public ClusterTransport {
 public:
  LoopbackCluster(EventLoop& loop, NodeId me) : loop_(loop), me_(me) {}

  Status Connect() override {
    ++connect_calls;
    if (!up) return IoError("corosync is not running (loopback)");
    connected_ = true;
    return Status::Ok();
  }
  bool connected() const override { return connected_; }
  void Dispatch(int) override {}
  NodeId LocalNode() const override { return me_; }
  Result<uint32_t> ExpectedVotes() const override { return expected_votes; }
  ClusterTransport& transport() override { return *this; }

  Status Join(const std::string& group, ClusterHandler* handler) override {
    if (!connected_) return IoError("not connected");
    groups_[group] = handler;
    const uint64_t view = ++view_;
    loop_.Post([this, group, view] {
      auto it = groups_.find(group);
      if (it == groups_.end()) return;
      Membership m;
      m.view_id = view;
      m.members = {me_};
      m.joined = {me_};
      it->second->OnMembership(m);
    });
    return Status::Ok();
  }
  Status Leave(const std::string& group) override {
    groups_.erase(group);
    return Status::Ok();
  }
  Status Multicast(const std::string& group, std::span<const uint8_t> message) override {
    std::vector<uint8_t> copy(message.begin(), message.end());
    loop_.Post([this, group, copy] {
      auto it = groups_.find(group);
      if (it != groups_.end()) it->second->OnDeliver(me_, copy);
    });
    return Status::Ok();
  }

  bool up = false;
  int connect_calls = 0;
  uint32_t expected_votes = 1;

 private:
  EventLoop& loop_;
  NodeId me_;
  bool connected_ = false;
  uint64_t view_ = 0;
  std::map<std::string, ClusterHandler*> groups_;
};

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clogd-daemon.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_.kernel_socket = dir_ + "/k.sock";
    config_.connect_retry_first_us = 1'000;
    config_.connect_retry_max_us = 20'000;
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(NodeId corosync_node, bool corosync_up) {
    DaemonHooks hooks;
    hooks.log = [this](Severity, const std::string& m) { log_ += m + "\n"; };
    hooks.reopen_log = [this] { ++reopened_; };
    hooks.opener = devices_.Opener();
    hooks.cluster = [this, corosync_node, corosync_up](LogFn, FdWatch) {
      auto c = std::make_unique<LoopbackCluster>(daemon_->loop(), corosync_node);
      c->up = corosync_up;
      cluster_ = c.get();
      return std::unique_ptr<DaemonCluster>(std::move(c));
    };
    daemon_.emplace(config_, std::move(hooks));
    Status s = daemon_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  bool Logged(const std::string& needle) { return log_.find(needle) != std::string::npos; }

  std::optional<UlogReply> AwaitReply(uint32_t seq) {
    std::optional<UlogReply> reply;
    daemon_->loop().RunUntil([&] { return (reply = driver_.TakeReply(seq)).has_value(); },
                             kBoundMs);
    return reply;
  }

  std::string dir_;
  DaemonConfig config_;
  testing::Devices devices_;
  std::optional<Daemon> daemon_;
  LoopbackCluster* cluster_ = nullptr;
  LinkDriver driver_;
  std::string log_;
  int reopened_ = 0;
};

TEST_F(DaemonTest, ClusterModeHoldsRequestsUntilCorosyncAnswers) {
  config_.cluster = true;
  Start(/*corosync_node=*/3, /*corosync_up=*/false);
  ASSERT_TRUE(daemon_->loop().RunUntil([&] { return Logged("waiting for corosync"); }, kBoundMs))
      << log_;
  ASSERT_TRUE(driver_.Connect(config_.kernel_socket, kBoundMs));

  const std::string len = "65536";
  UlogRequest ctr = Req(DM_ULOG_CTR, 1, "LVM-c", CtrPayload(len + " clustered-core 1024"));
  UlogRequest resume = Req(DM_ULOG_RESUME, 1, "LVM-c");
  UlogRequest local = Req(DM_ULOG_CTR, 2, "LVM-l", CtrPayload(len + " core 1024"));
  for (const auto& r : {ctr, resume, local}) ASSERT_TRUE(driver_.SendRequest(r));
  ASSERT_TRUE(daemon_->loop().RunUntil([&] { return daemon_->held_requests() == 3; }, kBoundMs));
  EXPECT_FALSE(driver_.TakeReply(ctr.seq).has_value()) << "nothing is answered meanwhile";
  EXPECT_EQ(daemon_->engine(), nullptr) << "the node id is not known yet";
  const int attempts = cluster_->connect_calls;
  ASSERT_TRUE(
      daemon_->loop().RunUntil([&] { return cluster_->connect_calls > attempts; }, kBoundMs))
      << "Connect is retried";

  cluster_->up = true;
  auto ctr_reply = AwaitReply(ctr.seq);
  auto resume_reply = AwaitReply(resume.seq);
  auto local_reply = AwaitReply(local.seq);
  ASSERT_TRUE(ctr_reply && resume_reply && local_reply) << log_;
  EXPECT_EQ(ctr_reply->error, 0) << log_;
  EXPECT_EQ(resume_reply->error, 0) << log_;
  EXPECT_EQ(local_reply->error, 0) << log_;
  EXPECT_TRUE(Logged("connected to corosync as node 3 (expected nodes 1)")) << log_;
  EXPECT_TRUE(Logged("3 held requests released")) << log_;
  ASSERT_NE(daemon_->engine(), nullptr);
  ASSERT_NE(daemon_->engine()->FindCluster("LVM-c"), nullptr) << "served cluster-wide";

  // Served from now on without waiting.
  UlogRequest in_sync = Req(DM_ULOG_IN_SYNC, 1, "LVM-c", Regions({4}));
  ASSERT_TRUE(driver_.SendRequest(in_sync));
  auto in_sync_reply = AwaitReply(in_sync.seq);
  ASSERT_TRUE(in_sync_reply.has_value()) << log_;
  EXPECT_EQ(in_sync_reply->error, 0);
  EXPECT_EQ(daemon_->held_requests(), 0u);
}

TEST_F(DaemonTest, NodeIdThatDisagreesWithCorosyncIsRefused) {
  config_.cluster = true;
  config_.node_id = 2;
  Start(/*corosync_node=*/3, /*corosync_up=*/true);
  EXPECT_EQ(daemon_->Run(), 1);
  EXPECT_TRUE(Logged("--node-id 2 but corosync says this node is 3")) << log_;
  EXPECT_EQ(daemon_->engine(), nullptr);
}

TEST_F(DaemonTest, WithoutClusterModeClusteredLogsAreServedAsSingleNode) {
  config_.node_id = 5;
  Start(/*corosync_node=*/3, /*corosync_up=*/false);
  EXPECT_EQ(cluster_, nullptr) << "no cluster link without --cluster";
  ASSERT_TRUE(driver_.Connect(config_.kernel_socket, kBoundMs));
  UlogRequest ctr = Req(DM_ULOG_CTR, 1, "LVM-c", CtrPayload("65536 clustered-core 1024 nosync"));
  UlogRequest resume = Req(DM_ULOG_RESUME, 1, "LVM-c");
  UlogRequest in_sync = Req(DM_ULOG_IN_SYNC, 1, "LVM-c", Regions({4}));
  for (const auto& r : {ctr, resume, in_sync}) ASSERT_TRUE(driver_.SendRequest(r));
  auto reply = AwaitReply(in_sync.seq);
  ASSERT_TRUE(reply.has_value()) << log_;
  EXPECT_EQ(AsS64(*reply), 1);
  ASSERT_NE(daemon_->engine(), nullptr);
  EXPECT_EQ(daemon_->engine()->FindCluster("LVM-c"), nullptr);
  EXPECT_EQ(daemon_->engine()->LogCount(), 1u);
  EXPECT_TRUE(Logged("as node 5 (single-node")) << log_;

  ASSERT_EQ(raise(SIGHUP), 0);
  EXPECT_TRUE(daemon_->loop().RunUntil([&] { return reopened_ == 1; }, kBoundMs));
}

}  // namespace
}  // namespace clogd::logd
