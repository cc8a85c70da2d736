// Cluster message encode/decode. Type numbers are part of the wire format: never reuse
// one. Payloads (all little-endian; region lists are u32 count + u64 each):
//   1 ANNOUNCE    view_id u64, ready u8, quorate_view u64, base_history u64, base_version u64
//   2 CHECKPOINT  view_id u64, for_node u32, chunk_index u32, chunk_count u32,
//                 byte count u32, bytes
//   3 MARKS       flush_id u64, marks list, clears list
//   4 OUT_OF_SYNC failed u32, slot u32, overflow u8, regions list
//   5 REPORT      failed u32, marked list
//   6 BUSY        flush_id u64, regions list
//   7 IDLE        regions list
//   8 CLAIM       region u64
//   9 DONE        region u64, in_sync u8
//  10 SLOT_FREED  node u32, slot u32
//  11 ABSENT      node u32, regions list
//  12 DELTA       view_id u64, for_node u32, base u8 (1 retained, 2 persisted),
//                 base_version u64, checkpoint_crc u32, now_in_sync list,
//                 now_out_of_sync list, state byte count u32, state bytes
//  13 NEED_CHECKPOINT view_id u64
//  14 DEVICE_FAILED (no payload)
//  15 LEG_REMOVAL tx u64, leg u32, legs u32, epoch u32     [protocol 3; epoch: 4]
//  16 LEG_VOTE    tx u64, ok u8                            [protocol 3]
//  17 LEG_REPLACE tx u64, epoch u32, leg u32 (0xFFFFFFFF: none), legs u32, leg_failed u8,
//                 offset u64, device byte count u32, device bytes   [protocol 4]
#include "logd/cluster_msg.h"

#include "logd/cluster_transport.h"
#include "logd/wire.h"
#include "region/crc32c.h"

namespace clogd::logd {

namespace {

enum : uint16_t {
  kAnnounce = 1,
  kCheckpoint = 2,
  kMarks = 3,
  kOutOfSync = 4,
  kReport = 5,
  kBusy = 6,
  kIdle = 7,
  kClaim = 8,
  kDone = 9,
  kSlotFreed = 10,
  kAbsent = 11,
  kDelta = 12,
  kNeedCheckpoint = 13,
  kDeviceFailed = 14,
  kLegRemoval = 15,
  kLegVote = 16,
  kLegReplace = 17,
};

struct TypeOf {
  uint16_t operator()(const AnnounceMsg&) const { return kAnnounce; }
  uint16_t operator()(const CheckpointMsg&) const { return kCheckpoint; }
  uint16_t operator()(const MarksMsg&) const { return kMarks; }
  uint16_t operator()(const OutOfSyncMsg&) const { return kOutOfSync; }
  uint16_t operator()(const ReportMsg&) const { return kReport; }
  uint16_t operator()(const BusyMsg&) const { return kBusy; }
  uint16_t operator()(const IdleMsg&) const { return kIdle; }
  uint16_t operator()(const ClaimMsg&) const { return kClaim; }
  uint16_t operator()(const DoneMsg&) const { return kDone; }
  uint16_t operator()(const SlotFreedMsg&) const { return kSlotFreed; }
  uint16_t operator()(const AbsentMsg&) const { return kAbsent; }
  uint16_t operator()(const DeltaMsg&) const { return kDelta; }
  uint16_t operator()(const NeedCheckpointMsg&) const { return kNeedCheckpoint; }
  uint16_t operator()(const DeviceFailedMsg&) const { return kDeviceFailed; }
  uint16_t operator()(const LegRemovalMsg&) const { return kLegRemoval; }
  uint16_t operator()(const LegVoteMsg&) const { return kLegVote; }
  uint16_t operator()(const LegReplaceMsg&) const { return kLegReplace; }
};

struct PayloadWriter {
  WireWriter& w;
  void operator()(const AnnounceMsg& m) const {
    w.U64(m.view_id);
    w.U8(m.ready ? 1 : 0);
    w.U64(m.quorate_view);
    w.U64(m.base_history);
    w.U64(m.base_version);
  }
  void operator()(const CheckpointMsg& m) const {
    w.U64(m.view_id);
    w.U32(m.for_node);
    w.U32(m.chunk_index);
    w.U32(m.chunk_count);
    w.Bytes(m.bytes);
  }
  void operator()(const MarksMsg& m) const {
    w.U64(m.flush_id);
    w.Regions(m.marks);
    w.Regions(m.clears);
  }
  void operator()(const OutOfSyncMsg& m) const {
    w.U32(m.failed);
    w.U32(m.slot);
    w.U8(m.overflow ? 1 : 0);
    w.Regions(m.regions);
  }
  void operator()(const ReportMsg& m) const {
    w.U32(m.failed);
    w.Regions(m.marked);
  }
  void operator()(const BusyMsg& m) const {
    w.U64(m.flush_id);
    w.Regions(m.regions);
  }
  void operator()(const IdleMsg& m) const { w.Regions(m.regions); }
  void operator()(const ClaimMsg& m) const { w.U64(m.region); }
  void operator()(const DoneMsg& m) const {
    w.U64(m.region);
    w.U8(m.in_sync ? 1 : 0);
  }
  void operator()(const SlotFreedMsg& m) const {
    w.U32(m.node);
    w.U32(m.slot);
  }
  void operator()(const AbsentMsg& m) const {
    w.U32(m.node);
    w.Regions(m.regions);
  }
  void operator()(const DeltaMsg& m) const {
    w.U64(m.view_id);
    w.U32(m.for_node);
    w.U8(static_cast<uint8_t>(m.base));
    w.U64(m.base_version);
    w.U32(m.checkpoint_crc);
    w.Regions(m.now_in_sync);
    w.Regions(m.now_out_of_sync);
    w.Bytes(m.state);
  }
  void operator()(const NeedCheckpointMsg& m) const { w.U64(m.view_id); }
  void operator()(const DeviceFailedMsg&) const {}
  void operator()(const LegRemovalMsg& m) const {
    w.U64(m.tx);
    w.U32(m.leg);
    w.U32(m.legs);
    w.U32(m.epoch);
  }
  void operator()(const LegVoteMsg& m) const {
    w.U64(m.tx);
    w.U8(m.ok ? 1 : 0);
  }
  void operator()(const LegReplaceMsg& m) const {
    w.U64(m.tx);
    w.U32(m.epoch);
    w.U32(m.leg);
    w.U32(m.legs);
    w.U8(m.leg_failed ? 1 : 0);
    w.U64(m.offset);
    w.Bytes(std::span(reinterpret_cast<const uint8_t*>(m.device.data()), m.device.size()));
  }
};

Result<ClusterBody> DecodeBody(uint16_t type, WireReader& r) {
  switch (type) {
    case kAnnounce: {
      AnnounceMsg m;
      m.view_id = r.U64();
      m.ready = r.Bool();
      m.quorate_view = r.U64();
      m.base_history = r.U64();
      m.base_version = r.U64();
      return ClusterBody(m);
    }
    case kCheckpoint: {
      CheckpointMsg m;
      m.view_id = r.U64();
      m.for_node = r.U32();
      m.chunk_index = r.U32();
      m.chunk_count = r.U32();
      m.bytes = r.Bytes();
      if (r.ok() && (m.chunk_count == 0 || m.chunk_index >= m.chunk_count)) {
        return Corrupt("CHECKPOINT chunk " + std::to_string(m.chunk_index) + " of " +
                       std::to_string(m.chunk_count));
      }
      return ClusterBody(std::move(m));
    }
    case kMarks: {
      MarksMsg m;
      m.flush_id = r.U64();
      m.marks = r.Regions();
      m.clears = r.Regions();
      return ClusterBody(std::move(m));
    }
    case kOutOfSync: {
      OutOfSyncMsg m;
      m.failed = r.U32();
      m.slot = r.U32();
      m.overflow = r.Bool();
      m.regions = r.Regions();
      return ClusterBody(std::move(m));
    }
    case kReport: {
      ReportMsg m;
      m.failed = r.U32();
      m.marked = r.Regions();
      return ClusterBody(std::move(m));
    }
    case kBusy: {
      BusyMsg m;
      m.flush_id = r.U64();
      m.regions = r.Regions();
      return ClusterBody(std::move(m));
    }
    case kIdle: {
      IdleMsg m;
      m.regions = r.Regions();
      return ClusterBody(std::move(m));
    }
    case kClaim:
      return ClusterBody(ClaimMsg{r.U64()});
    case kDone: {
      DoneMsg m;
      m.region = r.U64();
      m.in_sync = r.Bool();
      return ClusterBody(m);
    }
    case kSlotFreed: {
      SlotFreedMsg m;
      m.node = r.U32();
      m.slot = r.U32();
      return ClusterBody(m);
    }
    case kAbsent: {
      AbsentMsg m;
      m.node = r.U32();
      m.regions = r.Regions();
      return ClusterBody(std::move(m));
    }
    case kDelta: {
      DeltaMsg m;
      m.view_id = r.U64();
      m.for_node = r.U32();
      const uint8_t base = r.U8();
      m.base_version = r.U64();
      m.checkpoint_crc = r.U32();
      m.now_in_sync = r.Regions();
      m.now_out_of_sync = r.Regions();
      m.state = r.Bytes();
      if (r.ok() && base != static_cast<uint8_t>(DeltaMsg::Base::kRetained) &&
          base != static_cast<uint8_t>(DeltaMsg::Base::kPersisted)) {
        return Corrupt("DELTA with unknown base kind " + std::to_string(base));
      }
      m.base = static_cast<DeltaMsg::Base>(base);
      return ClusterBody(std::move(m));
    }
    case kNeedCheckpoint:
      return ClusterBody(NeedCheckpointMsg{r.U64()});
    case kDeviceFailed:
      return ClusterBody(DeviceFailedMsg{});
    case kLegRemoval: {
      LegRemovalMsg m;
      m.tx = r.U64();
      m.leg = r.U32();
      m.legs = r.U32();
      m.epoch = r.U32();
      if (r.ok() && m.leg >= m.legs) {
        return Corrupt("LEG_REMOVAL of leg " + std::to_string(m.leg) + " of " +
                       std::to_string(m.legs));
      }
      return ClusterBody(m);
    }
    case kLegVote: {
      LegVoteMsg m;
      m.tx = r.U64();
      m.ok = r.Bool();
      return ClusterBody(m);
    }
    case kLegReplace: {
      LegReplaceMsg m;
      m.tx = r.U64();
      m.epoch = r.U32();
      m.leg = r.U32();
      m.legs = r.U32();
      m.leg_failed = r.Bool();
      m.offset = r.U64();
      const std::vector<uint8_t> device = r.Bytes();
      m.device.assign(device.begin(), device.end());
      if (r.ok() && (m.device.empty() || (m.leg != kNoLeg && m.leg >= m.legs))) {
        return Corrupt("LEG_REPLACE of leg " + std::to_string(m.leg) + " of " +
                       std::to_string(m.legs) + " by \"" + m.device + "\"");
      }
      return ClusterBody(std::move(m));
    }
    default:
      return Corrupt("unknown cluster message type " + std::to_string(type));
  }
}

}  // namespace

const char* ClusterMsgName(const ClusterBody& body) {
  static const char* const kNames[] = {
      "?",           "ANNOUNCE", "CHECKPOINT", "MARKS",           "OUT_OF_SYNC",
      "REPORT",      "BUSY",     "IDLE",       "CLAIM",           "DONE",
      "SLOT_FREED",  "ABSENT",   "DELTA",      "NEED_CHECKPOINT", "DEVICE_FAILED",
      "LEG_REMOVAL", "LEG_VOTE", "LEG_REPLACE"};
  return kNames[std::visit(TypeOf{}, body)];
}

std::vector<uint8_t> EncodeClusterMsg(NodeId sender, const ClusterBody& body) {
  WireWriter w;
  w.U32(kClusterMsgMagic);
  w.U16(kClusterProtocolVersion);
  w.U16(std::visit(TypeOf{}, body));
  w.U32(sender);
  w.U32(0);  // payload length, patched below
  w.U32(0);  // crc, patched below
  w.U32(0);  // reserved
  std::visit(PayloadWriter{w}, body);
  std::vector<uint8_t> out = w.Take();
  const auto payload_len = static_cast<uint32_t>(out.size() - kClusterHeaderSize);
  PutLe32(out.data() + 12, payload_len);
  PutLe32(out.data() + 16, region::Crc32c(out));
  return out;
}

Result<ClusterMsg> DecodeClusterMsg(std::span<const uint8_t> frame) {
  if (frame.size() < kClusterHeaderSize) {
    return Corrupt("cluster message of " + std::to_string(frame.size()) +
                   " bytes is shorter than its 24-byte header");
  }
  if (frame.size() > kMaxClusterMessage) {
    return Corrupt("cluster message of " + std::to_string(frame.size()) + " bytes exceeds " +
                   std::to_string(kMaxClusterMessage));
  }
  WireReader h(frame.first(kClusterHeaderSize));
  const uint32_t magic = h.U32();
  const uint16_t version = h.U16();
  const uint16_t type = h.U16();
  const NodeId sender = h.U32();
  const uint32_t payload_len = h.U32();
  const uint32_t crc = h.U32();
  if (magic != kClusterMsgMagic) {
    return Corrupt("cluster message with bad magic 0x" + ToHex(magic));
  }
  if (version != kClusterProtocolVersion) {
    return UnsupportedVersion("cluster message from node " + std::to_string(sender) +
                              " speaks protocol version " + std::to_string(version) +
                              ", this node speaks version " +
                              std::to_string(kClusterProtocolVersion));
  }
  if (payload_len != frame.size() - kClusterHeaderSize) {
    return Corrupt("cluster message from node " + std::to_string(sender) + ": payload length " +
                   std::to_string(payload_len) + " but " +
                   std::to_string(frame.size() - kClusterHeaderSize) + " bytes present");
  }
  std::vector<uint8_t> copy(frame.begin(), frame.end());
  PutLe32(copy.data() + 16, 0);
  const uint32_t computed = region::Crc32c(copy);
  if (computed != crc) {
    return Corrupt("cluster message from node " + std::to_string(sender) +
                   ": bad checksum (stored 0x" + ToHex(crc) + ", computed 0x" + ToHex(computed) +
                   ")");
  }
  WireReader r(frame.subspan(kClusterHeaderSize));
  auto body = DecodeBody(type, r);
  if (!body.ok()) return body.status();
  if (!r.ok() || !r.AtEnd()) {
    return Corrupt("cluster message " + std::string(ClusterMsgName(*body)) + " from node " +
                   std::to_string(sender) + ": malformed payload (" + r.Problem() + ")");
  }
  return ClusterMsg{sender, std::move(body).value()};
}

}  // namespace clogd::logd
