// Region sets as text for log lines and tools: "3-7,12,40-41" (ascending, ranges joined).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "region/region_bitmap.h"

namespace clogd::region {

// `regions` sorted ascending (duplicates allowed). At most `max_ranges` ranges are written;
// more end the text with ",..." so a log line stays bounded. An empty set is "none".
std::string FormatRegionRanges(const std::vector<RegionNo>& regions, size_t max_ranges = 32);

}  // namespace clogd::region
