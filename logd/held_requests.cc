// HeldRequests: which frames wait for the cluster link.
#include "logd/held_requests.h"

#include <linux/dm-log-userspace.h>

#include "logd/ctr_args.h"
#include "logd/ulog_codec.h"

namespace clogd::logd {

bool HeldRequests::HoldIfClustered(std::span<const uint8_t> frame) {
  auto request = DecodeRequest(frame);
  if (!request.ok()) return false;  // the engine answers it (-EINVAL) at once
  bool hold = luids_.contains(request->luid);
  if (!hold && request->type == DM_ULOG_CTR) {
    auto text = DecodeCtrPayload(*request);
    auto args = text.ok() ? ParseCtrString(*text) : Result<CtrArgs>(text.status());
    hold = args.ok() && IsClusteredLog(args->type);
    if (hold) luids_.insert(request->luid);
  }
  if (hold) Push(frame);
  return hold;
}

void HeldRequests::Hold(std::span<const uint8_t> frame) { Push(frame); }

void HeldRequests::Push(std::span<const uint8_t> frame) {
  if (frames_.size() >= capacity_) {
    frames_.pop_front();
    ++dropped_;
  }
  frames_.emplace_back(frame.begin(), frame.end());
}

std::vector<std::vector<uint8_t>> HeldRequests::TakeAll() {
  std::vector<std::vector<uint8_t>> out(std::make_move_iterator(frames_.begin()),
                                        std::make_move_iterator(frames_.end()));
  frames_.clear();
  luids_.clear();
  return out;
}

}  // namespace clogd::logd
