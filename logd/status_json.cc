// The stable JSON form of the status and nodes reports (fields in logd/README.md), both
// ways: clogd encodes, clogctl decodes. Decoding never throws: a missing field or a wrong
// type is a kInvalidArgument naming the field.
#include <limits>
#include <nlohmann/json.hpp>

#include "logd/status_report.h"

namespace clogd::logd {

namespace {

// Replies keep the documented field order (easier to read than sorted keys), and a
// decoded report keeps the order it was sent in.
using json = nlohmann::ordered_json;
using ordered = json;

template <typename T>
ordered OrNull(const std::optional<T>& v) {
  return v ? ordered(*v) : ordered(nullptr);
}

ordered LogJson(const LogReport& r) {
  ordered recovering = ordered::array();
  for (const auto& rr : r.recovering)
    recovering.push_back({{"region", rr.region}, {"node", rr.node}});
  ordered dirty = ordered::array();
  for (const auto& d : r.dirty) {
    dirty.push_back({{"node", d.node},
                     {"source", d.source},
                     {"known", d.known},
                     {"overflow", d.overflow},
                     {"count", d.regions.size()},
                     {"regions", d.regions}});
  }
  ordered busy = ordered::array();
  for (const auto& b : r.busy) busy.push_back({{"node", b.node}, {"regions", b.regions}});
  ordered counters = ordered::object();
  for (const auto& [name, value] : r.counters) counters[name] = value;
  return {{"uuid", r.uuid},
          {"type", r.type},
          {"mode", r.mode},
          {"luid", OrNull(r.luid)},
          {"device", r.device.empty() ? ordered(nullptr) : ordered(r.device)},
          {"region_size", r.region_size},
          {"regions", r.regions},
          {"in_sync", OrNull(r.in_sync)},
          {"out_of_sync", OrNull(r.out_of_sync)},
          {"recovering", recovering},
          {"dirty", dirty},
          {"busy", busy},
          {"server", OrNull(r.server)},
          {"members", r.members},
          {"absent", r.absent},
          {"generation", OrNull(r.generation)},
          {"ready", r.ready},
          {"serving", r.serving},
          {"quorate", OrNull(r.quorate)},
          {"recovery_gate_open", OrNull(r.recovery_gate_open)},
          {"pending_requests", r.pending_requests},
          {"device_failed", r.device_failed},
          {"counters", counters},
          {"notes", r.notes}};
}

// Reads typed fields out of JSON objects, remembering the first problem (so a decoder
// reads straight through and checks once at the end).
class FieldReader {
 public:
  const std::string& error() const { return error_; }

  const json* Get(const json& o, const std::string& key, const std::string& where) {
    if (!o.is_object()) return Fail(where + " is not an object");
    auto it = o.find(key);
    if (it == o.end()) return Fail(where + ": field '" + key + "' is missing");
    return &*it;
  }
  uint64_t U64(const json& o, const std::string& key, const std::string& where) {
    const json* v = Get(o, key, where);
    if (!v) return 0;
    if (!v->is_number_unsigned()) {
      Fail(where + ": field '" + key + "' is not a non-negative integer");
      return 0;
    }
    return v->get<uint64_t>();
  }
  uint32_t U32(const json& o, const std::string& key, const std::string& where) {
    const uint64_t v = U64(o, key, where);
    if (v > std::numeric_limits<uint32_t>::max()) {
      Fail(where + ": field '" + key + "' is larger than 32 bits");
      return 0;
    }
    return static_cast<uint32_t>(v);
  }
  std::optional<uint64_t> OptU64(const json& o, const std::string& key, const std::string& where) {
    const json* v = Get(o, key, where);
    if (!v || v->is_null()) return std::nullopt;
    return U64(o, key, where);
  }
  std::optional<uint32_t> OptU32(const json& o, const std::string& key, const std::string& where) {
    const json* v = Get(o, key, where);
    if (!v || v->is_null()) return std::nullopt;
    return U32(o, key, where);
  }
  bool Bool(const json& o, const std::string& key, const std::string& where) {
    const json* v = Get(o, key, where);
    if (!v) return false;
    if (!v->is_boolean()) {
      Fail(where + ": field '" + key + "' is not a boolean");
      return false;
    }
    return v->get<bool>();
  }
  std::optional<bool> OptBool(const json& o, const std::string& key, const std::string& where) {
    const json* v = Get(o, key, where);
    if (!v || v->is_null()) return std::nullopt;
    return Bool(o, key, where);
  }
  std::string Str(const json& o, const std::string& key, const std::string& where,
                  bool null_is_empty = false) {
    const json* v = Get(o, key, where);
    if (!v || (null_is_empty && v->is_null())) return {};
    if (!v->is_string()) {
      Fail(where + ": field '" + key + "' is not a string");
      return {};
    }
    return v->get<std::string>();
  }
  // An array field; `each` is called with every element and its "where".
  template <typename Fn>
  void Array(const json& o, const std::string& key, const std::string& where, Fn each) {
    const json* v = Get(o, key, where);
    if (!v) return;
    if (!v->is_array()) {
      Fail(where + ": field '" + key + "' is not an array");
      return;
    }
    for (size_t i = 0; i < v->size() && error_.empty(); ++i) {
      each((*v)[i], where + "." + key + "[" + std::to_string(i) + "]");
    }
  }
  std::vector<uint64_t> U64s(const json& o, const std::string& key, const std::string& where) {
    std::vector<uint64_t> out;
    Array(o, key, where, [&](const json& e, const std::string& w) {
      if (!e.is_number_unsigned()) {
        Fail(w + " is not a non-negative integer");
        return;
      }
      out.push_back(e.get<uint64_t>());
    });
    return out;
  }
  std::vector<NodeId> Nodes(const json& o, const std::string& key, const std::string& where) {
    std::vector<NodeId> out;
    for (uint64_t n : U64s(o, key, where)) {
      if (n > std::numeric_limits<NodeId>::max()) Fail(where + ": node " + std::to_string(n));
      out.push_back(static_cast<NodeId>(n));
    }
    return out;
  }
  const json* Fail(const std::string& message) {
    if (error_.empty()) error_ = message;
    return nullptr;
  }

 private:
  std::string error_;
};

Result<json> ParseObject(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("status reply is not JSON");
  if (!j.is_object()) return InvalidArgument("status reply is not a JSON object");
  return j;
}

LogReport LogFromJson(FieldReader& f, const json& o, const std::string& w) {
  LogReport r;
  r.uuid = f.Str(o, "uuid", w);
  r.type = f.Str(o, "type", w);
  r.mode = f.Str(o, "mode", w);
  r.luid = f.OptU64(o, "luid", w);
  r.device = f.Str(o, "device", w, /*null_is_empty=*/true);
  r.region_size = f.U32(o, "region_size", w);
  r.regions = f.U64(o, "regions", w);
  r.in_sync = f.OptU64(o, "in_sync", w);
  r.out_of_sync = f.OptU64(o, "out_of_sync", w);
  f.Array(o, "recovering", w, [&](const json& e, const std::string& ew) {
    r.recovering.push_back({f.U64(e, "region", ew), f.U32(e, "node", ew)});
  });
  f.Array(o, "dirty", w, [&](const json& e, const std::string& ew) {
    NodeDirty d;
    d.node = f.U32(e, "node", ew);
    d.source = f.Str(e, "source", ew);
    d.known = f.Bool(e, "known", ew);
    d.overflow = f.Bool(e, "overflow", ew);
    d.regions = f.U64s(e, "regions", ew);
    if (f.U64(e, "count", ew) != d.regions.size()) f.Fail(ew + ": count differs from regions");
    r.dirty.push_back(std::move(d));
  });
  f.Array(o, "busy", w, [&](const json& e, const std::string& ew) {
    r.busy.push_back({f.U32(e, "node", ew), f.U64s(e, "regions", ew)});
  });
  r.server = f.OptU32(o, "server", w);
  r.members = f.Nodes(o, "members", w);
  r.absent = f.Nodes(o, "absent", w);
  r.generation = f.OptU64(o, "generation", w);
  r.ready = f.Bool(o, "ready", w);
  r.serving = f.Bool(o, "serving", w);
  r.quorate = f.OptBool(o, "quorate", w);
  r.recovery_gate_open = f.OptBool(o, "recovery_gate_open", w);
  r.pending_requests = f.U64(o, "pending_requests", w);
  r.device_failed = f.Bool(o, "device_failed", w);
  if (const json* c = f.Get(o, "counters", w)) {
    if (!c->is_object()) f.Fail(w + ": field 'counters' is not an object");
    for (auto it = c->begin(); c->is_object() && it != c->end(); ++it) {
      r.counters.emplace_back(it.key(), f.U64(*c, it.key(), w + ".counters"));
    }
  }
  f.Array(o, "notes", w, [&](const json& e, const std::string& ew) {
    if (!e.is_string()) f.Fail(ew + " is not a string");
    if (e.is_string()) r.notes.push_back(e.get<std::string>());
  });
  return r;
}

// The header both reports share: a version this build reads, and the node.
Status ReadHeader(FieldReader& f, const json& j, uint32_t& version, NodeId& node) {
  version = f.U32(j, "version", "reply");
  if (f.error().empty() && version != kStatusFormatVersion) {
    return UnsupportedVersion("status format version " + std::to_string(version) +
                              "; this clogctl reads version " +
                              std::to_string(kStatusFormatVersion));
  }
  node = f.U32(j, "node", "reply");
  return Status::Ok();
}

}  // namespace

std::string StatusJson(const StatusReport& report) {
  ordered logs = ordered::array();
  for (const auto& l : report.logs) logs.push_back(LogJson(l));
  ordered j = {{"version", report.version}, {"node", report.node}, {"logs", logs}};
  return j.dump();
}

Result<StatusReport> StatusFromJson(const std::string& text) {
  auto parsed = ParseObject(text);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  FieldReader f;
  StatusReport report;
  CLOG_RETURN_IF_ERROR(ReadHeader(f, j, report.version, report.node));
  f.Array(j, "logs", "reply", [&](const json& e, const std::string& w) {
    report.logs.push_back(LogFromJson(f, e, w));
  });
  if (!f.error().empty()) return InvalidArgument(f.error());
  return report;
}

std::string NodesJson(const NodesReport& report) {
  ordered logs = ordered::array();
  for (const auto& l : report.logs) {
    logs.push_back({{"uuid", l.uuid},
                    {"mode", l.mode},
                    {"members", l.members},
                    {"absent", l.absent},
                    {"server", OrNull(l.server)},
                    {"serving", l.serving}});
  }
  ordered j = {{"version", report.version}, {"node", report.node}, {"logs", logs}};
  return j.dump();
}

Result<NodesReport> NodesFromJson(const std::string& text) {
  auto parsed = ParseObject(text);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  FieldReader f;
  NodesReport report;
  CLOG_RETURN_IF_ERROR(ReadHeader(f, j, report.version, report.node));
  f.Array(j, "logs", "reply", [&](const json& e, const std::string& w) {
    NodesReport::Log l;
    l.uuid = f.Str(e, "uuid", w);
    l.mode = f.Str(e, "mode", w);
    l.members = f.Nodes(e, "members", w);
    l.absent = f.Nodes(e, "absent", w);
    l.server = f.OptU32(e, "server", w);
    l.serving = f.Bool(e, "serving", w);
    report.logs.push_back(std::move(l));
  });
  if (!f.error().empty()) return InvalidArgument(f.error());
  return report;
}

}  // namespace clogd::logd
