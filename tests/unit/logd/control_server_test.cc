// The control socket as clogctl and an operator's scripts use it, over real Unix sockets:
// one JSON reply per request line; errors as {"error": ...} that name the problem; a
// client that is not the allowed uid, sends garbage, floods, or vanishes mid-request does
// not hurt the server or the other clients; the socket file is 0600, a live one is never
// stolen, a stale one is replaced.
#include "logd/control_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "control_loop.h"
#include "engine_fixture.h"

namespace clogd::logd {
namespace {

using testing::CollectingSink;
using testing::ControlLoop;
using testing::CtrPayload;
using testing::Devices;
using testing::RawClient;
using testing::Req;

nlohmann::json Parse(const std::optional<std::string>& line) {
  EXPECT_TRUE(line.has_value()) << "no reply";
  if (!line) return nullptr;
  auto j = nlohmann::json::parse(*line, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "reply is not JSON: " << *line;
  return j;
}

std::string ErrorOf(const std::optional<std::string>& line) {
  auto j = Parse(line);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_string()) {
    ADD_FAILURE() << "not an error reply: " << line.value_or("(none)");
    return {};
  }
  return j["error"].get<std::string>();
}

int ConnectTo(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class ControlServerTest : public ::testing::Test {
 protected:
  ControlServerTest() {
    devices_.Add("/dev/mem0", 2 << 20);
    EngineOptions o;
    o.node_id = 2;
    engine_ = std::make_unique<LogEngine>(devices_.Opener(), o, sink_);
    const std::string len = std::to_string(64 * 1024);
    engine_->Submit(
        Req(DM_ULOG_CTR, 1, "LVM-ctl", CtrPayload(len + " disk /dev/mem0 1024 nosync")));
    engine_->Submit(Req(DM_ULOG_RESUME, 1, "LVM-ctl"));
    char dir[] = "/tmp/clogd-ctl-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  ~ControlServerTest() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  ControlOptions Options() {
    ControlOptions o;
    o.path = dir_ + "/clogd.sock";
    o.node = 2;
    o.watch = loop_.Watcher();
    o.allowed_uid = getuid();
    return o;
  }
  ControlServer& Server(ControlOptions o) {
    server_ = std::make_unique<ControlServer>(*engine_, std::move(o));
    loop_.Serve(server_.get());
    return *server_;
  }
  // A connected client over a socketpair the server adopts.
  std::unique_ptr<RawClient> Pair(ControlServer& server) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    server.Adopt(sv[0]);
    last_server_fd_ = sv[0];
    return std::make_unique<RawClient>(sv[1]);
  }

  Devices devices_;
  CollectingSink sink_;
  std::unique_ptr<LogEngine> engine_;
  std::string dir_;
  ControlLoop loop_;
  std::unique_ptr<ControlServer> server_;
  int last_server_fd_ = -1;
};

TEST_F(ControlServerTest, StatusAndNodesRequestsGetOneJsonReplyEach) {
  auto& server = Server(Options());
  auto client = Pair(server);
  ASSERT_TRUE(client->Send("{\"cmd\":\"status\"}\n"));
  auto status = StatusFromJson(client->Reply(loop_).value_or(""));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->node, 2u);
  ASSERT_EQ(status->logs.size(), 1u);
  EXPECT_EQ(status->logs[0].uuid, "LVM-ctl");
  EXPECT_EQ(status->logs[0].in_sync, 64u);

  // Two requests in one write (and a CRLF line end): two replies, in order.
  ASSERT_TRUE(client->Send("{\"cmd\":\"nodes\"}\r\n{\"cmd\":\"status\",\"device_slots\":false}\n"));
  auto nodes = NodesFromJson(client->Reply(loop_).value_or(""));
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  EXPECT_EQ(nodes->node, 2u);
  EXPECT_TRUE(StatusFromJson(client->Reply(loop_).value_or("")).ok());
  EXPECT_EQ(server.client_count(), 1u) << "the connection stays open for more requests";
}

TEST_F(ControlServerTest, UnknownCommandAndBadRequestsGetErrorsNamingThem) {
  auto& server = Server(Options());
  auto client = Pair(server);
  client->Send("{\"cmd\":\"frobnicate\"}\n");
  const std::string unknown = ErrorOf(client->Reply(loop_));
  EXPECT_NE(unknown.find("unknown command \"frobnicate\""), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("status, nodes"), std::string::npos) << "lists what is known";

  client->Send("this is not json\n");
  EXPECT_NE(ErrorOf(client->Reply(loop_)).find("not JSON"), std::string::npos);
  client->Send("[1,2,3]\n");
  EXPECT_NE(ErrorOf(client->Reply(loop_)).find("not a JSON object"), std::string::npos);
  client->Send("{\"command\":\"status\"}\n");
  EXPECT_NE(ErrorOf(client->Reply(loop_)).find("\"cmd\""), std::string::npos);
  client->Send("{\"cmd\":\"status\",\"device_slots\":\"yes\"}\n");
  EXPECT_NE(ErrorOf(client->Reply(loop_)).find("device_slots"), std::string::npos);

  // After all that, the same connection is still served.
  client->Send("{\"cmd\":\"status\"}\n");
  EXPECT_TRUE(StatusFromJson(client->Reply(loop_).value_or("")).ok());
}

// replace-leg is answered once the cluster decided: the lines the client sent after it wait
// behind it, and its bad forms are refused at once naming the field.
TEST_F(ControlServerTest, ReplaceLegIsAnsweredLaterAndRequestsBehindItWait) {
  ControlOptions o = Options();
  std::vector<std::pair<std::string, ClusterLog::LegReplacement>> asked;
  std::function<void(Status)> decide;
  o.replace_leg = [&](const std::string& uuid, const ClusterLog::LegReplacement& change,
                      std::function<void(Status)> done) {
    asked.emplace_back(uuid, change);
    decide = std::move(done);
  };
  auto& server = Server(std::move(o));
  auto client = Pair(server);
  client->Send(
      "{\"cmd\":\"replace-leg\",\"log\":\"LVM-ctl\",\"device\":\"/dev/sdz\",\"leg\":1,"
      "\"offset\":8}\n{\"cmd\":\"nodes\"}\n");
  EXPECT_EQ(client->Reply(loop_, 200), std::nullopt) << "answered before the cluster decided";
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].first, "LVM-ctl");
  EXPECT_EQ(asked[0].second.device, "/dev/sdz");
  EXPECT_EQ(asked[0].second.leg, std::optional<uint32_t>(1));
  EXPECT_EQ(asked[0].second.offset, 8u);
  decide(Status::Ok());
  const std::string done = client->Reply(loop_).value_or("");
  EXPECT_NE(done.find("\"ok\":true"), std::string::npos) << done;
  EXPECT_TRUE(NodesFromJson(client->Reply(loop_).value_or("")).ok()) << "then the next line";

  // An abort comes back as the error line; a client gone meanwhile costs nothing.
  client->Send("{\"cmd\":\"replace-leg\",\"log\":\"LVM-ctl\",\"device\":\"/dev/sdz\"}\n");
  ASSERT_TRUE(loop_.RunUntil([&] { return asked.size() == 2; }));
  EXPECT_EQ(asked[1].second.leg, std::nullopt) << "no leg: an addition";
  decide(Busy("node 3 could not load the table"));
  EXPECT_EQ(ErrorOf(client->Reply(loop_)), "node 3 could not load the table");
  client->Send("{\"cmd\":\"replace-leg\",\"log\":\"LVM-ctl\",\"device\":\"/dev/sdz\"}\n");
  ASSERT_TRUE(loop_.RunUntil([&] { return asked.size() == 3; }));
  client->Close();
  EXPECT_TRUE(loop_.RunUntil([&] { return server.client_count() == 0; }));
  decide(Status::Ok());

  // Half-closed after its request (like socat): still answered, then closed.
  auto socat = Pair(server);
  socat->Send("{\"cmd\":\"replace-leg\",\"log\":\"LVM-ctl\",\"device\":\"/dev/sdz\"}\n");
  shutdown(socat->fd(), SHUT_WR);
  ASSERT_TRUE(loop_.RunUntil([&] { return asked.size() == 4; }));
  EXPECT_EQ(socat->Reply(loop_, 200), std::nullopt);
  decide(Status::Ok());
  EXPECT_NE(socat->Reply(loop_).value_or("").find("\"ok\":true"), std::string::npos);
  EXPECT_TRUE(socat->WaitClosed(loop_));

  auto other = Pair(server);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"cmd":"replace-leg","device":"/dev/sdz"})", "\"log\""},
      {R"({"cmd":"replace-leg","log":"LVM-ctl"})", "\"device\""},
      {R"({"cmd":"replace-leg","log":"LVM-ctl","device":"/dev/sdz","leg":-1})", "\"leg\""},
      {R"({"cmd":"replace-leg","log":"LVM-ctl","device":"/dev/sdz","offset":"x"})", "\"offset\""},
  };
  for (const auto& [line, names] : bad) {
    other->Send(line + "\n");
    const std::string error = ErrorOf(other->Reply(loop_));
    EXPECT_NE(error.find(names), std::string::npos) << line << " -> " << error;
  }
  EXPECT_EQ(asked.size(), 4u) << "nothing bad was passed on";
}

TEST_F(ControlServerTest, AClientThatVanishesMidRequestDoesNotHurtTheServer) {
  auto& server = Server(Options());
  auto bystander = Pair(server);
  {
    auto quitter = Pair(server);
    quitter->Send("{\"cmd\":\"sta");  // half a request, then gone
  }
  {
    auto impatient = Pair(server);
    impatient->Send("{\"cmd\":\"status\"}\n");  // gone before its reply is written
  }
  EXPECT_TRUE(loop_.RunUntil([&] { return server.client_count() == 1; }))
      << "both departed clients are dropped, " << server.client_count() << " left";
  bystander->Send("{\"cmd\":\"status\"}\n");
  EXPECT_TRUE(StatusFromJson(bystander->Reply(loop_).value_or("")).ok());
}

TEST_F(ControlServerTest, AHalfClosedClientStillGetsItsReply) {
  auto& server = Server(Options());
  auto client = Pair(server);
  client->Send("{\"cmd\":\"nodes\"}\n");
  shutdown(client->fd(), SHUT_WR);  // like `socat` after its stdin ends
  EXPECT_TRUE(NodesFromJson(client->Reply(loop_).value_or("")).ok());
  EXPECT_TRUE(client->WaitClosed(loop_));
  EXPECT_EQ(server.client_count(), 0u);
}

TEST_F(ControlServerTest, OversizedRequestIsRefusedAndTheClientDropped) {
  ControlOptions o = Options();
  o.max_request_bytes = 1000;
  auto& server = Server(std::move(o));
  auto client = Pair(server);
  client->Send(std::string(5000, 'x'));
  EXPECT_NE(ErrorOf(client->Reply(loop_)).find("longer than 1000 bytes"), std::string::npos);
  EXPECT_TRUE(client->WaitClosed(loop_));
  EXPECT_EQ(server.client_count(), 0u);
}

TEST_F(ControlServerTest, AClientThatDoesNotReadIsNotReadFromEither) {
  auto& server = Server(Options());
  auto client = Pair(server);
  const int server_end = last_server_fd_;
  // Requests without reading the replies: once the replies fill the socket and a bounded
  // buffer, the server stops reading this client (its requests wait in the socket, not
  // in the daemon's memory).
  const std::string request = "{\"cmd\":\"status\"}\n";
  size_t sent = 0;
  const bool stopped = loop_.RunUntil(
      [&] {
        while (send(client->fd(), request.data(), request.size(), MSG_NOSIGNAL) ==
               ssize_t(request.size())) {
          ++sent;
        }
        return (loop_.Events(server_end) & EPOLLIN) == 0;
      },
      20000);
  EXPECT_TRUE(stopped) << "still reading after " << sent << " unread replies";
  EXPECT_EQ(server.client_count(), 1u);
  // Once the client reads, the server catches up: every request sent gets its reply.
  size_t replies = 0;
  while (replies < sent) {
    auto line = client->Reply(loop_, 5000);
    if (!line || !StatusFromJson(*line).ok()) break;
    ++replies;
  }
  EXPECT_EQ(replies, sent);
}

TEST_F(ControlServerTest, OnlyTheAllowedUidIsServed) {
  ControlOptions o = Options();
  o.allowed_uid = getuid() + 1;  // we are not that user
  auto& server = Server(std::move(o));
  auto client = Pair(server);
  const std::string error = ErrorOf(client->Reply(loop_));
  EXPECT_NE(error.find("permission denied"), std::string::npos) << error;
  EXPECT_NE(error.find("uid " + std::to_string(getuid())), std::string::npos) << error;
  EXPECT_TRUE(client->WaitClosed(loop_));
  EXPECT_EQ(server.client_count(), 0u);
}

TEST_F(ControlServerTest, ListensOnASocketFileOnlyRootCanUse) {
  auto& server = Server(Options());
  ASSERT_TRUE(server.Listen().ok());
  struct stat st {};
  ASSERT_EQ(lstat((dir_ + "/clogd.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(loop_.Watching(server.listen_fd()));

  RawClient client(ConnectTo(dir_ + "/clogd.sock"));
  ASSERT_GE(client.fd(), 0);
  client.Send("{\"cmd\":\"status\"}\n");
  EXPECT_TRUE(StatusFromJson(client.Reply(loop_).value_or("")).ok());
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/clogd.sock")) << "removed at shutdown";
}

TEST_F(ControlServerTest, NeverStealsALiveSocketButReplacesAStaleOne) {
  auto& first = Server(Options());
  ASSERT_TRUE(first.Listen().ok());
  ControlLoop other_loop;
  ControlOptions o = Options();
  o.watch = other_loop.Watcher();
  ControlServer second(*engine_, o);
  const Status busy = second.Listen();
  EXPECT_EQ(busy.code(), Errc::kBusy) << busy.ToString();
  EXPECT_NE(busy.message().find("another clogd"), std::string::npos);

  // A daemon that died leaves its socket file behind: the next one takes the path over.
  const std::string stale = dir_ + "/stale.sock";
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, stale.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  ControlOptions s = Options();
  s.path = stale;
  s.watch = other_loop.Watcher();
  ControlServer successor(*engine_, s);
  EXPECT_TRUE(successor.Listen().ok());

  // A path that is not a socket is not touched.
  const std::string file = dir_ + "/not-a-socket";
  std::fclose(std::fopen(file.c_str(), "w"));
  ControlOptions f = Options();
  f.path = file;
  f.watch = other_loop.Watcher();
  ControlServer refused(*engine_, f);
  EXPECT_EQ(refused.Listen().code(), Errc::kBusy);
  EXPECT_TRUE(std::filesystem::is_regular_file(file));
}

TEST_F(ControlServerTest, OutOfDescriptorsTurnsClientsAwayWithoutSpinning) {
  auto& server = Server(Options());
  ASSERT_TRUE(server.Listen().ok());
  // Use up every descriptor the process may have (a low limit keeps that quick).
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  const int client_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client_fd, 0);
  rlimit low = old;
  low.rlim_cur = rlim_t(client_fd) + 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> fillers;
  for (int fd; (fd = dup(client_fd)) >= 0;) fillers.push_back(fd);
  ASSERT_EQ(errno, EMFILE);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, (dir_ + "/clogd.sock").c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(client_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  RawClient turned_away(client_fd);
  const std::optional<std::string> reply = turned_away.Reply(loop_);
  const bool closed = turned_away.WaitClosed(loop_);
  pollfd listen{server.listen_fd(), POLLIN, 0};
  const int pending = poll(&listen, 1, 0);
  // Descriptors back before checking anything (the checks, and sanitizers, need some).
  for (int fd : fillers) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  const std::string error = ErrorOf(reply);
  EXPECT_NE(error.find("out of file descriptors"), std::string::npos) << error;
  EXPECT_TRUE(closed);
  EXPECT_EQ(pending, 0) << "nothing left pending: the loop does not spin";

  RawClient later(ConnectTo(dir_ + "/clogd.sock"));
  ASSERT_GE(later.fd(), 0);
  later.Send("{\"cmd\":\"nodes\"}\n");
  EXPECT_TRUE(NodesFromJson(later.Reply(loop_).value_or("")).ok()) << "served again";
}

TEST_F(ControlServerTest, ADaemonWithoutAnEngineYetSaysSo) {
  ControlOptions o = Options();
  ControlServer server([] { return nullptr; }, o);
  loop_.Serve(&server);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  server.Adopt(sv[0]);
  RawClient client(sv[1]);
  client.Send("{\"cmd\":\"status\"}\n");
  EXPECT_NE(ErrorOf(client.Reply(loop_)).find("no log engine yet"), std::string::npos);
}

}  // namespace
}  // namespace clogd::logd
