// Severity names for log lines.
#include "logd/logging.h"

namespace clogd::logd {

const char* SeverityName(Severity s) {
  switch (s) {
    case Severity::kDebug:
      return "debug";
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
  }
  return "?";
}

}  // namespace clogd::logd
