// Formatter, validator, leg rewrites and queries for the parsed `mirror` table model
// (see mirror_table.h; the parser lives in mirror_table_parse.cc).
#include "dmtable/mirror_table.h"

#include <string>

#include "dmtable/table_text.h"

namespace clogd::dmtable {
namespace {

using text::DeviceProblem;
using text::Err;
using text::HasWhitespace;
using text::Plural;
using text::Quote;

void AppendLogArgs(const LogSpec& log, std::string* out) {
  auto add = [out](std::string_view w) {
    *out += ' ';
    *out += w;
  };
  switch (log.kind) {
    case LogKind::kCore:
      break;
    case LogKind::kDisk:
      add(log.device);
      break;
    case LogKind::kUserspace:
      add(log.uuid);
      if (log.integrated_flush) add("integrated_flush");
      add(log.clustered_disk ? "clustered-disk" : "clustered-core");
      if (log.clustered_disk) add(log.device);
      break;
    case LogKind::kCluster:
      add(log.clustered_disk ? "disk" : "core");
      add(log.uuid);
      if (log.clustered_disk) add(log.device);
      break;
  }
  add(std::to_string(log.region_size));
  if (log.sync != SyncMode::kDefault) add(SyncModeName(log.sync));
  if (log.block_on_error) add("block_on_error");
}

// Field combinations Format cannot express faithfully, named.
std::optional<TableError> CheckFields(const MirrorTable& t) {
  const LogSpec& log = t.log;
  const std::string what = std::string(LogKindName(log.kind)) + " log";
  const bool uses_uuid = log.kind == LogKind::kUserspace || log.kind == LogKind::kCluster;
  const bool needs_device = log.kind == LogKind::kDisk || (uses_uuid && log.clustered_disk);
  if (t.length == 0 && t.start != 0) {
    return Err("length 0 (parameters only) but start is " + std::to_string(t.start));
  }
  if (!uses_uuid && !log.uuid.empty()) return Err(what + " takes no uuid");
  if (uses_uuid && log.uuid.empty()) return Err(what + ": missing uuid (empty)");
  if (log.kind != LogKind::kUserspace && log.integrated_flush) {
    return Err(what + " takes no integrated_flush");
  }
  if (!uses_uuid && log.clustered_disk) return Err(what + " cannot be clustered_disk");
  if (needs_device && log.device.empty()) return Err(what + ": missing log device (empty)");
  if (!needs_device && !log.device.empty()) {
    return Err(what + " takes no log device (has " + Quote(log.device) + ")");
  }
  for (const std::string* s : {&log.uuid, &log.device}) {
    if (HasWhitespace(*s)) return Err("field " + Quote(*s) + " contains whitespace");
  }
  for (const Leg& leg : t.legs) {
    if (leg.device.empty() || HasWhitespace(leg.device)) {
      return Err("leg device " + Quote(leg.device) + " is empty or contains whitespace");
    }
  }
  return std::nullopt;
}

}  // namespace

const char* LogKindName(LogKind kind) {
  switch (kind) {
    case LogKind::kCore:
      return "core";
    case LogKind::kDisk:
      return "disk";
    case LogKind::kUserspace:
      return "userspace";
    case LogKind::kCluster:
      return "cluster";
  }
  return "?";
}

const char* SyncModeName(SyncMode mode) {
  switch (mode) {
    case SyncMode::kDefault:
      return "";
    case SyncMode::kSync:
      return "sync";
    case SyncMode::kNoSync:
      return "nosync";
  }
  return "?";
}

unsigned LogArgCount(const LogSpec& log) {
  unsigned n = 1;  // region size
  switch (log.kind) {
    case LogKind::kCore:
      break;
    case LogKind::kDisk:
      n += 1;
      break;
    case LogKind::kUserspace:
    case LogKind::kCluster:
      n += 2 + (log.clustered_disk ? 1u : 0u) +
           (log.kind == LogKind::kUserspace && log.integrated_flush ? 1u : 0u);
      break;
  }
  return n + (log.sync != SyncMode::kDefault ? 1u : 0u) + (log.block_on_error ? 1u : 0u);
}

std::string FormatParams(const MirrorTable& table) {
  std::string out = LogKindName(table.log.kind);
  out += ' ';
  out += std::to_string(LogArgCount(table.log));
  AppendLogArgs(table.log, &out);
  out += ' ';
  out += std::to_string(table.legs.size());
  for (const Leg& leg : table.legs) {
    out += ' ';
    out += leg.device;
    out += ' ';
    out += std::to_string(leg.offset);
  }
  const unsigned features = (table.handle_errors ? 1u : 0u) + (table.keep_log ? 1u : 0u);
  if (features != 0) {
    out += ' ';
    out += std::to_string(features);
    if (table.handle_errors) out += " handle_errors";
    if (table.keep_log) out += " keep_log";
  }
  return out;
}

std::string Format(const MirrorTable& table) {
  return std::to_string(table.start) + " " + std::to_string(table.length) + " mirror " +
         FormatParams(table);
}

std::optional<TableError> Validate(const MirrorTable& table) {
  if (auto e = CheckFields(table)) return e;
  Expected<MirrorTable> back =
      table.length == 0 ? ParseParams(FormatParams(table)) : Parse(Format(table));
  if (!back.ok()) return back.error();
  if (!(*back == table)) return Err("table does not survive formatting: " + Format(table));
  return std::nullopt;
}

Expected<MirrorTable> WithoutLeg(const MirrorTable& table, std::string_view device) {
  std::string legs;
  for (std::size_t i = 0; i < table.legs.size(); ++i) {
    if (table.legs[i].device != device) {
      legs += (legs.empty() ? "" : ", ") + table.legs[i].device;
      continue;
    }
    if (table.legs.size() <= kMinLegs) {
      return Err("removing leg " + Quote(device) + " would leave " +
                 Plural(table.legs.size() - 1, "leg", "legs") + "; dm-raid1 needs at least " +
                 std::to_string(kMinLegs) + " (replace the mirror by a linear target)");
    }
    MirrorTable out = table;
    out.legs.erase(out.legs.begin() + static_cast<std::ptrdiff_t>(i));
    return out;
  }
  return Err("no leg " + Quote(device) + " in the table (legs: " + legs + ")");
}

Expected<MirrorTable> WithLeg(const MirrorTable& table, std::string_view device, uint64_t offset) {
  std::string problem = DeviceProblem(device);
  if (!problem.empty()) return Err("new leg device " + Quote(device) + " " + problem);
  for (std::size_t i = 0; i < table.legs.size(); ++i) {
    if (table.legs[i].device == device) {
      return Err("device " + Quote(device) + " is already leg " + std::to_string(i + 1));
    }
  }
  if (table.log.device == device) {
    return Err("device " + Quote(device) + " is the log device");
  }
  if (table.legs.size() >= kMaxLegs) {
    return Err("cannot add leg " + Quote(device) + ": the table already has " +
               std::to_string(table.legs.size()) + " legs, dm-raid1 allows at most " +
               std::to_string(kMaxLegs));
  }
  MirrorTable out = table;
  out.legs.push_back(Leg{std::string(device), offset});
  return out;
}

std::optional<std::string> LogDevice(const MirrorTable& table) {
  const LogSpec& log = table.log;
  const bool on_disk =
      log.kind == LogKind::kDisk ||
      ((log.kind == LogKind::kUserspace || log.kind == LogKind::kCluster) && log.clustered_disk);
  if (!on_disk || log.device.empty()) return std::nullopt;
  return log.device;
}

bool IsClustered(const MirrorTable& table) {
  return table.log.kind == LogKind::kUserspace || table.log.kind == LogKind::kCluster;
}

}  // namespace clogd::dmtable
