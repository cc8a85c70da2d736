// Leg removal through libdevmapper (see dm_legs.h). Blocking: the DmRearmer's worker runs it.
#include "logd/dm_legs.h"

#include <algorithm>

#include "dmtable/mirror_table.h"

namespace clogd::logd {

using dmtable::DeviceMapper;
using dmtable::DmTarget;
using dmtable::Done;
using dmtable::Expected;
using dmtable::TableError;

namespace {

// The devices whose live table has a mirror target using `uuid`, each with that target's
// index in its table.
struct Found {
  std::string device;
  std::vector<DmTarget> table;
  size_t target = 0;
};

Expected<Found> FindMirror(DeviceMapper& dm, const std::string& uuid) {
  auto names = dm.ListDevices();
  if (!names.ok()) return names.error();
  for (const std::string& name : *names) {
    auto table = dm.Table(name);
    if (!table.ok()) continue;  // removed since the listing
    for (size_t i = 0; i < table->size(); ++i) {
      if (dmtable::MirrorUsesLog((*table)[i], uuid)) return Found{name, std::move(*table), i};
    }
  }
  return TableError{"no device-mapper device has a mirror using log " + uuid};
}

}  // namespace

Expected<MirrorLegs> ReadLegs(DeviceMapper& dm, const std::string& uuid) {
  auto found = FindMirror(dm, uuid);
  if (!found.ok()) return found.error();
  auto status = dm.Status(found->device);
  if (!status.ok()) return status.error();
  for (const DmTarget& t : *status) {
    if (t.start != found->table[found->target].start || t.type != "mirror") continue;
    auto health = dmtable::MirrorHealth(t.params);
    if (!health.ok()) return TableError{found->device + ": " + health.error().message};
    MirrorLegs out;
    out.device = found->device;
    out.legs = static_cast<uint32_t>(health->size());
    for (uint32_t i = 0; i < out.legs; ++i) {
      if ((*health)[i] != 'A') out.failed.push_back(i);
    }
    return out;
  }
  return TableError{found->device + ": its status has no mirror line"};
}

Expected<std::string> PrepareLegRemoval(DeviceMapper& dm, const std::string& uuid, uint32_t leg,
                                        uint32_t legs) {
  auto found = FindMirror(dm, uuid);
  if (!found.ok()) return found.error();
  DmTarget& target = found->table[found->target];
  auto mirror = dmtable::ParseParams(target.params);
  if (!mirror.ok()) return TableError{found->device + ": " + mirror.error().message};
  if (mirror->legs.size() != legs || leg >= legs) {
    return TableError{found->device + " has " + std::to_string(mirror->legs.size()) +
                      " legs, the removal was proposed for " + std::to_string(legs)};
  }
  auto without = dmtable::WithoutLeg(*mirror, mirror->legs[leg].device);
  if (!without.ok()) return TableError{found->device + ": " + without.error().message};
  target.params = dmtable::FormatParams(*without);
  if (auto s = dm.Suspend(found->device, /*noflush=*/true); !s.ok()) return s.error();
  if (auto l = dm.Load(found->device, found->table); !l.ok()) {
    auto r = dm.Resume(found->device);  // as it was
    return TableError{l.error().message + (r.ok() ? "" : "; and " + r.error().message)};
  }
  return found->device;
}

Expected<Done> FinishLegRemoval(DeviceMapper& dm, const std::string& uuid, bool commit) {
  auto found = FindMirror(dm, uuid);
  if (!found.ok()) return found.error();
  auto info = dm.Info(found->device);
  if (!info.ok()) return info.error();
  if (!commit && info->inactive_table) {
    if (auto c = dm.Clear(found->device); !c.ok()) return c.error();
  }
  if (!info->suspended && !info->inactive_table) return Done{};
  return dm.Resume(found->device);
}

std::vector<std::string> DropLeftoverReloads(DeviceMapper& dm, std::vector<std::string>& problems) {
  std::vector<std::string> resumed;
  auto names = dm.ListDevices();
  if (!names.ok()) {
    problems.push_back(names.error().message);
    return resumed;
  }
  for (const std::string& name : *names) {
    auto info = dm.Info(name);
    if (!info.ok() || !info->suspended || !info->inactive_table) continue;
    auto table = dm.Table(name);
    if (!table.ok()) continue;
    const bool ours = std::any_of(table->begin(), table->end(), [](const DmTarget& t) {
      return dmtable::MirrorLogUuid(t).has_value();
    });
    if (!ours) continue;
    if (auto c = dm.Clear(name); !c.ok()) {
      problems.push_back(c.error().message);
      continue;
    }
    if (auto r = dm.Resume(name); !r.ok()) {
      problems.push_back(r.error().message);
      continue;
    }
    resumed.push_back(name);
  }
  return resumed;
}

}  // namespace clogd::logd
