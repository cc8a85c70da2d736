// Leg changes through libdevmapper (see dm_legs.h). Blocking: the DmRearmer's worker runs
// them.
#include "logd/dm_legs.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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

Expected<ReplaceTarget> FindReplaceTarget(DeviceMapper& dm, const std::string& mirror,
                                          std::optional<uint32_t> leg, bool add) {
  ReplaceTarget out;
  if (auto table = dm.Table(mirror); table.ok()) {
    for (const DmTarget& t : *table) {
      if (auto uuid = dmtable::MirrorLogUuid(t)) {
        out.uuid = std::string(*uuid);
        break;
      }
    }
    if (out.uuid.empty()) {
      return TableError{mirror + " is not a mirror with a clustered (userspace) log"};
    }
  } else {
    out.uuid = mirror;  // a log uuid?
  }
  auto legs = ReadLegs(dm, out.uuid);
  if (!legs.ok()) {
    return TableError{"no device-mapper device named " + mirror + ", and " + legs.error().message};
  }
  out.device = legs->device;
  out.legs = legs->legs;
  if (add) return out;
  if (leg) {
    if (*leg >= legs->legs) {
      return TableError{out.device + " has " + std::to_string(legs->legs) + " legs (0 to " +
                        std::to_string(legs->legs - 1) + "): there is no leg " +
                        std::to_string(*leg)};
    }
    out.leg = leg;
    return out;
  }
  if (legs->failed.size() != 1) {
    std::string failed;
    for (uint32_t l : legs->failed) failed += (failed.empty() ? "" : ", ") + std::to_string(l);
    return TableError{out.device + (legs->failed.empty()
                                        ? ": no leg has failed; name the leg to replace "
                                          "(--leg N), or add a leg (clogctl add-leg)"
                                        : ": legs " + failed + " failed; name one (--leg N)")};
  }
  out.leg = legs->failed.front();
  return out;
}

Expected<std::string> BlockDeviceNumber(const std::string& device) {
  if (device.empty()) return TableError{"no device named for the new leg"};
  if (device.front() != '/') return device;  // major:minor (WithLeg checks its form)
  struct stat st {};
  if (stat(device.c_str(), &st) != 0) {
    return TableError{"new leg " + device + ": " + std::strerror(errno)};
  }
  if (!S_ISBLK(st.st_mode)) return TableError{"new leg " + device + " is not a block device"};
  return std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
}

Expected<std::string> PrepareLegChange(DeviceMapper& dm, const std::string& uuid,
                                       const LegChange& change) {
  auto found = FindMirror(dm, uuid);
  if (!found.ok()) return found.error();
  DmTarget& target = found->table[found->target];
  auto mirror = dmtable::ParseParams(target.params);
  if (!mirror.ok()) return TableError{found->device + ": " + mirror.error().message};
  if (mirror->legs.size() != change.legs || (change.remove && *change.remove >= change.legs)) {
    return TableError{found->device + " has " + std::to_string(mirror->legs.size()) +
                      " legs, the change was proposed for " + std::to_string(change.legs)};
  }
  // The removal first (by index, so a leg that came back can replace itself), then the new
  // leg last: never the resync source, which is the first leg.
  dmtable::MirrorTable changed = *mirror;
  if (change.remove) changed.legs.erase(changed.legs.begin() + *change.remove);
  if (!change.add_device.empty()) {
    auto number = BlockDeviceNumber(change.add_device);
    if (!number.ok()) return number.error();
    auto with = dmtable::WithLeg(changed, *number, change.add_offset);
    if (!with.ok()) return TableError{found->device + ": " + with.error().message};
    changed = std::move(*with);
  }
  if (auto bad = dmtable::Validate(changed)) {
    return TableError{found->device + ": " + bad->message};
  }
  target.params = dmtable::FormatParams(changed);
  if (auto s = dm.Suspend(found->device, /*noflush=*/true); !s.ok()) return s.error();
  if (auto l = dm.Load(found->device, found->table); !l.ok()) {
    auto r = dm.Resume(found->device);  // as it was
    return TableError{l.error().message + (r.ok() ? "" : "; and " + r.error().message)};
  }
  return found->device;
}

Expected<Done> FinishLegChange(DeviceMapper& dm, const std::string& uuid, bool commit) {
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
