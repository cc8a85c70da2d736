// The control socket: accept, check the peer is root, read request lines, answer each
// with one JSON line. Every socket is non-blocking; a slow or vanished client costs the
// daemon nothing but its buffers (bounded: a request line is capped, and a client that
// does not read its replies is not read from until it does).
#include "logd/control_server.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "logd/device_path.h"

namespace clogd::logd {

namespace {

using nlohmann::json;

// A client whose unread replies exceed this is not read from until they drain.
constexpr size_t kMaxPendingOutput = 1 << 20;

// Sent with no descriptor to spare: a constant, so nothing on that path needs one (the
// sanitizers' checks do, for instance).
constexpr const char* kOutOfDescriptors =
    "{\"error\":\"busy: clogd is out of file descriptors, try again later\"}\n";

std::string ErrnoText() { return std::strerror(errno); }

std::string ErrorLine(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status FillAddress(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("control socket path '" + path + "' must be 1 to " +
                           std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return Status::Ok();
}

// A socket file nobody listens on is left behind by a daemon that died; replace it. One
// somebody answers on belongs to a running daemon.
Status ClearStalePath(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError("control socket " + path + ": " + ErrnoText());
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Busy("control socket " + path + " exists and is not a socket; not touching it");
  }
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return IoError("control socket probe: " + ErrnoText());
  const int rc = connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(probe);
  if (rc == 0) return Busy("another clogd is listening on " + path);
  if (err != ECONNREFUSED) {
    return IoError("control socket " + path + ": " + std::strerror(err));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return IoError("removing stale control socket " + path + ": " + ErrnoText());
  }
  return Status::Ok();
}

}  // namespace

ControlServer::ControlServer(const LogEngine& engine, ControlOptions options)
    : ControlServer([&engine] { return &engine; }, std::move(options)) {}

ControlServer::ControlServer(std::function<const LogEngine*()> engine, ControlOptions options)
    : engine_(std::move(engine)), options_(std::move(options)) {}

ControlServer::~ControlServer() {
  while (!clients_.empty()) Drop(clients_.begin()->first);
  if (listen_fd_ >= 0) {
    if (options_.watch) options_.watch(listen_fd_, 0);
    close(listen_fd_);
  }
  if (spare_fd_ >= 0) close(spare_fd_);
  // Remove the socket file only if it is still ours (a successor may have replaced it).
  struct stat st {};
  if (created_path_ && lstat(options_.path.c_str(), &st) == 0 && st.st_dev == path_dev_ &&
      st.st_ino == path_ino_) {
    unlink(options_.path.c_str());
  }
}

void ControlServer::Log(Severity s, const std::string& message) const {
  if (options_.log) options_.log(s, "control socket: " + message);
}

Status ControlServer::Listen() {
  sockaddr_un addr;
  CLOG_RETURN_IF_ERROR(FillAddress(options_.path, addr));
  CLOG_RETURN_IF_ERROR(ClearStalePath(options_.path, addr));
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return IoError("control socket: " + ErrnoText());
  // The umask makes the file 0600 from its first moment (chmod after bind leaves a window
  // in which anyone may connect); the daemon is single-threaded, so this is safe.
  const mode_t old_mask = umask(0177);
  const int rc = bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  umask(old_mask);
  if (rc != 0) {
    close(fd);
    return IoError("control socket " + options_.path + ": bind: " + std::strerror(bind_errno));
  }
  struct stat st {};
  if (chmod(options_.path.c_str(), 0600) != 0 || lstat(options_.path.c_str(), &st) != 0 ||
      listen(fd, 16) != 0) {
    const std::string why = ErrnoText();
    close(fd);
    unlink(options_.path.c_str());
    return IoError("control socket " + options_.path + ": " + why);
  }
  listen_fd_ = fd;
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  created_path_ = true;
  path_dev_ = st.st_dev;
  path_ino_ = st.st_ino;
  options_.watch(listen_fd_, EPOLLIN);
  return Status::Ok();
}

bool ControlServer::Owns(int fd) const {
  return fd >= 0 && (fd == listen_fd_ || clients_.contains(fd));
}

void ControlServer::OnReadable(int fd) {
  if (fd == listen_fd_) {
    Accept();
    return;
  }
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (!ReadFrom(fd, it->second) || !WriteTo(fd, it->second)) {
    Drop(fd);
    return;
  }
  UpdateWatch(fd, it->second);
}

void ControlServer::OnWritable(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (!WriteTo(fd, it->second)) {
    Drop(fd);
    return;
  }
  UpdateWatch(fd, it->second);
}

void ControlServer::Accept() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0) {
        // Out of descriptors: the pending connection would keep the (level-triggered)
        // listen socket readable and the loop spinning. Free the spare, take the
        // connection, tell it why, and close it.
        close(spare_fd_);
        const int refused = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        const int accept_errno = errno;
        if (refused >= 0) {
          (void)send(refused, kOutOfDescriptors, std::strlen(kOutOfDescriptors),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
          close(refused);
          Log(Severity::kWarning, "accept: out of file descriptors; a client was turned away");
        }
        spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        // EMFILE says nothing about a pending connection (the descriptor is allocated
        // first): stop once the queue is empty.
        if (refused < 0 && accept_errno != EINTR && accept_errno != ECONNABORTED) return;
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        Log(Severity::kWarning, "accept: " + ErrnoText());
      }
      return;
    }
    AddClient(fd);
  }
}

void ControlServer::Adopt(int fd) {
  // Everything here assumes non-blocking sockets; an adopted one may not be.
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  AddClient(fd);
}

void ControlServer::AddClient(int fd) {
  Client& c = clients_[fd];
  c.id = next_client_id_++;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    c.out = ErrorLine("cannot identify the caller: " + ErrnoText()) + "\n";
    c.close_after_write = true;
  } else if (cred.uid != options_.allowed_uid) {
    Log(Severity::kInfo,
        "refused uid " + std::to_string(cred.uid) + " (pid " + std::to_string(cred.pid) + ")");
    c.out = ErrorLine("permission denied: clogd's control socket serves uid " +
                      std::to_string(options_.allowed_uid) + " only, you are uid " +
                      std::to_string(cred.uid)) +
            "\n";
    c.close_after_write = true;
  } else if (clients_.size() > options_.max_clients) {
    c.out = ErrorLine("busy: " + std::to_string(options_.max_clients) +
                      " control clients connected already") +
            "\n";
    c.close_after_write = true;
  }
  if (!WriteTo(fd, c)) {
    Drop(fd);
    return;
  }
  UpdateWatch(fd, c);
}

bool ControlServer::ReadFrom(int fd, Client& c) {
  if (c.close_after_write) return true;  // nothing more is read from a refused client
  // Not watched for input once at its end: called again, the peer hung up or failed
  // (epoll reports that regardless), and nobody is left to read a later answer.
  if (c.eof) return false;
  char buf[4096];
  // Read only while there is room: a client that does not read its replies stops being
  // read from (its requests wait in the socket, not in our memory).
  while (!c.eof && c.out.size() < kMaxPendingOutput) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;  // ECONNRESET and friends: the client is gone
    }
    if (n == 0) {
      c.eof = true;
      break;
    }
    c.in.append(buf, static_cast<size_t>(n));
    AnswerLines(fd, c);
    if (c.close_after_write) return true;
    // Lines queued behind a reply owed are bounded like one request line; a client that
    // sends more meanwhile is dropped.
    if (c.awaiting && c.in.size() > options_.max_request_bytes) return false;
  }
  if (c.eof && !c.awaiting) {
    // A request cut short by the client's exit is dropped; answers already owed are
    // still written (a client may half-close after its request).
    c.in.clear();
    if (c.out.empty()) return false;
    c.close_after_write = true;
  }
  return true;
}

void ControlServer::AnswerLines(int fd, Client& c) {
  size_t start = 0;
  for (size_t nl; !c.awaiting && (nl = c.in.find('\n', start)) != std::string::npos;
       start = nl + 1) {
    std::string line = c.in.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    if (line.find("\"replace-leg\"") != std::string::npos) {
      if (auto error = StartReplaceLeg(fd, c, line)) c.out += *error + "\n";
      continue;
    }
    c.out += Handle(line) + "\n";
  }
  c.in.erase(0, start);
  if (!c.awaiting && c.in.size() > options_.max_request_bytes) {
    c.out += ErrorLine("request longer than " + std::to_string(options_.max_request_bytes) +
                       " bytes without a newline") +
             "\n";
    c.in.clear();
    c.close_after_write = true;
  }
}

std::optional<std::string> ControlServer::StartReplaceLeg(int fd, Client& c,
                                                          const std::string& line) {
  const json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  auto cmd = req.is_object() ? req.find("cmd") : req.end();
  if (!req.is_object() || cmd == req.end() || *cmd != "replace-leg") return Handle(line);
  auto log = req.find("log");
  if (log == req.end() || !log->is_string() || log->get<std::string>().empty()) {
    return ErrorLine("bad request: replace-leg needs \"log\", the log's uuid");
  }
  auto device = req.find("device");
  if (device == req.end() || !device->is_string() || device->get<std::string>().empty()) {
    return ErrorLine("bad request: replace-leg needs \"device\", the new leg (a path)");
  }
  ClusterLog::LegReplacement change;
  change.device = device->get<std::string>();
  if (auto leg = req.find("leg"); leg != req.end() && !leg->is_null()) {
    if (!leg->is_number_unsigned()) {
      return ErrorLine("bad request: \"leg\" must be a leg's index in the table (0, 1, ...)");
    }
    change.leg = leg->get<uint32_t>();
  }
  if (auto offset = req.find("offset"); offset != req.end()) {
    if (!offset->is_number_unsigned()) {
      return ErrorLine("bad request: \"offset\" must be a sector count (0, 1, ...)");
    }
    change.offset = offset->get<uint64_t>();
  }
  if (!options_.replace_leg) return ErrorLine("this clogd cannot change legs");
  const std::string uuid = log->get<std::string>();
  c.awaiting = true;
  std::weak_ptr<bool> alive = alive_;
  const uint64_t id = c.id;
  Log(Severity::kInfo, "replace-leg of log " + uuid + " asked on fd " + std::to_string(fd));
  options_.replace_leg(uuid, change, [this, alive, id, uuid](Status s) {
    if (alive.expired()) return;
    if (!s.ok()) {
      Answered(id, ErrorLine(s.message()));
      return;
    }
    Answered(id, json{{"ok", true},
                      {"log", uuid},
                      {"message",
                       "every node runs the new table; every region is being copied "
                       "to the new leg (clogctl status --watch)"}}
                     .dump(-1, ' ', false, json::error_handler_t::replace));
  });
  return std::nullopt;
}

void ControlServer::Answered(uint64_t client_id, const std::string& reply) {
  for (auto& [fd, c] : clients_) {
    if (c.id != client_id) continue;
    c.awaiting = false;
    c.out += reply + "\n";
    AnswerLines(fd, c);  // the lines that waited behind it
    if (c.eof && !c.awaiting) {
      c.in.clear();
      c.close_after_write = true;
    }
    const int client_fd = fd;
    if (!WriteTo(client_fd, c)) {
      Drop(client_fd);
      return;
    }
    UpdateWatch(client_fd, c);
    return;
  }
}

bool ControlServer::WriteTo(int fd, Client& c) {
  while (!c.out.empty()) {
    const ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      return false;  // EPIPE, ECONNRESET: the client left without its reply
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  return !c.close_after_write;
}

void ControlServer::UpdateWatch(int fd, Client& c) {
  uint32_t want = 0;
  if (!c.close_after_write && !c.eof && c.out.size() < kMaxPendingOutput) want |= EPOLLIN;
  // At its end while a reply is owed: only a full hang-up (or an error) is worth a call.
  if (c.eof && c.awaiting) want |= EPOLLHUP;
  if (!c.out.empty()) want |= EPOLLOUT;
  // A refused client with its error line still queued needs EPOLLOUT only; hang-ups are
  // reported by epoll regardless and arrive as OnReadable.
  if (want != c.watched) {
    options_.watch(fd, want);
    c.watched = want;
  }
}

void ControlServer::Drop(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  if (it->second.watched != 0) options_.watch(fd, 0);
  clients_.erase(it);
  close(fd);
}

std::string ControlServer::Handle(const std::string& request_line) const {
  const json req = json::parse(request_line, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) {
    return ErrorLine("bad request: not JSON (send one object per line, e.g. {\"cmd\":\"status\"})");
  }
  if (!req.is_object()) return ErrorLine("bad request: not a JSON object");
  auto cmd = req.find("cmd");
  if (cmd == req.end() || !cmd->is_string()) {
    return ErrorLine("bad request: no \"cmd\" string (known commands: status, nodes, replace-leg)");
  }
  const std::string name = cmd->get<std::string>();
  if (name == "replace-leg") {
    return ErrorLine(
        "replace-leg is answered later: send it on a connection (clogctl "
        "replace-leg)");
  }
  if (name != "status" && name != "nodes") {
    return ErrorLine("unknown command \"" + name +
                     "\" (known commands: status, nodes, replace-leg)");
  }
  const LogEngine* engine = engine_();
  if (engine == nullptr) {
    return ErrorLine("clogd has no log engine yet (cluster mode: waiting for corosync)");
  }
  ReportOptions report;
  report.node = options_.node;
  if (report.node == 0 && !engine->ClusterLogs().empty()) {
    report.node = engine->ClusterLogs().front()->node();
  }
  if (name == "status") {
    // Reading other members' slots costs a read of the log device; `clogctl status
    // --watch` asks without it.
    bool device_slots = true;
    if (auto ds = req.find("device_slots"); ds != req.end()) {
      if (!ds->is_boolean())
        return ErrorLine("bad request: \"device_slots\" must be true or false");
      device_slots = ds->get<bool>();
    }
    if (device_slots) report.slot_reader = options_.slot_reader;
    return StatusJson(BuildStatusReport(*engine, report));
  }
  return NodesJson(NodesOf(BuildStatusReport(*engine, report)));
}

Result<SlotPeek> PeekLogDeviceSlots(const std::string& device, uint64_t nr_regions,
                                    const std::vector<uint32_t>& slots) {
  auto dev = OpenLogDevice(device);
  if (!dev.ok()) return dev.status();
  return PeekSlots(**dev, nr_regions, slots);
}

}  // namespace clogd::logd
