// CpgTransport: ClusterTransport over corosync CPG (see cpg_transport.h).
#include "logd/cpg_transport.h"

#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <utility>

#include "logd/cpg_views.h"

namespace clogd::logd {
namespace {

// CS_ERR_TRY_AGAIN on join/leave (corosync syncing after a ring change): a few short waits,
// then the caller hears kBusy. The event loop is blocked for at most ~10 ms.
constexpr int kTryAgainAttempts = 5;
constexpr int kTryAgainWaitMs = 2;

std::string CsError(cs_error_t e) {
  return std::string(cs_strerror(e)) + " (" + std::to_string(static_cast<int>(e)) + ")";
}

template <typename Fn>
cs_error_t RetryTryAgain(Fn fn) {
  cs_error_t r = CS_ERR_TRY_AGAIN;
  for (int i = 0; i < kTryAgainAttempts; ++i) {
    r = fn();
    if (r != CS_ERR_TRY_AGAIN) break;
    (void)poll(nullptr, 0, kTryAgainWaitMs);
  }
  return r;
}

cpg_name MakeCpgName(const std::string& group) {
  cpg_name name{};
  name.length = static_cast<uint32_t>(group.size());
  std::memcpy(name.value, group.data(), group.size());
  return name;
}

// The descriptor hung up with nothing left to read: corosync is gone.
bool HungUp(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 0) != 1) return false;
  return (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0 && (p.revents & POLLIN) == 0;
}

CpgConfchg ToConfchg(const cpg_address* members, size_t n_members, const cpg_address* left,
                     size_t n_left, const cpg_address* joined, size_t n_joined) {
  auto convert = [](const cpg_address* a, size_t n) {
    std::vector<CpgAddress> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back({a[i].nodeid, a[i].pid, a[i].reason});
    return out;
  };
  return {convert(members, n_members), convert(left, n_left), convert(joined, n_joined)};
}

}  // namespace

// One joined group. It is the sequencer's sink: what the sequencer hands on goes to the
// handler unless the group was left or lost meanwhile.
struct CpgTransport::Group final : CpgViewSink {
  Group(std::string group_name, ClusterHandler* group_handler, NodeId local)
      : name(std::move(group_name)),
        handler(group_handler),
        views(local, static_cast<uint32_t>(getpid()), *this) {}

  void OnViewMembership(const Membership& membership) override {
    if (!dead) handler->OnMembership(membership);
  }
  void OnViewDeliver(NodeId from, std::span<const uint8_t> payload) override {
    if (!dead) handler->OnDeliver(from, payload);
  }
  void OnViewSyncToSend(std::vector<uint8_t> frame) override {
    syncs.push_back(std::move(frame));
    (void)FlushSyncs();  // what CS_ERR_TRY_AGAIN leaves is sent at the next dispatch/multicast
  }
  void OnViewLost(const std::string& why) override {
    if (dead) return;
    dead = true;
    lost_why = why;
  }

  // Multicasts the pending view-sync frames, oldest first.
  cs_error_t FlushSyncs() {
    while (!syncs.empty() && !dead) {
      iovec iov{syncs.front().data(), syncs.front().size()};
      cs_error_t r = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
      if (r != CS_OK) return r;
      syncs.pop_front();
    }
    return CS_OK;
  }

  std::string name;
  ClusterHandler* handler;
  cpg_handle_t handle = 0;
  int fd = -1;
  bool dead = false;     // left or lost: nothing more reaches the handler
  std::string lost_why;  // the view was lost: the handler hears OnTransportLost after dispatch
  std::deque<std::vector<uint8_t>> syncs;
  CpgViewSequencer views;
};

namespace {

CpgTransport::Group* GroupOf(cpg_handle_t handle) {
  void* context = nullptr;
  if (cpg_context_get(handle, &context) != CS_OK) return nullptr;
  return static_cast<CpgTransport::Group*>(context);
}

void OnCpgDeliver(cpg_handle_t handle, const cpg_name* /*group*/, uint32_t nodeid, uint32_t pid,
                  void* msg, size_t msg_len) {
  CpgTransport::Group* g = GroupOf(handle);
  if (g == nullptr || g->dead) return;
  g->views.OnDeliver(nodeid, pid, {static_cast<const uint8_t*>(msg), msg_len});
}

void OnCpgConfchg(cpg_handle_t handle, const cpg_name* /*group*/, const cpg_address* members,
                  size_t n_members, const cpg_address* left, size_t n_left,
                  const cpg_address* joined, size_t n_joined) {
  CpgTransport::Group* g = GroupOf(handle);
  if (g == nullptr || g->dead) return;
  g->views.OnConfchg(ToConfchg(members, n_members, left, n_left, joined, n_joined));
}

void OnCpgTotem(cpg_handle_t handle, cpg_ring_id ring_id, uint32_t n_members,
                const uint32_t* /*members*/) {
  CpgTransport::Group* g = GroupOf(handle);
  if (g == nullptr || g->dead) return;
  g->views.OnTotem(ring_id.seq, n_members);
}

// The connection handle joins no group; corosync still sends it totem confchgs.
void IgnoreDeliver(cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void*, size_t) {}
void IgnoreConfchg(cpg_handle_t, const cpg_name*, const cpg_address*, size_t, const cpg_address*,
                   size_t, const cpg_address*, size_t) {}
void IgnoreTotem(cpg_handle_t, cpg_ring_id, uint32_t, const uint32_t*) {}

}  // namespace

CpgTransport::CpgTransport(LogFn log, FdWatch watch)
    : log_(std::move(log)), watch_(std::move(watch)) {}

CpgTransport::~CpgTransport() {
  for (auto& entry : groups_) {
    Group& g = *entry.second;
    g.dead = true;
    cpg_name cname = MakeCpgName(entry.first);
    (void)RetryTryAgain([&] { return cpg_leave(g.handle, &cname); });
    watch_(g.fd, false);
    cpg_finalize(g.handle);
  }
  groups_.clear();
  for (auto& g : graveyard_) cpg_finalize(g->handle);
  graveyard_.clear();
  if (control_ != 0) {
    watch_(control_fd_, false);
    cpg_finalize(control_);
  }
}

void CpgTransport::Log(Severity severity, const std::string& message) const {
  if (log_) log_(severity, "cpg: " + message);
}

bool CpgTransport::connected() const { return control_ != 0; }

NodeId CpgTransport::LocalNode() const { return local_node_; }

Status CpgTransport::Connect() {
  if (control_ != 0) return Status::Ok();
  cpg_model_v1_data_t model{};
  model.model = CPG_MODEL_V1;
  model.cpg_deliver_fn = IgnoreDeliver;
  model.cpg_confchg_fn = IgnoreConfchg;
  model.cpg_totem_confchg_fn = IgnoreTotem;
  cpg_handle_t handle = 0;
  cs_error_t r = cpg_model_initialize(&handle, CPG_MODEL_V1,
                                      reinterpret_cast<cpg_model_data_t*>(&model), nullptr);
  if (r != CS_OK) {
    return IoError("cannot connect to corosync (is it running?): cpg_model_initialize: " +
                   CsError(r));
  }
  unsigned int node = 0;
  int fd = -1;
  r = cpg_local_get(handle, &node);
  if (r == CS_OK) r = cpg_fd_get(handle, &fd);
  if (r != CS_OK) {
    cpg_finalize(handle);
    return IoError("corosync CPG: cpg_local_get/cpg_fd_get: " + CsError(r));
  }
  control_ = handle;
  control_fd_ = fd;
  local_node_ = node;
  watch_(fd, true);
  Log(Severity::kInfo, "connected to corosync, local node id " + std::to_string(node));
  return Status::Ok();
}

Status CpgTransport::Join(const std::string& group, ClusterHandler* handler) {
  if (handler == nullptr) return InvalidArgument("join " + group + ": no handler");
  if (group.empty() || group.size() > CPG_MAX_NAME_LENGTH) {
    return InvalidArgument("CPG group name must be 1.." + std::to_string(CPG_MAX_NAME_LENGTH) +
                           " bytes: '" + group + "'");
  }
  if (groups_.contains(group)) return InvalidArgument("already in CPG group " + group);
  CLOG_RETURN_IF_ERROR(Connect());

  auto g = std::make_unique<Group>(group, handler, local_node_);
  cpg_model_v1_data_t model{};
  model.model = CPG_MODEL_V1;
  model.cpg_deliver_fn = OnCpgDeliver;
  model.cpg_confchg_fn = OnCpgConfchg;
  model.cpg_totem_confchg_fn = OnCpgTotem;
  model.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF;  // the ring a lone joiner is in
  cs_error_t r = cpg_model_initialize(&g->handle, CPG_MODEL_V1,
                                      reinterpret_cast<cpg_model_data_t*>(&model), g.get());
  if (r != CS_OK) {
    return IoError("cannot connect to corosync for group " + group +
                   ": cpg_model_initialize: " + CsError(r));
  }
  r = cpg_fd_get(g->handle, &g->fd);
  cpg_name cname = MakeCpgName(group);
  if (r == CS_OK) r = RetryTryAgain([&] { return cpg_join(g->handle, &cname); });
  if (r != CS_OK) {
    cpg_finalize(g->handle);
    if (r == CS_ERR_TRY_AGAIN) return Busy("corosync busy (CS_ERR_TRY_AGAIN) joining " + group);
    return IoError("cpg_join " + group + ": " + CsError(r));
  }
  watch_(g->fd, true);
  groups_.emplace(group, std::move(g));
  return Status::Ok();
}

Status CpgTransport::Leave(const std::string& group) {
  auto it = groups_.find(group);
  if (it == groups_.end()) return NotFound("not in CPG group " + group);
  std::unique_ptr<Group> g = std::move(it->second);
  groups_.erase(it);
  g->dead = true;
  cpg_name cname = MakeCpgName(group);
  const cs_error_t r = RetryTryAgain([&] { return cpg_leave(g->handle, &cname); });
  watch_(g->fd, false);
  Bury(std::move(g));
  if (r == CS_ERR_TRY_AGAIN) {
    return Busy("corosync busy (CS_ERR_TRY_AGAIN): dropped group " + group +
                " without a clean leave (the others see the process down)");
  }
  if (r != CS_OK) return IoError("cpg_leave " + group + ": " + CsError(r) + " (group dropped)");
  return Status::Ok();
}

Status CpgTransport::Multicast(const std::string& group, std::span<const uint8_t> message) {
  if (message.size() > kMaxClusterMessage) {
    return InvalidArgument("message of " + std::to_string(message.size()) +
                           " bytes is larger than " + std::to_string(kMaxClusterMessage));
  }
  auto it = groups_.find(group);
  if (it == groups_.end() || it->second->dead) {
    return InvalidArgument("multicast to CPG group " + group + ": not in the group");
  }
  Group& g = *it->second;
  if (!g.views.has_view()) {
    return InvalidArgument("multicast to CPG group " + group + " before its first membership");
  }
  cs_error_t r = g.FlushSyncs();
  if (r == CS_OK) {
    uint8_t kind = kCpgFrameApp;
    iovec iov[2] = {{&kind, 1}, {const_cast<uint8_t*>(message.data()), message.size()}};
    r = cpg_mcast_joined(g.handle, CPG_TYPE_AGREED, iov, 2);
  }
  if (r == CS_OK) return Status::Ok();
  if (r == CS_ERR_TRY_AGAIN) return Busy("corosync flow control (CS_ERR_TRY_AGAIN)");
  return IoError("cpg_mcast_joined " + group + ": " + CsError(r));
}

CpgTransport::Group* CpgTransport::FindByFd(int fd) {
  for (auto& [name, g] : groups_) {
    if (g->fd == fd) return g.get();
  }
  return nullptr;
}

void CpgTransport::Dispatch(int fd) {
  if (fd < 0) return;
  cpg_handle_t handle = 0;
  if (control_ != 0 && fd == control_fd_) {
    handle = control_;
  } else if (Group* g = FindByFd(fd)) {
    handle = g->handle;
  } else {
    return;  // a descriptor already closed (stale event)
  }
  ++dispatching_;
  const cs_error_t r = cpg_dispatch(handle, CS_DISPATCH_ALL);
  --dispatching_;
  const bool gone = (r != CS_OK && r != CS_ERR_TRY_AGAIN) || HungUp(fd);
  FinishDispatch();
  if (gone) {
    TransportLost("corosync connection lost (cpg_dispatch: " + CsError(r) +
                  (r == CS_OK ? ", descriptor hung up" : "") + ")");
  }
}

void CpgTransport::Bury(std::unique_ptr<Group> group) {
  if (dispatching_ > 0) {
    graveyard_.push_back(std::move(group));  // libcpg is inside this handle's dispatch
    return;
  }
  cpg_finalize(group->handle);
}

void CpgTransport::FinishDispatch() {
  if (dispatching_ > 0) return;
  for (auto& g : graveyard_) cpg_finalize(g->handle);
  graveyard_.clear();
  std::vector<std::unique_ptr<Group>> lost;
  for (auto it = groups_.begin(); it != groups_.end();) {
    if (it->second->lost_why.empty()) {
      (void)it->second->FlushSyncs();
      ++it;
      continue;
    }
    lost.push_back(std::move(it->second));
    it = groups_.erase(it);
  }
  for (auto& g : lost) {
    Log(Severity::kWarning, "group " + g->name + ": " + g->lost_why + "; joining again");
    cpg_name cname = MakeCpgName(g->name);
    (void)RetryTryAgain([&] { return cpg_leave(g->handle, &cname); });
    watch_(g->fd, false);
    cpg_finalize(g->handle);
  }
  for (auto& g : lost) g->handler->OnTransportLost();
}

void CpgTransport::TransportLost(const std::string& why) {
  Log(Severity::kError, why + "; every group is lost until corosync is back");
  std::vector<ClusterHandler*> handlers;
  std::map<std::string, std::unique_ptr<Group>> groups = std::move(groups_);
  groups_.clear();
  for (auto& [name, g] : groups) {
    if (!g->dead) handlers.push_back(g->handler);
    g->dead = true;
    watch_(g->fd, false);
    cpg_finalize(g->handle);
  }
  for (auto& g : graveyard_) cpg_finalize(g->handle);
  graveyard_.clear();
  if (control_ != 0) {
    watch_(control_fd_, false);
    cpg_finalize(control_);
    control_ = 0;
    control_fd_ = -1;
  }
  for (ClusterHandler* h : handlers) h->OnTransportLost();
}

Result<uint32_t> CpgTransport::ExpectedVotes() const {
  votequorum_handle_t handle = 0;
  votequorum_callbacks_t callbacks{};
  cs_error_t r = votequorum_initialize(&handle, &callbacks);
  if (r != CS_OK) {
    return NotFound("votequorum_initialize: " + CsError(r) +
                    " (corosync not running, or quorum.provider is not corosync_votequorum)");
  }
  votequorum_info info{};
  r = votequorum_getinfo(handle, local_node_, &info);
  votequorum_finalize(handle);
  if (r != CS_OK) return NotFound("votequorum_getinfo: " + CsError(r));
  return static_cast<uint32_t>(info.node_expected_votes);
}

}  // namespace clogd::logd
