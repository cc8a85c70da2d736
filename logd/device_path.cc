// Device lookup by path or major:minor. Guests without udev have no /dev/block links, so
// the /dev scan is the fallback that matters there.
#include "logd/device_path.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <charconv>
#include <filesystem>
#include <system_error>

namespace clogd::logd {

namespace {

bool ParseMajorMinor(const std::string& spec, unsigned& major_no, unsigned& minor_no) {
  auto colon = spec.find(':');
  if (colon == std::string::npos) return false;
  const char* b = spec.data();
  auto r1 = std::from_chars(b, b + colon, major_no);
  auto r2 = std::from_chars(b + colon + 1, b + spec.size(), minor_no);
  return r1.ec == std::errc() && r1.ptr == b + colon && r2.ec == std::errc() &&
         r2.ptr == b + spec.size();
}

bool IsBlockDevice(const std::string& path, dev_t want) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == want;
}

}  // namespace

Result<std::string> ResolveDevicePath(const std::string& spec) {
  unsigned maj = 0, min = 0;
  if (!ParseMajorMinor(spec, maj, min)) {
    struct stat st {};
    if (stat(spec.c_str(), &st) == 0) return spec;
    return NotFound("log device " + spec + " does not exist");
  }
  const dev_t want = makedev(maj, min);
  const std::string link = "/dev/block/" + spec;
  if (IsBlockDevice(link, want)) return link;
  for (const char* dir : {"/dev/mapper", "/dev"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string path = entry.path().string();
      if (IsBlockDevice(path, want)) return path;
    }
  }
  return NotFound("log device " + spec + ": no block device with that number in /dev/block, " +
                  "/dev/mapper or /dev");
}

Result<std::unique_ptr<region::BlockDevice>> OpenLogDevice(const std::string& spec) {
  auto path = ResolveDevicePath(spec);
  if (!path.ok()) return path.status();
  return region::OpenDirectDevice(*path);
}

}  // namespace clogd::logd
