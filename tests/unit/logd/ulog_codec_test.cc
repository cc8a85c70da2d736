// Unit tests for the dm-ulog codec: header layout against the kernel struct, round trips of
// all 17 request types, every refusal with its message, and exact reply payload bytes.
#include "logd/ulog_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <random>

namespace clogd::logd {
namespace {

using ::testing::HasSubstr;

static_assert(std::endian::native == std::endian::little,
              "hand-written frames below are little-endian (host order on x86_64)");

using Bytes = std::vector<uint8_t>;

void Put32(Bytes& b, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(Bytes& b, size_t at, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
Bytes Le64(uint64_t v) {
  Bytes b(8);
  Put64(b, 0, v);
  return b;
}
Bytes Concat(const Bytes& a, const Bytes& b) {
  Bytes r = a;
  r.insert(r.end(), b.begin(), b.end());
  return r;
}
Bytes RegionList(std::initializer_list<uint64_t> regions) {
  Bytes r;
  for (uint64_t x : regions) r = Concat(r, Le64(x));
  return r;
}
Bytes RegionRange(size_t n) {
  Bytes r;
  for (size_t i = 0; i < n; ++i) r = Concat(r, Le64(i * 3));
  return r;
}

UlogRequest MakeRequest(uint32_t type, Bytes payload, uint32_t seq = 7) {
  UlogRequest r;
  r.luid = 0xfeedface12345678ULL;
  r.uuid = "LVM-abcdefghijklmnopqrstuvwxyz0123456789";
  r.seq = seq;
  r.raw_type = type;
  r.type = type;
  r.payload = std::move(payload);
  return r;
}

// Decodes a frame that must be refused and returns the status.
Status Refusal(const Bytes& frame) {
  Result<UlogRequest> r = DecodeRequest(frame);
  EXPECT_FALSE(r.ok());
  return r.status();
}

TEST(UlogCodec, HeaderOffsetsMatchKernelStruct) {
  EXPECT_EQ(offsetof(struct dm_ulog_request, luid), 0u);
  EXPECT_EQ(offsetof(struct dm_ulog_request, uuid), 8u);
  EXPECT_EQ(offsetof(struct dm_ulog_request, padding), 137u);
  EXPECT_EQ(offsetof(struct dm_ulog_request, version), 140u);
  EXPECT_EQ(offsetof(struct dm_ulog_request, error), 144u);
  EXPECT_EQ(offsetof(struct dm_ulog_request, seq), 148u);
  EXPECT_EQ(offsetof(struct dm_ulog_request, request_type), 152u);
  EXPECT_EQ(offsetof(struct dm_ulog_request, data_size), 156u);
  EXPECT_EQ(offsetof(struct dm_ulog_request, data), 160u);
  EXPECT_EQ(sizeof(struct dm_ulog_request), 160u);
  EXPECT_EQ(kUlogHeaderSize, 160u);
  EXPECT_EQ(DM_UUID_LEN, 129);
}

TEST(UlogCodec, HandWrittenFrameDecodesAndReencodesByteExact) {
  Bytes frame(160 + 8, 0);
  Put64(frame, 0, 0x0102030405060708ULL);
  std::memcpy(frame.data() + 8, "LVM-uuid", 8);
  Put32(frame, 140, 3);
  Put32(frame, 144, static_cast<uint32_t>(-5));
  Put32(frame, 148, 77);
  Put32(frame, 152, DM_ULOG_IN_SYNC);
  Put32(frame, 156, 8);
  Put64(frame, 160, 42);

  Result<UlogRequest> r = DecodeRequest(frame);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->luid, 0x0102030405060708ULL);
  EXPECT_EQ(r->uuid, "LVM-uuid");
  EXPECT_EQ(r->version, 3u);
  EXPECT_EQ(r->error, -5);
  EXPECT_EQ(r->seq, 77u);
  EXPECT_EQ(r->type, static_cast<uint32_t>(DM_ULOG_IN_SYNC));
  EXPECT_EQ(r->raw_type, static_cast<uint32_t>(DM_ULOG_IN_SYNC));
  Result<uint64_t> region = DecodeRegionPayload(*r);
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(*region, 42u);
  EXPECT_EQ(EncodeRequest(*r), frame);

  // The reply: same identity, version 3, error, data_size and payload at their offsets.
  UlogReply reply = ReplyTo(*r, -22);
  reply.payload = S64Payload(1);
  Bytes expect(160 + 8, 0);
  Put64(expect, 0, 0x0102030405060708ULL);
  std::memcpy(expect.data() + 8, "LVM-uuid", 8);
  Put32(expect, 140, 3);
  Put32(expect, 144, static_cast<uint32_t>(-22));
  Put32(expect, 148, 77);
  Put32(expect, 152, DM_ULOG_IN_SYNC);
  Put32(expect, 156, 8);
  Put64(expect, 160, 1);
  EXPECT_EQ(EncodeReply(reply), expect);
}

TEST(UlogCodec, RoundTripEveryRequestType) {
  struct Case {
    uint32_t type;
    Bytes payload;
    const char* name;
  };
  const std::string ctr = "4724028 clustered-disk 253:2 1024";
  Bytes ctr_bytes(ctr.begin(), ctr.end());
  ctr_bytes.push_back(0);
  Bytes set_sync = Concat(Le64(99), Le64(1));
  const std::vector<Case> cases = {
      {DM_ULOG_CTR, ctr_bytes, "CTR"},
      {DM_ULOG_DTR, {}, "DTR"},
      {DM_ULOG_PRESUSPEND, {}, "PRESUSPEND"},
      {DM_ULOG_POSTSUSPEND, {}, "POSTSUSPEND"},
      {DM_ULOG_RESUME, {}, "RESUME"},
      {DM_ULOG_GET_REGION_SIZE, {}, "GET_REGION_SIZE"},
      {DM_ULOG_IS_CLEAN, Le64(5), "IS_CLEAN"},
      {DM_ULOG_IN_SYNC, Le64(6), "IN_SYNC"},
      {DM_ULOG_FLUSH, RegionList({1, 2, 3}), "FLUSH"},
      {DM_ULOG_MARK_REGION, RegionRange(32), "MARK_REGION"},
      {DM_ULOG_CLEAR_REGION, RegionList({1ULL << 40}), "CLEAR_REGION"},
      {DM_ULOG_GET_RESYNC_WORK, {}, "GET_RESYNC_WORK"},
      {DM_ULOG_SET_REGION_SYNC, set_sync, "SET_REGION_SYNC"},
      {DM_ULOG_GET_SYNC_COUNT, {}, "GET_SYNC_COUNT"},
      {DM_ULOG_STATUS_INFO, {}, "STATUS_INFO"},
      {DM_ULOG_STATUS_TABLE, {}, "STATUS_TABLE"},
      {DM_ULOG_IS_REMOTE_RECOVERING, Le64(1000), "IS_REMOTE_RECOVERING"},
  };
  ASSERT_EQ(cases.size(), 17u);
  uint32_t seq = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(IsKnownRequestType(c.type));
    EXPECT_EQ(RequestTypeName(c.type), c.name);
    const UlogRequest in = MakeRequest(c.type, c.payload, seq++);
    const Bytes frame = EncodeRequest(in);
    ASSERT_EQ(frame.size(), 160 + c.payload.size());
    Result<UlogRequest> out = DecodeRequest(frame);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->luid, in.luid);
    EXPECT_EQ(out->uuid, in.uuid);
    EXPECT_EQ(out->version, 3u);
    EXPECT_EQ(out->seq, in.seq);
    EXPECT_EQ(out->type, c.type);
    EXPECT_EQ(out->raw_type, c.type);
    EXPECT_EQ(out->payload, c.payload);

    switch (c.type) {
      case DM_ULOG_CTR: {
        Result<std::string> s = DecodeCtrPayload(*out);
        ASSERT_TRUE(s.ok()) << s.status().ToString();
        EXPECT_EQ(*s, ctr);
        break;
      }
      case DM_ULOG_IS_CLEAN:
      case DM_ULOG_IN_SYNC:
      case DM_ULOG_IS_REMOTE_RECOVERING: {
        Result<uint64_t> r = DecodeRegionPayload(*out);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        uint64_t want = 0;
        std::memcpy(&want, c.payload.data(), 8);
        EXPECT_EQ(*r, want);
        break;
      }
      case DM_ULOG_FLUSH:
      case DM_ULOG_MARK_REGION:
      case DM_ULOG_CLEAR_REGION: {
        Result<std::vector<uint64_t>> r = DecodeRegionListPayload(*out);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        ASSERT_EQ(r->size(), c.payload.size() / 8);
        for (size_t i = 0; i < r->size(); ++i) {
          uint64_t want = 0;
          std::memcpy(&want, c.payload.data() + 8 * i, 8);
          EXPECT_EQ((*r)[i], want);
        }
        break;
      }
      case DM_ULOG_SET_REGION_SYNC: {
        Result<SetRegionSyncArgs> r = DecodeSetRegionSyncPayload(*out);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(r->region, 99u);
        EXPECT_TRUE(r->in_sync);
        break;
      }
      default:
        EXPECT_TRUE(CheckNoPayload(*out).ok());
    }

    // Reply round trip keeps the identity.
    UlogReply reply = ReplyTo(*out, -5);
    reply.payload = U64Payload(seq);
    Result<UlogReply> back = DecodeReply(EncodeReply(reply));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->luid, in.luid);
    EXPECT_EQ(back->uuid, in.uuid);
    EXPECT_EQ(back->seq, in.seq);
    EXPECT_EQ(back->raw_type, c.type);
    EXPECT_EQ(back->error, -5);
    EXPECT_EQ(back->payload, U64Payload(seq));
  }
}

TEST(UlogCodec, HighBitsOfRequestTypeAreFlags) {
  UlogRequest in = MakeRequest(DM_ULOG_FLUSH, {});
  in.raw_type = 0xABCDEF00u | DM_ULOG_FLUSH;
  const Bytes frame = EncodeRequest(in);
  Result<UlogRequest> out = DecodeRequest(frame);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->type, static_cast<uint32_t>(DM_ULOG_FLUSH));
  EXPECT_EQ(out->raw_type, 0xABCDEF09u);
  const UlogReply reply = ReplyTo(*out);
  EXPECT_EQ(reply.raw_type, 0xABCDEF09u);
  EXPECT_EQ(reply.error, 0);
  const Bytes reply_frame = EncodeReply(reply);
  uint32_t raw = 0;
  std::memcpy(&raw, reply_frame.data() + 152, 4);
  EXPECT_EQ(raw, 0xABCDEF09u);
}

TEST(UlogCodec, UnknownTypesDecode) {
  for (uint32_t t : {0u, 18u, 255u, 0x100u}) {
    SCOPED_TRACE(t);
    Result<UlogRequest> out = DecodeRequest(EncodeRequest(MakeRequest(t, Le64(1))));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->type, t & 0xFFu);
    EXPECT_FALSE(IsKnownRequestType(out->type));
    EXPECT_TRUE(CheckNoPayload(*out).ok() == false);
  }
  EXPECT_FALSE(IsKnownRequestType(0));
  EXPECT_FALSE(IsKnownRequestType(18));
  EXPECT_EQ(RequestTypeName(18), "UNKNOWN(18)");
  EXPECT_EQ(RequestTypeName(0), "UNKNOWN(0)");
}

TEST(UlogCodec, RefusesShortFrame) {
  Status s = Refusal(Bytes{});
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("frame of 0 bytes is shorter than the 160-byte"));
  Bytes frame = EncodeRequest(MakeRequest(DM_ULOG_DTR, {}));
  frame.pop_back();
  EXPECT_THAT(Refusal(frame).message(), HasSubstr("frame of 159 bytes"));
}

TEST(UlogCodec, RefusesWrongVersion) {
  UlogRequest in = MakeRequest(DM_ULOG_FLUSH, {});
  in.version = 2;
  Status s = Refusal(EncodeRequest(in));
  EXPECT_EQ(s.code(), Errc::kUnsupportedVersion);
  EXPECT_THAT(s.message(), HasSubstr("version 2, expected 3"));
  EXPECT_THAT(s.message(), HasSubstr("seq 7"));
}

TEST(UlogCodec, RefusesDataSizeMismatch) {
  Bytes frame = EncodeRequest(MakeRequest(DM_ULOG_MARK_REGION, Le64(3)));
  Put32(frame, 156, 16);
  EXPECT_THAT(Refusal(frame).message(),
              HasSubstr("request seq 7 (MARK_REGION): data_size 16 but 8 payload bytes present"));
  Put32(frame, 156, 0);
  EXPECT_THAT(Refusal(frame).message(), HasSubstr("data_size 0 but 8 payload bytes present"));
  Put32(frame, 156, 0xFFFFFFFFu);
  EXPECT_THAT(Refusal(frame).message(),
              HasSubstr("data_size 4294967295 but 8 payload bytes present"));
}

TEST(UlogCodec, PayloadLimit) {
  Bytes big(kMaxUlogPayload, 'x');
  Result<UlogRequest> ok = DecodeRequest(EncodeRequest(MakeRequest(DM_ULOG_CTR, big)));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  big.push_back('x');
  EXPECT_THAT(Refusal(EncodeRequest(MakeRequest(DM_ULOG_CTR, big))).message(),
              HasSubstr("data_size 333 exceeds the payload limit of 332 bytes"));
  UlogReply big_reply;
  big_reply.payload = big;
  Result<UlogReply> reply = DecodeReply(EncodeReply(big_reply));
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply.status().message(), HasSubstr("reply seq 0"));
  EXPECT_THAT(reply.status().message(), HasSubstr("data_size 333 exceeds"));
}

TEST(UlogCodec, RefusesUuidWithoutNul) {
  Bytes frame = EncodeRequest(MakeRequest(DM_ULOG_RESUME, {}));
  std::memset(frame.data() + 8, 'u', 129);
  EXPECT_THAT(Refusal(frame).message(), HasSubstr("uuid has no NUL in its 129 bytes"));
  // A NUL in the last uuid byte is enough: 128 characters.
  frame[8 + 128] = 0;
  Result<UlogRequest> r = DecodeRequest(frame);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->uuid, std::string(128, 'u'));
  // The padding bytes after the uuid are not part of it.
  frame[137] = 'p';
  ASSERT_TRUE(DecodeRequest(frame).ok());
}

TEST(UlogCodec, EncodeTruncatesOverlongUuid) {
  UlogRequest in = MakeRequest(DM_ULOG_DTR, {});
  in.uuid = std::string(200, 'a');
  const Bytes frame = EncodeRequest(in);
  EXPECT_EQ(frame[8 + 127], 'a');
  EXPECT_EQ(frame[8 + 128], 0);
  Result<UlogRequest> out = DecodeRequest(frame);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->uuid, std::string(128, 'a'));
}

TEST(UlogCodec, RegionPayloadErrors) {
  Status s = DecodeRegionPayload(MakeRequest(DM_ULOG_IN_SYNC, Bytes(4, 0))).status();
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("IN_SYNC request seq 7: payload of 4 bytes, expected 8"));
  EXPECT_THAT(DecodeRegionPayload(MakeRequest(DM_ULOG_IS_CLEAN, {})).status().message(),
              HasSubstr("payload of 0 bytes, expected 8"));
  EXPECT_THAT(DecodeRegionPayload(MakeRequest(DM_ULOG_IS_REMOTE_RECOVERING, Bytes(16, 0)))
                  .status()
                  .message(),
              HasSubstr("IS_REMOTE_RECOVERING request seq 7: payload of 16 bytes"));
}

TEST(UlogCodec, RegionListErrors) {
  EXPECT_THAT(
      DecodeRegionListPayload(MakeRequest(DM_ULOG_MARK_REGION, Bytes(12, 0))).status().message(),
      HasSubstr("MARK_REGION request seq 7: payload of 12 bytes is not a multiple of 8"));
  EXPECT_THAT(DecodeRegionListPayload(MakeRequest(DM_ULOG_MARK_REGION, {})).status().message(),
              HasSubstr("MARK_REGION request seq 7: 0 regions, expected 1 to 32"));
  EXPECT_THAT(DecodeRegionListPayload(MakeRequest(DM_ULOG_CLEAR_REGION, {})).status().message(),
              HasSubstr("CLEAR_REGION request seq 7: 0 regions"));
  EXPECT_THAT(DecodeRegionListPayload(MakeRequest(DM_ULOG_CLEAR_REGION, RegionRange(33)))
                  .status()
                  .message(),
              HasSubstr("CLEAR_REGION request seq 7: 33 regions, at most 32 allowed"));
  EXPECT_THAT(
      DecodeRegionListPayload(MakeRequest(DM_ULOG_FLUSH, RegionRange(33))).status().message(),
      HasSubstr("FLUSH request seq 7: 33 regions, at most 32"));
  // FLUSH may be empty (plain flush); 32 is the maximum.
  Result<std::vector<uint64_t>> empty = DecodeRegionListPayload(MakeRequest(DM_ULOG_FLUSH, {}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  Result<std::vector<uint64_t>> full =
      DecodeRegionListPayload(MakeRequest(DM_ULOG_MARK_REGION, RegionRange(32)));
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->size(), 32u);
  EXPECT_EQ(full->back(), 31u * 3);
}

TEST(UlogCodec, SetRegionSyncErrors) {
  Result<SetRegionSyncArgs> off =
      DecodeSetRegionSyncPayload(MakeRequest(DM_ULOG_SET_REGION_SYNC, Concat(Le64(4), Le64(0))));
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->region, 4u);
  EXPECT_FALSE(off->in_sync);
  EXPECT_THAT(
      DecodeSetRegionSyncPayload(MakeRequest(DM_ULOG_SET_REGION_SYNC, Concat(Le64(4), Le64(2))))
          .status()
          .message(),
      HasSubstr("SET_REGION_SYNC request seq 7: in_sync 2 for region 4, expected 0 or 1"));
  EXPECT_THAT(
      DecodeSetRegionSyncPayload(MakeRequest(DM_ULOG_SET_REGION_SYNC, Concat(Le64(4), Le64(~0ULL))))
          .status()
          .message(),
      HasSubstr("in_sync -1 for region 4"));
  EXPECT_THAT(
      DecodeSetRegionSyncPayload(MakeRequest(DM_ULOG_SET_REGION_SYNC, Le64(4))).status().message(),
      HasSubstr("payload of 8 bytes, expected 16"));
}

TEST(UlogCodec, CtrPayload) {
  const std::string s = "2048 core 1024";
  Bytes without(s.begin(), s.end());  // first send: strlen bytes
  Bytes with = without;               // resend: strlen + 1
  with.push_back(0);
  for (const Bytes& p : {without, with}) {
    Result<std::string> r = DecodeCtrPayload(MakeRequest(DM_ULOG_CTR, p));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, s);
  }
  Bytes embedded = with;
  embedded[4] = 0;
  EXPECT_THAT(DecodeCtrPayload(MakeRequest(DM_ULOG_CTR, embedded)).status().message(),
              HasSubstr("CTR request seq 7: constructor string has an embedded NUL at byte 4"));
  Bytes two_nuls = with;
  two_nuls.push_back(0);
  EXPECT_THAT(DecodeCtrPayload(MakeRequest(DM_ULOG_CTR, two_nuls)).status().message(),
              HasSubstr("embedded NUL at byte 14"));
  EXPECT_THAT(DecodeCtrPayload(MakeRequest(DM_ULOG_CTR, {})).status().message(),
              HasSubstr("CTR request seq 7: empty constructor string"));
  EXPECT_THAT(DecodeCtrPayload(MakeRequest(DM_ULOG_CTR, Bytes{0})).status().message(),
              HasSubstr("empty constructor string"));
}

TEST(UlogCodec, CheckNoPayload) {
  EXPECT_TRUE(CheckNoPayload(MakeRequest(DM_ULOG_GET_SYNC_COUNT, {})).ok());
  Status s = CheckNoPayload(MakeRequest(DM_ULOG_DTR, Bytes(5, 1)));
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_THAT(s.message(),
              HasSubstr("DTR request seq 7: unexpected payload of 5 bytes (DTR carries none)"));
}

TEST(UlogCodec, ReplyPayloadBytes) {
  EXPECT_EQ(U64Payload(0x0102030405060708ULL), (Bytes{8, 7, 6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(S64Payload(-2), (Bytes{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(S64Payload(1), (Bytes{1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(ResyncWorkPayload(true, 0x1234),
            (Bytes{1, 0, 0, 0, 0, 0, 0, 0, 0x34, 0x12, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(ResyncWorkPayload(false, 0), Bytes(16, 0));
  EXPECT_EQ(RemoteRecoveringPayload(true, 0xAABBCCDDEEFF0011ULL),
            (Bytes{1, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x00, 0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA}));
  EXPECT_EQ(RemoteRecoveringPayload(false, 7),
            (Bytes{0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(UlogCodec, StringPayload) {
  EXPECT_EQ(StringPayload(""), Bytes{0});
  EXPECT_EQ(StringPayload("253:2"), (Bytes{'2', '5', '3', ':', '2', 0}));
  const Bytes fits = StringPayload(std::string(331, 'a'));
  ASSERT_EQ(fits.size(), 332u);
  EXPECT_EQ(fits[330], 'a');
  EXPECT_EQ(fits[331], 0);
  const Bytes cut = StringPayload(std::string(500, 'b'));
  ASSERT_EQ(cut.size(), kMaxUlogPayload);
  EXPECT_EQ(cut[330], 'b');
  EXPECT_EQ(cut[331], 0);
  // A reply carrying it stays within the limit and decodes.
  UlogReply reply;
  reply.payload = cut;
  ASSERT_TRUE(DecodeReply(EncodeReply(reply)).ok());
}

TEST(UlogCodec, DecodeReplyRefusals) {
  UlogReply reply;
  reply.seq = 9;
  reply.raw_type = DM_ULOG_STATUS_INFO;
  Bytes frame = EncodeReply(reply);
  Put32(frame, 140, 4);
  Result<UlogReply> r = DecodeReply(frame);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::kUnsupportedVersion);
  EXPECT_THAT(r.status().message(), HasSubstr("reply seq 9 (STATUS_INFO): version 4, expected 3"));
  frame.resize(100);
  EXPECT_THAT(DecodeReply(frame).status().message(), HasSubstr("reply frame of 100 bytes"));
}

// Mutated frames (fixed seed) are either refused with a message or decode to something the
// typed decoders accept or refuse; nothing else (the sanitizer build checks memory safety).
TEST(UlogCodec, MutatedFramesAreDecodedOrRefused) {
  std::mt19937 rng(12345);
  const Bytes base = EncodeRequest(MakeRequest(DM_ULOG_MARK_REGION, RegionRange(4)));
  for (int i = 0; i < 20000; ++i) {
    Bytes frame = base;
    frame.resize(std::uniform_int_distribution<size_t>(0, 200)(rng));
    const int flips = std::uniform_int_distribution<int>(0, 4)(rng);
    for (int f = 0; f < flips && !frame.empty(); ++f) {
      frame[std::uniform_int_distribution<size_t>(0, frame.size() - 1)(rng)] =
          static_cast<uint8_t>(rng());
    }
    if (frame.size() >= 160 && (rng() & 1))
      Put32(frame, 156, static_cast<uint32_t>(frame.size() - 160));
    Result<UlogRequest> r = DecodeRequest(frame);
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty());
      continue;
    }
    (void)DecodeRegionPayload(*r);
    (void)DecodeRegionListPayload(*r);
    (void)DecodeSetRegionSyncPayload(*r);
    (void)DecodeCtrPayload(*r);
    (void)CheckNoPayload(*r);
    // Re-encoding normalizes the bytes after the uuid's NUL and the padding to zero;
    // everything else survives.
    Result<UlogRequest> again = DecodeRequest(EncodeRequest(*r));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->uuid, r->uuid);
    EXPECT_EQ(again->luid, r->luid);
    EXPECT_EQ(again->raw_type, r->raw_type);
    EXPECT_EQ(again->seq, r->seq);
    EXPECT_EQ(again->error, r->error);
    EXPECT_EQ(again->payload, r->payload);
    EXPECT_TRUE(std::equal(frame.begin() + 140, frame.end(), EncodeRequest(*r).begin() + 140));
  }
}

}  // namespace
}  // namespace clogd::logd
