// The messages clogd members exchange in a log's CPG group, and their wire format
// (little-endian; documented in logd/CLUSTER.md):
//   header (24 bytes): magic u32 "CLGM", version u16, type u16, sender u32,
//                      payload length u32, crc32c u32 (header with crc 0, then payload),
//                      reserved u32
//   payload: per type, below.
// Decode refuses, naming the problem: a short or oversized frame, a bad magic or CRC, an
// unknown version (naming ours and theirs), an unknown type, a payload that does not
// parse exactly.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "region/log_format.h"
#include "region/status.h"

namespace clogd::logd {

using region::NodeId;
using region::RegionNo;

inline constexpr uint32_t kClusterMsgMagic = 0x4D474C43;  // "CLGM"
// 2: rejoin deltas; 3: leg removal; 4: leg replacement (LEG_REPLACE, leg epochs)
inline constexpr uint16_t kClusterProtocolVersion = 4;
inline constexpr size_t kClusterHeaderSize = 24;

// After every membership change each member says whether it holds the log state, and the
// last view in which it held it with quorum (a member cut off while the others went on
// has an older one: its state is stale). A member without the state names the in-sync
// map it still holds (kept from before it lost the cluster), so the server can send it a
// delta instead of a full checkpoint.
struct AnnounceMsg {
  uint64_t view_id = 0;
  bool ready = false;
  uint64_t quorate_view = 0;
  uint64_t base_history = 0;  // 0: no retained in-sync map
  uint64_t base_version = 0;
};
// One chunk of a state snapshot taken at the end of view `view_id`'s announce round (for
// every joiner), or at the delivery of `for_node`'s NEED_CHECKPOINT (for it alone).
struct CheckpointMsg {
  uint64_t view_id = 0;
  NodeId for_node = 0;  // 0: every member without the state
  uint32_t chunk_index = 0;
  uint32_t chunk_count = 0;
  std::vector<uint8_t> bytes;
};
// The state for one joiner as the difference from an in-sync map it can get itself: the
// one it retained (kRetained: history and version as it announced them) or the one on the
// shared log device (kPersisted, clustered-disk). `state` is a checkpoint without the
// in-sync map; `checkpoint_crc` is the CRC32C of the full checkpoint, so the joiner
// verifies what it rebuilt and asks for a full checkpoint (NEED_CHECKPOINT) if it differs.
struct DeltaMsg {
  enum class Base : uint8_t { kRetained = 1, kPersisted = 2 };
  uint64_t view_id = 0;
  NodeId for_node = 0;
  Base base = Base::kRetained;
  uint64_t base_version = 0;
  uint32_t checkpoint_crc = 0;
  std::vector<RegionNo> now_in_sync;
  std::vector<RegionNo> now_out_of_sync;
  std::vector<uint8_t> state;
};
// clustered-disk: the sender cannot write the log device any more; it replicates its
// marks with MARKS from now on. The server stops trusting the device's in-sync map.
struct DeviceFailedMsg {};
// A joiner whose delta did not rebuild the server's state: send a full checkpoint.
struct NeedCheckpointMsg {
  uint64_t view_id = 0;
};
// clustered-core: a member's mark/clear delta, sent at FLUSH.
struct MarksMsg {
  uint64_t flush_id = 0;  // sender-local, to match the delivery to the waiting FLUSH
  std::vector<RegionNo> marks;
  std::vector<RegionNo> clears;
};
// clustered-disk: a departed member's dirty regions, read from its slot by the server.
struct OutOfSyncMsg {
  NodeId failed = 0;
  uint32_t slot = 0;
  bool overflow = false;  // its slot overflowed: every region
  std::vector<RegionNo> regions;
};
// After merging `failed`'s regions a member re-arms its kernel, then reports which of
// the now out-of-sync regions it still has marked.
struct ReportMsg {
  NodeId failed = 0;
  std::vector<RegionNo> marked;
};
// clustered-disk: marks of out-of-sync regions (busy) and their clearing (idle).
struct BusyMsg {
  uint64_t flush_id = 0;
  std::vector<RegionNo> regions;
};
struct IdleMsg {
  std::vector<RegionNo> regions;
};
// Recovery ownership, applied in agreed order (the first claim of a region wins).
struct ClaimMsg {
  RegionNo region = 0;
};
struct DoneMsg {
  RegionNo region = 0;
  bool in_sync = false;
};
// The server cleared a departed member's slot after the out-of-sync map was durable.
struct SlotFreedMsg {
  NodeId node = 0;
  uint32_t slot = 0;
};

// clustered-disk: a member whose daemon died on a live node (its kernel may still write):
// its slot's regions, read by the server, count as busy until it is back.
struct AbsentMsg {
  NodeId node = 0;
  std::vector<RegionNo> regions;
};
// A leg of the mirror failed on the sender's node: remove leg `leg` (its index in the
// table) from every node's table of `legs` legs, as one transaction (CLUSTER.md "Leg
// removal"). `tx` is the sender's id for it (node << 32 | counter). `epoch` is the
// state's leg epoch the sender saw (ClusterState::leg_epoch): a proposal made against a
// table that a change committed since has reshaped is set aside.
struct LegRemovalMsg {
  uint64_t tx = 0;
  uint32_t leg = 0;
  uint32_t legs = 0;
  uint32_t epoch = 0;
};
inline constexpr uint32_t kNoLeg = 0xFFFFFFFF;
// An operator's request (clogctl replace-leg / add-leg): reload every node's table of
// `legs` legs without leg `leg` (kNoLeg: none) and with `device` (a path every node
// resolves itself: shared storage may have other device numbers there) at sector
// `offset` as its new last leg; the new leg holds nothing yet, so every region goes out
// of sync and is copied. One transaction, like LEG_REMOVAL (CLUSTER.md "Leg replacement").
// `leg_failed`: the proposer's kernel saw leg `leg` fail (else the mirror must be in sync:
// see CLUSTER.md "Leg replacement").
struct LegReplaceMsg {
  uint64_t tx = 0;
  uint32_t epoch = 0;
  uint32_t leg = kNoLeg;
  uint32_t legs = 0;
  bool leg_failed = false;
  uint64_t offset = 0;
  std::string device;
};
// A member's answer to LEG_REMOVAL or LEG_REPLACE `tx`: its mirror is suspended with the
// new table loaded (ok), or it cannot be (the transaction aborts).
struct LegVoteMsg {
  uint64_t tx = 0;
  bool ok = false;
};

using ClusterBody =
    std::variant<AnnounceMsg, CheckpointMsg, MarksMsg, OutOfSyncMsg, ReportMsg, BusyMsg, IdleMsg,
                 ClaimMsg, DoneMsg, SlotFreedMsg, AbsentMsg, DeltaMsg, NeedCheckpointMsg,
                 DeviceFailedMsg, LegRemovalMsg, LegVoteMsg, LegReplaceMsg>;

struct ClusterMsg {
  NodeId sender = 0;
  ClusterBody body;
};

// "ANNOUNCE", "CHECKPOINT", ...
const char* ClusterMsgName(const ClusterBody& body);

std::vector<uint8_t> EncodeClusterMsg(NodeId sender, const ClusterBody& body);
Result<ClusterMsg> DecodeClusterMsg(std::span<const uint8_t> frame);

}  // namespace clogd::logd
