// The device-mapper side of a leg removal (CLUSTER.md "Leg removal"): what clogd's
// LegHooks do on a real node, as blocking calls for the DmRearmer's worker thread.
//   * ReadLegs: the mirror that uses a log, and the health of its legs as `dmsetup
//     status` shows them (dmtable::MirrorHealth);
//   * PrepareLegRemoval: noflush suspend, then load the table without the leg as the
//     inactive table (resumed as it was if the load fails);
//   * FinishLegRemoval: resume the loaded table (commit), or clear it and resume (abort);
//   * DropLeftoverReloads: at start, a mirror with a userspace/cluster log left suspended
//     with an inactive table (a clogd killed mid-removal) gets its old table back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dmtable/dm_device.h"

namespace clogd::logd {

struct MirrorLegs {
  std::string device;            // the dm device whose mirror target uses the log
  uint32_t legs = 0;             // in its live table
  std::vector<uint32_t> failed;  // table indexes whose health letter is not A
};

dmtable::Expected<MirrorLegs> ReadLegs(dmtable::DeviceMapper& dm, const std::string& uuid);
// Returns the device it suspended (with the table loaded).
dmtable::Expected<std::string> PrepareLegRemoval(dmtable::DeviceMapper& dm, const std::string& uuid,
                                                 uint32_t leg, uint32_t legs);
dmtable::Expected<dmtable::Done> FinishLegRemoval(dmtable::DeviceMapper& dm,
                                                  const std::string& uuid, bool commit);
// The devices it resumed; problems go to `problems`.
std::vector<std::string> DropLeftoverReloads(dmtable::DeviceMapper& dm,
                                             std::vector<std::string>& problems);

}  // namespace clogd::logd
