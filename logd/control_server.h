// clogd's control socket: a Unix stream socket (default /run/clogd.sock, mode 0600) on
// which root asks for the status of the logs this daemon serves. One JSON request per
// line, one JSON reply per line (protocol in logd/README.md). Non-blocking and driven by
// the daemon's single epoll loop: the server tells the loop which fds to watch through a
// callback, and the loop calls OnReadable/OnWritable. No threads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "logd/cluster_log.h"
#include "logd/log_engine.h"
#include "logd/status_report.h"
#include "region/status.h"

namespace clogd::logd {

inline constexpr const char* kDefaultControlSocket = "/run/clogd.sock";

struct ControlOptions {
  std::string path = kDefaultControlSocket;
  // This daemon's node id, for the replies; 0: the node id of its clustered logs (in
  // cluster mode it comes from corosync, after the socket may already be serving).
  NodeId node = 0;
  // Only peers with this uid (SO_PEERCRED) are served; others get one error line.
  uid_t allowed_uid = 0;
  // The loop must watch `fd` for `events` (EPOLLIN/EPOLLOUT bits); 0: stop watching it
  // (called before the fd is closed). Required.
  std::function<void(int fd, uint32_t events)> watch;
  // Reads a clustered-disk log device for other members' slots on a full `status`
  // request. Empty: those marks are reported as not known here.
  SlotReader slot_reader;
  // Carries out a `replace-leg` request on the clustered log `uuid` (the daemon hands it
  // to that log's ClusterLog::ReplaceLeg); `done` gets the outcome, later, on the loop.
  // Empty: the command is refused.
  std::function<void(const std::string& uuid, const ClusterLog::LegReplacement& change,
                     std::function<void(Status)> done)>
      replace_leg;
  LogFn log;  // may be empty
  size_t max_clients = 16;
  size_t max_request_bytes = 64 * 1024;
};

class ControlServer {
 public:
  ControlServer(const LogEngine& engine, ControlOptions options);
  // For a daemon whose engine comes later (cluster mode creates it once corosync is
  // reached): until `engine` returns non-null, requests get an error saying so.
  ControlServer(std::function<const LogEngine*()> engine, ControlOptions options);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket (mode 0600). A stale socket file (nobody listening) is replaced;
  // one a live daemon listens on, or a path that is not a socket, is refused (kBusy).
  Status Listen();
  // Serves an already connected stream socket (tests use a socketpair), made
  // non-blocking. The peer check applies to it like to an accepted connection.
  void Adopt(int fd);

  // True if `fd` is the listening socket or one of the clients.
  bool Owns(int fd) const;
  // The loop saw `fd` readable (or hung up / in error).
  void OnReadable(int fd);
  void OnWritable(int fd);

  int listen_fd() const { return listen_fd_; }
  size_t client_count() const { return clients_.size(); }

  // The reply line (without newline) for one request line that is answered at once;
  // exposed for tests. (replace-leg is answered later: see ReadFrom.)
  std::string Handle(const std::string& request_line) const;

 private:
  struct Client {
    uint64_t id = 0;  // tells a later answer's client from one that reuses its fd
    std::string in;   // bytes received, not yet a complete line
    std::string out;  // reply bytes not yet written
    bool close_after_write = false;
    bool eof = false;
    // A request of this client is answered later (replace-leg): the lines after it wait,
    // so that replies keep the order of the requests.
    bool awaiting = false;
    uint32_t watched = 0;  // events the loop watches for this fd
  };

  // Answers the complete lines in c.in, up to one that is answered later.
  void AnswerLines(int fd, Client& c);
  // Starts a replace-leg request (its answer comes to Answered); or its error line now.
  std::optional<std::string> StartReplaceLeg(int fd, Client& c, const std::string& line);
  void Answered(uint64_t client_id, const std::string& reply);

  void Accept();
  void AddClient(int fd);
  // Reads what is there, answers complete lines; false if the client is gone.
  bool ReadFrom(int fd, Client& c);
  // Writes what it can; false if the client is gone.
  bool WriteTo(int fd, Client& c);
  void UpdateWatch(int fd, Client& c);
  void Drop(int fd);
  void Log(Severity s, const std::string& message) const;

  std::function<const LogEngine*()> engine_;
  ControlOptions options_;
  int listen_fd_ = -1;
  // Held open so that, out of descriptors, a pending connection can still be taken and
  // turned away instead of leaving the listen socket readable forever (a busy loop).
  int spare_fd_ = -1;
  bool created_path_ = false;
  dev_t path_dev_ = 0;
  ino_t path_ino_ = 0;
  std::map<int, Client> clients_;
  uint64_t next_client_id_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The production SlotReader: opens the device (path or major:minor) and reads the slots
// with PeekSlots, never writing.
Result<SlotPeek> PeekLogDeviceSlots(const std::string& device, uint64_t nr_regions,
                                    const std::vector<uint32_t>& slots);

}  // namespace clogd::logd
