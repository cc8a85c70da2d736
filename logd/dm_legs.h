// The device-mapper side of a leg removal (CLUSTER.md "Leg removal"): what clogd's
// LegHooks do on a real node, as blocking calls for the DmRearmer's worker thread.
//   * ReadLegs: the mirror that uses a log, and the health of its legs as `dmsetup
//     status` shows them (dmtable::MirrorHealth);
//   * PrepareLegChange: noflush suspend, then load the table without the leg and/or with
//     the new one as the inactive table (resumed as it was if the load fails);
//   * FinishLegChange: resume the loaded table (commit), or clear it and resume (abort);
//   * DropLeftoverReloads: at start, a mirror with a userspace/cluster log left suspended
//     with an inactive table (a clogd killed mid-removal) gets its old table back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dmtable/dm_device.h"
#include "logd/local_log.h"

namespace clogd::logd {

struct MirrorLegs {
  std::string device;            // the dm device whose mirror target uses the log
  uint32_t legs = 0;             // in its live table
  std::vector<uint32_t> failed;  // table indexes whose health letter is not A
};

dmtable::Expected<MirrorLegs> ReadLegs(dmtable::DeviceMapper& dm, const std::string& uuid);
// Returns the device it suspended (with the table loaded). A new leg named by a path is
// written into the table as this node's major:minor of it (so a leg already in the table
// is recognised whichever way it is named).
dmtable::Expected<std::string> PrepareLegChange(dmtable::DeviceMapper& dm, const std::string& uuid,
                                                const LegChange& change);
dmtable::Expected<dmtable::Done> FinishLegChange(dmtable::DeviceMapper& dm, const std::string& uuid,
                                                 bool commit);
// What `clogctl replace-leg MIRROR` means on this node: MIRROR is a device-mapper device
// with a mirror target using a userspace/cluster log, or that log's uuid; the leg replaced
// is `leg`, or else the one failed leg (an error if none or several failed). add: none.
struct ReplaceTarget {
  std::string uuid;
  std::string device;
  uint32_t legs = 0;
  std::optional<uint32_t> leg;
};
dmtable::Expected<ReplaceTarget> FindReplaceTarget(dmtable::DeviceMapper& dm,
                                                   const std::string& mirror,
                                                   std::optional<uint32_t> leg, bool add);
// A path's block device as "major:minor"; "M:m" as it is.
dmtable::Expected<std::string> BlockDeviceNumber(const std::string& device);
// The devices it resumed; problems go to `problems`.
std::vector<std::string> DropLeftoverReloads(dmtable::DeviceMapper& dm,
                                             std::vector<std::string>& problems);

}  // namespace clogd::logd
