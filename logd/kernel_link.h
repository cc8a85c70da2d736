// The production kernel link: the netlink connector the kernel's dm-log-userspace uses
// ({CN_IDX_DM, CN_VAL_DM_USERSPACE_LOG}). The kernel multicasts requests to group
// CN_IDX_DM; replies go back by unicast to the kernel (port 0), matched on the request's
// seq. Needs CAP_SYS_ADMIN.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "logd/ulog_codec.h"
#include "region/status.h"

namespace clogd::logd {

class KernelLink {
 public:
  KernelLink() = default;
  ~KernelLink();
  KernelLink(const KernelLink&) = delete;
  KernelLink& operator=(const KernelLink&) = delete;

  // Opens and binds the connector socket; names the errno on failure (no connector in
  // this kernel, no permission, ...).
  Status Open();
  int fd() const { return fd_; }

  // Reads every pending datagram; appends each dm_ulog_request frame it carries.
  // Returns kIoError only for socket errors other than "nothing pending".
  Status ReceiveFrames(std::vector<std::vector<uint8_t>>& frames);
  // Sends one reply frame (dm_ulog_request + payload) to the kernel.
  Status Send(const UlogReply& reply);
  // Asks the kernel to send request `seq` again at once: an empty connector message with
  // ack = EAGAIN. Not a reply frame with error -EAGAIN: the kernel takes a frame's
  // data_size (0) as the size of its reply buffer for the resend, and the real answer
  // would then not fit ("Insufficient space to receive package", -ENOSPC: an IN_SYNC
  // read as "not in sync", a write sent to one leg only). The empty message keeps it.
  Status SendRetry(uint32_t seq);

 private:
  // One connector message to the kernel: `frame` after the cn_msg header (may be empty).
  Status SendMessage(uint32_t seq, uint32_t ack, const std::vector<uint8_t>& frame);

  int fd_ = -1;
};

}  // namespace clogd::logd
