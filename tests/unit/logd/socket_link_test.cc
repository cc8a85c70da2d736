// The test kernel link in-process (TEST_LINK.md): 'Q' frames reach the daemon side, replies
// go back as 'A', a rearm is an 'S' answered by 'D' (and counts as done when no driver is
// there or it disconnects), replies a slow driver has no room for are delivered later,
// and a live socket path is never stolen.
#include "logd/socket_link.h"

#include <gtest/gtest.h>
#include <linux/dm-log-userspace.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine_fixture.h"
#include "link_driver.h"

namespace clogd::logd {
namespace {

using testing::LinkDriver;
using testing::Req;

constexpr int kBoundMs = 10'000;

class SocketLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clogd-link.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/k.sock";
    ASSERT_TRUE(loop_.Open().ok());
    link_.emplace(path_, [this](Severity, const std::string& m) { log_ += m + "\n"; });
    ASSERT_TRUE(
        link_
            ->Open(loop_,
                   [this](std::span<const uint8_t> f) { frames_.emplace_back(f.begin(), f.end()); })
            .ok());
  }
  void TearDown() override {
    link_.reset();
    std::filesystem::remove_all(dir_);
  }

  void ConnectDriver() {
    ASSERT_TRUE(driver_.Connect(path_, kBoundMs));
    ASSERT_TRUE(loop_.RunUntil([&] { return link_->driver_connected(); }, kBoundMs));
  }

  // Runs the loop until the driver has a message; returns it.
  std::vector<uint8_t> NextMessage() {
    std::optional<std::vector<uint8_t>> m;
    EXPECT_TRUE(loop_.RunUntil([&] { return (m = driver_.Receive(0)).has_value(); }, kBoundMs));
    return m.value_or(std::vector<uint8_t>{});
  }

  std::string dir_, path_, log_;
  EventLoop loop_;
  std::optional<SocketLink> link_;
  std::vector<std::vector<uint8_t>> frames_;
  LinkDriver driver_;
};

TEST_F(SocketLinkTest, RequestFramesInRepliesOut) {
  ConnectDriver();
  UlogRequest request = Req(DM_ULOG_IN_SYNC, 7, "LVM-x", testing::Regions({42}));
  ASSERT_TRUE(driver_.SendRequest(request));
  ASSERT_TRUE(loop_.RunUntil([&] { return frames_.size() == 1; }, kBoundMs));
  EXPECT_EQ(frames_[0], EncodeRequest(request)) << "the frame arrives byte for byte";

  UlogReply reply = ReplyTo(request);
  reply.payload = S64Payload(1);
  link_->Reply(reply);
  std::vector<uint8_t> m = NextMessage();
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m[0], kLinkReply);
  auto decoded = DecodeReply(std::span<const uint8_t>(m).subspan(1));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->seq, request.seq);
  EXPECT_EQ(decoded->luid, 7u);
  EXPECT_EQ(decoded->uuid, "LVM-x");
  EXPECT_EQ(decoded->payload, S64Payload(1));
}

TEST_F(SocketLinkTest, RearmRoundTrip) {
  ConnectDriver();
  bool a_done = false, b_done = false;
  link_->Rearm("LVM-a", [&] { a_done = true; });
  link_->Rearm("LVM-b", [&] { b_done = true; });
  std::vector<uint8_t> first = NextMessage(), second = NextMessage();
  EXPECT_EQ(first, (std::vector<uint8_t>{'S', 'L', 'V', 'M', '-', 'a'}));
  EXPECT_EQ(second, (std::vector<uint8_t>{'S', 'L', 'V', 'M', '-', 'b'}));
  EXPECT_EQ(link_->pending_rearms(), 2u);

  // Completions match by uuid, in any order; one nobody waits for changes nothing.
  ASSERT_TRUE(driver_.SendRearmDone("LVM-b"));
  ASSERT_TRUE(loop_.RunUntil([&] { return b_done; }, kBoundMs));
  EXPECT_FALSE(a_done);
  ASSERT_TRUE(driver_.SendRearmDone("LVM-nobody"));
  ASSERT_TRUE(
      loop_.RunUntil([&] { return log_.find("no rearm waits") != std::string::npos; }, kBoundMs));
  EXPECT_FALSE(a_done);
  EXPECT_TRUE(link_->driver_connected());
  ASSERT_TRUE(driver_.SendRearmDone("LVM-a"));
  ASSERT_TRUE(loop_.RunUntil([&] { return a_done; }, kBoundMs));
  EXPECT_EQ(link_->pending_rearms(), 0u);
}

TEST_F(SocketLinkTest, RearmCompletesWhenNoDriverIsThereOrItLeaves) {
  bool without_driver = false;
  link_->Rearm("LVM-a", [&] { without_driver = true; });
  EXPECT_FALSE(without_driver) << "done runs from the loop, not inside Rearm";
  ASSERT_TRUE(loop_.RunUntil([&] { return without_driver; }, kBoundMs));

  ConnectDriver();
  bool pending_done = false;
  link_->Rearm("LVM-a", [&] { pending_done = true; });
  EXPECT_EQ(NextMessage()[0], kLinkRearm);
  driver_.Close();  // the kernel went away: nothing is in flight any more
  ASSERT_TRUE(loop_.RunUntil([&] { return pending_done; }, kBoundMs));
  EXPECT_FALSE(link_->driver_connected());
}

TEST_F(SocketLinkTest, RepliesASlowDriverHasNoRoomForArriveLater) {
  ConnectDriver();
  // Far more than a SEQPACKET socket buffer holds, sent while the driver reads nothing.
  constexpr uint32_t kReplies = 3000;
  for (uint32_t i = 1; i <= kReplies; ++i) {
    UlogReply r;
    r.luid = 1;
    r.uuid = "LVM-x";
    r.seq = i;
    r.raw_type = DM_ULOG_FLUSH;
    link_->Reply(r);
  }
  uint32_t next = 1;
  bool in_order = true;
  ASSERT_TRUE(loop_.RunUntil(
      [&] {
        while (auto m = driver_.Receive(0)) {
          if (m->empty()) return true;  // EOF: fails below
          auto r = DecodeReply(std::span<const uint8_t>(*m).subspan(1));
          in_order = in_order && r.ok() && r->seq == next;
          ++next;
        }
        return next > kReplies;
      },
      kBoundMs))
      << "got " << next - 1 << " of " << kReplies;
  EXPECT_TRUE(in_order);
  EXPECT_TRUE(link_->driver_connected());
}

TEST_F(SocketLinkTest, ALiveSocketIsNotStolenAStaleOneIsReplaced) {
  EventLoop other_loop;
  ASSERT_TRUE(other_loop.Open().ok());
  SocketLink thief(path_, nullptr);
  Status s = thief.Open(other_loop, [](std::span<const uint8_t>) {});
  EXPECT_EQ(s.code(), Errc::kBusy) << s.ToString();

  // A socket file nobody listens on (its daemon died) is taken over.
  const std::string stale = dir_ + "/stale.sock";
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, stale.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  ASSERT_TRUE(std::filesystem::exists(stale));
  SocketLink heir(stale, nullptr);
  EXPECT_TRUE(heir.Open(other_loop, [](std::span<const uint8_t>) {}).ok());
}

}  // namespace
}  // namespace clogd::logd
