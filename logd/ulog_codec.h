// Codec for the kernel's dirty-log requests (struct dm_ulog_request from
// <linux/dm-log-userspace.h>, request version 3): strict decode of a received frame, the
// typed payload of each of the 17 request types, and encode of the reply. Every decode
// error names what is wrong; nothing here keeps state.
#pragma once

#include <linux/dm-log-userspace.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "region/status.h"

namespace clogd::logd {

inline constexpr size_t kUlogHeaderSize = sizeof(struct dm_ulog_request);  // 160
// The kernel's preallocated request buffer is 512 bytes: 512 - sizeof(struct cn_msg) (20)
// - sizeof(struct dm_ulog_request) (160) = 332 bytes cap every payload it sends.
inline constexpr size_t kMaxUlogPayload = 332;
inline constexpr size_t kMaxRegionsPerRequest = 32;  // MAX_FLUSH_GROUP_COUNT in the kernel

enum class RequestType : uint32_t {
  kCtr = DM_ULOG_CTR,
  kDtr = DM_ULOG_DTR,
  kPresuspend = DM_ULOG_PRESUSPEND,
  kPostsuspend = DM_ULOG_POSTSUSPEND,
  kResume = DM_ULOG_RESUME,
  kGetRegionSize = DM_ULOG_GET_REGION_SIZE,
  kIsClean = DM_ULOG_IS_CLEAN,
  kInSync = DM_ULOG_IN_SYNC,
  kFlush = DM_ULOG_FLUSH,
  kMarkRegion = DM_ULOG_MARK_REGION,
  kClearRegion = DM_ULOG_CLEAR_REGION,
  kGetResyncWork = DM_ULOG_GET_RESYNC_WORK,
  kSetRegionSync = DM_ULOG_SET_REGION_SYNC,
  kGetSyncCount = DM_ULOG_GET_SYNC_COUNT,
  kStatusInfo = DM_ULOG_STATUS_INFO,
  kStatusTable = DM_ULOG_STATUS_TABLE,
  kIsRemoteRecovering = DM_ULOG_IS_REMOTE_RECOVERING,
};

// "CTR", "FLUSH", ...; "UNKNOWN(<n>)" for anything else.
std::string RequestTypeName(uint32_t type);
bool IsKnownRequestType(uint32_t type);

// A request as received. `type` is the low 8 bits of request_type (the kernel may set
// flags above them); `raw_type` keeps the whole field for the reply.
struct UlogRequest {
  uint64_t luid = 0;
  std::string uuid;  // up to DM_UUID_LEN - 1 bytes
  uint32_t version = DM_ULOG_REQUEST_VERSION;
  int32_t error = 0;
  uint32_t seq = 0;
  uint32_t raw_type = 0;
  uint32_t type = 0;
  std::vector<uint8_t> payload;
};

// A reply: the request's identity with error and the reply payload.
struct UlogReply {
  uint64_t luid = 0;
  std::string uuid;
  uint32_t seq = 0;
  uint32_t raw_type = 0;
  int32_t error = 0;  // 0 or a negative errno
  std::vector<uint8_t> payload;
};

// Decodes one frame (header + payload). Refuses: a frame shorter than the header; a
// version other than DM_ULOG_REQUEST_VERSION (both named); data_size disagreeing with the
// bytes present (both named); data_size above kMaxUlogPayload; a uuid without a NUL.
Result<UlogRequest> DecodeRequest(std::span<const uint8_t> frame);
// Encodes a request frame (used by test drivers and the simulator's kernel model).
std::vector<uint8_t> EncodeRequest(const UlogRequest& request);
// Encodes a reply frame: header with data_size = payload size, then the payload.
std::vector<uint8_t> EncodeReply(const UlogReply& reply);
Result<UlogReply> DecodeReply(std::span<const uint8_t> frame);
// A reply to `request` with `error` and no payload.
UlogReply ReplyTo(const UlogRequest& request, int32_t error = 0);
// The reply buffer the kernel gives a request of this type: 8 or 16 bytes for the types that
// return a value, 0 for the rest (STATUS_*: its caller's maxlen, unknown here; CTR: see
// PROTOCOL.md).
size_t KernelReplyBufferSize(uint32_t type);
// The -ESRCH answer to `request` (a log this daemon does not know). It carries zeros of the
// request's reply buffer size: the kernel sets its buffer size to the answer's payload size
// before it retries the request after CTR and RESUME, so an empty -ESRCH would leave the
// retry no room for its answer (-ENOSPC: an IN_SYNC read as "not in sync", a write sent to
// one leg only).
UlogReply EsrchReplyTo(const UlogRequest& request);
// For a frame DecodeRequest refused: a reply carrying `error`, addressed from the raw
// header (luid, uuid, seq, request_type) so the kernel is answered instead of retrying
// forever. nullopt if the frame is too short to hold a header.
std::optional<UlogReply> ErrorReplyForFrame(std::span<const uint8_t> frame, int32_t error);

// --- typed payloads (all little-endian host order as the kernel sends them) ---

// IS_CLEAN, IN_SYNC, IS_REMOTE_RECOVERING: exactly one u64 region.
Result<uint64_t> DecodeRegionPayload(const UlogRequest& request);
// MARK_REGION, CLEAR_REGION, integrated FLUSH: 0..32 u64 regions (FLUSH may be empty;
// MARK/CLEAR need at least one). Refuses a size that is not a multiple of 8.
Result<std::vector<uint64_t>> DecodeRegionListPayload(const UlogRequest& request);
struct SetRegionSyncArgs {
  uint64_t region = 0;
  bool in_sync = false;
};
// SET_REGION_SYNC: {u64 region; s64 in_sync (0 or 1)}.
Result<SetRegionSyncArgs> DecodeSetRegionSyncPayload(const UlogRequest& request);
// CTR: a NUL-terminated string (the kernel sends strlen+1 bytes, or without NUL on the
// first send); returns it without the NUL.
Result<std::string> DecodeCtrPayload(const UlogRequest& request);
// Requests that carry no payload: refuses any payload.
Status CheckNoPayload(const UlogRequest& request);

// Reply payload builders.
std::vector<uint8_t> U64Payload(uint64_t v);
std::vector<uint8_t> S64Payload(int64_t v);
// GET_RESYNC_WORK: {s64 i; u64 r}.
std::vector<uint8_t> ResyncWorkPayload(bool has_work, uint64_t region);
// IS_REMOTE_RECOVERING: {s64 is_recovering; u64 in_sync_hint}.
std::vector<uint8_t> RemoteRecoveringPayload(bool recovering, uint64_t in_sync_hint);
// A string with its NUL (CTR device name, STATUS_*); truncated to fit kMaxUlogPayload.
std::vector<uint8_t> StringPayload(std::string_view s);

}  // namespace clogd::logd
