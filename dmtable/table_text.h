// Small text helpers shared by the dmtable sources (internal; not part of the public API):
// splitting a line into words, strict unsigned parsing, device-name checks, error text.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "dmtable/mirror_table.h"

namespace clogd::dmtable::text {

inline constexpr std::string_view kWhitespace = " \t\n\r\v\f";

inline TableError Err(std::string what) { return TableError{"mirror table: " + what}; }

inline std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

inline std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

inline std::vector<std::string_view> Split(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (true) {
    i = text.find_first_not_of(kWhitespace, i);
    if (i == std::string_view::npos) break;
    std::size_t end = text.find_first_of(kWhitespace, i);
    if (end == std::string_view::npos) end = text.size();
    words.push_back(text.substr(i, end - i));
    i = end;
  }
  return words;
}

enum class Num { kOk, kNotNumber, kOutOfRange };

// Decimal digits only (no sign, no spaces), at most `max`.
inline Num ParseUnsigned(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos) {
    return Num::kNotNumber;
  }
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range || v > max) return Num::kOutOfRange;
  if (ec != std::errc() || ptr != s.data() + s.size()) return Num::kNotNumber;
  *out = v;
  return Num::kOk;
}

inline bool AllDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

inline bool HasWhitespace(std::string_view s) {
  return s.find_first_of(kWhitespace) != std::string_view::npos;
}

// Why `dev` is not a usable device name, or empty when it is: an absolute path, or
// major:minor within the kernel's dev_t (12-bit major, 20-bit minor).
inline std::string DeviceProblem(std::string_view dev) {
  if (HasWhitespace(dev)) return "contains whitespace";
  if (dev.size() > 1 && dev.front() == '/') return {};
  std::size_t colon = dev.find(':');
  if (colon != std::string_view::npos) {
    std::string_view major = dev.substr(0, colon);
    std::string_view minor = dev.substr(colon + 1);
    uint64_t v = 0;
    if (ParseUnsigned(major, (1u << 12) - 1, &v) == Num::kOk &&
        ParseUnsigned(minor, (1u << 20) - 1, &v) == Num::kOk) {
      return {};
    }
    if (AllDigits(major) && AllDigits(minor)) {
      return "is out of range for major:minor (major < 4096, minor < 1048576)";
    }
  }
  return "is neither a device path nor major:minor";
}

}  // namespace clogd::dmtable::text
