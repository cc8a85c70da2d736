// Region sets as text (region_ranges.h).
#include "region/region_ranges.h"

namespace clogd::region {

std::string FormatRegionRanges(const std::vector<RegionNo>& regions, size_t max_ranges) {
  if (regions.empty()) return "none";
  std::string out;
  size_t ranges = 0;
  size_t i = 0;
  while (i < regions.size()) {
    if (ranges == max_ranges) return out + ",...";
    RegionNo first = regions[i];
    RegionNo last = first;
    while (i < regions.size() && regions[i] <= last + 1) last = regions[i++];
    if (!out.empty()) out += ',';
    out += std::to_string(first);
    if (last != first) out += '-' + std::to_string(last);
    ++ranges;
  }
  return out;
}

}  // namespace clogd::region
