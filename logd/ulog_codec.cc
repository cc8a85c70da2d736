// dm-ulog codec: decode/encode of struct dm_ulog_request frames and their typed payloads.
// Fields are copied one scalar at a time with memcpy at their offsetof() positions, in host
// byte order (the kernel sends its native structs; on x86_64 that is little-endian). The
// frame is never cast to the kernel struct.
#include "logd/ulog_codec.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace clogd::logd {
namespace {

// Header layout, checked against the kernel's struct at compile time.
constexpr size_t kOffLuid = 0;
constexpr size_t kOffUuid = 8;
constexpr size_t kOffVersion = 140;
constexpr size_t kOffError = 144;
constexpr size_t kOffSeq = 148;
constexpr size_t kOffRequestType = 152;
constexpr size_t kOffDataSize = 156;
static_assert(offsetof(struct dm_ulog_request, luid) == kOffLuid);
static_assert(offsetof(struct dm_ulog_request, uuid) == kOffUuid);
static_assert(offsetof(struct dm_ulog_request, version) == kOffVersion);
static_assert(offsetof(struct dm_ulog_request, error) == kOffError);
static_assert(offsetof(struct dm_ulog_request, seq) == kOffSeq);
static_assert(offsetof(struct dm_ulog_request, request_type) == kOffRequestType);
static_assert(offsetof(struct dm_ulog_request, data_size) == kOffDataSize);
static_assert(offsetof(struct dm_ulog_request, data) == 160);
static_assert(kUlogHeaderSize == 160);
static_assert(DM_UUID_LEN == 129);

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
void Store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

template <typename T>
void Append(std::vector<uint8_t>& out, T v) {
  const size_t at = out.size();
  out.resize(at + sizeof v);
  Store(out.data() + at, v);
}

// The fields common to requests and replies.
struct Header {
  uint64_t luid = 0;
  std::string uuid;
  uint32_t version = 0;
  int32_t error = 0;
  uint32_t seq = 0;
  uint32_t request_type = 0;
  std::vector<uint8_t> payload;
};

std::vector<uint8_t> EncodeHeader(uint64_t luid, std::string_view uuid, uint32_t version,
                                  int32_t error, uint32_t seq, uint32_t request_type,
                                  std::span<const uint8_t> payload) {
  std::vector<uint8_t> frame(kUlogHeaderSize + payload.size(), 0);
  Store(frame.data() + kOffLuid, luid);
  // Always leave a NUL: at most DM_UUID_LEN - 1 bytes of uuid, and stop at an embedded NUL.
  const size_t n = std::min(uuid.find('\0'), std::min(uuid.size(), size_t{DM_UUID_LEN - 1}));
  std::memcpy(frame.data() + kOffUuid, uuid.data(), n);
  Store(frame.data() + kOffVersion, version);
  Store(frame.data() + kOffError, error);
  Store(frame.data() + kOffSeq, seq);
  Store(frame.data() + kOffRequestType, request_type);
  Store(frame.data() + kOffDataSize, static_cast<uint32_t>(payload.size()));
  if (!payload.empty()) std::memcpy(frame.data() + kUlogHeaderSize, payload.data(), payload.size());
  return frame;
}

// `what` is "request" or "reply", used in messages.
Result<Header> DecodeHeader(std::span<const uint8_t> frame, const char* what) {
  if (frame.size() < kUlogHeaderSize) {
    return InvalidArgument(std::string(what) + " frame of " + std::to_string(frame.size()) +
                           " bytes is shorter than the " + std::to_string(kUlogHeaderSize) +
                           "-byte dm_ulog_request header");
  }
  const uint8_t* p = frame.data();
  Header h;
  h.luid = Load<uint64_t>(p + kOffLuid);
  h.version = Load<uint32_t>(p + kOffVersion);
  h.error = Load<int32_t>(p + kOffError);
  h.seq = Load<uint32_t>(p + kOffSeq);
  h.request_type = Load<uint32_t>(p + kOffRequestType);
  const uint32_t data_size = Load<uint32_t>(p + kOffDataSize);
  const std::string where = std::string(what) + " seq " + std::to_string(h.seq) + " (" +
                            RequestTypeName(DM_ULOG_REQUEST_TYPE(h.request_type)) + ")";

  if (h.version != DM_ULOG_REQUEST_VERSION) {
    return UnsupportedVersion(where + ": version " + std::to_string(h.version) + ", expected " +
                              std::to_string(DM_ULOG_REQUEST_VERSION));
  }
  const size_t present = frame.size() - kUlogHeaderSize;
  if (data_size != present) {
    return InvalidArgument(where + ": data_size " + std::to_string(data_size) + " but " +
                           std::to_string(present) + " payload bytes present");
  }
  if (data_size > kMaxUlogPayload) {
    return InvalidArgument(where + ": data_size " + std::to_string(data_size) +
                           " exceeds the payload limit of " + std::to_string(kMaxUlogPayload) +
                           " bytes");
  }
  const uint8_t* uuid = p + kOffUuid;
  const uint8_t* nul = std::find(uuid, uuid + DM_UUID_LEN, uint8_t{0});
  if (nul == uuid + DM_UUID_LEN) {
    return InvalidArgument(where + ": uuid has no NUL in its " + std::to_string(DM_UUID_LEN) +
                           " bytes");
  }
  h.uuid.assign(uuid, nul);
  h.payload.assign(frame.begin() + static_cast<std::ptrdiff_t>(kUlogHeaderSize), frame.end());
  return h;
}

std::string Where(const UlogRequest& r) {
  return RequestTypeName(r.type) + " request seq " + std::to_string(r.seq);
}

}  // namespace

std::string RequestTypeName(uint32_t type) {
  switch (type) {
    case DM_ULOG_CTR:
      return "CTR";
    case DM_ULOG_DTR:
      return "DTR";
    case DM_ULOG_PRESUSPEND:
      return "PRESUSPEND";
    case DM_ULOG_POSTSUSPEND:
      return "POSTSUSPEND";
    case DM_ULOG_RESUME:
      return "RESUME";
    case DM_ULOG_GET_REGION_SIZE:
      return "GET_REGION_SIZE";
    case DM_ULOG_IS_CLEAN:
      return "IS_CLEAN";
    case DM_ULOG_IN_SYNC:
      return "IN_SYNC";
    case DM_ULOG_FLUSH:
      return "FLUSH";
    case DM_ULOG_MARK_REGION:
      return "MARK_REGION";
    case DM_ULOG_CLEAR_REGION:
      return "CLEAR_REGION";
    case DM_ULOG_GET_RESYNC_WORK:
      return "GET_RESYNC_WORK";
    case DM_ULOG_SET_REGION_SYNC:
      return "SET_REGION_SYNC";
    case DM_ULOG_GET_SYNC_COUNT:
      return "GET_SYNC_COUNT";
    case DM_ULOG_STATUS_INFO:
      return "STATUS_INFO";
    case DM_ULOG_STATUS_TABLE:
      return "STATUS_TABLE";
    case DM_ULOG_IS_REMOTE_RECOVERING:
      return "IS_REMOTE_RECOVERING";
    default:
      return "UNKNOWN(" + std::to_string(type) + ")";
  }
}

bool IsKnownRequestType(uint32_t type) {
  return type >= DM_ULOG_CTR && type <= DM_ULOG_IS_REMOTE_RECOVERING;
}

Result<UlogRequest> DecodeRequest(std::span<const uint8_t> frame) {
  Result<Header> h = DecodeHeader(frame, "request");
  if (!h.ok()) return h.status();
  UlogRequest r;
  r.luid = h->luid;
  r.uuid = std::move(h->uuid);
  r.version = h->version;
  r.error = h->error;
  r.seq = h->seq;
  r.raw_type = h->request_type;
  r.type = DM_ULOG_REQUEST_TYPE(h->request_type);
  r.payload = std::move(h->payload);
  return r;
}

std::vector<uint8_t> EncodeRequest(const UlogRequest& request) {
  return EncodeHeader(request.luid, request.uuid, request.version, request.error, request.seq,
                      request.raw_type, request.payload);
}

std::vector<uint8_t> EncodeReply(const UlogReply& reply) {
  return EncodeHeader(reply.luid, reply.uuid, DM_ULOG_REQUEST_VERSION, reply.error, reply.seq,
                      reply.raw_type, reply.payload);
}

std::optional<UlogReply> ErrorReplyForFrame(std::span<const uint8_t> frame, int32_t error) {
  if (frame.size() < kUlogHeaderSize) return std::nullopt;
  UlogReply reply;
  reply.luid = Load<uint64_t>(frame.data() + kOffLuid);
  const auto* uuid = frame.data() + kOffUuid;
  reply.uuid.assign(uuid, std::find(uuid, uuid + DM_UUID_LEN - 1, uint8_t{0}));
  reply.seq = Load<uint32_t>(frame.data() + kOffSeq);
  reply.raw_type = Load<uint32_t>(frame.data() + kOffRequestType);
  reply.error = error;
  return reply;
}

Result<UlogReply> DecodeReply(std::span<const uint8_t> frame) {
  Result<Header> h = DecodeHeader(frame, "reply");
  if (!h.ok()) return h.status();
  UlogReply r;
  r.luid = h->luid;
  r.uuid = std::move(h->uuid);
  r.seq = h->seq;
  r.raw_type = h->request_type;
  r.error = h->error;
  r.payload = std::move(h->payload);
  return r;
}

UlogReply ReplyTo(const UlogRequest& request, int32_t error) {
  UlogReply r;
  r.luid = request.luid;
  r.uuid = request.uuid;
  r.seq = request.seq;
  r.raw_type = request.raw_type;
  r.error = error;
  return r;
}

size_t KernelReplyBufferSize(uint32_t type) {
  switch (type) {
    case DM_ULOG_GET_REGION_SIZE:
    case DM_ULOG_IS_CLEAN:
    case DM_ULOG_IN_SYNC:
    case DM_ULOG_GET_SYNC_COUNT:
      return 8;
    case DM_ULOG_GET_RESYNC_WORK:
    case DM_ULOG_IS_REMOTE_RECOVERING:
      return 16;
    default:
      return 0;
  }
}

UlogReply EsrchReplyTo(const UlogRequest& request) {
  UlogReply r = ReplyTo(request, -ESRCH);
  r.payload.assign(KernelReplyBufferSize(request.type), 0);
  return r;
}

Result<uint64_t> DecodeRegionPayload(const UlogRequest& request) {
  if (request.payload.size() != sizeof(uint64_t)) {
    return InvalidArgument(Where(request) + ": payload of " +
                           std::to_string(request.payload.size()) +
                           " bytes, expected 8 (one u64 region)");
  }
  return Load<uint64_t>(request.payload.data());
}

Result<std::vector<uint64_t>> DecodeRegionListPayload(const UlogRequest& request) {
  const size_t size = request.payload.size();
  if (size % sizeof(uint64_t) != 0) {
    return InvalidArgument(Where(request) + ": payload of " + std::to_string(size) +
                           " bytes is not a multiple of 8 (u64 regions)");
  }
  const size_t count = size / sizeof(uint64_t);
  if (count == 0 && request.type != DM_ULOG_FLUSH) {
    return InvalidArgument(Where(request) + ": 0 regions, expected 1 to " +
                           std::to_string(kMaxRegionsPerRequest));
  }
  if (count > kMaxRegionsPerRequest) {
    return InvalidArgument(Where(request) + ": " + std::to_string(count) + " regions, at most " +
                           std::to_string(kMaxRegionsPerRequest) + " allowed");
  }
  std::vector<uint64_t> regions(count);
  for (size_t i = 0; i < count; ++i) {
    regions[i] = Load<uint64_t>(request.payload.data() + i * sizeof(uint64_t));
  }
  return regions;
}

Result<SetRegionSyncArgs> DecodeSetRegionSyncPayload(const UlogRequest& request) {
  if (request.payload.size() != 2 * sizeof(uint64_t)) {
    return InvalidArgument(Where(request) + ": payload of " +
                           std::to_string(request.payload.size()) +
                           " bytes, expected 16 ({u64 region; s64 in_sync})");
  }
  SetRegionSyncArgs args;
  args.region = Load<uint64_t>(request.payload.data());
  const auto in_sync = Load<int64_t>(request.payload.data() + sizeof(uint64_t));
  if (in_sync != 0 && in_sync != 1) {
    return InvalidArgument(Where(request) + ": in_sync " + std::to_string(in_sync) +
                           " for region " + std::to_string(args.region) + ", expected 0 or 1");
  }
  args.in_sync = in_sync == 1;
  return args;
}

Result<std::string> DecodeCtrPayload(const UlogRequest& request) {
  std::string s(request.payload.begin(), request.payload.end());
  if (!s.empty() && s.back() == '\0') s.pop_back();
  if (s.empty()) return InvalidArgument(Where(request) + ": empty constructor string");
  if (const size_t nul = s.find('\0'); nul != std::string::npos) {
    return InvalidArgument(Where(request) + ": constructor string has an embedded NUL at byte " +
                           std::to_string(nul) + " of " + std::to_string(request.payload.size()));
  }
  return s;
}

Status CheckNoPayload(const UlogRequest& request) {
  if (!request.payload.empty()) {
    return InvalidArgument(Where(request) + ": unexpected payload of " +
                           std::to_string(request.payload.size()) + " bytes (" +
                           RequestTypeName(request.type) + " carries none)");
  }
  return Status::Ok();
}

std::vector<uint8_t> U64Payload(uint64_t v) {
  std::vector<uint8_t> out;
  Append(out, v);
  return out;
}

std::vector<uint8_t> S64Payload(int64_t v) {
  std::vector<uint8_t> out;
  Append(out, v);
  return out;
}

std::vector<uint8_t> ResyncWorkPayload(bool has_work, uint64_t region) {
  std::vector<uint8_t> out;
  Append(out, int64_t{has_work ? 1 : 0});
  Append(out, region);
  return out;
}

std::vector<uint8_t> RemoteRecoveringPayload(bool recovering, uint64_t in_sync_hint) {
  std::vector<uint8_t> out;
  Append(out, int64_t{recovering ? 1 : 0});
  Append(out, in_sync_hint);
  return out;
}

std::vector<uint8_t> StringPayload(std::string_view s) {
  const size_t n = std::min(s.size(), kMaxUlogPayload - 1);
  std::vector<uint8_t> out(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
  out.push_back(0);
  return out;
}

}  // namespace clogd::logd
