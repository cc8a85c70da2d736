// Resync rate and progress bar for `clogctl status --watch`.
#include "logd/resync_progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "logd/status_report.h"

namespace clogd::logd {

void ResyncRate::Add(double seconds, uint64_t in_sync) {
  samples_.emplace_back(seconds, in_sync);
  while (samples_.size() > window_) samples_.pop_front();
}

std::optional<double> ResyncRate::rate() const {
  if (samples_.size() < 2) return std::nullopt;
  const auto& [t0, n0] = samples_.front();
  const auto& [t1, n1] = samples_.back();
  if (t1 <= t0) return std::nullopt;
  return (static_cast<double>(n1) - static_cast<double>(n0)) / (t1 - t0);
}

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e9) return "?";
  const auto s = static_cast<uint64_t>(std::llround(seconds));
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llus", static_cast<unsigned long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%llum%02llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof(buf), "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%llud%02lluh", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s % 86400 / 3600));
  }
  return buf;
}

namespace {

// "100.0%  -999k/s  left 23h59m": the widest tail of a running resync.
constexpr size_t kTailAllowance = 29;

std::string RateText(double rate) {
  char buf[32];
  const double a = std::fabs(rate);
  const char* sign = rate < 0 ? "-" : "";
  if (a >= 1e6) {
    std::snprintf(buf, sizeof(buf), "%s%.1fM/s", sign, a / 1e6);
  } else if (a >= 1e4) {
    std::snprintf(buf, sizeof(buf), "%s%.0fk/s", sign, a / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%s%.0f/s", sign, a);
  }
  return buf;
}

}  // namespace

std::string ProgressLine(const std::string& name, std::optional<uint64_t> in_sync, uint64_t regions,
                         std::optional<double> rate, size_t width) {
  // Right-hand part first; the name and the bar share what is left.
  std::string tail;
  if (!in_sync) {
    tail = "state not loaded";
  } else {
    const uint64_t tenths = regions == 0 ? 1000 : *in_sync * 1000 / regions;  // truncated
    char pct[48];
    std::snprintf(pct, sizeof(pct), "%3llu.%llu%%", static_cast<unsigned long long>(tenths / 10),
                  static_cast<unsigned long long>(tenths % 10));
    tail = pct;
    const uint64_t left = regions - std::min(*in_sync, regions);
    if (left == 0) {
      tail += "  in sync";
    } else if (!rate) {
      tail += "  rate ?";
    } else {
      tail += "  " + RateText(*rate);
      tail += "  left " + (*rate > 0 ? FormatDuration(static_cast<double>(left) / *rate) : "?");
    }
  }
  // The bar keeps its width from sample to sample: the tail gets a fixed allowance (the
  // widest it normally is) rather than its current length.
  const size_t allowance = std::max(tail.size(), kTailAllowance);
  if (allowance + 2 >= width) return Elide(tail, width);
  const size_t room = width - allowance - 2;  // name + " " + bar + " " before the tail
  size_t name_width = std::min(name.size(), std::max<size_t>(room / 2, room > 24 ? 24 : room));
  std::string line = Elide(name, name_width);
  if (in_sync && room > line.size() + 5) {
    const size_t bar = room - line.size() - 3;  // " [" ... "]"
    const uint64_t total = regions == 0 ? 1 : regions;
    const auto filled = static_cast<size_t>(std::min(*in_sync, total) * bar / total);
    line += " [" + std::string(filled, '#') + std::string(bar - filled, '-') + "]";
  } else {
    line.resize(room, ' ');
  }
  return line + "  " + tail;  // ≤ width: the tail is at most its allowance
}

}  // namespace clogd::logd
