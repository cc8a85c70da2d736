// Builds the status snapshot from a LogEngine's read-only accessors, and formats it for
// humans (every line ≤ 80 columns: long lists are wrapped or cut with "...").
// The JSON side is in status_json.cc.
#include "logd/status_report.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace clogd::logd {

namespace {

constexpr size_t kWidth = 80;
constexpr size_t kLabelWidth = 12;  // "  counters  " etc.: the hanging indent of a field

std::vector<RegionNo> ToVector(const std::set<RegionNo>& s) { return {s.begin(), s.end()}; }

std::vector<RecoveringRegion> Recovering(const recovery::RecoveryAssigner& recovery) {
  std::vector<RecoveringRegion> out;
  for (auto [r, n] : recovery.owners()) out.push_back({r, n});
  return out;
}

void FillCommon(LogReport& r, const std::string& uuid, const CtrArgs& args) {
  r.uuid = uuid;
  r.type = LogTypeName(args.type);
  r.device = args.device;
  r.region_size = args.region_size;
  r.regions = args.RegionCount();
}

LogReport ReportLocal(const LocalLog& log, NodeId node) {
  LogReport r;
  FillCommon(r, log.uuid(), log.args());
  r.mode = "local";
  r.luid = log.luid();
  r.ready = log.loaded();
  r.serving = log.loaded();
  r.device_failed = log.device_failed();
  if (log.loaded()) {
    // Before RESUME the state is a placeholder (all out of sync); not worth showing.
    r.in_sync = log.state().SyncCount();
    r.out_of_sync = r.regions - *r.in_sync;
    r.recovering = Recovering(log.recovery());
    for (NodeId n : log.state().NodesWithMarks()) {
      const auto& d = log.state().DirtyOf(n);
      r.dirty.push_back({n, "state", true, false, ToVector(d)});
    }
  }
  if (const region::LogDevice* dev = log.log_device()) {
    r.generation = dev->superblock().generation;
  }
  (void)node;
  const LogCounters& c = log.counters();
  r.counters = {{"requests", c.requests},
                {"slot_writes", c.slot_writes},
                {"in_sync_writes", c.in_sync_writes},
                {"regions_recovered", c.regions_recovered}};
  return r;
}

// clustered-disk: other members' marks live only in their slots on the shared device.
void AddDeviceSlots(LogReport& r, const ClusterLog& log, const std::vector<NodeId>& others,
                    const SlotReader& reader) {
  std::vector<uint32_t> wanted;
  for (NodeId n : others) {
    if (uint32_t slot = log.state().SlotOf(n); slot != kNoSlot) wanted.push_back(slot);
  }
  std::optional<SlotPeek> seen;
  if (!wanted.empty() && reader) {
    auto peek = reader(log.args().device, log.args().RegionCount(), wanted);
    if (peek.ok()) {
      seen = std::move(peek).value();
      for (const auto& p : seen->problems) r.notes.push_back("log device: " + p);
    } else {
      r.notes.push_back("other members' marks not read: " + peek.status().message());
    }
  }
  for (NodeId n : others) {
    NodeDirty d{n, "unknown", false, false, {}};
    const uint32_t slot = log.state().SlotOf(n);
    const region::SlotRecord* rec = nullptr;
    if (seen && slot != kNoSlot) {
      auto it = seen->slots.find(slot);
      if (it != seen->slots.end()) rec = &it->second;
    }
    if (rec && rec->node_id == n) {
      d = {n, "device", true, rec->overflow, rec->regions};
    } else if (rec && rec->node_id == 0) {
      d = {n, "device", true, false, {}};  // a new member that has not written its slot yet
    } else if (rec) {
      r.notes.push_back("slot " + std::to_string(slot) + " of node " + std::to_string(n) +
                        " holds node " + std::to_string(rec->node_id) + " on the device");
    }
    r.dirty.push_back(std::move(d));
  }
}

LogReport ReportCluster(const ClusterLog& log, const SlotReader& reader) {
  LogReport r;
  FillCommon(r, log.uuid(), log.args());
  r.mode = "cluster";
  r.ready = log.ready();
  r.serving = log.serving();
  r.pending_requests = log.pending_requests();
  r.device_failed = log.device_failed();
  const ClusterLogStats& st = log.stats();
  r.counters = {
      {"messages_sent", st.messages_sent},       {"messages_refused", st.messages_refused},
      {"checkpoints_sent", st.checkpoints_sent}, {"flushes", st.flushes},
      {"flush_messages", st.flush_messages},     {"regions_merged", st.regions_merged},
      {"deltas_sent", st.deltas_sent},           {"checkpoints_taken", st.checkpoints_taken},
      {"deltas_taken", st.deltas_taken},         {"deltas_refused", st.deltas_refused}};
  if (!log.ready()) return r;  // joining: the state is not this node's to show yet

  const ClusterState& s = log.state();
  r.quorate = log.serving();  // serving = ready && quorate
  r.recovery_gate_open = s.RecoveryGateOpen();
  r.in_sync = s.log.SyncCount();
  r.out_of_sync = s.log.nr_regions() - *r.in_sync;
  r.recovering = Recovering(s.recovery);
  if (s.server != 0) r.server = s.server;
  r.members = s.members;
  r.absent.assign(s.absent.begin(), s.absent.end());
  r.generation = s.generation;

  std::vector<NodeId> nodes = s.members;  // members and absent members, in member order
  for (NodeId n : s.absent) {
    if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
  }
  if (log.args().type == LogType::kClusteredCore) {
    for (NodeId n : s.log.NodesWithMarks()) {
      if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
    }
    for (NodeId n : nodes)
      r.dirty.push_back({n, "replica", true, false, ToVector(s.log.DirtyOf(n))});
  } else {
    // What this node's slot holds (or takes at the next FLUSH): its marks and the clears
    // lingering there, as the other members read it from the device.
    std::set<RegionNo> in_slot = log.own_marks();
    in_slot.insert(log.lingering_in_slot().begin(), log.lingering_in_slot().end());
    r.dirty.push_back({log.node(), "own", true, false, ToVector(in_slot)});
    std::vector<NodeId> others;
    for (NodeId n : nodes) {
      if (n != log.node()) others.push_back(n);
    }
    AddDeviceSlots(r, log, others, reader);
    // Members whose log device failed keep their marks in the replicated state.
    for (NodeId n : s.log.NodesWithMarks())
      r.dirty.push_back({n, "replica", true, false, ToVector(s.log.DirtyOf(n))});
    if (s.device_suspect) {
      r.notes.push_back(
          "a member could not write the log device: its marks are replicated in memory and "
          "the device's in-sync map reads all out of sync (a full resync if the whole "
          "cluster restarts); replace the log device");
    }
    for (const auto& [n, regions] : s.busy) {
      if (!regions.empty()) r.busy.push_back({n, ToVector(regions)});
    }
  }
  return r;
}

// Appends "label item item ..." to `out`, wrapping between items at kWidth with a
// hanging indent; an item wider than a line is cut with "...".
void FieldItems(std::ostringstream& out, const std::string& label,
                const std::vector<std::string>& items) {
  std::string line = "  " + label;
  line.resize(kLabelWidth, ' ');
  const std::string indent(kLabelWidth, ' ');
  bool first = true;
  for (std::string item : items) {
    item = Elide(item, kWidth - kLabelWidth);
    if (!first && line.size() + 1 + item.size() > kWidth) {
      out << line << "\n";
      line = indent;
      first = true;
    }
    if (!first) line += ' ';
    line += item;
    first = false;
  }
  out << line << "\n";
}

// The same with the words of `text` as items.
void Field(std::ostringstream& out, const std::string& label, const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  FieldItems(out, label, words);
}

// "<prefix>: 3 regions: 4 5 9" cut with "..." so that it fits one field line.
std::string RegionList(const std::string& prefix, const std::vector<RegionNo>& regions) {
  std::string s = prefix + ": " + std::to_string(regions.size()) +
                  (regions.size() == 1 ? " region" : " regions");
  const size_t room = kWidth - kLabelWidth;
  for (size_t i = 0; i < regions.size(); ++i) {
    std::string next = (i == 0 ? ": " : " ") + std::to_string(regions[i]);
    if (s.size() + next.size() + 4 > room) {
      s += " ...";
      break;
    }
    s += next;
  }
  return s;
}

std::string NodeList(const std::vector<NodeId>& nodes) {
  if (nodes.empty()) return "-";
  std::string s;
  for (NodeId n : nodes) s += (s.empty() ? "" : " ") + std::to_string(n);
  return s;
}

std::string Percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return "100.0%";
  // Truncated, not rounded: 99.99% must not read as 100.0%.
  const uint64_t tenths = part * 1000 / whole;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "%";
}

std::string YesNo(bool b) { return b ? "yes" : "no"; }

void FormatLog(std::ostringstream& out, const LogReport& r) {
  out << Elide(r.uuid, kWidth) << "\n";
  std::string what = r.type + " (" + r.mode + ")";
  if (!r.device.empty()) what += " on " + r.device;
  what += ", region size " + std::to_string(r.region_size) + " sectors";
  if (r.luid) what += ", luid " + std::to_string(*r.luid);
  Field(out, "log", what);
  if (r.in_sync) {
    Field(out, "sync",
          std::to_string(*r.in_sync) + " / " + std::to_string(r.regions) + " in sync (" +
              Percent(*r.in_sync, r.regions) + "), " + std::to_string(*r.out_of_sync) +
              " out of sync");
  } else {
    Field(out, "sync", std::to_string(r.regions) + " regions, state not loaded yet");
  }
  std::string state = r.serving ? "serving" : (r.ready ? "ready, not serving" : "not ready");
  if (r.quorate) state += *r.quorate ? ", quorate" : ", no quorum";
  if (r.mode == "cluster") {
    state += ", server " + (r.server ? std::to_string(*r.server) : std::string("none"));
  }
  if (r.generation) state += ", generation " + std::to_string(*r.generation);
  Field(out, "state", state);
  Field(out, "kernel",
        std::to_string(r.pending_requests) + " requests waiting, log device " +
            (r.device.empty()  ? "none"
             : r.device_failed ? "FAILED"
                               : "ok"));
  if (r.mode == "cluster") {
    Field(out, "members",
          NodeList(r.members) + (r.absent.empty() ? "" : "; absent: ") +
              (r.absent.empty() ? "" : NodeList(r.absent)));
  }
  if (r.recovery_gate_open && !*r.recovery_gate_open) {
    Field(out, "resync", "held: waiting for a failed node's merge or members' reports");
  }
  if (!r.recovering.empty()) {
    std::string s = std::to_string(r.recovering.size()) + " being copied:";
    for (size_t i = 0; i < r.recovering.size(); ++i) {
      s += (i == 0 ? " " : ", ") + std::to_string(r.recovering[i].region) + " by node " +
           std::to_string(r.recovering[i].node);
    }
    Field(out, "resync", s);
  }
  std::string label = "dirty";
  for (const auto& d : r.dirty) {
    std::string who = "node " + std::to_string(d.node) + " (" + d.source + ")";
    Field(out, label,
          !d.known     ? who + ": not known here"
          : d.overflow ? who + ": slot overflowed, every region dirty"
                       : RegionList(who, d.regions));
    label.clear();
  }
  if (r.dirty.empty() && r.in_sync) Field(out, "dirty", "none");
  label = "busy";
  for (const auto& b : r.busy) {
    Field(out, label, RegionList("node " + std::to_string(b.node), b.regions));
    label.clear();
  }
  std::vector<std::string> counters;  // "slot writes 3," kept whole on one line
  for (size_t i = 0; i < r.counters.size(); ++i) {
    std::string pretty = r.counters[i].first;
    std::replace(pretty.begin(), pretty.end(), '_', ' ');
    counters.push_back(pretty + " " + std::to_string(r.counters[i].second) +
                       (i + 1 < r.counters.size() ? "," : ""));
  }
  FieldItems(out, "counters", counters);
  for (const auto& n : r.notes) Field(out, "note", n);
}

}  // namespace

std::string Elide(const std::string& s, size_t width) {
  if (s.size() <= width) return s;
  if (width <= 3) return s.substr(0, width);
  const size_t keep = width - 3;
  return s.substr(0, keep - keep / 2) + "..." + s.substr(s.size() - keep / 2);
}

StatusReport BuildStatusReport(const LogEngine& engine, const ReportOptions& options) {
  StatusReport report;
  report.node = options.node;
  for (const ClusterLog* log : engine.ClusterLogs()) {
    report.logs.push_back(ReportCluster(*log, options.slot_reader));
  }
  for (const LocalLog* log : engine.Logs()) report.logs.push_back(ReportLocal(*log, options.node));
  std::stable_sort(report.logs.begin(), report.logs.end(),
                   [](const LogReport& a, const LogReport& b) { return a.uuid < b.uuid; });
  return report;
}

std::string FormatStatus(const StatusReport& report) {
  std::ostringstream out;
  out << "clogd on node " << report.node << ": " << report.logs.size()
      << (report.logs.size() == 1 ? " log\n" : " logs\n");
  for (const auto& log : report.logs) {
    out << "\n";
    FormatLog(out, log);
  }
  return out.str();
}

NodesReport NodesOf(const StatusReport& report) {
  NodesReport out;
  out.version = report.version;
  out.node = report.node;
  for (const auto& l : report.logs) {
    out.logs.push_back({l.uuid, l.mode, l.members, l.absent, l.server, l.serving});
  }
  return out;
}

std::string FormatNodes(const NodesReport& report) {
  std::ostringstream out;
  out << "this node: " << report.node << "\n";
  for (const auto& l : report.logs) {
    out << "\n" << Elide(l.uuid, kWidth) << "\n";
    if (l.mode != "cluster") {
      Field(out, "members", "served for this node alone (" + l.mode + ")");
      continue;
    }
    Field(out, "server", l.server ? std::to_string(*l.server) : std::string("none"));
    Field(out, "members", NodeList(l.members));
    if (!l.absent.empty()) Field(out, "absent", NodeList(l.absent));
    Field(out, "serving", YesNo(l.serving));
  }
  return out.str();
}

}  // namespace clogd::logd
