// Fast rejoin (DESIGN.md §4.8): a member coming back after losing the cluster (corosync
// restarted under it, it was cut off, or — clustered-disk — its daemon restarted) takes
// the state as the difference from an in-sync map it can get itself, not as a full
// checkpoint. Everything else in the state is small (members, slots, owners, marks) and
// travels whole; the in-sync map is the part that grows with the log (2^24 regions).
//
// Two bases:
//  * retained: the map the member held when it lost the cluster, named by the state's
//    (history, sync_version). Every member counts in-sync changes identically, and each
//    keeps the most recent ones, so the server can send the changes since that version.
//  * persisted (clustered-disk): the map on the shared log device, which the server reads
//    when it builds the delta and the joiner reads when it applies it.
// Either way the joiner checks the rebuilt state against the CRC32C of the server's full
// checkpoint, so a base that is not what the server thinks (the device written between
// the two reads, a member whose state diverged while cut off) costs a full checkpoint,
// never a wrong state.
#include <algorithm>

#include "logd/cluster_log.h"
#include "region/crc32c.h"

namespace clogd::logd {

namespace {

// Changes kept per member for retained deltas, and the most a delta may carry: beyond
// that a full checkpoint (in-sync map as ranges) is as cheap.
constexpr size_t kMaxSyncChanges = 32768;
constexpr size_t kMaxDeltaBytes = 512 * 1024;

}  // namespace

uint64_t ClusterLog::NewHistoryId() const {
  // Distinct per bootstrap: the bootstrapping node, its view and the log generation
  // (splitmix64's finaliser spreads them). Never 0, which means "no base".
  uint64_t x = (uint64_t{me_} << 40) ^ round_.view_id ^ (state_.generation * 0x9E3779B97F4A7C15u);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
  x ^= x >> 31;
  return x == 0 ? 1 : x;
}

void ClusterLog::NoteInSyncChange(RegionNo r, bool in_sync) {
  ++state_.sync_version;
  if (in_sync && state_.Uncopied(r)) {
    state_.uncopied.Clear(r);
    if (state_.uncopied.none()) state_.uncopied = {};
  }
  sync_changes_.emplace_back(r, in_sync);
  if (sync_changes_.size() > kMaxSyncChanges) {
    sync_changes_.pop_front();
    ++sync_changes_base_;
  }
}

void ClusterLog::NoteInSyncReset() {
  ++state_.sync_version;
  sync_changes_.clear();  // no delta spans a whole-map change
  sync_changes_base_ = state_.sync_version;
}

void ClusterLog::RetainBase() {
  retained_ = RetainedBase{state_.history, state_.sync_version, state_.log.in_sync()};
}

void ClusterLog::SendStateToJoiners(const std::vector<NodeId>& joiners) {
  const std::vector<uint8_t> full = state_.EncodeCheckpoint();
  const uint32_t crc = region::Crc32c(full);
  std::vector<DeltaMsg> deltas;
  for (NodeId joiner : joiners) {
    std::optional<DeltaMsg> d = BuildDelta(joiner, crc);
    if (!d) {
      for (NodeId j : joiners) {
        Log(Severity::kInfo, "node " + std::to_string(j) + " joins with a full checkpoint (" +
                                 std::to_string(full.size()) + " bytes of state)");
      }
      SendCheckpoint();  // one full checkpoint serves every joiner
      return;
    }
    deltas.push_back(std::move(*d));
  }
  for (DeltaMsg& d : deltas) {
    Log(Severity::kInfo, "node " + std::to_string(d.for_node) + " rejoins with a delta of " +
                             std::to_string(d.now_in_sync.size() + d.now_out_of_sync.size()) +
                             " in-sync changes (" + std::to_string(d.state.size()) +
                             " bytes of state)");
    Send(std::move(d));
    ++stats_.deltas_sent;
  }
}

std::optional<DeltaMsg> ClusterLog::BuildDelta(NodeId joiner, uint32_t checkpoint_crc) {
  auto it = round_.announces.find(joiner);
  if (it == round_.announces.end()) return std::nullopt;
  const AnnounceMsg& a = it->second;
  DeltaMsg d;
  d.view_id = round_.view_id;
  d.for_node = joiner;
  d.checkpoint_crc = checkpoint_crc;
  if (a.base_history != 0 && a.base_history == state_.history &&
      a.base_version >= sync_changes_base_ && a.base_version <= state_.sync_version) {
    d.base = DeltaMsg::Base::kRetained;
    d.base_version = a.base_version;
    // The net change per region since the joiner's version, as the map holds it now.
    std::set<RegionNo> touched;
    for (size_t i = a.base_version - sync_changes_base_; i < sync_changes_.size(); ++i) {
      touched.insert(sync_changes_[i].first);
    }
    for (RegionNo r : touched) {
      (state_.log.InSync(r) ? d.now_in_sync : d.now_out_of_sync).push_back(r);
    }
  } else if (disk() && !device_failed_) {
    if (!log_dev_->Reload().ok()) return std::nullopt;
    d.base = DeltaMsg::Base::kPersisted;
    const region::RegionBitmap& disk_map = log_dev_->loaded_in_sync();
    const region::RegionBitmap& now = state_.log.in_sync();
    if (disk_map.size() != now.size()) return std::nullopt;
    for (uint64_t w = 0; w < now.WordCount(); ++w) {
      uint64_t diff = now.Word(w) ^ disk_map.Word(w);
      while (diff != 0) {
        const RegionNo r = w * 64 + static_cast<RegionNo>(__builtin_ctzll(diff));
        diff &= diff - 1;
        if (r >= now.size()) break;
        (now.Test(r) ? d.now_in_sync : d.now_out_of_sync).push_back(r);
        if (d.now_in_sync.size() + d.now_out_of_sync.size() > kMaxSyncChanges) {
          return std::nullopt;
        }
      }
    }
  } else {
    return std::nullopt;
  }
  d.state = state_.EncodeCheckpoint(false);
  const size_t bytes = d.state.size() + 8 * (d.now_in_sync.size() + d.now_out_of_sync.size());
  if (bytes > kMaxDeltaBytes) return std::nullopt;
  return d;
}

void ClusterLog::OnDelta(const DeltaMsg& m) {
  if (m.for_node != me_ || m.view_id != round_.view_id || !round_.decided ||
      asked_for_checkpoint_) {
    return;
  }
  auto refuse = [&](const std::string& why) {
    ++stats_.deltas_refused;
    Log(Severity::kError, "refused a rejoin delta (" + why + "): asking for a full checkpoint");
    asked_for_checkpoint_ = true;
    Send(NeedCheckpointMsg{round_.view_id});
  };
  region::RegionBitmap in_sync;
  if (m.base == DeltaMsg::Base::kRetained) {
    if (!retained_ || retained_->version != m.base_version) {
      refuse("it is based on a map this node does not hold");
      return;
    }
    in_sync = retained_->in_sync;
  } else {
    if (!disk()) {
      refuse("it is based on a log device and this log has none");
      return;
    }
    if (Status s = log_dev_->Reload(); !s.ok()) {
      refuse("reading the log device: " + s.ToString());
      return;
    }
    in_sync = log_dev_->loaded_in_sync();
  }
  for (RegionNo r : m.now_in_sync) {
    if (r < in_sync.size()) in_sync.Set(r);
  }
  for (RegionNo r : m.now_out_of_sync) {
    if (r < in_sync.size()) in_sync.Clear(r);
  }
  auto decoded = ClusterState::DecodeCheckpoint(m.state, args_.RegionCount(), args_.region_size);
  if (!decoded.ok()) {
    refuse(decoded.status().ToString());
    return;
  }
  ClusterState rebuilt = std::move(decoded).value();
  if (in_sync.size() != rebuilt.log.nr_regions()) {
    refuse("its base has " + std::to_string(in_sync.size()) + " regions");
    return;
  }
  rebuilt.log.ReplaceInSync(std::move(in_sync));
  if (region::Crc32c(rebuilt.EncodeCheckpoint()) != m.checkpoint_crc) {
    refuse("the rebuilt state does not match the server's checksum");
    return;
  }
  ++stats_.deltas_taken;
  Log(Severity::kInfo, "rejoined with a delta of " +
                           std::to_string(m.now_in_sync.size() + m.now_out_of_sync.size()) +
                           " in-sync changes");
  TakeState(std::move(rebuilt));
}

void ClusterLog::OnNeedCheckpoint(NodeId from, const NeedCheckpointMsg& m) {
  if (m.view_id != round_.view_id || !round_.decided) return;
  if (leg_tx_ && leg_tx_->awaiting.contains(from)) {
    // The checkpoint it takes does not carry an open leg transaction, and the messages it
    // buffered before this point are dropped: it would never vote, and could open a leg
    // change of its own that the others set aside (clog-sim --seed 4102 --legs 3). So the
    // transaction ends here, on every member alike; the proposer tries again.
    DecideLegTx(false, "node " + std::to_string(from) + " is taking a full checkpoint");
  }
  if (from == me_ && !ready_) {
    // The checkpoint answering this is taken at this point of the agreed order: what was
    // buffered before it is already in it.
    buffered_.clear();
    chunks_.clear();
    return;
  }
  if (ready_ && state_.server == me_) SendCheckpoint(from);
}

}  // namespace clogd::logd
