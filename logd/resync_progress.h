// `clogctl status --watch`: resync progress per log from successive status samples — the
// rate (regions/s over a sliding window of samples) and the time left — and the one-line
// progress bar that shows it. Pure: the caller supplies the sample times.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

namespace clogd::logd {

class ResyncRate {
 public:
  explicit ResyncRate(size_t window = 10) : window_(window < 2 ? 2 : window) {}
  // A sample: `in_sync` regions at `seconds` (any monotonic origin).
  void Add(double seconds, uint64_t in_sync);
  // Regions that came in sync per second over the window (negative when regions went out
  // of sync); nullopt until two samples at different times exist.
  std::optional<double> rate() const;

 private:
  size_t window_;
  std::deque<std::pair<double, uint64_t>> samples_;
};

// Seconds as "42s", "3m07s", "2h05m", "3d04h".
std::string FormatDuration(double seconds);

// One line of at most `width` columns:
//   "<name> [#######-------]  93.1%  1234/s  left 3m07s"
// `in_sync` nullopt: the log's state is not loaded yet.
std::string ProgressLine(const std::string& name, std::optional<uint64_t> in_sync, uint64_t regions,
                         std::optional<double> rate, size_t width = 80);

}  // namespace clogd::logd
