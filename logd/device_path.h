// Resolves the log device named in a CTR string — a path, or "major:minor" as LVM and
// the kernel write it — to a path that can be opened.
#pragma once

#include <memory>
#include <string>

#include "region/block_device.h"
#include "region/status.h"

namespace clogd::logd {

// A path is returned if it exists. "M:m" is looked up as /dev/block/M:m, then among the
// block devices in /dev/mapper and /dev. kNotFound names the spec and where it looked.
Result<std::string> ResolveDevicePath(const std::string& spec);

// Resolves `spec` and opens it with O_DIRECT (the production DeviceOpener).
Result<std::unique_ptr<region::BlockDevice>> OpenLogDevice(const std::string& spec);

}  // namespace clogd::logd
