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

 private:
  int fd_ = -1;
};

}  // namespace clogd::logd
