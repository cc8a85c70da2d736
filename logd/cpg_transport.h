// The production ClusterTransport: corosync CPG (libcpg), one CPG handle and descriptor per
// group (CPG allows one group per handle) plus one connection handle that learns the local
// node id and notices corosync going away while no group is joined. The daemon's event loop
// polls the descriptors it is told about and calls Dispatch; nothing here blocks for long.
//
// View ids and member order are made by CpgViewSequencer (cpg_views.h, where the scheme and
// the corosync behaviour it rests on are written down): view id = totem ring sequence << 32 |
// process-level changes in that ring, identical on every member and increasing; members
// sorted by node id (CPG's own order, made certain). Every message carries a 1-byte frame
// kind; members that know the view id tell a mid-ring joiner with a small view-sync frame.
//
// corosync going away (dispatch returns CS_ERR_LIBRARY, the descriptor shows POLLHUP):
// every handle is finalized, its descriptor unwatched, and every joined group's handler gets
// OnTransportLost; Join reconnects when corosync is back (kIoError until then).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "logd/cluster_transport.h"
#include "logd/logging.h"
#include "region/status.h"

namespace clogd::logd {

class CpgTransport final : public ClusterTransport {
 public:
  // `watch(fd, true)` when a descriptor must be polled for EPOLLIN, `watch(fd, false)` before
  // it is closed (also from the destructor).
  using FdWatch = std::function<void(int fd, bool watch)>;

  CpgTransport(LogFn log, FdWatch watch);
  ~CpgTransport() override;  // leaves and finalizes everything
  CpgTransport(const CpgTransport&) = delete;
  CpgTransport& operator=(const CpgTransport&) = delete;

  // Connects to the local corosync and learns the local node id. kIoError naming the cause
  // when corosync is not running. Ok when already connected.
  Status Connect();
  bool connected() const;

  // Dispatches every pending callback on `fd` (one the watch was told about; unknown
  // descriptors are ignored, so a stale epoll event is harmless). On CS_ERR_LIBRARY or
  // POLLHUP (corosync died): finalizes every handle, unwatches their fds, and calls
  // OnTransportLost() on every joined group's handler; they rejoin later through Join().
  void Dispatch(int fd);

  // corosync node id (cpg_local_get); valid after Connect.
  NodeId LocalNode() const override;
  // Reconnects if needed; kIoError while corosync is down; kBusy if corosync kept saying
  // CS_ERR_TRY_AGAIN (retried a few times, a few ms each); kInvalidArgument if this
  // transport is already in the group or the name is longer than CPG allows (128 bytes).
  Status Join(const std::string& group, ClusterHandler* handler) override;
  // The handler gets nothing more once Leave returns, whatever it returns: kBusy means
  // corosync kept saying CS_ERR_TRY_AGAIN, so the group was dropped without a clean leave
  // (the others see kProcessDown instead of kLeft). kNotFound if not in the group.
  Status Leave(const std::string& group) override;
  // CPG_TYPE_AGREED. CS_ERR_TRY_AGAIN -> kBusy (never an error for the kernel).
  // kInvalidArgument before the group's first Membership reached the handler, when not in
  // the group, or for a message larger than kMaxClusterMessage.
  Status Multicast(const std::string& group, std::span<const uint8_t> message) override;

  // corosync's expected votes (votequorum_getinfo), for EngineOptions::expected_nodes; an
  // error value if votequorum is not configured or corosync is not running.
  Result<uint32_t> ExpectedVotes() const;

  struct Group;  // one joined group: its handle, descriptor and view sequencer (in the .cc)

 private:
  Group* FindByFd(int fd);
  void TransportLost(const std::string& why);
  void Bury(std::unique_ptr<Group> group);  // finalize now, or after the dispatch under way
  void FinishDispatch();                    // buried handles, groups whose view was lost
  void Log(Severity severity, const std::string& message) const;

  LogFn log_;
  FdWatch watch_;
  uint64_t control_ = 0;  // cpg handle without a group (0: not connected)
  int control_fd_ = -1;
  NodeId local_node_ = 0;
  std::map<std::string, std::unique_ptr<Group>> groups_;
  int dispatching_ = 0;  // inside cpg_dispatch: handles are finalized afterwards
  std::vector<std::unique_ptr<Group>> graveyard_;
};

}  // namespace clogd::logd
