// A logging hook for the core: the core never writes to stderr or syslog itself; the
// daemon passes a function (syslog/journald or stderr), tests pass a collector.
#pragma once

#include <functional>
#include <string>

namespace clogd::logd {

enum class Severity { kDebug, kInfo, kWarning, kError };

using LogFn = std::function<void(Severity, const std::string&)>;

const char* SeverityName(Severity s);

}  // namespace clogd::logd
