// CTR string parser: "<target sectors> <log type> [<device>] <region size> [sync|nosync]
// [block_on_error]". Strict: every refusal names the bad word and what was expected.
#include "logd/ctr_args.h"

#include <linux/dm-ioctl.h>

#include <limits>
#include <optional>
#include <vector>

namespace clogd::logd {
namespace {

// Largest major and minor a dev_t holds (12 and 20 bits, as the kernel's MKDEV).
constexpr uint64_t kMaxMajor = (1u << 12) - 1;
constexpr uint64_t kMaxMinor = (1u << 20) - 1;
// Longest device name the kernel takes back in the CTR reply (DM_NAME_LEN with its NUL).
constexpr size_t kMaxDeviceName = DM_NAME_LEN - 1;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::vector<std::string_view> SplitWords(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    const size_t start = i;
    while (i < s.size() && !IsSpace(s[i])) ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Decimal digits only (no sign, no prefix). nullopt when not a number or above `max`;
// `overflow` tells which.
std::optional<uint64_t> ParseDecimal(std::string_view s, uint64_t max, bool& overflow) {
  overflow = false;
  if (!AllDigits(s)) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (max - d) / 10) {
      overflow = true;
      return std::nullopt;
    }
    v = v * 10 + d;
  }
  return v;
}

std::optional<LogType> ParseLogType(std::string_view s) {
  if (s == "clustered-core") return LogType::kClusteredCore;
  if (s == "clustered-disk") return LogType::kClusteredDisk;
  if (s == "core") return LogType::kCore;
  if (s == "disk") return LogType::kDisk;
  return std::nullopt;
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

bool LooksLikeDevice(std::string_view s) {
  return !s.empty() && (s.front() == '/' || s.find(':') != std::string_view::npos);
}

// A path (starting with '/') or major:minor with both numeric and within dev_t's range.
Status CheckDevice(std::string_view dev, LogType type) {
  // The CTR reply hands the device name back in a DM_NAME_LEN buffer, NUL included.
  if (dev.size() > kMaxDeviceName) {
    return InvalidArgument("CTR: device name of " + std::to_string(dev.size()) +
                           " characters is longer than " + std::to_string(kMaxDeviceName) +
                           " (the kernel's DM_NAME_LEN for the CTR reply)");
  }
  if (dev.front() == '/') return Status::Ok();
  const size_t colon = dev.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument("CTR: log type '" + std::string(LogTypeName(type)) +
                           "' needs a device (a path or major:minor) before the region size, "
                           "got " +
                           Quote(dev));
  }
  const std::string_view maj_s = dev.substr(0, colon);
  const std::string_view min_s = dev.substr(colon + 1);
  bool overflow = false;
  const std::optional<uint64_t> maj = ParseDecimal(maj_s, kMaxMajor, overflow);
  if (!maj) {
    if (overflow) {
      return InvalidArgument("CTR: device " + Quote(dev) + ": major " + Quote(maj_s) +
                             " out of range (max " + std::to_string(kMaxMajor) + ")");
    }
    return InvalidArgument("CTR: device " + Quote(dev) +
                           " is neither a path nor major:minor (major " + Quote(maj_s) +
                           " is not a number)");
  }
  const std::optional<uint64_t> min = ParseDecimal(min_s, kMaxMinor, overflow);
  if (!min) {
    if (overflow) {
      return InvalidArgument("CTR: device " + Quote(dev) + ": minor " + Quote(min_s) +
                             " out of range (max " + std::to_string(kMaxMinor) + ")");
    }
    return InvalidArgument("CTR: device " + Quote(dev) +
                           " is neither a path nor major:minor (minor " + Quote(min_s) +
                           " is not a number)");
  }
  return Status::Ok();
}

Result<uint32_t> ParseRegionSize(std::string_view s) {
  bool overflow = false;
  const std::optional<uint64_t> v = ParseDecimal(s, std::numeric_limits<uint32_t>::max(), overflow);
  if (!v) {
    if (overflow) {
      return InvalidArgument("CTR: region size " + Quote(s) + " does not fit 32 bits (max " +
                             std::to_string(std::numeric_limits<uint32_t>::max()) + ")");
    }
    return InvalidArgument("CTR: region size " + Quote(s) + " is not a number");
  }
  if (*v == 0) return InvalidArgument("CTR: region size 0: must be non-zero");
  if ((*v & (*v - 1)) != 0) {
    return InvalidArgument("CTR: region size " + std::to_string(*v) + " is not a power of two");
  }
  return static_cast<uint32_t>(*v);
}

}  // namespace

const char* LogTypeName(LogType type) {
  switch (type) {
    case LogType::kClusteredCore:
      return "clustered-core";
    case LogType::kClusteredDisk:
      return "clustered-disk";
    case LogType::kCore:
      return "core";
    case LogType::kDisk:
      return "disk";
  }
  return "unknown";
}

bool IsDiskLog(LogType type) { return type == LogType::kClusteredDisk || type == LogType::kDisk; }

bool IsClusteredLog(LogType type) {
  return type == LogType::kClusteredCore || type == LogType::kClusteredDisk;
}

uint64_t CtrArgs::RegionCount() const {
  if (region_size == 0) return 0;
  return target_sectors / region_size + (target_sectors % region_size != 0 ? 1 : 0);
}

std::string CtrArgs::ToArgString() const {
  std::string s = LogTypeName(type);
  if (IsDiskLog(type)) s += " " + device;
  s += " " + std::to_string(region_size);
  if (sync == SyncMode::kForceSync) s += " sync";
  if (sync == SyncMode::kNoSync) s += " nosync";
  if (block_on_error) s += " block_on_error";
  return s;
}

Result<CtrArgs> ParseCtrString(std::string_view ctr) {
  for (size_t i = 0; i < ctr.size(); ++i) {
    const auto c = static_cast<unsigned char>(ctr[i]);
    if ((c < 0x20 && !IsSpace(ctr[i])) || c == 0x7f) {
      return InvalidArgument("CTR: control character " + std::to_string(c) + " at byte " +
                             std::to_string(i));
    }
  }
  const std::vector<std::string_view> words = SplitWords(ctr);
  if (words.empty()) {
    return InvalidArgument(
        "CTR: empty constructor string (expected '<target sectors> <log type> [<device>] "
        "<region size> [sync|nosync] [block_on_error]')");
  }
  CtrArgs args;
  size_t w = 0;

  // Target length.
  bool overflow = false;
  const std::optional<uint64_t> len =
      ParseDecimal(words[w], std::numeric_limits<uint64_t>::max(), overflow);
  if (!len) {
    if (overflow) {
      return InvalidArgument("CTR: target length " + Quote(words[w]) + " does not fit 64 bits");
    }
    return InvalidArgument("CTR: target length " + Quote(words[w]) +
                           " is not a number (the string starts with the target length in "
                           "sectors)");
  }
  if (*len == 0) return InvalidArgument("CTR: target length 0: must be non-zero");
  args.target_sectors = *len;
  ++w;

  // Log type.
  if (w == words.size()) {
    return InvalidArgument("CTR: missing log type after target length " + std::string(words[0]) +
                           " (expected clustered-core, clustered-disk, core or disk)");
  }
  const std::optional<LogType> type = ParseLogType(words[w]);
  if (!type) {
    return InvalidArgument("CTR: unknown log type " + Quote(words[w]) +
                           " (expected clustered-core, clustered-disk, core or disk)");
  }
  args.type = *type;
  const std::string type_name = LogTypeName(args.type);
  ++w;

  // Device.
  if (IsDiskLog(args.type)) {
    if (w == words.size()) {
      return InvalidArgument("CTR: log type '" + type_name +
                             "' needs a device (a path or major:minor) and a region size");
    }
    CLOG_RETURN_IF_ERROR(CheckDevice(words[w], args.type));
    args.device = std::string(words[w]);
    ++w;
  } else if (w < words.size() && LooksLikeDevice(words[w])) {
    return InvalidArgument("CTR: log type '" + type_name + "' takes no device, got " +
                           Quote(words[w]));
  }

  // Region size.
  if (w == words.size()) {
    return InvalidArgument(
        "CTR: missing region size after " +
        (IsDiskLog(args.type) ? "device " + Quote(args.device) : "log type '" + type_name + "'"));
  }
  Result<uint32_t> rs = ParseRegionSize(words[w]);
  if (!rs.ok()) return rs.status();
  args.region_size = *rs;
  ++w;

  // Options, in any order, each at most once.
  std::vector<std::string_view> extra;
  bool seen_sync = false;
  for (; w < words.size(); ++w) {
    const std::string_view word = words[w];
    if (word == "sync" || word == "nosync") {
      if (seen_sync) {
        const char* prev = args.sync == SyncMode::kForceSync ? "sync" : "nosync";
        if (word == prev) return InvalidArgument("CTR: option " + Quote(word) + " repeated");
        return InvalidArgument("CTR: options 'sync' and 'nosync' are mutually exclusive");
      }
      seen_sync = true;
      args.sync = word == "sync" ? SyncMode::kForceSync : SyncMode::kNoSync;
    } else if (word == "block_on_error") {
      if (args.block_on_error) {
        return InvalidArgument("CTR: option 'block_on_error' repeated");
      }
      args.block_on_error = true;
    } else {
      extra.push_back(word);
    }
  }
  if (!extra.empty()) {
    std::string names;
    for (std::string_view e : extra) names += (names.empty() ? "" : " ") + Quote(e);
    return InvalidArgument(std::string("CTR: unexpected word") + (extra.size() > 1 ? "s " : " ") +
                           names + " after region size " + std::to_string(args.region_size) +
                           " (options are sync, nosync, block_on_error)");
  }
  return args;
}

std::string LogStatusInfo(const CtrArgs& args, bool device_failed) {
  if (!IsDiskLog(args.type)) return std::string("1 ") + LogTypeName(args.type);
  return std::string("3 ") + LogTypeName(args.type) + " " + args.device + " " +
         (device_failed ? "D" : "A");
}

std::string LogStatusTable(const CtrArgs& args) {
  unsigned argc = 1;
  std::string rest;
  if (IsDiskLog(args.type)) {
    ++argc;
    rest += args.device + " ";
  }
  rest += std::to_string(args.region_size) + " ";
  if (args.sync != SyncMode::kDefault) {
    ++argc;
    rest += args.sync == SyncMode::kNoSync ? "nosync " : "sync ";
  }
  if (args.block_on_error) {
    ++argc;
    rest += "block_on_error ";
  }
  return std::string(LogTypeName(args.type)) + " " + std::to_string(argc) + " " + rest;
}

}  // namespace clogd::logd
