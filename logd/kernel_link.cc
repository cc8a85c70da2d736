// Netlink connector I/O. Each datagram is nlmsghdr + cn_msg + dm_ulog_request (+ data);
// a reply carries the request's seq in both cn_msg and dm_ulog_request.
#include "logd/kernel_link.h"

#include <linux/connector.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace clogd::logd {

namespace {
std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }
}  // namespace

KernelLink::~KernelLink() {
  if (fd_ >= 0) close(fd_);
}

Status KernelLink::Open() {
  fd_ = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
  if (fd_ < 0) return IoError(Errno("netlink connector socket"));
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = CN_IDX_DM;
  addr.nl_pid = 0;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    return IoError(Errno("bind netlink connector group CN_IDX_DM"));
  }
  int group = CN_IDX_DM;
  if (setsockopt(fd_, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
    return IoError(Errno("join netlink group CN_IDX_DM"));
  }
  return Status::Ok();
}

Status KernelLink::ReceiveFrames(std::vector<std::vector<uint8_t>>& frames) {
  uint8_t buf[8192];
  for (;;) {
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::Ok();
      if (errno == EINTR) continue;
      // ENOBUFS: the socket overflowed and requests were lost; the kernel re-sends them
      // after its timeout. Say so and keep going.
      if (errno == ENOBUFS) return IoError("netlink receive buffer overrun (requests lost)");
      return IoError(Errno("netlink recv"));
    }
    // Walk the netlink messages by hand: the NLMSG_* macros use C casts.
    size_t off = 0;
    const size_t len = static_cast<size_t>(n);
    while (off + sizeof(nlmsghdr) <= len) {
      nlmsghdr hdr;
      std::memcpy(&hdr, buf + off, sizeof(hdr));
      if (hdr.nlmsg_len < sizeof(nlmsghdr) || off + hdr.nlmsg_len > len) break;
      const size_t data_off = off + NLMSG_HDRLEN;
      const size_t data_len = hdr.nlmsg_len - NLMSG_HDRLEN;
      off += NLMSG_ALIGN(hdr.nlmsg_len);
      if (hdr.nlmsg_type == NLMSG_ERROR || hdr.nlmsg_type == NLMSG_NOOP) continue;
      if (data_len < sizeof(cn_msg)) continue;
      cn_msg msg;
      std::memcpy(&msg, buf + data_off, sizeof(msg));
      if (msg.id.idx != CN_IDX_DM || msg.id.val != CN_VAL_DM_USERSPACE_LOG) continue;
      const size_t take = std::min<size_t>(msg.len, data_len - sizeof(cn_msg));
      const uint8_t* data = buf + data_off + sizeof(cn_msg);
      frames.emplace_back(data, data + take);
    }
  }
}

Status KernelLink::Send(const UlogReply& reply) {
  return SendMessage(reply.seq, 0, EncodeReply(reply));
}

Status KernelLink::SendRetry(uint32_t seq) { return SendMessage(seq, EAGAIN, {}); }

Status KernelLink::SendMessage(uint32_t seq, uint32_t ack, const std::vector<uint8_t>& frame) {
  const size_t msg_len = NLMSG_HDRLEN + sizeof(cn_msg) + frame.size();
  std::vector<uint8_t> buf(NLMSG_ALIGN(msg_len), 0);
  nlmsghdr nlh{};
  nlh.nlmsg_len = static_cast<uint32_t>(msg_len);
  nlh.nlmsg_type = NLMSG_DONE;
  nlh.nlmsg_seq = seq;
  nlh.nlmsg_pid = static_cast<uint32_t>(getpid());
  cn_msg msg{};
  msg.id.idx = CN_IDX_DM;
  msg.id.val = CN_VAL_DM_USERSPACE_LOG;
  msg.seq = seq;
  msg.ack = ack;
  msg.len = static_cast<uint16_t>(frame.size());
  std::memcpy(buf.data(), &nlh, sizeof(nlh));
  std::memcpy(buf.data() + NLMSG_HDRLEN, &msg, sizeof(msg));
  std::memcpy(buf.data() + NLMSG_HDRLEN + sizeof(msg), frame.data(), frame.size());
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  for (;;) {
    ssize_t n = sendto(fd_, buf.data(), msg_len, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    if (n >= 0) return Status::Ok();
    if (errno == EINTR) continue;
    return IoError("netlink send of reply seq " + std::to_string(seq) + ": " +
                   std::strerror(errno));
  }
}

}  // namespace clogd::logd
